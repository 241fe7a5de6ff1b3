/*
** object.c -- the shared-object core: reference counts, proxies, named values.
**
** An lt_Object lives in C and is shared by every thread.  In each lua_State it appears as
** exactly one userdata proxy (so == and table keys work), found through a weak-valued cache
** in the registry keyed by the object's address.  Each proxy owns one reference and drops
** it in __gc.  Lua 5.4 clears weak values before running finalizers, so a collected proxy is
** never handed out again, and a later proxy for the same object is a fresh one.
**
** Named values (classes, error values) cross threads by name: lt_setname() records
** value <-> name in two registry tables of the state; the marshaler writes the name and the
** receiver looks it up in its own state (opening lthreading there if needed).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include "lthreading.h"

static const char K_PROXIES = 0;   /* registry[&K_PROXIES] = { [lightud obj] = proxy } weak v */
static const char K_MARK = 0;      /* metatable[&K_MARK] = lightud class: an lthreading proxy */
static const char K_BYVALUE = 0;   /* registry[&K_BYVALUE] = { [value] = name } */
static const char K_BYNAME = 0;    /* registry[&K_BYNAME] = { [name] = value } */

/* ================================================================== REFERENCE COUNTS */

void lt_object_init(lt_Object *o, const lt_Class *cls) {
  o->cls = cls;
  atomic_init(&o->refs, 1);
}

void lt_incref(lt_Object *o) {
  atomic_fetch_add_explicit(&o->refs, 1, memory_order_relaxed);
}

void lt_decref(lt_Object *o) {
  if (atomic_fetch_sub_explicit(&o->refs, 1, memory_order_acq_rel) == 1)
    o->cls->destroy(o);
}

/* ======================================================================= PER STATE */

static void newweak(lua_State *L, const char *mode) {
  lua_newtable(L);
  lua_createtable(L, 0, 1);
  lua_pushstring(L, mode);
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
}

void lt_state_init(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &K_PROXIES) == LUA_TTABLE) {
    lua_pop(L, 1);
    return;
  }
  lua_pop(L, 1);
  newweak(L, "v");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &K_PROXIES);
  lua_newtable(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &K_BYVALUE);
  lua_newtable(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &K_BYNAME);
}

/* ====================================================== STATES CLOSED BY LTHREADING */
/*
** While lua_close runs a state's finalizers, Lua gives no finalizer to a userdata made then
** (the state is marked as closing): a proxy that a __gc makes at that point (a new Lock,
** current_thread(), an object taken from a queue) would never drop its reference.
** lt_close_state records the proxies made while it closes a state, and drops their
** references once lua_close returned.  A proxy of that list that does get finalized (one made
** before the finalizers run, by a __close on the main stack) leaves the list in its __gc.
*/
typedef struct Closing {
  lua_State *L;                      /* the main thread of the state being closed */
  lt_Proxy **proxies;
  lt_Object **objs;
  size_t n, cap;
} Closing;

static _Thread_local Closing *T_closing;

/* Is L (a coroutine maybe) a thread of the state being closed on this OS thread? */
static int closing(lua_State *L) {
  lua_State *main;
  if (LT_LIKELY(T_closing == NULL)) return 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  main = lua_tothread(L, -1);
  lua_pop(L, 1);
  return main == T_closing->L;
}

/* Room for one more entry (may raise: call before taking a reference). */
static void closing_reserve(lua_State *L) {
  Closing *c = T_closing;
  if (c->n == c->cap) {
    size_t ncap = c->cap ? c->cap * 2 : 8;
    lt_Proxy **np = (lt_Proxy **)realloc(c->proxies, ncap * sizeof *np);
    lt_Object **no;
    if (np != NULL) c->proxies = np;
    no = np ? (lt_Object **)realloc(c->objs, ncap * sizeof *no) : NULL;
    if (no == NULL) luaL_error(L, "not enough memory");
    c->objs = no;
    c->cap = ncap;
  }
}

