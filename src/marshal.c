/*
** marshal.c -- the value marshaler: Lua values -> bytes -> Lua values in another state.
**
** THE MODEL
**   lt_encode() walks values in the sender's state and appends a compact tagged byte
**   stream to an lt_Buf; lt_decode() replays it in any state, any number of times.
**   - nil/boolean/number/string/light userdata: copied (integer vs float kept).
**   - tables: deep copy.  Each table and function gets an id in order of first visit; a
**     second visit writes a back reference, so cycles and shared sub-tables keep their shape.
**     The array prefix (keys 1..n, as lua_next yields them) is written without keys; the
**     rest as key/value pairs; then the metatable.  In the array part of a big array, two
**     or more consecutive integers (or floats, or strings) are one packed run: a tag, a
**     count, then the raw 8-byte values (strings: length + bytes), so that a homogeneous
**     array costs a memcpy per element to write and a lua_rawseti per element to rebuild.
**   - Lua functions: lua_dump (debug info kept) + one entry per upvalue.  An upvalue cell
**     already written for another closure of the same transfer becomes a "join" entry, and
**     the receiver calls lua_upvaluejoin, so shared cells stay shared.  An upvalue named
**     _ENV, and the sender's globals table anywhere, become the receiver's globals.
**   - C functions: the function pointer plus copied upvalues (same process, same code).
**   - named values (lthreading's classes and error values) and tables found in the sender's
**     package.loaded travel as names: the receiver uses its own value / require(name).
**   - lthreading objects: an index into the buffer's object list; the buffer holds a
**     reference to each, and the receiver gets its proxy for the same object.
**   - other full userdata: by reference if its metatable has __lthreading_ref (cref.c wraps
**     the C module's object as an lt_Object in the object list: T_CREF); rebuilt if it has
**     __reduce (T_REDUCE: what __reduce returned, a function and its arguments crossing by
**     these rules; the receiver calls it); else an error.  Identity kept as for tables.
**   - coroutines and other userdata: an error naming the path ("args[2].conn").
**   Encoding runs under lua_pcall so that any error (bad value, memory) frees the buffer;
**   values without tables/functions/userdata take a direct path with no pcall.
**   Nesting is limited (LT_MAX_DEPTH) so that deep values fail cleanly instead of
**   exhausting the C stack.
*/
#include <stdlib.h>
#include <string.h>

#include "lthreading.h"

enum {
  T_NIL, T_FALSE, T_TRUE, T_INT, T_FLT, T_STR, T_LIGHT, T_I8, T_I16, T_I32,
  T_TABLE, T_REF, T_LFUNC, T_CFUNC, T_GLOBALS, T_NAMED, T_MODULE, T_OBJ,
  T_ENV, T_UPJOIN, T_REDUCE, T_CREF,
  T_IRUN, T_FRUN, T_SRUN     /* array parts only: a run of integers, floats or strings */
};

#define BUF_COMPLEX 1          /* has tables/functions: decoding needs a refs table */
#define BUF_UNSAFE  2          /* has code pointers or bytecode or objects */

struct lt_Buf {
  size_t len, cap;
  int nvals, flags;
  int nobjs, objcap;
  lt_Object *owner;          /* references to the owner are not counted (no self-cycle) */
  lt_Object **objs;
  char data[1];
};

_Thread_local int lt_depth_limit = 0;   /* 0: LT_MAX_DEPTH; set by threads with small stacks */

/* ======================================================================== BUFFERS */

static lt_Buf *buf_new(size_t cap) {
  lt_Buf *b = (lt_Buf *)malloc(offsetof(lt_Buf, data) + cap);
  if (b == NULL) return NULL;
  b->len = 0; b->cap = cap; b->nvals = 0; b->flags = 0;
  b->nobjs = 0; b->objcap = 0; b->objs = NULL; b->owner = NULL;
  return b;
}

void lt_buf_free(lt_Buf *b) {
  int i;
  if (b == NULL) return;
  for (i = 0; i < b->nobjs; i++)
    if (b->objs[i] != b->owner) lt_decref(b->objs[i]);
  free(b->objs);
  free(b);
}


static int max_depth(void) {
  return lt_depth_limit > 0 && lt_depth_limit < LT_MAX_DEPTH ? lt_depth_limit : LT_MAX_DEPTH;
}

/* ======================================================================== ENCODING */

typedef struct PathStep { int kind, idx, n; } PathStep;
enum { P_KEY, P_META, P_UPVAL, P_INDEX, P_REDUCE };

typedef struct Enc {
  lua_State *L;
  lt_Buf *b;
  int oom;                   /* set when a buffer grow failed */
  int seen, loaded, pkg;     /* stack slots: seen table, reverse map of package.loaded
                             ** (nil until the first table), package.loaded */
  int modmode;               /* MOD_*: how loaded modules are told (once per encode) */
  int nextid;
  int depth, maxdepth;
  const char *root;          /* name of the value being encoded */
  PathStep *path;            /* the steps: `small`, or a userdata once deeper */
  int pathcap, pathslot;     /* capacity; stack slot that keeps the userdata alive */
  PathStep small[24];
} Enc;

static int grow(Enc *e, size_t need) {
  lt_Buf *b = e->b, *nb;
  size_t cap = b->cap;
  if (b->len + need <= cap) return 1;
  while (cap < b->len + need) cap = cap < 64 ? 64 : cap * 2;
  nb = (lt_Buf *)realloc(b, offsetof(lt_Buf, data) + cap);
  if (nb == NULL) { e->oom = 1; return 0; }
  nb->cap = cap;
  e->b = nb;
  return 1;
}

static void oom(Enc *e) {
  e->oom = 1;
  luaL_error(e->L, "not enough memory");
}

static void put(Enc *e, const void *p, size_t n) {
  if (!grow(e, n)) oom(e);
  memcpy(e->b->data + e->b->len, p, n);
  e->b->len += n;
}

static void putbyte(Enc *e, int c) {
  if (LT_LIKELY(e->b->len < e->b->cap) || grow(e, 1)) e->b->data[e->b->len++] = (char)c;
  else oom(e);
}

static void putvar(Enc *e, lua_Unsigned v) {
  char tmp[12];
  int n = 0;
  do {
    unsigned char c = (unsigned char)(v & 0x7f);
    v >>= 7;
    tmp[n++] = (char)(v ? (c | 0x80) : c);
  } while (v);
  put(e, tmp, (size_t)n);
}

static void putstr(Enc *e, const char *s, size_t len) {
  putvar(e, len);
  put(e, s, len);
}

static void putu32_at(Enc *e, size_t at, uint32_t v) {
  memcpy(e->b->data + at, &v, 4);
}

static size_t reserve32(Enc *e) {
  uint32_t z = 0;
  size_t at = e->b->len;
  put(e, &z, 4);
  return at;
}

/* ------------------------------------------------------------- error path building */

static void path_key(luaL_Buffer *B, lua_State *L, int idx) {
  switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
      size_t len, i;
      const char *s = lua_tolstring(L, idx, &len);
      int ident = len > 0 && len < 40 && !(s[0] >= '0' && s[0] <= '9');
      for (i = 0; ident && i < len; i++)
        ident = (s[i] == '_' || (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')
                 || (s[i] >= '0' && s[i] <= '9'));
      if (ident) { luaL_addchar(B, '.'); luaL_addlstring(B, s, len); }
      else {
        luaL_addstring(B, "[\"");
        luaL_addlstring(B, s, len > 40 ? 40 : len);
        luaL_addstring(B, len > 40 ? "...\"]" : "\"]");
      }
      break;
    }
    case LUA_TNUMBER:
      luaL_addchar(B, '[');
      lua_pushvalue(L, idx);
      luaL_addvalue(B);  /* converts the number copy */
      luaL_addchar(B, ']');
      break;
    default:
      luaL_addchar(B, '[');
      luaL_addstring(B, luaL_typename(L, idx));
      luaL_addchar(B, ']');
  }
}

