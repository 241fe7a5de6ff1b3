/*
** marshal_array.c -- the marshaler's array parts (the format: marshal.c's header comment).
**
**   - Packed runs: in the array part of a big array, two or more consecutive integers (or
**     floats, or strings) are one run: T_IRUN/T_FRUN/T_SRUN, a 4-byte count, then the raw
**     8-byte values (strings: length + bytes).  lt_m_encode_elems writes an array part so
**     (for marshal.c's tables and the arrays below); lt_m_decode_elems reads one back (for
**     marshal_decode.c's tables and lt_decode_into).
**   - Arrays in bulk, for pool:map (lthreading.h): lt_encode_range / lt_decode_into, the
**     mapped arrays of lt_encode_map (f run on each item as it is written), and the
**     reader lt_array_in / lt_array_next.
**     Each such buffer is one table value: T_TABLE, count, 0 hash entries, the elements,
**     no metatable.
** Errors and their messages are the encoder's and decoder's: see marshal_private.h.
*/
#include <stdlib.h>
#include <string.h>

#include "lthreading.h"
#include "marshal_private.h"

/* ======================================================================== ENCODING */

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

/* Write the number on top, an integer (isint) or a float, as a member of a run: 8 bytes. */
static LT_INLINE void put_number(Enc *e, int isint) {
  if (isint) {
    lua_Integer v = lua_tointegerx(e->L, -1, NULL);
    put(e, &v, 8);
  } else {
    lua_Number v = lua_tonumberx(e->L, -1, NULL);
    put(e, &v, 8);
  }
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
  put_number(e, k == K_INT);
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
  if (k == K_STR) {
    for (; i < count; i++, n++) {
      if ((meta ? lua_geti(L, t, first + i) : lua_rawgeti(L, t, first + i)) != LUA_TSTRING)
        break;
      put_run_elem(e, k);
      if (++pushed == RUN_POP) { lua_settop(L, base); pushed = 0; }
    }
  } else {                 /* numbers: the hot loop of a big array (8 bytes, no call) */
    int isint = k == K_INT;
    for (; i < count; i++, n++) {
      if ((meta ? lua_geti(L, t, first + i) : lua_rawgeti(L, t, first + i)) != LUA_TNUMBER
          || lua_isinteger(L, -1) != isint) break;
      put_number(e, isint);
      if (++pushed == RUN_POP) { lua_settop(L, base); pushed = 0; }
    }
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
void lt_m_encode_elems(Enc *e, int t, lua_Integer first, lua_Integer count, int meta,
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
      lt_m_encode(e, lua_gettop(L) - 1);
      e->depth--;
      lua_remove(L, -2);                     /* v[i+1] is the current element */
      kind = kind2;
      have = 1;
      i++;
      continue;
    }
    push_step(e, P_INDEX, 0, (int)(label + i > INT32_MAX ? INT32_MAX : label + i));
    lt_m_encode(e, lua_gettop(L));
    e->depth--;
    lua_pop(L, 1);
    i++;
  }
}

/* lua_pcall'd: upvalue 1 = Enc*, 2 = RangeArgs*; argument 1 = the table. */
typedef struct RangeArgs { lua_Integer first, count, label; } RangeArgs;

static int encode_range_p(lua_State *L) {
  Enc *e = (Enc *)lua_touserdata(L, lua_upvalueindex(1));
  RangeArgs *r = (RangeArgs *)lua_touserdata(L, lua_upvalueindex(2));
  int meta;
  e->path = e->small;
  e->pathcap = (int)(sizeof e->small / sizeof e->small[0]);
  lt_m_enc_slots(e);
  e->depth = 0;
  e->nextid = 2;                       /* 1: the array itself */
  e->b->flags |= BUF_COMPLEX;
  putbyte(e, T_TABLE);
  put(e, &(uint32_t){ (uint32_t)r->count }, 4);
  put(e, &(uint32_t){ 0 }, 4);
  meta = lua_getmetatable(L, 1);   /* lua_geti only when the table has one (__index) */
  if (meta) lua_pop(L, 1);
  lt_m_encode_elems(e, 1, r->first, r->count, meta, r->label);
  putbyte(e, T_NIL);
  return 0;
}

/* Start an encoder for one array of count elements (lt_encode_range, lt_encode_map): its
** buffer sized for them (up to 64 Ki elements ahead).  Raises on a size or memory error,
** owning nothing then. */
static void array_encoder(lua_State *L, Enc *e, lua_Integer count, const char *root) {
  if (count < 0 || count >= (lua_Integer)UINT32_MAX) luaL_error(L, "array too large to transfer");
  e->L = L;
  e->oom = 0;
  e->seen = e->loaded = e->pkg = 0;
  e->modmode = 0;
  e->maxdepth = max_depth();
  e->root = root;
  e->b = buf_new(count < 1024 ? 64 : 16 + (size_t)(count < 65536 ? count : 65536) * 9);
  if (e->b == NULL) luaL_error(L, "not enough memory");
  e->b->nvals = 1;
}