static void closing_forget(lt_Proxy *p) {
  Closing *c = T_closing;
  size_t i;
  for (i = 0; i < c->n; i++)
    if (c->proxies[i] == p) {
      c->n--;
      c->proxies[i] = c->proxies[c->n];
      c->objs[i] = c->objs[c->n];
      return;
    }
}

void lt_close_state(lua_State *L) {
  Closing c, *outer = T_closing;
  size_t i;
  c.L = L;
  c.proxies = NULL;
  c.objs = NULL;
  c.n = c.cap = 0;
  T_closing = &c;
  lua_close(L);
  T_closing = outer;
  for (i = 0; i < c.n; i++) lt_decref(c.objs[i]);
  free(c.proxies);
  free(c.objs);
}

/* ========================================================================= PROXIES */

static int proxy_gc(lua_State *L) {
  lt_Proxy *p = (lt_Proxy *)lua_touserdata(L, 1);
  if (p && p->obj && T_closing) closing_forget(p);
  if (p && p->obj) {
    lt_Object *o = p->obj;
    p->obj = NULL;
    lt_decref(o);
  }
  return 0;
}

static int proxy_tostring(lua_State *L) {
  lt_Proxy *p = (lt_Proxy *)lua_touserdata(L, 1);
  if (p && p->obj) lua_pushfstring(L, "%s: %p", p->obj->cls->name, (void *)p->obj);
  else lua_pushstring(L, "lthreading object (freed)");
  return 1;
}

/* Push the metatable of cls, building it in this state on first use. */
static void push_metatable(lua_State *L, const lt_Class *cls) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, cls) != LUA_TNIL) return;
  lua_pop(L, 1);
  lua_newtable(L);
  cls->metatable(L);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, cls);
}

void lt_classmetatable(lua_State *L, const lt_Class *cls, const luaL_Reg *methods,
                       const luaL_Reg *metamethods) {
  /* mt */
  lua_pushlightuserdata(L, (void *)cls);
  lua_rawsetp(L, -2, &K_MARK);
  lua_pushfstring(L, "lthreading.%s", cls->name);
  lua_setfield(L, -2, "__name");
  lua_pushcfunction(L, proxy_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, proxy_tostring);
  lua_setfield(L, -2, "__tostring");
  if (methods) {
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
  }
  if (metamethods) luaL_setfuncs(L, metamethods, 0);
}


static void cache_store(lua_State *L, lt_Object *o) {
  /* proxy on top */
  lua_rawgetp(L, LUA_REGISTRYINDEX, &K_PROXIES);
  lua_pushvalue(L, -2);
  lua_rawsetp(L, -2, o);
  lua_pop(L, 1);
}

/* Make a proxy holding no object yet (its __gc then does nothing). */
static lt_Proxy *emptyproxy(lua_State *L, const lt_Class *cls) {
  lt_Proxy *p;
  luaL_checkstack(L, 4, NULL);
  p = (lt_Proxy *)lt_newuserdata(L, sizeof(lt_Proxy), cls->nuv);
  p->obj = NULL;
  p->flags = 0;
  p->magic = LT_PROXY_MAGIC;
  p->cache = NULL;
  p->cls = cls;
  push_metatable(L, cls);
  lua_setmetatable(L, -2);
  return p;
}

_Thread_local unsigned lt_T_refs_taken = 0;

void lt_pushobject(lua_State *L, lt_Object *o) {
  lt_Proxy *p;
  lt_state_init(L);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &K_PROXIES);
  /* (while a state closes, the cache may still hold a proxy already finalized) */
  if (lua_rawgetp(L, -1, o) != LUA_TNIL && ((lt_Proxy *)lua_touserdata(L, -1))->obj != NULL) {
    lua_remove(L, -2);
    return;
  }
  lua_pop(L, 2);
  p = emptyproxy(L, o->cls);     /* may raise: no reference taken yet */
  if (closing(L)) {
    closing_reserve(L);
    T_closing->proxies[T_closing->n] = p;
    T_closing->objs[T_closing->n++] = o;
  }
  lt_incref(o);
  p->obj = o;
  lt_T_refs_taken++;
  cache_store(L, o);
}

