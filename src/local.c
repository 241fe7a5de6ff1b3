/*
** local.c -- Local: Python's threading.local, also exported as threading["local"].
**
** One Local object is shared by every thread it is passed to, but each thread sees its own
** fields.  A thread's view is a plain table in that thread's own lua_State, made on first
** use from a decoded copy of the defaults (an lt_Buf fixed at construction and never
** changed, so read without a lock).  Python's lifetime rule holds: a view lives as long as
** both its thread and the Local object do -- also when the thread drops every reference
** and later receives the object again (a pool worker given the same Local by each task).
**
** HOW
**   The object owns a small control block, a ViewKey {refs, alive}.  Each state keeps
**   registry[&K_VIEWS] = { [light userdata ViewKey] = handle }, where a handle is a userdata
**   holding one reference to the key, with the view as its user value.  The key's address
**   cannot be reused while any handle holds it, and the handles do not keep the object
**   alive: when the object dies it marks its key dead, and each state sweeps its dead
**   handles once its table has doubled since the last sweep (amortised O(1)), or when the
**   state closes -- so short threads and dropped Locals leave nothing behind.  The proxy's
**   user value caches the view, so the table is looked up once per proxy.
*/
#include <stdlib.h>

#include "lthreading.h"

typedef struct ViewKey {
  atomic_int refs;                 /* the object's + one per handle, in any state */
  atomic_int alive;                /* 0 once the object is destroyed */
} ViewKey;

typedef struct lt_Local {
  lt_Object obj;
  lt_Buf *defaults;                /* NULL: start empty */
  ViewKey *key;                    /* NULL only while being made */
} lt_Local;

typedef struct Views { int n, sweep_at; } Views;   /* per state; user value 1: the table */

static const char K_VIEWS = 0;     /* registry[&K_VIEWS] = Views userdata */
static const char K_HANDLE = 0;    /* registry[&K_HANDLE] = the handles' metatable */

static void key_release(ViewKey *k) {
  if (k && atomic_fetch_sub(&k->refs, 1) == 1) free(k);
}

static void local_destroy(lt_Object *o) {
  lt_Local *l = (lt_Local *)o;
  if (l->key) {
    atomic_store(&l->key->alive, 0);
    key_release(l->key);
  }
  lt_buf_free(l->defaults);
  free(l);
}

static void local_metatable(lua_State *L);
static const lt_Class LocalClass = { "Local", 1, local_destroy, local_metatable };

/* ====================================================================== PER STATE */

static int handle_gc(lua_State *L) {
  ViewKey **h = (ViewKey **)lua_touserdata(L, 1);
  if (h && *h) { key_release(*h); *h = NULL; }
  return 0;
}

/* Push this state's Views and its table:  L: ... views tbl */
static Views *push_views(lua_State *L) {
  Views *v;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &K_VIEWS) == LUA_TUSERDATA) {
    v = (Views *)lua_touserdata(L, -1);
    lt_getuv(L, -1, 1);
    return v;
  }
  lua_pop(L, 1);
  v = (Views *)lt_newuserdata(L, sizeof(Views), 1);
  v->n = 0;
  v->sweep_at = 16;
  lua_newtable(L);
  lt_setuv(L, -2, 1);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &K_VIEWS);
  lua_createtable(L, 0, 2);                              /* the handles' metatable */
  lua_pushcfunction(L, handle_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushliteral(L, "lthreading.LocalView");
  lua_setfield(L, -2, "__name");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &K_HANDLE);
  lt_getuv(L, -1, 1);
  return v;
}

/* Drop the handles of dead Locals from the table on top; returns how many remain. */
static int sweep(lua_State *L) {
  int n = 0;
  lua_pushnil(L);
  while (lua_next(L, -2)) {                              /* L: tbl key handle */
    ViewKey **h = (ViewKey **)lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (h == NULL || *h == NULL || !atomic_load(&(*h)->alive)) {
      lua_pushvalue(L, -1);
      lua_pushnil(L);
      lua_rawset(L, -4);                                 /* clearing during next is allowed */
    } else n++;
  }
  return n;
}