lt_Buf *lt_encode_range(lua_State *L, int idx, lua_Integer first, lua_Integer count,
                        const char *root, lua_Integer label) {
  Enc e;
  RangeArgs r;
  idx = lua_absindex(L, idx);
  array_encoder(L, &e, count, root);
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

struct lt_ArrayIn {
  const lt_Buf *b;
  const char *p, *end;
  uint32_t left, run;          /* elements not read yet; of them, left in the current run */
  int runtag, nextid;
};

typedef struct Stream {
  Enc *e;
  lt_ArrayIn *items;
  const atomic_int *stop;
  lua_Integer count, label;
} Stream;

/* Push the reader's next element, a member of its current run of numbers (8 bytes there,
** checked by the caller). */
static LT_INLINE void run_number(lua_State *L, lt_ArrayIn *r) {
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
  r->run--;
  r->left--;
}

/* Push the next item, a number from a packed run inline (the common case), else through
** lt_array_next. */
static void next_item(lua_State *L, lt_ArrayIn *r) {
  if (LT_LIKELY(r->run > 0 && r->runtag != T_SRUN && r->end - r->p >= 8)) run_number(L, r);
  else if (!lt_array_next(L, r, 2)) luaL_error(L, "corrupt lthreading message");
}

/* Call f (at 1) on the next item: its first result on top. */
static void produce(lua_State *L, Stream *st) {
  if (LT_UNLIKELY(atomic_load_explicit(st->stop, memory_order_relaxed)))
    lt_raise(L, "CancelledError");
  lua_pushvalue(L, 1);
  next_item(L, st->items);
  lua_call(L, 1, 1);
}

static void put_single(Enc *e, int idx, lua_Integer label) {
  push_step(e, P_INDEX, 0, (int)(label > INT32_MAX ? INT32_MAX : label));
  lt_m_encode(e, idx);
  e->depth--;
}

/* The kind of the value on top, asking for the common integer first. */
static int top_kind(lua_State *L) {
  if (lua_isinteger(L, -1)) return K_INT;
  return elem_kind(L, lua_type(L, -1));
}

/* lua_pcall'd: upvalue 1 = Stream*; 1 = f, 2 = the items' reader.
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
  lt_m_enc_slots(e);
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
    produce(L, st);                 /* pushes one value */
    if (rkind == K_INT && lua_isinteger(L, -1)) {      /* the hot case, inline */
      put_number(e, 1);
      run_n++;
      if (++pushed == RUN_POP) { lua_settop(L, base); pushed = 0; }
      continue;
    }
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

lt_Buf *lt_encode_map(lua_State *L, lua_Integer count, const char *root, lua_Integer label,
                      const atomic_int *stop) {
  Enc e;
  Stream st;
  array_encoder(L, &e, count, root);
  st.e = &e;
  st.items = (lt_ArrayIn *)lua_touserdata(L, -1);
  st.stop = stop;
  st.count = count;
  st.label = label;
  luaL_checkstack(L, 4, "too many values to transfer");
  lua_pushlightuserdata(L, &st);
  lua_pushcclosure(L, encode_stream_p, 1);
  lua_insert(L, -3);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    lt_buf_free(e.b);
    lua_error(L);
  }
  return e.b;
}

/* ======================================================================== DECODING */

/* ------------------------------------------------------------------ packed runs */

/* The narr elements of an array part (single values and packed runs) into t[offset + i]. */
void lt_m_decode_elems(Dec *d, int t, lua_Integer offset, uint32_t narr) {
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
        lt_m_decode(d);
    }
    lua_rawseti(L, t, offset + (lua_Integer)i++);
  }
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
  lt_m_decode_elems(&d, 3, offset, narr);
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
      r->run--;
      r->left--;
    } else {
      if (r->end - r->p < 8) luaL_error(L, "corrupt lthreading message");
      run_number(L, r);
    }
    return 1;
  }
  /* a single value: decoded with the reader's refs table (its user value, made on need) */
  idx = lua_absindex(L, idx);
  luaL_checkstack(L, 8, "too many values");
  d.L = L; d.b = r->b; d.p = r->p; d.end = r->end;
  d.nextid = r->nextid; d.depth = 1; d.allow_unsafe = 1; d.maxdepth = max_depth() + 1;
  lt_getuv(L, idx, 1);
  d.refs = lua_gettop(L);
  lt_m_decode(&d);
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