/*
** The proxy is made before the object, so that a memory error leaves nothing behind:
** either no object exists yet, or the proxy's __gc owns it.
*/
void *lt_newobject(lua_State *L, const lt_Class *cls, size_t size) {
  lt_Proxy *p;
  lt_Object *o;
  int track;
  lt_state_init(L);
  p = emptyproxy(L, cls);
  if ((track = closing(L)) != 0) closing_reserve(L);
  o = (lt_Object *)calloc(1, size);
  if (o == NULL) luaL_error(L, "not enough memory");
  lt_object_init(o, cls);
  p->obj = o;
  lt_T_refs_taken++;
  if (track) {
    T_closing->proxies[T_closing->n] = p;
    T_closing->objs[T_closing->n++] = o;
  }
  cache_store(L, o);
  return o;
}

lt_Proxy *lt_toproxy(lua_State *L, int idx) {
  lt_Proxy *p = (lt_Proxy *)lua_touserdata(L, idx);
  int marked;
  if (p == NULL || lua_islightuserdata(L, idx) || !lua_getmetatable(L, idx)) return NULL;
  marked = lua_rawgetp(L, -1, &K_MARK) == LUA_TLIGHTUSERDATA;
  lua_pop(L, 2);
  return (marked && p->obj) ? p : NULL;
}

lt_Object *lt_toobject(lua_State *L, int idx, const lt_Class *cls) {
  lt_Proxy *p = lt_toproxy(L, idx);
  if (p == NULL || (cls != NULL && p->obj->cls != cls)) return NULL;
  return p->obj;
}

lt_Object *lt_checkobject(lua_State *L, int idx, const lt_Class *cls) {
  lt_Object *o = lt_toobject(L, idx, cls);
  if (o == NULL) {
    lt_Proxy *p = (lt_Proxy *)lua_touserdata(L, idx);
    /* a proxy whose __gc already ran, used again by a later finalizer (at lua_close every
    ** finalizer runs, in reverse order of creation): its reference is gone */
    if (p != NULL && lua_type(L, idx) == LUA_TUSERDATA && lua_rawlen(L, idx) == sizeof *p
        && p->magic == LT_PROXY_MAGIC && p->obj == NULL)
      luaL_argerror(L, idx, "lthreading object used after it was garbage-collected "
                    "(by a __gc that runs after the object's own)");
    luaL_typeerror(L, idx, cls ? cls->name : "lthreading object");
  }
  return o;
}

/* ==================================================================== NAMED VALUES */

void lt_setname(lua_State *L, int idx, const char *name) {
  idx = lua_absindex(L, idx);
  lt_state_init(L);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &K_BYVALUE);
  lua_pushvalue(L, idx);
  lua_pushstring(L, name);
  lua_rawset(L, -3);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &K_BYNAME);
  lua_pushvalue(L, idx);
  lua_setfield(L, -2, name);
  lua_pop(L, 2);
}

const char *lt_getname(lua_State *L, int idx) {
  const char *name = NULL;
  idx = lua_absindex(L, idx);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &K_BYVALUE) == LUA_TTABLE) {
    lua_pushvalue(L, idx);
    if (lua_rawget(L, -2) == LUA_TSTRING) name = lua_tostring(L, -1);  /* interned: kept */
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return name;
}

int lt_pushnamed(lua_State *L, const char *name) {
  int t;
  lt_state_init(L);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &K_BYNAME);
  t = lua_getfield(L, -1, name);
  if (t == LUA_TNIL && strcmp(name, "Thread") == 0) {
    /* what every new thread needs: build just that, not the whole module */
    lua_pop(L, 1);
    lt_push_thread_class(L);
    t = LUA_TTABLE;
  } else if (t == LUA_TNIL) {        /* lthreading not opened in this state yet */
    lua_pop(L, 1);
    lua_pushcfunction(L, luaopen_lthreading);
    lua_call(L, 0, 1);
    lua_pop(L, 1);
    t = lua_getfield(L, -1, name);
  }
  lua_remove(L, -2);
  return t;
}

int lt_pushnamed_raw(lua_State *L, const char *name) {
  int t;
  lt_state_init(L);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &K_BYNAME);
  t = lua_getfield(L, -1, name);
  lua_remove(L, -2);
  return t;
}