/*
** Push this state's view of the Local at index 1: the proxy's cached one, else the state's
** table entry, else a new one from the defaults.  Each step that may raise (decoding,
** allocation) comes before the reference it would otherwise leak is taken.
*/
static void push_view(lua_State *L) {
  lt_Local *l = (lt_Local *)lt_checkself(L, &LocalClass);
  int top = lua_gettop(L);
  Views *v;
  ViewKey **h;
  if (lt_getuv(L, 1, 1) == LUA_TTABLE) return;
  lua_pop(L, 1);
  v = push_views(L);                                     /* L: ... views tbl */
  if (lua_rawgetp(L, -1, l->key) == LUA_TUSERDATA) {     /* L: ... views tbl handle */
    lt_getuv(L, -1, 1);
  } else {
    lua_pop(L, 1);
    if (l->defaults) lt_decode(L, l->defaults);          /* one table, by construction */
    else lua_newtable(L);                                /* L: ... views tbl view */
    h = (ViewKey **)lt_newuserdata(L, sizeof(ViewKey *), 1);
    *h = NULL;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &K_HANDLE);
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -2);
    lt_setuv(L, -2, 1);                                  /* L: ... views tbl view handle */
    atomic_fetch_add(&l->key->refs, 1);
    *h = l->key;                                         /* from here __gc releases it */
    lua_rawsetp(L, -3, l->key);                          /* L: ... views tbl view */
    if (++v->n >= v->sweep_at) {
      lua_pushvalue(L, -2);
      v->n = sweep(L);
      lua_pop(L, 1);
      v->sweep_at = v->n * 2 > 16 ? v->n * 2 : 16;
    }
  }
  lua_pushvalue(L, -1);
  lt_setuv(L, 1, 1);                                     /* cache it in the proxy */
  lua_replace(L, top + 1);
  lua_settop(L, top + 1);                                /* L: ... view */
}

/* ==================================================================== METAMETHODS */

static int local_index(lua_State *L) {
  lua_settop(L, 2);
  push_view(L);                    /* L: self key view */
  lua_insert(L, 2);
  lua_gettable(L, 2);
  return 1;
}

static int local_newindex(lua_State *L) {
  lua_settop(L, 3);
  push_view(L);                    /* L: self key value view */
  lua_insert(L, 2);
  lua_settable(L, 2);
  return 0;
}

static int local_next(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 2);
  if (lua_next(L, 1)) return 2;
  return 0;
}

/* pairs(loc): this thread's fields. */
static int local_pairs(lua_State *L) {
  lua_settop(L, 1);
  lua_pushcfunction(L, local_next);
  push_view(L);                    /* L: self next view */
  lua_pushnil(L);
  return 3;
}

static int local_len(lua_State *L) {
  lua_settop(L, 1);
  push_view(L);
  lua_len(L, -1);
  return 1;
}

static void local_metatable(lua_State *L) {
  static const luaL_Reg metameth[] = {
    {"__index", local_index}, {"__newindex", local_newindex}, {"__pairs", local_pairs},
    {"__len", local_len}, {NULL, NULL}
  };
  lt_classmetatable(L, &LocalClass, NULL, metameth);
}

/* ============================================================================= OPEN */

/* Local([defaults]) */
static int f_local(lua_State *L) {
  static const char *const names[] = { "defaults" };
  lt_Local *l;
  ViewKey *k;
  luaL_argexpected(L, lua_isnoneornil(L, 1) || lua_istable(L, 1), 1, "table or nil");
  lua_settop(L, 1);
  l = (lt_Local *)lt_newobject(L, &LocalClass, sizeof(lt_Local));   /* L: defaults self */
  k = (ViewKey *)malloc(sizeof *k);
  if (k == NULL) return luaL_error(L, "not enough memory");
  atomic_init(&k->refs, 1);
  atomic_init(&k->alive, 1);
  l->key = k;
  if (!lua_isnil(L, 1)) l->defaults = lt_encode(L, 1, 1, names);    /* may raise: l is whole */
  return 1;
}

void lt_open_local(lua_State *L) {
  /* module table on top */
  lua_pushcfunction(L, f_local);
  lua_setfield(L, -2, "Local");
  lua_pushcfunction(L, f_local);
  lua_setfield(L, -2, "local");
}