/* Raise "cannot transfer PATH: WHAT".  The stack still holds every key of the path. */
static void enc_error(Enc *e, const char *what) {
  lua_State *L = e->L;
  luaL_Buffer B;
  int i, n = e->depth, w;
  lua_pushstring(L, what);          /* `what` may live in a stack slot we are about to reuse */
  w = lua_gettop(L);
  luaL_buffinit(L, &B);
  luaL_addstring(&B, "cannot transfer ");
  luaL_addstring(&B, e->root);
  for (i = 1; i <= n; i++) {
    PathStep *s = &e->path[i];
    if (n > 12 && i == 6) { luaL_addstring(&B, "..."); i = n - 6; continue; }
    if (s->kind == P_KEY) path_key(&B, L, s->idx);
    else if (s->kind == P_INDEX) {
      lua_pushfstring(L, "[%d]", s->n);
      luaL_addvalue(&B);
    } else if (s->kind == P_META) luaL_addstring(&B, ".<metatable>");
    else if (s->kind == P_REDUCE) {
      lua_pushfstring(L, s->n ? ".<__reduce arg %d>" : ".<__reduce function>", s->n);
      luaL_addvalue(&B);
    }
    else {
      const char *name = lua_getupvalue(L, s->idx, s->n);
      if (name) lua_pop(L, 1);    /* the name string is kept by the function's prototype */
      luaL_addstring(&B, ".<upvalue ");
      luaL_addstring(&B, (name && *name) ? name : "?");
      luaL_addchar(&B, '>');
    }
  }
  luaL_addstring(&B, ": ");
  lua_pushvalue(L, w);
  luaL_addvalue(&B);
  luaL_pushresult(&B);
  lua_error(L);
}

static void encode(Enc *e, int idx);
static void encode_number(Enc *e, int idx);

static void push_step(Enc *e, int kind, int idx, int n) {
  if (LT_UNLIKELY(e->depth + 1 >= e->pathcap)) {     /* deep value: room for all levels */
    int cap = e->maxdepth + 2;
    PathStep *big = (PathStep *)lt_newuserdata(e->L, sizeof(PathStep) * (size_t)cap, 0);
    memcpy(big, e->path, sizeof(PathStep) * (size_t)e->pathcap);
    lua_replace(e->L, e->pathslot);
    e->path = big;
    e->pathcap = cap;
  }
  e->depth++;
  e->path[e->depth].kind = kind;
  e->path[e->depth].idx = idx;
  e->path[e->depth].n = n;
}

/* Look the value at idx up in `seen`; if found write a reference and return 1, otherwise
** give it the next id and return 0. */
static int seen_or_mark(Enc *e, int idx) {
  lua_State *L = e->L;
  lua_pushvalue(L, idx);
  if (lua_rawget(L, e->seen) == LUA_TNUMBER) {
    lua_Integer id = lua_tointeger(L, -1);
    lua_pop(L, 1);
    putbyte(e, T_REF);
    putvar(e, (lua_Unsigned)id);
    return 1;
  }
  lua_pop(L, 1);
  lua_pushvalue(L, idx);
  lua_pushinteger(L, e->nextid++);
  lua_rawset(L, e->seen);
  return 0;
}

/*
** LOADED MODULES.  A table that is a value of the sender's package.loaded crosses as its
** name.  Telling whether a table is one must not cost a pass over package.loaded per
** transfer (that grew with every module loaded), so each state keeps a reverse map
** {[module table] = name} (weak keys) and a watch on package.loaded:
**   - the map starts from one pass over package.loaded, when the watch is installed: a
**     metatable on package.loaded (which has none, normally) whose __newindex stores the
**     new entry and records a table value under its name.  Every entry added to
**     package.loaded with an assignment (require, luaL_requiref, package.loaded.x = t,
**     busted putting a module back after clearing it) goes through __newindex, since the
**     key is absent;
**   - a lookup finds the table's name in the map, then checks package.loaded[name] is
**     still that table: O(1), whatever the number of modules.  A table found under a name
**     it no longer has (its module removed, replaced, or renamed) triggers one pass over
**     package.loaded, which re-records every module; if it is in none, it is marked gone
**     (a weak set), so that sending it again costs no pass;
**   - the map never forgets a table while it lives, so a module put back under its old
**     name (busted restoring package.loaded between spec files) is known at once.
** What the watch cannot see, since Lua calls no metamethod for it: a table stored with
** rawset, or assigned in place of the non-nil value of a name already present
** (package.loaded.foo = other while foo is loaded), is known as a module only after the
** next pass (any of the above).  Assign nil to the name first to have it known at once.
** A package.loaded with a metatable of someone else's (or ours, altered) is not watched:
** then each transfer that meets a table checks the whole map against package.loaded once,
** as before (exact, O(number of modules)).
*/
enum { MOD_UNKNOWN, MOD_NONE, MOD_WATCHED, MOD_SCANNED };
static const char K_MODMAP = 0;    /* registry: the watched map, weak keys */
static const char K_MODWATCH = 0;  /* registry: the metatable watching package.loaded */
static const char K_MODFN = 0;     /* registry: its __newindex */
static const char K_MODFULL = 0;   /* registry: { [module table] = name, n = count } */
static const char K_MODGONE = 0;   /* registry: weak set of tables found gone from theirs */

static void enc_slots(Enc *e) {
  lua_State *L = e->L;
  lua_pushnil(L);
  e->pathslot = lua_gettop(L);
  lua_newtable(L);
  e->seen = lua_gettop(L);
  lua_pushnil(L);
  e->loaded = lua_gettop(L);
  lua_pushnil(L);
  e->pkg = lua_gettop(L);
  e->modmode = MOD_UNKNOWN;
}

/* map[v] = k for every string key k of package.loaded (at pkg) whose value v is a table. */
static lua_Integer scan_loaded(lua_State *L, int pkg, int map) {
  lua_Integer n = 0;
  lua_pushnil(L);
  while (lua_next(L, pkg)) {                      /* L: key value */
    if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TTABLE) {
      lua_pushvalue(L, -2);
      lua_rawset(L, map);
      n++;
    } else lua_pop(L, 1);
  }
  return n;
}

/* package.loaded's __newindex (upvalue 1: the map): store, and record a module. */
static int watch_newindex(lua_State *L) {
  lua_settop(L, 3);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 3);
  lua_rawset(L, 1);
  if (lua_type(L, 2) == LUA_TSTRING && lua_type(L, 3) == LUA_TTABLE) {
    lua_pushvalue(L, 3);
    lua_pushvalue(L, 2);
    lua_rawset(L, lua_upvalueindex(1));
  }
  return 0;
}

/* Is the value on top our watching metatable, with its __newindex intact? */
static int is_watch(lua_State *L) {
  int ok;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &K_MODWATCH);
  ok = lua_rawequal(L, -1, -2);
  lua_pop(L, 1);
  if (!ok) return 0;
  lua_pushliteral(L, "__newindex");
  lua_rawget(L, -2);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &K_MODFN);
  ok = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return ok;
}

/* Is the full map on the stack top exactly package.loaded's (at pkg) table entries? */
static int map_current(lua_State *L, int pkg) {
  lua_Integer n = 0, cached;
  int ok = 1;
  lua_getfield(L, -1, "n");
  cached = lua_tointeger(L, -1);
  lua_pop(L, 1);
  lua_pushnil(L);
  while (lua_next(L, pkg)) {                      /* L: map key value */
    if (lua_type(L, -1) == LUA_TTABLE && lua_type(L, -2) == LUA_TSTRING) {
      n++;
      if (ok) {
        lua_rawget(L, -3);                        /* L: map key map[value] */
        ok = lua_rawequal(L, -1, -2);
      }
    }
    lua_pop(L, 1);
  }
  return ok && n == cached;
}

/* Once per encode, at the first table: package.loaded and the map into their slots. */
static void mod_setup(Enc *e) {
  lua_State *L = e->L;
  if (lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE) != LUA_TTABLE) {
    lua_pop(L, 1);
    e->modmode = MOD_NONE;
    return;
  }
  lua_replace(L, e->pkg);
  if (!lua_getmetatable(L, e->pkg)) {             /* not watched yet: install the watch */
    lua_newtable(L);                              /* L: map */
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    scan_loaded(L, e->pkg, lua_gettop(L));
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &K_MODMAP);
    lua_createtable(L, 0, 1);                     /* L: map mt */
    lua_pushvalue(L, -2);
    lua_pushcclosure(L, watch_newindex, 1);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &K_MODFN);
    lua_setfield(L, -2, "__newindex");
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &K_MODWATCH);
    lua_setmetatable(L, e->pkg);                  /* L: map */
    lua_replace(L, e->loaded);
    e->modmode = MOD_WATCHED;
    return;
  }
  if (is_watch(L)) {                              /* L: mt */
    lua_pop(L, 1);
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &K_MODMAP) == LUA_TTABLE) {
      lua_replace(L, e->loaded);
      e->modmode = MOD_WATCHED;
      return;
    }
  }
  lua_pop(L, 1);
  /* someone else's metatable: the exact map, checked with one pass (rebuilt if stale) */
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &K_MODFULL) != LUA_TTABLE || !map_current(L, e->pkg)) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushinteger(L, scan_loaded(L, e->pkg, lua_gettop(L)));
    lua_setfield(L, -2, "n");
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &K_MODFULL);
  }
  lua_replace(L, e->loaded);
  e->modmode = MOD_SCANNED;
}