int lt_raise(lua_State *L, const char *errname) {
  lt_pushnamed(L, errname);
  return lua_error(L);
}

/* ============================================================= ARGUMENT HELPERS */

/*
** Every timeout and sleep length goes through check_seconds, so that every blocking call
** refuses the same values before it acquires or parks anything: NaN, and anything above
** TIMEOUT_MAX (math.huge included), as Python does.  `what` names the argument.
*/
const char *lt_badseconds(lua_Number t) {
  if (t != t) return "is NaN";
  if (t > LT_TIMEOUT_MAX) return "too large: above TIMEOUT_MAX";
  return NULL;
}

static void check_seconds(lua_State *L, int idx, lua_Number t, const char *what) {
  const char *why = lt_badseconds(t);
  if (why != NULL) luaL_argerror(L, idx, lua_pushfstring(L, "%s %s", what, why));
}

double lt_checktimeout(lua_State *L, int idx, lua_Number t) {
  check_seconds(L, idx, t, "timeout");
  return t < 0 ? -1 : t;
}

double lt_opttimeout(lua_State *L, int idx) {
  if (lua_isnoneornil(L, idx)) return -1;
  return lt_checktimeout(L, idx, luaL_checknumber(L, idx));
}

double lt_checksleep(lua_State *L, int idx) {
  lua_Number t = luaL_checknumber(L, idx);
  check_seconds(L, idx, t, "sleep length");
  if (t < 0) luaL_argerror(L, idx, "sleep length must be non-negative");
  return t;
}

lua_Integer lt_optintoption(lua_State *L, int idx, const char *name, lua_Integer def) {
  lua_Integer i;
  int isint;
  if (lua_isnoneornil(L, idx)) return def;
  if (lua_type(L, idx) != LUA_TNUMBER)
    luaL_typeerror(L, idx, lua_pushfstring(L, "%s: number", name));
  i = lua_tointegerx(L, idx, &isint);
  if (!isint) {
    lua_Number n = lua_tonumber(L, idx);
    const char *got = n != n ? "NaN" : n == HUGE_VAL ? "inf" : n == -HUGE_VAL ? "-inf"
                    : lua_pushfstring(L, "%f", n);
    luaL_argerror(L, idx, lua_pushfstring(L, "%s: integer expected, got %s", name, got));
  }
  return i;
}

void lt_checknoargs(lua_State *L) {
  if (!lua_isnoneornil(L, 1)) luaL_argerror(L, 1, "no arguments expected");
}

void lt_checkoptions(lua_State *L, int idx, const char *const known[]) {
  idx = lua_absindex(L, idx);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int i;
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TSTRING) {
      const char *k = lua_tostring(L, -1);
      for (i = 0; known[i] != NULL && strcmp(known[i], k) != 0; i++) {}
      if (known[i] != NULL) continue;
      luaL_argerror(L, idx, lua_pushfstring(L, "unknown option '%s'", k));
    }
    luaL_argerror(L, idx, lua_pushfstring(L, "unknown option (a %s key)",
                                          luaL_typename(L, -1)));
  }
}

int lt_opt_error(lua_State *L, const char *fname, const char *option, const char *msg) {
  lua_pushfstring(L, "bad option '%s' to '%s' (%s)", option, fname, msg);
  return lua_error(L);                 /* (no position: the caller may be lthreading's own) */
}

int lt_opt_typeerror(lua_State *L, const char *fname, const char *option,
                     const char *expected, int idx) {
  const char *got;
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) == LUA_TNUMBER && lua_tonumber(L, idx) != lua_tonumber(L, idx))
    got = "nan";                         /* (not "-nan") */
  else if (lua_type(L, idx) == LUA_TNUMBER) {
    lua_pushvalue(L, idx);
    got = lua_tostring(L, -1);           /* a copy: the value itself stays a number */
  } else got = luaL_typename(L, idx);
  lua_pushfstring(L, "%s expected, got %s", expected, got);
  return lt_opt_error(L, fname, option, lua_tostring(L, -1));
}
