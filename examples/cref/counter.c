/*
** counter.c -- an example C module whose objects cross lthreading threads BY REFERENCE,
** through include/lthreading_ref.h, without linking against lthreading.
**
**   local counter = require "counter"
**   local c = counter.new(0)          -- an atomic counter shared by every thread it reaches
**   c:add(5) --> 5;  c:get() --> 5
**   counter.live(), counter.frees()    -- objects alive now / freed so far (process-wide)
**
** The object (a Counter) is reference counted: each Lua userdata ("box") holds one
** reference, and lthreading holds one for each message that carries it.  Whoever drops the
** last reference frees it, on any thread.  Build: make build/cref/counter.so
*/
#include <stdatomic.h>
#include <stdlib.h>
#if defined(__unix__) || defined(__APPLE__)
#include <dlfcn.h>
#endif

#include "lua.h"
#include "lauxlib.h"
#include "lthreading_ref.h"

typedef struct Counter {
  atomic_long refs;
  atomic_llong value;
} Counter;

static atomic_long n_live, n_frees;         /* process-wide, for the specs */

#define BOX "counter.Counter"               /* the metatable's registry name */

static void counter_retain(void *o) {
  atomic_fetch_add(&((Counter *)o)->refs, 1);
}

static void counter_release(void *o) {
  Counter *c = (Counter *)o;
  if (atomic_fetch_sub(&c->refs, 1) == 1) {
    free(c);
    atomic_fetch_sub(&n_live, 1);
    atomic_fetch_add(&n_frees, 1);
  }
}

static void *counter_toobject(lua_State *L, int idx) {
  Counter **box = (Counter **)luaL_testudata(L, idx, BOX);
  return box ? *box : NULL;
}

static void push_box(lua_State *L, Counter *c);

static void counter_push(lua_State *L, void *o) { push_box(L, (Counter *)o); }

static const lthreading_ref_type COUNTER_REF = {
  LTHREADING_REF_MAGIC, LTHREADING_REF_VERSION, "Counter",
  counter_toobject, counter_retain, counter_release, counter_push
};

static Counter *check(lua_State *L) {
  Counter **box = (Counter **)luaL_checkudata(L, 1, BOX);
  if (*box == NULL) luaL_argerror(L, 1, "counter is closed");
  return *box;
}

static int c_add(lua_State *L) {
  Counter *c = check(L);
  lua_Integer d = luaL_optinteger(L, 2, 1);
  lua_pushinteger(L, (lua_Integer)(atomic_fetch_add(&c->value, d) + d));
  return 1;
}

static int c_get(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)atomic_load(&check(L)->value));
  return 1;
}

static int c_gc(lua_State *L) {               /* also __close */
  Counter **box = (Counter **)luaL_checkudata(L, 1, BOX);
  if (*box) { counter_release(*box); *box = NULL; }
  return 0;
}

static int c_tostring(lua_State *L) {
  Counter **box = (Counter **)luaL_checkudata(L, 1, BOX);
  if (*box) lua_pushfstring(L, "Counter(%I): %p", (LUAI_UACINT)atomic_load(&(*box)->value),
                            (void *)*box);
  else lua_pushliteral(L, "Counter (closed)");
  return 1;
}

/* The metatable, made in each state on first use (push runs in states that never required
** this module). */
static void push_metatable(lua_State *L) {
  static const luaL_Reg meth[] = { {"add", c_add}, {"get", c_get}, {NULL, NULL} };
  if (!luaL_newmetatable(L, BOX)) return;
  luaL_newlib(L, meth);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, c_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, c_gc);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, c_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushlightuserdata(L, (void *)&COUNTER_REF);
  lua_setfield(L, -2, LTHREADING_REF_FIELD);
}

/* A new box for c, holding its own reference: the allocations (which may raise) first. */
static void push_box(lua_State *L, Counter *c) {
  Counter **box = (Counter **)lua_newuserdatauv(L, sizeof *box, 0);
  *box = NULL;
  push_metatable(L);
  lua_setmetatable(L, -2);
  counter_retain(c);
  *box = c;
}

static int m_new(lua_State *L) {
  lua_Integer v = luaL_optinteger(L, 1, 0);
  Counter **box = (Counter **)lua_newuserdatauv(L, sizeof *box, 0);
  Counter *c;
  *box = NULL;
  push_metatable(L);
  lua_setmetatable(L, -2);
  if ((c = (Counter *)malloc(sizeof *c)) == NULL) return luaL_error(L, "not enough memory");
  atomic_init(&c->refs, 1);                  /* the box's */
  atomic_init(&c->value, v);
  atomic_fetch_add(&n_live, 1);
  *box = c;
  return 1;
}

static int m_live(lua_State *L) { lua_pushinteger(L, atomic_load(&n_live)); return 1; }
static int m_frees(lua_State *L) { lua_pushinteger(L, atomic_load(&n_frees)); return 1; }

int luaopen_counter(lua_State *L);

int luaopen_counter(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"new", m_new}, {"live", m_live}, {"frees", m_frees}, {NULL, NULL}
  };
#if defined(RTLD_NODELETE)
  /* Stay loaded until the process exits: release and push may run after this state is
  ** closed (lthreading_ref.h's contract). */
  Dl_info info;
  if (dladdr((void *)luaopen_counter, &info) && info.dli_fname)
    (void)dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
#endif
  push_metatable(L);
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  return 1;
}