/* The name under which table idx is in the sender's package.loaded, or NULL.  The string
** stays alive in the map (on the stack) while the name is copied out. */
static const char *module_name(Enc *e, int idx) {
  lua_State *L = e->L;
  int again;
  if (e->modmode == MOD_UNKNOWN) mod_setup(e);
  if (e->modmode == MOD_NONE) return NULL;
  for (again = 0; again < 2; again++) {
    int ok;
    lua_pushvalue(L, idx);
    if (lua_rawget(L, e->loaded) != LUA_TSTRING) { lua_pop(L, 1); return NULL; }
    if (e->modmode == MOD_SCANNED) break;         /* exact for this encode */
    lua_pushvalue(L, -1);
    lua_rawget(L, e->pkg);                        /* L: name package.loaded[name] */
    ok = lua_rawequal(L, -1, idx);
    lua_pop(L, 1);                                /* L: name */
    if (ok) break;
    lua_pop(L, 1);
    /* stale: this table left that name.  One pass finds it if it is under another; else
    ** it is marked gone (no pass the next times) but kept: put back under its old name, it
    ** is a module again at once */
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &K_MODGONE) != LUA_TTABLE) {
      lua_pop(L, 1);
      lua_newtable(L);
      lua_createtable(L, 0, 1);
      lua_pushliteral(L, "k");
      lua_setfield(L, -2, "__mode");
      lua_setmetatable(L, -2);
      lua_pushvalue(L, -1);
      lua_rawsetp(L, LUA_REGISTRYINDEX, &K_MODGONE);
    }
    lua_pushvalue(L, idx);                        /* L: gone t */
    if (again || lua_rawget(L, -2) != LUA_TNIL) {
      lua_pushvalue(L, idx);
      lua_pushboolean(L, 1);
      lua_rawset(L, -4);
      lua_pop(L, 2);
      return NULL;
    }
    lua_pop(L, 2);
    scan_loaded(L, e->pkg, e->loaded);
  }
  {
    const char *name = lua_tostring(L, -1);
    lua_pop(L, 1);
    return name;
  }
}

#define BIG_ARRAY 64          /* arrays at least this long take the lua_rawgeti path */

static int next_probe(lua_State *L) {   /* lua_pcall'd: lua_next(t, key) raises unless valid */
  lua_settop(L, 2);
  lua_next(L, 1);
  return 0;
}

/* Does integer key k lie in the array part of table idx?  For an absent key k, lua_next
** accepts it only there ("invalid key to 'next'" otherwise). */
static int inside_array_part(lua_State *L, int idx, lua_Integer k) {
  lua_pushcfunction(L, next_probe);
  lua_pushvalue(L, idx);
  lua_pushinteger(L, k);
  if (lua_pcall(L, 2, 0, 0) == LUA_OK) return 1;
  lua_pop(L, 1);
  return 0;
}

/* ------------------------------------------------------------------ packed runs */

enum { K_OTHER, K_INT, K_FLT, K_STR };

static int elem_kind(lua_State *L, int type) {
  if (type == LUA_TNUMBER) return lua_isinteger(L, -1) ? K_INT : K_FLT;
  return type == LUA_TSTRING ? K_STR : K_OTHER;
}

/* Push t[k] (lua_geti when meta, else raw); its kind. */
static int elem_get(lua_State *L, int t, lua_Integer k, int meta) {
  return elem_kind(L, meta ? lua_geti(L, t, k) : lua_rawgeti(L, t, k));
}

/* Write the value on top, of kind k (not K_OTHER), as a member of a run. */
static void put_run_elem(Enc *e, int k) {
  lua_State *L = e->L;
  char *p;
  if (k == K_STR) {
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    if (LT_UNLIKELY(e->b->cap - e->b->len < len + 10) && !grow(e, len + 10)) oom(e);
    p = e->b->data + e->b->len;
    if (LT_LIKELY(len < 0x80)) *p++ = (char)len;
    else {
      size_t v = len;
      for (; v >= 0x80; v >>= 7) *p++ = (char)((v & 0x7f) | 0x80);
      *p++ = (char)v;
    }
    memcpy(p, s, len);
    e->b->len = (size_t)(p - e->b->data) + len;
    return;
  }
  if (LT_UNLIKELY(e->b->cap - e->b->len < 8) && !grow(e, 8)) oom(e);
  p = e->b->data + e->b->len;
  if (k == K_INT) {
    lua_Integer v = lua_tointeger(L, -1);
    memcpy(p, &v, 8);
  } else {
    lua_Number v = lua_tonumber(L, -1);
    memcpy(p, &v, 8);
  }
  e->b->len += 8;
}

/* Start a run of kind k: its tag and a count to patch (returns where).  Room is made for
** hint more numbers (elements that exist: a raw array's; else at most 65536 at once). */
static size_t open_run(Enc *e, int k, lua_Integer hint, int exist) {
  size_t at;
  putbyte(e, k == K_INT ? T_IRUN : k == K_FLT ? T_FRUN : T_SRUN);
  at = reserve32(e);
  if (!exist && hint > 65536) hint = 65536;
  if (k != K_STR && !grow(e, (size_t)hint * 8)) oom(e);
  return at;
}

/*
** One run: the elements from first+i on while they are of kind k (the caller wrote the run
** header and knows elements i and i+1 are of that kind).  Values are read with one API call
** for the value and (numbers) one for the subtype; pops are batched.  Returns how many were
** written; the element that ended the run (if any) is left on top, *kind2 its kind.
*/
#define RUN_POP 64
static uint32_t put_run(Enc *e, int t, lua_Integer first, lua_Integer i, lua_Integer count,
                        int meta, int k, int *kind2) {
  lua_State *L = e->L;
  int base = lua_gettop(L), pushed = 0;
  uint32_t n = 0;
  *kind2 = -1;
  luaL_checkstack(L, RUN_POP + 4, "value too deeply nested");
  for (; i < count; i++, n++) {
    int tt = meta ? lua_geti(L, t, first + i) : lua_rawgeti(L, t, first + i);
    if (k == K_STR) {
      if (tt != LUA_TSTRING) break;
    } else if (tt != LUA_TNUMBER || lua_isinteger(L, -1) != (k == K_INT)) break;
    put_run_elem(e, k);
    if (++pushed == RUN_POP) { lua_settop(L, base); pushed = 0; }
  }
  if (i < count) {                       /* the element that ended the run: keep it on top */
    *kind2 = elem_kind(L, lua_type(L, -1));
    if (pushed > 0) {                    /* (else it is alone above base already) */
      lua_replace(L, base + 1);
      lua_settop(L, base + 1);
    }
  } else lua_settop(L, base);
  return n;
}

/*
** The elements t[first .. first+count-1] (count < 2^32), as the array part of a table:
** runs of two or more integers, floats or strings packed, any other element encoded alone.
** Errors name element first+i as label+i.  meta: read with lua_geti (else raw).
*/
static void encode_elems(Enc *e, int t, lua_Integer first, lua_Integer count, int meta,
                         lua_Integer label) {
  lua_State *L = e->L;
  lua_Integer i = 0;
  int have = 0, kind = K_OTHER;
  luaL_checkstack(L, 4, "value too deeply nested");
  while (i < count) {                        /* element i on top when have */
    if (!have) kind = elem_get(L, t, first + i, meta);
    have = 0;
    if (kind != K_OTHER && i + 1 < count) {
      int kind2 = elem_get(L, t, first + i + 1, meta);    /* L: ... v[i] v[i+1] */
      if (kind2 == kind) {
        size_t at;
        uint32_t n;
        lua_pop(L, 2);
        at = open_run(e, kind, count - i, !meta);
        n = put_run(e, t, first, i, count, meta, kind, &kind2);
        putu32_at(e, at, n);
        i += n;
        if (kind2 >= 0) { kind = kind2; have = 1; }
        continue;
      }
      push_step(e, P_INDEX, 0, (int)(label + i > INT32_MAX ? INT32_MAX : label + i));
      encode(e, lua_gettop(L) - 1);
      e->depth--;
      lua_remove(L, -2);                     /* v[i+1] is the current element */
      kind = kind2;
      have = 1;
      i++;
      continue;
    }
    push_step(e, P_INDEX, 0, (int)(label + i > INT32_MAX ? INT32_MAX : label + i));
    encode(e, lua_gettop(L));
    e->depth--;
    lua_pop(L, 1);
    i++;
  }
}

