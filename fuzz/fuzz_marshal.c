/*
** fuzz_marshal.c -- libFuzzer target for the marshaler (make fuzz).
**
** The first input byte picks the mode:
**   even: DECODE  the rest is fed to lt_decode_bytes() as an untrusted message: it must
**         either produce values or raise a Lua error -- never crash, hang or leak.
**   odd:  ROUND TRIP  the rest drives a small generator of Lua values (nested tables with
**         shared sub-tables and cycles, integers, floats, binary strings, booleans, Lua
**         closures with shared upvalues, metatables); each value is encoded with lt_encode,
**         decoded into a second state, re-encoded there, and the two encodings must be equal.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lthreading.h"
#include "lualib.h"

static lua_State *A, *B;

typedef struct Gen { const uint8_t *p, *end; } Gen;

static int next(Gen *g) { return g->p < g->end ? *g->p++ : 0; }

static void gen(lua_State *L, Gen *g, int depth, int pool) {
  int c = next(g) % (depth > 6 ? 6 : 12);
  switch (c) {
    case 0: lua_pushnil(L); break;
    case 1: lua_pushboolean(L, next(g) & 1); break;
    case 2: { lua_Integer i = (lua_Integer)((uint64_t)next(g) << 56 | (uint64_t)next(g) << 8 | next(g));
              lua_pushinteger(L, next(g) & 1 ? i : (lua_Integer)next(g) - 128); break; }
    case 3: lua_pushnumber(L, (double)next(g) / 7.0); break;
    case 4: { char buf[16]; int n = next(g) % 16, i; for (i = 0; i < n; i++) buf[i] = (char)next(g);
              lua_pushlstring(L, buf, (size_t)n); break; }
    case 5: lua_pushlightuserdata(L, (void *)(uintptr_t)next(g)); break;
    case 6: case 7: {                 /* a table, maybe from the pool (sharing, cycles) */
      int n = next(g) % 6, i;
      if (c == 7 && lua_rawlen(L, pool) > 0) {
        lua_rawgeti(L, pool, 1 + next(g) % (int)lua_rawlen(L, pool));
        break;
      }
      lua_newtable(L);
      lua_pushvalue(L, -1);
      lua_rawseti(L, pool, (lua_Integer)lua_rawlen(L, pool) + 1);
      for (i = 0; i < n; i++) {
        gen(L, g, depth + 1, pool);              /* key */
        if (lua_isnil(L, -1) || (lua_type(L, -1) == LUA_TNUMBER && lua_tonumber(L, -1) != lua_tonumber(L, -1))) {
          lua_pop(L, 1);
          lua_pushinteger(L, i + 1);
        }
        gen(L, g, depth + 1, pool);              /* value */
        lua_rawset(L, -3);
      }
      if (next(g) % 5 == 0) { gen(L, g, depth + 1, pool);
        if (lua_istable(L, -1)) lua_setmetatable(L, -2); else lua_pop(L, 1); }
      break;
    }
    case 8: {                         /* two closures sharing an upvalue cell */
      static const char src[] = "local x, y = ... return function() x = x + 1 return x, y end, "
                                "function() return x end";
      luaL_loadstring(L, src);
      lua_pushinteger(L, next(g));
      gen(L, g, depth + 1, pool);
      lua_call(L, 2, 2);
      lua_createtable(L, 2, 0);
      lua_insert(L, -3);
      lua_rawseti(L, -3, 2);
      lua_rawseti(L, -2, 1);
      break;
    }
    case 9: lua_pushcfunction(L, luaopen_lthreading); break;
    case 10: {                        /* a big array (the lua_rawgeti path), maybe not pure */
      int n = 60 + next(g) % 200, i, shape = next(g);
      lua_createtable(L, shape & 1 ? n : 0, 0);
      int kinds = next(g);                       /* element kinds: runs of each, or mixed */
      for (i = 1; i <= n; i++) {
        int k = (shape & 2) ? n + 1 - i : i;     /* filled backwards: keys may go to the hash */
        switch ((kinds >> ((k / 16) % 4 * 2)) & 3) {   /* the kind changes every 16 keys */
          case 0: lua_pushinteger(L, k * 3); break;
          case 1: lua_pushnumber(L, k & 1 ? (double)k / 3.0 : -0.0); break;
          case 2: lua_pushfstring(L, "s%d", k % 7 == 0 ? 100000 : k); break;
          default: lua_pushboolean(L, k & 1);
        }
        lua_rawseti(L, -2, k);
      }
      if (shape & 4) { lua_pushnil(L); lua_rawseti(L, -2, 1 + next(g) % n); }   /* a hole */
      if (shape & 8) { lua_pushboolean(L, 1); lua_setfield(L, -2, "x"); }
      if (shape & 16) { lua_pushinteger(L, 7); lua_rawseti(L, -2, n + 1 + next(g)); }
      if (shape & 32) { gen(L, g, depth + 1, pool); lua_rawseti(L, -2, 1 + next(g) % n); }
      break;
    }
    default: lua_getglobal(L, next(g) & 1 ? "string" : "_G"); break;
  }
}

static int decode_bytes(lua_State *L) {
  size_t len;
  const char *s = lua_tolstring(L, 1, &len);
  return lt_decode_bytes(L, s, len);
}

