/*
** marshal_decode.c -- the marshaler's decoder: an lt_Buf's bytes back into Lua values, in
** any state, any number of times (the format: marshal.c's header comment).
**   lt_decode       a buffer made by lt_encode*, trusted: code, objects and modules allowed.
**   lt_decode_bytes raw bytes from an untrusted source: no code, no object references, no
**                   module loaded, no function called; anything else is "corrupt".
** Every malformed input raises "corrupt lthreading message" (never reads past the end);
** nesting is limited as when encoding (max_depth), and by the C stack (lt_stack_low).
** The array parts of tables (packed runs) are read by marshal_array.c's lt_m_decode_elems.
*/
#include <stdlib.h>
#include <string.h>

#include "lthreading.h"
#include "marshal_private.h"

/* ======================================================================== DECODING */

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

static void decode_table(Dec *d) {
  lua_State *L = d->L;
  uint32_t i, narr = getu32(d), nhash = getu32(d);
  if (narr > (uint32_t)(d->end - d->p) || nhash > (uint32_t)(d->end - d->p)) corrupt(d);
  /* a big array gets one spare slot, so that sending it on takes the fast path too */
  lua_createtable(L, (int)narr + (narr >= BIG_ARRAY), (int)nhash);
  register_ref(d);
  lt_m_decode_elems(d, lua_gettop(L), 0, narr);
  for (i = 0; i < nhash; i++) {
    lt_m_decode(d);
    lt_m_decode(d);
    if (lua_isnil(L, -2)) corrupt(d);
    lua_rawset(L, -3);   /* a NaN key raises: fine for a corrupt message */
  }
  lt_m_decode(d);                               /* metatable */
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
    for (i = 0; i < nups; i++) lt_m_decode(d);
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
      lt_m_decode(d);
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
    for (i = 0; i <= n; i++) lt_m_decode(d);
    lua_call(L, (int)n, 1);                   /* an error in f is the receiver's error */
    d->depth--;
  }
  need_refs(d);
  if (lua_isnil(L, -1)) lua_pushlightuserdata(L, (void *)&K_NILREF);
  else lua_pushvalue(L, -1);
  lua_rawseti(L, d->refs, myid);
}

void lt_m_decode(Dec *d) {
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
      lt_m_decode(&d);
    }
    return nvals;
  }
  lua_pushnil(L);           /* refs slot, made on first use */
  base = d.refs = lua_gettop(L);
  for (i = 0; i < nvals; i++) lt_m_decode(&d);
  lua_remove(L, base);
  return nvals;
}

int lt_decode(lua_State *L, const lt_Buf *b) {
  return decode_run(L, b, b->data, b->len, b->nvals, b->flags & BUF_COMPLEX, 1);
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
    lt_m_decode(&d);
    n++;
  }
  lua_remove(L, base + 1);
  return n;
}