static void encode_table(Enc *e, int idx) {
  lua_State *L = e->L;
  const char *name;
  size_t at_narr, at_nhash;
  uint32_t narr = 0, nhash = 0;
  int arraymode = 1, top;
  lua_Integer n;
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
  if (lua_rawequal(L, -1, idx)) { lua_pop(L, 1); putbyte(e, T_GLOBALS); return; }
  lua_pop(L, 1);
  if ((name = lt_getname(L, idx)) != NULL) {
    putbyte(e, T_NAMED); putstr(e, name, strlen(name)); return;
  }
  if ((name = module_name(e, idx)) != NULL) {
    putbyte(e, T_MODULE); putstr(e, name, strlen(name)); return;
  }
  if (seen_or_mark(e, idx)) return;
  e->b->flags |= BUF_COMPLEX;
  putbyte(e, T_TABLE);
  at_narr = reserve32(e);
  at_nhash = reserve32(e);
  luaL_checkstack(L, 6, "value too deeply nested");
  n = (lua_Integer)lua_rawlen(L, idx);
  if (n >= BIG_ARRAY && n < (lua_Integer)UINT32_MAX && inside_array_part(L, idx, n + 1)) {
    /* A big array: 1..n by index (cheaper than lua_next), then the rest of the table from
    ** key n+1 on, which covers exactly the entries not yet written, because n+1 (hence
    ** every key up to it) lies in the array part, which lua_next visits first, in order. */
    encode_elems(e, idx, 1, n, 0, 1);
    narr = (uint32_t)n;
    arraymode = 0;
    lua_pushinteger(L, n + 1);
  } else lua_pushnil(L);
  top = lua_gettop(L) + 1;                        /* where each value lands */
  while (lua_next(L, idx)) {                      /* L: ... key value */
    push_step(e, P_KEY, top - 1, 0);
    /* (not lua_tointegerx alone: it would take the string key "1" for 1) */
    if (arraymode && lua_isinteger(L, -2) && lua_tointeger(L, -2) == (lua_Integer)narr + 1) {
      if (lua_type(L, top) == LUA_TNUMBER) encode_number(e, top);
      else encode(e, top);
      narr++;
    } else {
      arraymode = 0;
      encode(e, top - 1);
      encode(e, top);
      nhash++;
    }
    e->depth--;
    lua_pop(L, 1);
  }
  putu32_at(e, at_narr, narr);
  putu32_at(e, at_nhash, nhash);
  if (lua_getmetatable(L, idx)) {
    push_step(e, P_META, 0, 0);
    encode(e, lua_gettop(L));
    e->depth--;
    lua_pop(L, 1);
  } else putbyte(e, T_NIL);
}

static int dump_writer(lua_State *L, const void *p, size_t sz, void *ud) {
  Enc *e = (Enc *)ud;
  LT_UNUSED(L);
  if (sz == 0) return 0;             /* Lua 5.5 ends a dump with a (NULL, 0) call */
  if (!grow(e, sz)) return 1;
  memcpy(e->b->data + e->b->len, p, sz);
  e->b->len += sz;
  return 0;
}

static void encode_function(Enc *e, int idx) {
  lua_State *L = e->L;
  int i, nups = 0;
  lua_Integer fid;
  if (seen_or_mark(e, idx)) return;
  fid = e->nextid - 1;
  e->b->flags |= BUF_COMPLEX | BUF_UNSAFE;
  luaL_checkstack(L, 6, "value too deeply nested");
  while (lua_getupvalue(L, idx, nups + 1) != NULL) { lua_pop(L, 1); nups++; }
  if (lua_iscfunction(L, idx)) {
    lua_CFunction f = lua_tocfunction(L, idx);
    putbyte(e, T_CFUNC);
    put(e, &f, sizeof f);
  } else {
    size_t at, start;
    putbyte(e, T_LFUNC);
    at = reserve32(e);
    start = e->b->len;
    lua_pushvalue(L, idx);
    if (lua_dump(L, dump_writer, e, 0) != 0) { lua_pop(L, 1); oom(e); }
    lua_pop(L, 1);
    putu32_at(e, at, (uint32_t)(e->b->len - start));
  }
  putbyte(e, nups);
  for (i = 1; i <= nups; i++) {
    const char *upname = lua_getupvalue(L, idx, i);     /* L: ... upvalue */
    if (!lua_iscfunction(L, idx)) {
      void *uid = lua_upvalueid(L, idx, i);
      if (upname && strcmp(upname, "_ENV") == 0) {
        putbyte(e, T_ENV);
        lua_pop(L, 1);
        continue;
      }
      if (lua_rawgetp(L, e->seen, uid) == LUA_TNUMBER) {   /* cell already sent */
        lua_Integer ref = lua_tointeger(L, -1);
        lua_pop(L, 2);
        putbyte(e, T_UPJOIN);
        putvar(e, (lua_Unsigned)(ref >> 8));
        putbyte(e, (int)(ref & 0xff));
        continue;
      }
      lua_pop(L, 1);
      lua_pushinteger(L, (fid << 8) | i);
      lua_rawsetp(L, e->seen, uid);
    }
    push_step(e, P_UPVAL, idx, i);
    encode(e, lua_gettop(L));
    e->depth--;
    lua_pop(L, 1);
  }
}

/* Numbers are the bulk of most payloads: one capacity check, then fixed-width writes
** (integers in the smallest of 1, 2, 4 or 8 bytes; the subtype is kept). */
static void encode_number(Enc *e, int idx) {
  lua_State *L = e->L;
  char *p;
  if (LT_UNLIKELY(e->b->cap - e->b->len < 9) && !grow(e, 9)) oom(e);
  p = e->b->data + e->b->len;
  if (lua_isinteger(L, idx)) {
    lua_Integer i = lua_tointeger(L, idx);
    if (i >= INT8_MIN && i <= INT8_MAX) {
      p[0] = T_I8; p[1] = (char)(int8_t)i; e->b->len += 2;
    } else if (i >= INT16_MIN && i <= INT16_MAX) {
      int16_t v = (int16_t)i; p[0] = T_I16; memcpy(p + 1, &v, 2); e->b->len += 3;
    } else if (i >= INT32_MIN && i <= INT32_MAX) {
      int32_t v = (int32_t)i; p[0] = T_I32; memcpy(p + 1, &v, 4); e->b->len += 5;
    } else {
      p[0] = T_INT; memcpy(p + 1, &i, 8); e->b->len += 9;
    }
  } else {
    lua_Number n = lua_tonumber(L, idx);
    p[0] = T_FLT; memcpy(p + 1, &n, sizeof n); e->b->len += 1 + sizeof n;
  }
}

#define MAX_REDUCE_ARGS 250   /* ------------------------------------- foreign userdata */

/* Room for one more object in the buffer's list (before taking the reference). */
static void reserve_object(Enc *e) {
  lt_Buf *b = e->b;
  if (b->nobjs == b->objcap) {
    int ncap = b->objcap ? b->objcap * 2 : 4;
    lt_Object **no = (lt_Object **)realloc(b->objs, (size_t)ncap * sizeof *no);
    if (no == NULL) oom(e);
    b->objs = no;
    b->objcap = ncap;
  }
}

/* "userdata (FILE*)": the name for messages about the userdata at idx. */
static const char *udata_name(lua_State *L, int idx) {
  const char *tname = NULL;
  if (luaL_getmetafield(L, idx, "__name") == LUA_TSTRING) tname = lua_tostring(L, -1);
  return lua_pushfstring(L, "userdata (%s)", tname ? tname : "no __name");
}