/* deepeq(a, b): same shape, including which sub-tables are shared and the metatables;
** functions are compared by calling them where generated (the shared-counter pair). */
static const char DEEPEQ[] =
  "local function eq(a, b, seen)\n"
  "  if type(a) ~= type(b) then return false end\n"
  "  if type(a) == 'number' then return math.type(a) == math.type(b) and (a == b or a ~= a) end\n"
  "  if type(a) == 'function' then return true end\n"
  "  if type(a) ~= 'table' then return a == b end\n"
  "  if a == _G or a == string then return a == b end\n"
  "  if seen[a] ~= nil then return seen[a] == b end\n"
  "  seen[a] = b\n"
  "  if not eq(getmetatable(a), getmetatable(b), seen) then return false end\n"
  "  local n = 0\n"
  "  for k, v in next, a do\n"
  "    n = n + 1\n"
  "    local bk = k\n"
  "    if type(k) == 'table' then bk = seen[k]; if bk == nil then return true end end\n"
  "    if not eq(v, rawget(b, bk), seen) then return false end\n"
  "  end\n"
  "  for _ in next, b do n = n - 1 end\n"
  "  return n == 0\n"
  "end\n"
  "return function(a, b) return eq(a, b, {}) end\n";

/* The f of the map below: an item's result is the item itself. */
static int identity(lua_State *L) {
  lua_settop(L, 1);
  return 1;
}

static atomic_int nostop;                            /* the map below never stops */

/* Elements 1..n of the table at 2 (in L): by range to B, read two ways there, then mapped
** back through identity (lt_encode_map, as a pool:map chunk); each way must give the same
** shape as {t[1], ..., t[n]} (read with lua_geti). */
static void range_roundtrip(lua_State *L) {
  lua_Integer n = (lua_Integer)lua_rawlen(L, 2), i;
  lt_Buf *b, *s;
  lt_ArrayIn *r;
  int base = lua_gettop(L);
  if (n > 1000) n = 1000;
  b = lt_encode_range(L, 2, 1, n, "items", 1);
  lua_settop(B, 0);
  lua_createtable(B, 0, 0);                          /* B 1: decoded into */
  if (lt_decode_into(B, b, 1, 0) != n) abort();
  r = lt_array_in(B, b);                             /* B 2: the reader */
  lua_createtable(B, 0, 0);                          /* B 3: read element by element */
  for (i = 1; lt_array_next(B, r, 2); i++) lua_rawseti(B, 3, i);
  if (i != n + 1) abort();
  for (i = 1; i <= n; i++) {                         /* the two ways agree, value for value */
    lua_rawgeti(B, 1, i);
    lua_rawgeti(B, 3, i);
    if (lua_type(B, -1) == LUA_TNUMBER ? !(lua_rawequal(B, -1, -2) || lua_tonumber(B, -1) != lua_tonumber(B, -1))
                                         || lua_isinteger(B, -1) != lua_isinteger(B, -2)
                                       : lua_type(B, -1) != lua_type(B, -2))
      abort();
    lua_pop(B, 2);
  }
  lua_pushcfunction(B, identity);
  lt_array_in(B, b);                                 /* a second reader, for the map */
  s = lt_encode_map(B, n, "results", 1, &nostop);
  lt_buf_free(b);
  lua_settop(B, 0);
  lua_createtable(L, 0, 0);                          /* base+1: streamed back */
  if (lt_decode_into(L, s, base + 1, 0) != n) abort();
  lt_buf_free(s);
  lua_createtable(L, 0, 0);                          /* base+2: {t[1], ..., t[n]} */
  for (i = 1; i <= n; i++) {
    lua_geti(L, 2, i);
    lua_rawseti(L, base + 2, i);
  }
  if (luaL_loadstring(L, DEEPEQ) != LUA_OK) abort();
  lua_call(L, 0, 1);
  lua_pushvalue(L, base + 2);
  lua_pushvalue(L, base + 1);
  lua_call(L, 2, 1);
  if (!lua_toboolean(L, -1)) abort();
  lua_settop(L, base);
}

/* The value goes A -> B -> A; what comes back must equal the original. */
static int roundtrip(lua_State *L) {
  Gen g;
  lt_Buf *b1, *b2;
  g.p = (const uint8_t *)lua_touserdata(L, 1);
  g.end = g.p + (size_t)lua_tointeger(L, 2);
  lua_settop(L, 0);
  lua_newtable(L);                                   /* 1: pool */
  gen(L, &g, 0, 1);                                  /* 2: the value */
  b1 = lt_encode(L, 2, 1, NULL);
  lua_settop(B, 0);
  lt_decode(B, b1);                                  /* B is not protected: a raise aborts */
  lt_buf_free(b1);
  b2 = lt_encode(B, 1, 1, NULL);
  lua_settop(B, 0);
  lt_decode(L, b2);                                  /* 3: the value, back */
  lt_buf_free(b2);
  if (luaL_loadstring(L, DEEPEQ) != LUA_OK) abort();
  lua_call(L, 0, 1);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 3);
  lua_call(L, 2, 1);
  if (!lua_toboolean(L, -1)) abort();                /* the shape did not survive */
  if (lua_type(L, 2) == LUA_TTABLE) range_roundtrip(L);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (A == NULL) {
    A = luaL_newstate(); luaL_openlibs(A);
    B = luaL_newstate(); luaL_openlibs(B);
  }
  if (size == 0) return 0;
  lua_settop(A, 0);
  if ((data[0] & 1) == 0) {
    lua_pushcfunction(A, decode_bytes);
    lua_pushlstring(A, (const char *)data + 1, size - 1);
    lua_pcall(A, 1, 0, 0);
  } else {
    lua_pushcfunction(A, roundtrip);
    lua_pushlightuserdata(A, (void *)(data + 1));
    lua_pushinteger(A, (lua_Integer)(size - 1));
    if (lua_pcall(A, 2, 0, 0) != LUA_OK) {
      /* only a depth limit may refuse a generated value */
      const char *msg = lua_tostring(A, -1);
      if (msg == NULL || strstr(msg, "nested too deeply") == NULL) abort();
    }
  }
  lua_settop(A, 0);
  lua_gc(A, LUA_GCCOLLECT, 0);
  return 0;
}
