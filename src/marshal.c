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

/*
** THE FILES (marshal_private.h: what they share)
**   marshal.c         this model; buffers; the encoder core: error paths, loaded modules,
**                     tables, functions, numbers, foreign userdata, lt_encode
**   marshal_array.c   array parts: packed runs (both ways), arrays in bulk, streams
**   marshal_decode.c  the decoder: lt_decode, lt_decode_bytes
*/
#include <stdlib.h>
#include <string.h>

#include "lthreading.h"
#include "marshal_private.h"

_Thread_local int lt_depth_limit = 0;   /* 0: LT_MAX_DEPTH; set by threads with small stacks */

/* ======================================================================== BUFFERS */

void lt_buf_free(lt_Buf *b) {
  int i;
  if (b == NULL) return;
  for (i = 0; i < b->nobjs; i++)
    if (b->objs[i] != b->owner) lt_decref(b->objs[i]);
  free(b->objs);
  free(b);
}

/* ======================================================================== ENCODING */

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

static void encode_number(Enc *e, int idx);

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

void lt_m_enc_slots(Enc *e) {
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
    lt_m_encode_elems(e, idx, 1, n, 0, 1);
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
      else lt_m_encode(e, top);
      narr++;
    } else {
      arraymode = 0;
      lt_m_encode(e, top - 1);
      lt_m_encode(e, top);
      nhash++;
    }
    e->depth--;
    lua_pop(L, 1);
  }
  putu32_at(e, at_narr, narr);
  putu32_at(e, at_nhash, nhash);
  if (lua_getmetatable(L, idx)) {
    push_step(e, P_META, 0, 0);
    lt_m_encode(e, lua_gettop(L));
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
    lt_m_encode(e, lua_gettop(L));
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

/* ------------------------------------------------------------- foreign userdata */

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
    lt_m_encode(e, top + i);
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

void lt_m_encode(Enc *e, int idx) {
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
  lt_m_enc_slots(e);
  for (i = 1; i <= n; i++) {
    e->root = names ? names[i - 1] : "value";
    e->depth = 0;
    lt_m_encode(e, i);
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
      lt_m_encode(&e, idx + i);
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