/* __reduce is on top: call it with the userdata at idx and encode what it returned. */
static void encode_reduce(Enc *e, int idx) {
  lua_State *L = e->L;
  int top = lua_gettop(L) - 1, n, i;
  lua_pushvalue(L, idx);
  if (lua_pcall(L, 1, LUA_MULTRET, 0) != LUA_OK)
    enc_error(e, lua_pushfstring(L, "__reduce failed: %s", luaL_tolstring(L, -1, NULL)));
  n = lua_gettop(L) - top;
  if (n < 1 || (lua_type(L, top + 1) != LUA_TFUNCTION
                && luaL_getmetafield(L, top + 1, "__call") == LUA_TNIL))
    enc_error(e, lua_pushfstring(L, "__reduce failed: it returned %s, not a function",
                                 n < 1 ? "nothing" : luaL_typename(L, top + 1)));
  if (n - 1 > MAX_REDUCE_ARGS)
    enc_error(e, "__reduce failed: it returned too many arguments");
  luaL_checkstack(L, 6, "value too deeply nested");
  e->b->flags |= BUF_COMPLEX | BUF_UNSAFE;
  putbyte(e, T_REDUCE);
  putvar(e, (lua_Unsigned)(n - 1));
  for (i = 1; i <= n; i++) {
    push_step(e, P_REDUCE, 0, i - 1);
    encode(e, top + i);
    e->depth--;
  }
  lua_settop(L, top);
}

/*
** A full userdata that is not an lthreading proxy: by reference (__lthreading_ref), rebuilt
** (__reduce), or an error.  Like a table, it gets an id at its first visit; while its
** __reduce values are being encoded the id is `false`, so a userdata inside its own
** __reduce values is an error instead of an endless recursion.
*/
static void encode_userdata(Enc *e, int idx) {
  lua_State *L = e->L;
  int t, top = lua_gettop(L);
  lua_Integer id = e->nextid;
  luaL_checkstack(L, 8, "value too deeply nested");
  lua_pushvalue(L, idx);
  if ((t = lua_rawget(L, e->seen)) == LUA_TNUMBER) {    /* met before in this transfer */
    putbyte(e, T_REF);
    putvar(e, (lua_Unsigned)lua_tointeger(L, -1));
  } else if (t != LUA_TNIL) {
    enc_error(e, lua_pushfstring(L, "%s inside its own __reduce values", udata_name(L, idx)));
  } else if (e->depth >= e->maxdepth) {
    enc_error(e, lua_pushfstring(L, "userdata nested too deeply (more than %d levels)",
                                 e->maxdepth));
  } else if (luaL_getmetafield(L, idx, "__lthreading_ref") != LUA_TNIL) {
    const char *why = NULL;
    lt_Object *o;
    reserve_object(e);
    if ((o = lt_cref_wrap(L, idx, &why)) == NULL)
      enc_error(e, lua_pushfstring(L, "%s: %s", udata_name(L, idx), why));
    e->nextid++;
    e->b->objs[e->b->nobjs++] = o;            /* its one reference is the buffer's */
    e->b->flags |= BUF_UNSAFE | BUF_COMPLEX;
    putbyte(e, T_CREF);
    putvar(e, (lua_Unsigned)(e->b->nobjs - 1));
  } else if (luaL_getmetafield(L, idx, "__reduce") != LUA_TNIL) {
    e->nextid++;
    lua_pushvalue(L, idx);
    lua_pushboolean(L, 0);                              /* in progress */
    lua_rawset(L, e->seen);
    encode_reduce(e, idx);
  } else enc_error(e, udata_name(L, idx));
  if (t == LUA_TNIL) {
    lua_pushvalue(L, idx);
    lua_pushinteger(L, id);
    lua_rawset(L, e->seen);
  }
  lua_settop(L, top);
}

static void encode(Enc *e, int idx) {
  lua_State *L = e->L;
  switch (lua_type(L, idx)) {
    case LUA_TNIL: putbyte(e, T_NIL); break;
    case LUA_TBOOLEAN: putbyte(e, lua_toboolean(L, idx) ? T_TRUE : T_FALSE); break;
    case LUA_TNUMBER: encode_number(e, idx); break;
    case LUA_TSTRING: {
      size_t len;
      const char *s = lua_tolstring(L, idx, &len);
      putbyte(e, T_STR);
      putstr(e, s, len);
      break;
    }
    case LUA_TLIGHTUSERDATA: {
      void *p = lua_touserdata(L, idx);
      putbyte(e, T_LIGHT);
      put(e, &p, sizeof p);
      break;
    }
    case LUA_TTABLE:
    case LUA_TFUNCTION:
      if (e->depth >= e->maxdepth || lt_stack_low()) {
        if (e->depth >= e->maxdepth)
          lua_pushfstring(L, "%s nested too deeply (more than %d levels)",
                          luaL_typename(L, idx), e->maxdepth);
        else lua_pushfstring(L, "%s nested too deeply for this thread's C stack",
                             luaL_typename(L, idx));
        enc_error(e, lua_tostring(L, -1));
      }
      if (lua_type(L, idx) == LUA_TTABLE) encode_table(e, idx);
      else encode_function(e, idx);
      break;
    case LUA_TUSERDATA: {
      lt_Proxy *p = lt_toproxy(L, idx);
      lt_Buf *b;
      if (p == NULL) {                        /* a foreign userdata */
        encode_userdata(e, idx);
        break;
      }
      if (p->obj->cls == &lt_ThreadClass) lt_thread_sent(L, idx);  /* its class and fields */
      reserve_object(e);
      b = e->b;
      if (p->obj != b->owner) lt_incref(p->obj);
      b->objs[b->nobjs++] = p->obj;
      b->flags |= BUF_UNSAFE;
      putbyte(e, T_OBJ);                      /* may move the buffer: b is stale now */
      putvar(e, (lua_Unsigned)(e->b->nobjs - 1));
      break;
    }
    case LUA_TTHREAD: enc_error(e, "coroutine"); break;
    default: enc_error(e, luaL_typename(L, idx));
  }
}

static int is_scalar(lua_State *L, int idx) {
  int t = lua_type(L, idx);
  return t == LUA_TNIL || t == LUA_TBOOLEAN || t == LUA_TNUMBER || t == LUA_TSTRING
         || t == LUA_TLIGHTUSERDATA;
}

/* lua_pcall'd: upvalue 1 = Enc*, names*; arguments = the values. */
static int encode_all(lua_State *L) {
  Enc *e = (Enc *)lua_touserdata(L, lua_upvalueindex(1));
  const char *const *names = (const char *const *)lua_touserdata(L, lua_upvalueindex(2));
  int i, n = lua_gettop(L);
  e->path = e->small;
  e->pathcap = (int)(sizeof e->small / sizeof e->small[0]);
  enc_slots(e);
  for (i = 1; i <= n; i++) {
    e->root = names ? names[i - 1] : "value";
    e->depth = 0;
    encode(e, i);
  }
  return 0;
}

lt_Buf *lt_encode(lua_State *L, int idx, int n, const char *const *names) {
  return lt_encode_owned(L, idx, n, names, NULL);
}

lt_Buf *lt_encode_owned(lua_State *L, int idx, int n, const char *const *names,
                        lt_Object *owner) {
  Enc e;
  int i, simple = 1;
  idx = lua_absindex(L, idx);
  e.L = L;
  e.oom = 0;
  e.nextid = 1;
  e.seen = e.loaded = e.pkg = 0;
  e.modmode = 0;
  e.b = buf_new(64);
  if (e.b == NULL) luaL_error(L, "not enough memory");
  e.b->nvals = n;
  e.b->owner = owner;
  for (i = 0; i < n && simple; i++) simple = is_scalar(L, idx + i);
  if (simple) {   /* no error possible but memory: encode directly */
    e.depth = 0;
    e.maxdepth = 0;
    for (i = 0; i < n; i++) {
      size_t len = 0;                     /* grow first: encode() would raise on oom */
      if (lua_type(L, idx + i) == LUA_TSTRING) lua_tolstring(L, idx + i, &len);
      if (!grow(&e, len + 12)) break;
      encode(&e, idx + i);
    }
    if (e.oom) { lt_buf_free(e.b); luaL_error(L, "not enough memory"); }
    return e.b;
  }
  e.maxdepth = max_depth();
  luaL_checkstack(L, n + 4, "too many values to transfer");
  lua_pushlightuserdata(L, &e);
  lua_pushlightuserdata(L, (void *)names);
  lua_pushcclosure(L, encode_all, 2);
  for (i = 0; i < n; i++) lua_pushvalue(L, idx + i);
  if (lua_pcall(L, n, 0, 0) != LUA_OK) {
    lt_buf_free(e.b);       /* drops the references taken so far */
    lua_error(L);
  }
  return e.b;
}

/* lua_pcall'd: upvalue 1 = Enc*, 2 = RangeArgs*; argument 1 = the table. */
typedef struct RangeArgs { lua_Integer first, count, label; } RangeArgs;

