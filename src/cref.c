/*
** cref.c -- C objects by reference: a foreign userdata whose metatable has
** __lthreading_ref (the public contract: include/lthreading_ref.h) crosses threads by
** reference.
**
** CONTRACT
**   The marshaler (marshal.c) asks lt_cref_wrap for an lt_Object standing for the userdata's
**   C object: a CRef holding the type (the module's static lthreading_ref_type) and one
**   reference to the object (the module's retain).  The CRef goes into the message's object
**   list like any lthreading object, so the usual refcounting applies: it lives as long as
**   the messages that hold it, and when the last one is freed (on any OS thread) its
**   destructor calls the module's release.  The receiver calls lt_cref_push, which asks the
**   module to push its own userdata for the object (push takes its own reference).
**   A CRef never appears in Lua (it has no proxy): only T_CREF entries name it.
**
** LOCKING
**   None: the reference counts are atomic (ours in lt_Object, the module's in its object).
*/
#include <stdlib.h>

#include "lthreading.h"
#include "../include/lthreading_ref.h"

typedef struct CRef {
  lt_Object obj;
  const lthreading_ref_type *type;
  void *ptr;                       /* one reference of the module's kind */
} CRef;

static void cref_destroy(lt_Object *o) {
  CRef *c = (CRef *)o;
  c->type->release(c->ptr);
  free(c);
}

static void cref_metatable(lua_State *L) { LT_UNUSED(L); }  /* never has a proxy */
static const lt_Class CRefClass = { "CRef", 0, cref_destroy, cref_metatable };

lt_Object *lt_cref_wrap(lua_State *L, int idx, const char **why) {
  const lthreading_ref_type *type;
  CRef *c;
  void *ptr;
  int t = luaL_getmetafield(L, idx, LTHREADING_REF_FIELD);
  if (t != LUA_TLIGHTUSERDATA) {
    if (t != LUA_TNIL) lua_pop(L, 1);
    *why = "its metatable's " LTHREADING_REF_FIELD " is not a light userdata";
    return NULL;
  }
  type = (const lthreading_ref_type *)lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (type == NULL || type->magic != LTHREADING_REF_MAGIC
      || type->version != LTHREADING_REF_VERSION) {
    *why = "its " LTHREADING_REF_FIELD " is not an lthreading_ref_type of this version";
    return NULL;
  }
  if (!type->toobject || !type->retain || !type->release || !type->push) {
    *why = "its " LTHREADING_REF_FIELD " lacks a function";
    return NULL;
  }
  if ((ptr = type->toobject(L, idx)) == NULL) {
    *why = "it has no object (closed or freed)";
    return NULL;
  }
  if ((c = (CRef *)malloc(sizeof *c)) == NULL) {
    *why = "not enough memory";
    return NULL;
  }
  lt_object_init(&c->obj, &CRefClass);
  c->type = type;
  type->retain(ptr);
  c->ptr = ptr;
  return &c->obj;
}

int lt_cref_is(const lt_Object *o) { return o->cls == &CRefClass; }

void lt_cref_push(lua_State *L, lt_Object *o) {
  CRef *c = (CRef *)o;
  int top = lua_gettop(L);
  lt_T_refs_taken++;
  c->type->push(L, c->ptr);
  if (lua_gettop(L) != top + 1)
    luaL_error(L, "cannot receive a %s: its push function pushed %d values, not 1",
               c->type->name ? c->type->name : "userdata", lua_gettop(L) - top);
}