static int encode_range_p(lua_State *L) {
  Enc *e = (Enc *)lua_touserdata(L, lua_upvalueindex(1));
  RangeArgs *r = (RangeArgs *)lua_touserdata(L, lua_upvalueindex(2));
  e->path = e->small;
  e->pathcap = (int)(sizeof e->small / sizeof e->small[0]);
  enc_slots(e);
  e->depth = 0;
  e->nextid = 2;                       /* 1: the array itself */
  e->b->flags |= BUF_COMPLEX;
  putbyte(e, T_TABLE);
  put(e, &(uint32_t){ (uint32_t)r->count }, 4);
  put(e, &(uint32_t){ 0 }, 4);
  encode_elems(e, 1, r->first, r->count, 1, r->label);
  putbyte(e, T_NIL);
  return 0;
}

lt_Buf *lt_encode_range(lua_State *L, int idx, lua_Integer first, lua_Integer count,
                        const char *root, lua_Integer label) {
  Enc e;
  RangeArgs r;
  if (count < 0 || count >= (lua_Integer)UINT32_MAX) luaL_error(L, "array too large to transfer");
  idx = lua_absindex(L, idx);
  e.L = L;
  e.oom = 0;
  e.seen = e.loaded = e.pkg = 0;
  e.modmode = 0;
  e.maxdepth = max_depth();
  e.root = root;
  e.b = buf_new(count < 1024 ? 64 : 16 + (size_t)(count < 65536 ? count : 65536) * 9);
  if (e.b == NULL) luaL_error(L, "not enough memory");
  e.b->nvals = 1;
  r.first = first;
  r.count = count;
  r.label = label;
  luaL_checkstack(L, 4, "too many values to transfer");
  lua_pushlightuserdata(L, &e);
  lua_pushlightuserdata(L, &r);
  lua_pushcclosure(L, encode_range_p, 2);
  lua_pushvalue(L, idx);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    lt_buf_free(e.b);
    lua_error(L);
  }
  return e.b;
}

/* ------------------------------------------------------------- streamed arrays */

typedef struct Stream {
  Enc *e;
  lt_Producer produce;
  void *ud;
  lua_Integer count, label;
} Stream;

static void put_single(Enc *e, int idx, lua_Integer label) {
  push_step(e, P_INDEX, 0, (int)(label > INT32_MAX ? INT32_MAX : label));
  encode(e, idx);
  e->depth--;
}

/* The kind of the value on top, asking for the common integer first. */
static int top_kind(lua_State *L) {
  if (lua_isinteger(L, -1)) return K_INT;
  return elem_kind(L, lua_type(L, -1));
}

/* lua_pcall'd: upvalue 1 = Stream*; the arguments stay for the producer (1 .. nargs).
** Each element is written as it comes: into the open run if of its kind, else it stays
** pending (a scalar) until the next tells whether the two start a run.  Values are popped
** in batches. */
static int encode_stream_p(lua_State *L) {
  Stream *st = (Stream *)lua_touserdata(L, lua_upvalueindex(1));
  Enc *e = st->e;
  lua_Integer i;
  size_t at_narr, run_at = 0;
  uint32_t run_n = 0;
  int pending, base, pushed = 0, rkind = -1, pkind = K_OTHER, have = 0;
  e->path = e->small;
  e->pathcap = (int)(sizeof e->small / sizeof e->small[0]);
  enc_slots(e);
  lua_pushnil(L);
  pending = base = lua_gettop(L);   /* a scalar not written yet: it may start a run */
  luaL_checkstack(L, RUN_POP + 8, "too many values to transfer");
  e->depth = 0;
  e->nextid = 2;                    /* 1: the array itself */
  e->b->flags |= BUF_COMPLEX;
  putbyte(e, T_TABLE);
  at_narr = reserve32(e);
  put(e, &(uint32_t){ 0 }, 4);
  for (i = 0; i < st->count; i++) {
    int k;
    st->produce(L, st->ud, i);      /* pushes one value */
    k = top_kind(L);
    if (k == rkind) {
      put_run_elem(e, k);
      run_n++;
      if (++pushed == RUN_POP) { lua_settop(L, base); pushed = 0; }
      continue;
    }
    if (rkind >= 0) {
      putu32_at(e, run_at, run_n);
      rkind = -1;
    }
    if (pushed > 0) {               /* the value alone above base */
      lua_replace(L, base + 1);
      lua_settop(L, base + 1);
      pushed = 0;
    }
    if (have) {
      have = 0;
      if (k == pkind) {             /* two of a kind: a run */
        run_at = open_run(e, k, st->count - i + 1, 1);
        lua_pushvalue(L, pending);
        put_run_elem(e, k);
        lua_pop(L, 1);
        put_run_elem(e, k);
        run_n = 2;
        rkind = k;
        lua_settop(L, base);
        continue;
      }
      put_single(e, pending, st->label + i - 1);
    }
    if (k != K_OTHER) {
      lua_replace(L, pending);
      pkind = k;
      have = 1;
    } else {
      put_single(e, base + 1, st->label + i);
      lua_settop(L, base);
    }
  }
  if (rkind >= 0) putu32_at(e, run_at, run_n);
  if (have) put_single(e, pending, st->label + i - 1);
  putu32_at(e, at_narr, (uint32_t)i);
  putbyte(e, T_NIL);
  return 0;
}

lt_Buf *lt_encode_stream(lua_State *L, int nargs, lua_Integer count, const char *root,
                         lua_Integer label, lt_Producer produce, void *ud) {
  Enc e;
  Stream st;
  if (count < 0 || count >= (lua_Integer)UINT32_MAX) luaL_error(L, "array too large to transfer");
  e.L = L;
  e.oom = 0;
  e.seen = e.loaded = e.pkg = 0;
  e.modmode = 0;
  e.maxdepth = max_depth();
  e.root = root;
  e.b = buf_new(count < 1024 ? 64 : 16 + (size_t)(count < 65536 ? count : 65536) * 9);
  if (e.b == NULL) luaL_error(L, "not enough memory");
  e.b->nvals = 1;
  st.e = &e;
  st.produce = produce;
  st.ud = ud;
  st.count = count;
  st.label = label;
  luaL_checkstack(L, 4, "too many values to transfer");
  lua_pushlightuserdata(L, &st);
  lua_pushcclosure(L, encode_stream_p, 1);
  lua_insert(L, -1 - nargs);
  if (lua_pcall(L, nargs, 0, 0) != LUA_OK) {
    lt_buf_free(e.b);
    lua_error(L);
  }
  return e.b;
}

/* ======================================================================== DECODING */

typedef struct Dec {
  lua_State *L;
  const lt_Buf *b;
  const char *p, *end;
  int refs, nextid, depth, maxdepth;
  int allow_unsafe;
} Dec;

static void corrupt(Dec *d) { luaL_error(d->L, "corrupt lthreading message"); }

static int getbyte(Dec *d) {
  if (d->p >= d->end) corrupt(d);
  return (unsigned char)*d->p++;
}

static lua_Unsigned getvar(Dec *d) {
  lua_Unsigned v = 0;
  int shift = 0, c;
  do {
    if (shift > 63) corrupt(d);
    c = getbyte(d);
    v |= (lua_Unsigned)(c & 0x7f) << shift;
    shift += 7;
  } while (c & 0x80);
  return v;
}

static void getraw(Dec *d, void *out, size_t n) {
  if ((size_t)(d->end - d->p) < n) corrupt(d);
  memcpy(out, d->p, n);
  d->p += n;
}

static uint32_t getu32(Dec *d) { uint32_t v; getraw(d, &v, 4); return v; }

static const char *getstr(Dec *d, size_t *len) {
  const char *s;
  lua_Unsigned n = getvar(d);
  if (n > (lua_Unsigned)(d->end - d->p)) corrupt(d);
  s = d->p;
  d->p += n;
  *len = (size_t)n;
  return s;
}

static void decode(Dec *d);

static void need_refs(Dec *d) {
  if (lua_isnil(d->L, d->refs)) {
    lua_newtable(d->L);
    lua_replace(d->L, d->refs);
  }
}

static void register_ref(Dec *d) {   /* the new table/function on top gets the next id */
  need_refs(d);
  lua_pushvalue(d->L, -1);
  lua_rawseti(d->L, d->refs, d->nextid++);
}

/* The narr elements of an array part (single values and packed runs) into t[offset + i]. */
static void decode_elems(Dec *d, int t, lua_Integer offset, uint32_t narr) {
  lua_State *L = d->L;
  uint32_t i = 1, k, n;
  while (i <= narr) {
    int tag = d->p < d->end ? (unsigned char)*d->p : -1;
    switch (tag) {
      case T_I8:         /* the array part of a table is often all small integers */
        if (d->end - d->p < 2) corrupt(d);
        lua_pushinteger(L, (int8_t)d->p[1]);
        d->p += 2;
        break;
      case T_IRUN: case T_FRUN: case T_SRUN:
        d->p++;
        n = getu32(d);
        if (n < 2 || n > narr - i + 1) corrupt(d);
        if (tag == T_SRUN) {
          for (k = 0; k < n; k++) {
            size_t len;
            const char *s;
            if (LT_LIKELY(d->end - d->p > 0 && (unsigned char)*d->p < 0x80)) {
              len = (unsigned char)*d->p++;          /* a short string: one length byte */
              if ((size_t)(d->end - d->p) < len) corrupt(d);
              s = d->p;
              d->p += len;
            } else s = getstr(d, &len);
            lua_pushlstring(L, s, len);
            lua_rawseti(L, t, offset + (lua_Integer)i++);
          }
        } else {
          const char *p = d->p;
          if ((size_t)(d->end - p) / 8 < n) corrupt(d);
          d->p += (size_t)n * 8;
          if (tag == T_IRUN)
            for (k = 0; k < n; k++, p += 8) {
              lua_Integer v;
              memcpy(&v, p, 8);
              lua_pushinteger(L, v);
              lua_rawseti(L, t, offset + (lua_Integer)i++);
            }
          else
            for (k = 0; k < n; k++, p += 8) {
              lua_Number v;
              memcpy(&v, p, 8);
              lua_pushnumber(L, v);
              lua_rawseti(L, t, offset + (lua_Integer)i++);
            }
        }
        continue;
      default:
        decode(d);
    }
    lua_rawseti(L, t, offset + (lua_Integer)i++);
  }
}

static void decode_table(Dec *d) {
  lua_State *L = d->L;
  uint32_t i, narr = getu32(d), nhash = getu32(d);
  if (narr > (uint32_t)(d->end - d->p) || nhash > (uint32_t)(d->end - d->p)) corrupt(d);
  /* a big array gets one spare slot, so that sending it on takes the fast path too */
  lua_createtable(L, (int)narr + (narr >= BIG_ARRAY), (int)nhash);
  register_ref(d);
  decode_elems(d, lua_gettop(L), 0, narr);
  for (i = 0; i < nhash; i++) {
    decode(d);
    decode(d);
    if (lua_isnil(L, -2)) corrupt(d);
    lua_rawset(L, -3);   /* a NaN key raises: fine for a corrupt message */
  }
  decode(d);                               /* metatable */
  if (lua_istable(L, -1)) lua_setmetatable(L, -2);
  else if (lua_isnil(L, -1)) lua_pop(L, 1);
  else corrupt(d);
}

typedef struct LoadState { const char *p; size_t n; } LoadState;

static const char *load_reader(lua_State *L, void *ud, size_t *size) {
  LoadState *ls = (LoadState *)ud;
  LT_UNUSED(L);
  *size = ls->n;
  ls->n = 0;
  return *size ? ls->p : NULL;
}

static void decode_function(Dec *d, int tag) {
  lua_State *L = d->L;
  int i, nups, fidx;
  if (!d->allow_unsafe) corrupt(d);
  if (tag == T_CFUNC) {
    lua_CFunction f;
    int myid = d->nextid++;        /* the encoder numbered it before its upvalues */
    getraw(d, &f, sizeof f);
    nups = getbyte(d);
    luaL_checkstack(L, nups + 4, "too many upvalues");
    for (i = 0; i < nups; i++) decode(d);
    lua_pushcclosure(L, f, nups);
    need_refs(d);
    lua_pushvalue(L, -1);
    lua_rawseti(L, d->refs, myid);
    return;
  }
  {
    LoadState ls;
    ls.n = getu32(d);
    if (ls.n > (size_t)(d->end - d->p)) corrupt(d);
    ls.p = d->p;
    d->p += ls.n;
    if (lua_load(L, load_reader, &ls, "=(lthreading)", "b") != LUA_OK) lua_error(L);
  }
  register_ref(d);
  fidx = lua_gettop(L);
  nups = getbyte(d);
  for (i = 1; i <= nups; i++) {
    int t = getbyte(d);
    if (t == T_ENV) {
      lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
    } else if (t == T_UPJOIN) {
      lua_Integer other = (lua_Integer)getvar(d);
      int n = getbyte(d);
      need_refs(d);
      if (lua_rawgeti(L, d->refs, other) != LUA_TFUNCTION || lua_iscfunction(L, -1)
          || lua_getupvalue(L, -1, n) == NULL || lua_getupvalue(L, fidx, i) == NULL)
        corrupt(d);
      lua_pop(L, 2);
      lua_upvaluejoin(L, fidx, i, -1, n);
      lua_pop(L, 1);
      continue;
    } else {
      d->p--;
      decode(d);
    }
    if (lua_setupvalue(L, fidx, i) == NULL) lua_pop(L, 1);
  }
}

static const char K_NILREF = 0;   /* refs[id] of a rebuilt userdata whose f returned nil */

/* T_REDUCE: f and its arguments, then f(args...); T_CREF: the C module pushes its userdata
** for the object.  The value takes the id the sender gave the userdata.  Never from
** untrusted bytes (lt_decode_bytes): no function is called for them. */
static void decode_foreign(Dec *d, int tag) {
  lua_State *L = d->L;
  lua_Unsigned n = getvar(d), i;
  int myid = d->nextid++;
  if (!d->allow_unsafe || d->b == NULL) corrupt(d);
  if (tag == T_CREF) {
    if (n >= (lua_Unsigned)d->b->nobjs || !lt_cref_is(d->b->objs[n])) corrupt(d);
    lt_cref_push(L, d->b->objs[n]);
  } else {
    if (n > MAX_REDUCE_ARGS) corrupt(d);
    if (++d->depth > d->maxdepth)
      luaL_error(L, "value nested too deeply for this thread (more than %d levels)",
                 d->maxdepth - 1);
    luaL_checkstack(L, (int)n + 8, "too many values");
    for (i = 0; i <= n; i++) decode(d);
    lua_call(L, (int)n, 1);                   /* an error in f is the receiver's error */
    d->depth--;
  }
  need_refs(d);
  if (lua_isnil(L, -1)) lua_pushlightuserdata(L, (void *)&K_NILREF);
  else lua_pushvalue(L, -1);
  lua_rawseti(L, d->refs, myid);
}

static void decode(Dec *d) {
  lua_State *L = d->L;
  int t = getbyte(d);
  switch (t) {
    case T_NIL: lua_pushnil(L); break;
    case T_FALSE: lua_pushboolean(L, 0); break;
    case T_TRUE: lua_pushboolean(L, 1); break;
    case T_I8: { int8_t v; getraw(d, &v, 1); lua_pushinteger(L, v); break; }
    case T_I16: { int16_t v; getraw(d, &v, 2); lua_pushinteger(L, v); break; }
    case T_I32: { int32_t v; getraw(d, &v, 4); lua_pushinteger(L, v); break; }
    case T_INT: { lua_Integer v; getraw(d, &v, 8); lua_pushinteger(L, v); break; }
    case T_FLT: { lua_Number n; getraw(d, &n, sizeof n); lua_pushnumber(L, n); break; }
    case T_STR: { size_t len; const char *s = getstr(d, &len); lua_pushlstring(L, s, len); break; }
    case T_LIGHT: { void *p; getraw(d, &p, sizeof p); lua_pushlightuserdata(L, p); break; }
    case T_GLOBALS: lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS); break;
    case T_REF:
      need_refs(d);
      if (lua_rawgeti(L, d->refs, (lua_Integer)getvar(d)) == LUA_TNIL) corrupt(d);
      if (lua_touserdata(L, -1) == &K_NILREF) { lua_pop(L, 1); lua_pushnil(L); }
      break;
    case T_REDUCE: case T_CREF: decode_foreign(d, t); break;
    case T_TABLE: case T_LFUNC: case T_CFUNC:
      if (++d->depth > d->maxdepth)
        luaL_error(L, "value nested too deeply for this thread (more than %d levels)",
                   d->maxdepth - 1);
      if (lt_stack_low())
        luaL_error(L, "value nested too deeply for this thread's C stack");
      luaL_checkstack(L, 8, "value too deeply nested");
      if (t == T_TABLE) decode_table(d); else decode_function(d, t);
      d->depth--;
      break;
    case T_NAMED: {
      size_t len;
      const char *s = getstr(d, &len);
      lua_pushlstring(L, s, len);
      if (lt_pushnamed(L, lua_tostring(L, -1)) == LUA_TNIL)
        luaL_error(L, "lthreading has no value named '%s'", lua_tostring(L, -2));
      lua_remove(L, -2);
      break;
    }
    case T_MODULE: {
      size_t len;
      const char *s = getstr(d, &len);
      lua_pushlstring(L, s, len);                                  /* L: name */
      lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
      lua_pushvalue(L, -2);
      if (lua_rawget(L, -2) == LUA_TNIL) {                          /* L: name loaded nil */
        if (!d->allow_unsafe) corrupt(d);        /* untrusted bytes never load modules */
        lua_pop(L, 2);
        if (lua_getglobal(L, "require") != LUA_TFUNCTION)
          luaL_error(L, "cannot receive module '%s': no require", lua_tostring(L, -2));
        lua_pushvalue(L, -2);
        lua_call(L, 1, 1);
      } else lua_remove(L, -2);
      lua_remove(L, -2);
      break;
    }
    case T_OBJ: {
      lua_Unsigned i = getvar(d);
      if (!d->allow_unsafe || d->b == NULL || i >= (lua_Unsigned)d->b->nobjs) corrupt(d);
      lt_pushobject(L, d->b->objs[i]);
      break;
    }
    default: corrupt(d);
  }
}

static int decode_run(lua_State *L, const lt_Buf *b, const char *data, size_t len, int nvals,
                      int complex, int unsafe) {
  Dec d;
  int i, base;
  d.L = L; d.b = b; d.p = data; d.end = data + len;
  d.nextid = 1; d.depth = 0; d.allow_unsafe = unsafe; d.maxdepth = max_depth() + 1;
  luaL_checkstack(L, nvals + 8, "too many values");
  if (!complex) {
    d.refs = 0;
    for (i = 0; i < nvals; i++) {
      int tag = d.p < d.end ? (unsigned char)*d.p : -1;
      if (tag == T_TABLE || tag == T_LFUNC || tag == T_CFUNC || tag == T_REF
          || tag == T_REDUCE || tag == T_CREF) corrupt(&d);
      decode(&d);
    }
    return nvals;
  }
  lua_pushnil(L);           /* refs slot, made on first use */
  base = d.refs = lua_gettop(L);
  for (i = 0; i < nvals; i++) decode(&d);
  lua_remove(L, base);
  return nvals;
}

int lt_decode(lua_State *L, const lt_Buf *b) {
  return decode_run(L, b, b->data, b->len, b->nvals, b->flags & BUF_COMPLEX, 1);
}

/* lua_pcall'd: 1 = the buffer (light), 2 = offset; the target table at 3. */
static int decode_into_p(lua_State *L) {
  const lt_Buf *b = (const lt_Buf *)lua_touserdata(L, 1);
  lua_Integer offset = lua_tointeger(L, 2);
  Dec d;
  uint32_t narr;
  d.L = L; d.b = b; d.p = b->data; d.end = b->data + b->len;
  d.nextid = 2; d.depth = 1; d.allow_unsafe = 1; d.maxdepth = max_depth() + 1;
  lua_settop(L, 3);
  lua_pushnil(L);
  d.refs = 4;
  if (b->nvals != 1 || getbyte(&d) != T_TABLE) corrupt(&d);
  narr = getu32(&d);
  if (getu32(&d) != 0 || narr > (uint32_t)(d.end - d.p)) corrupt(&d);
  decode_elems(&d, 3, offset, narr);
  if (getbyte(&d) != T_NIL || d.p != d.end) corrupt(&d);
  lua_pushinteger(L, (lua_Integer)narr);
  return 1;
}

lua_Integer lt_decode_into(lua_State *L, const lt_Buf *b, int idx, lua_Integer offset) {
  lua_Integer n;
  idx = lua_absindex(L, idx);
  luaL_checkstack(L, 8, "too many values");
  lua_pushcfunction(L, decode_into_p);
  lua_pushlightuserdata(L, (void *)b);
  lua_pushinteger(L, offset);
  lua_pushvalue(L, idx);
  lua_call(L, 3, 1);
  n = lua_tointeger(L, -1);
  lua_pop(L, 1);
  return n;
}

/* ------------------------------------------------------------ reading arrays */

struct lt_ArrayIn {
  const lt_Buf *b;
  const char *p, *end;
  uint32_t left, run;          /* elements not read yet; of them, left in the current run */
  int runtag, nextid;
};

lt_ArrayIn *lt_array_in(lua_State *L, const lt_Buf *b) {
  lt_ArrayIn *r = (lt_ArrayIn *)lt_newuserdata(L, sizeof(lt_ArrayIn), 1);
  uint32_t nhash;
  r->b = b;
  r->p = b->data;
  r->end = b->data + b->len;
  r->run = 0;
  r->runtag = 0;
  r->nextid = 2;
  if (b->nvals != 1 || b->len < 9 || (unsigned char)*r->p != T_TABLE)
    luaL_error(L, "corrupt lthreading message");
  memcpy(&r->left, r->p + 1, 4);
  memcpy(&nhash, r->p + 5, 4);
  r->p += 9;
  if (nhash != 0 || r->left > (uint32_t)(r->end - r->p))
    luaL_error(L, "corrupt lthreading message");
  return r;
}

int lt_array_next(lua_State *L, lt_ArrayIn *r, int idx) {
  Dec d;
  if (r->run == 0) {
    int tag;
    if (r->left == 0) return 0;
    tag = r->p < r->end ? (unsigned char)*r->p : -1;
    if (tag == T_IRUN || tag == T_FRUN || tag == T_SRUN) {
      uint32_t n;
      if (r->end - r->p < 5) luaL_error(L, "corrupt lthreading message");
      memcpy(&n, r->p + 1, 4);
      if (n < 2 || n > r->left) luaL_error(L, "corrupt lthreading message");
      r->p += 5;
      r->run = n;
      r->runtag = tag;
    }
  }
  if (r->run > 0) {            /* the next member of a run */
    if (r->runtag == T_SRUN) {
      size_t len;
      const char *s;
      d.L = L; d.p = r->p; d.end = r->end;
      s = getstr(&d, &len);
      r->p = d.p;
      lua_pushlstring(L, s, len);
    } else {
      if (r->end - r->p < 8) luaL_error(L, "corrupt lthreading message");
      if (r->runtag == T_IRUN) {
        lua_Integer v;
        memcpy(&v, r->p, 8);
        lua_pushinteger(L, v);
      } else {
        lua_Number v;
        memcpy(&v, r->p, 8);
        lua_pushnumber(L, v);
      }
      r->p += 8;
    }
    r->run--;
    r->left--;
    return 1;
  }
  /* a single value: decoded with the reader's refs table (its user value, made on need) */
  idx = lua_absindex(L, idx);
  luaL_checkstack(L, 8, "too many values");
  d.L = L; d.b = r->b; d.p = r->p; d.end = r->end;
  d.nextid = r->nextid; d.depth = 1; d.allow_unsafe = 1; d.maxdepth = max_depth() + 1;
  lt_getuv(L, idx, 1);
  d.refs = lua_gettop(L);
  decode(&d);
  r->p = d.p;
  r->nextid = d.nextid;
  r->left--;
  if (!lua_isnil(L, d.refs)) {
    lua_pushvalue(L, d.refs);
    lt_setuv(L, idx, 1);
  }
  lua_remove(L, d.refs);
  return 1;
}

/* Raw bytes from an untrusted source: no code, no object references. */
int lt_decode_bytes(lua_State *L, const char *data, size_t len) {
  int n = 0, base = lua_gettop(L);
  Dec d;
  d.L = L; d.b = NULL; d.p = data; d.end = data + len;
  d.nextid = 1; d.depth = 0; d.allow_unsafe = 0; d.maxdepth = max_depth() + 1;
  lua_pushnil(L);
  d.refs = base + 1;
  while (d.p < d.end) {
    luaL_checkstack(L, 4, "too many values");
    decode(&d);
    n++;
  }
  lua_remove(L, base + 1);
  return n;
}
