/*
** marshal_private.h -- what the marshaler's files share.  Private to them:
**   marshal.c         the model (its header comment: the format), buffers, the encoder core
**   marshal_array.c   array parts: packed runs both ways, arrays in bulk and streams
**   marshal_decode.c  the decoder
** The public API is lthreading.h's MARSHAL section; everything here is internal.
**   - The opcodes (T_*), the buffer (struct lt_Buf) and the encoder and decoder states.
**   - The small helpers used per element or per value (buf_new, max_depth, the buffer
**     writes, push_step, the byte reads) are static inline here, so that each file inlines
**     them as when they were one file's statics.
**   - The functions one file calls in another are named lt_m_* and are hidden: not exported
**     from lthreading.so, called directly (no PLT), as the statics they were.
** The rules of the encoder and decoder functions are those of lt_encode / lt_decode: they
** raise Lua errors (lt_encode* run the encoder under lua_pcall and free the buffer then).
*/
#ifndef LT_MARSHAL_PRIVATE_H
#define LT_MARSHAL_PRIVATE_H

#include <stdlib.h>
#include <string.h>

#include "lthreading.h"

#if defined(__GNUC__)
#define LT_M_HIDDEN __attribute__((visibility("hidden")))
#else
#define LT_M_HIDDEN
#endif

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

static inline lt_Buf *buf_new(size_t cap) {
  lt_Buf *b = (lt_Buf *)malloc(offsetof(lt_Buf, data) + cap);
  if (b == NULL) return NULL;
  b->len = 0; b->cap = cap; b->nvals = 0; b->flags = 0;
  b->nobjs = 0; b->objcap = 0; b->objs = NULL; b->owner = NULL;
  return b;
}

#define BIG_ARRAY 64          /* arrays at least this long take the lua_rawgeti path */
#define MAX_REDUCE_ARGS 250   /* the arguments of one __reduce's function, at most */

static inline int max_depth(void) {
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

static inline int grow(Enc *e, size_t need) {
  lt_Buf *b = e->b, *nb;
  size_t cap = b->cap;
  if (LT_LIKELY(b->len + need <= cap)) return 1;
  while (cap < b->len + need) cap = cap < 64 ? 64 : cap * 2;
  nb = (lt_Buf *)realloc(b, offsetof(lt_Buf, data) + cap);
  if (nb == NULL) { e->oom = 1; return 0; }
  nb->cap = cap;
  e->b = nb;
  return 1;
}

static inline void oom(Enc *e) {
  e->oom = 1;
  luaL_error(e->L, "not enough memory");
}

static inline void put(Enc *e, const void *p, size_t n) {
  if (!grow(e, n)) oom(e);
  memcpy(e->b->data + e->b->len, p, n);
  e->b->len += n;
}

static inline void putbyte(Enc *e, int c) {
  if (LT_LIKELY(e->b->len < e->b->cap) || grow(e, 1)) e->b->data[e->b->len++] = (char)c;
  else oom(e);
}

static inline void putvar(Enc *e, lua_Unsigned v) {
  char tmp[12];
  int n = 0;
  do {
    unsigned char c = (unsigned char)(v & 0x7f);
    v >>= 7;
    tmp[n++] = (char)(v ? (c | 0x80) : c);
  } while (v);
  put(e, tmp, (size_t)n);
}

static inline void putstr(Enc *e, const char *s, size_t len) {
  putvar(e, len);
  put(e, s, len);
}

static inline void putu32_at(Enc *e, size_t at, uint32_t v) {
  memcpy(e->b->data + at, &v, 4);
}

static inline size_t reserve32(Enc *e) {
  uint32_t z = 0;
  size_t at = e->b->len;
  put(e, &z, 4);
  return at;
}

static inline void push_step(Enc *e, int kind, int idx, int n) {
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

LT_M_HIDDEN void lt_m_enc_slots(Enc *e);       /* an encode's stack slots (marshal.c) */
LT_M_HIDDEN void lt_m_encode(Enc *e, int idx);  /* any value (marshal.c) */
/* An array part, packed runs included (marshal_array.c). */
LT_M_HIDDEN void lt_m_encode_elems(Enc *e, int t, lua_Integer first, lua_Integer count,
                                   int meta, lua_Integer label);

/* ======================================================================== DECODING */

typedef struct Dec {
  lua_State *L;
  const lt_Buf *b;
  const char *p, *end;
  int refs, nextid, depth, maxdepth;
  int allow_unsafe;
} Dec;

static inline void corrupt(Dec *d) { luaL_error(d->L, "corrupt lthreading message"); }

static inline int getbyte(Dec *d) {
  if (d->p >= d->end) corrupt(d);
  return (unsigned char)*d->p++;
}

static inline lua_Unsigned getvar(Dec *d) {
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

static inline void getraw(Dec *d, void *out, size_t n) {
  if ((size_t)(d->end - d->p) < n) corrupt(d);
  memcpy(out, d->p, n);
  d->p += n;
}

static inline uint32_t getu32(Dec *d) { uint32_t v; getraw(d, &v, 4); return v; }

static inline const char *getstr(Dec *d, size_t *len) {
  const char *s;
  lua_Unsigned n = getvar(d);
  if (n > (lua_Unsigned)(d->end - d->p)) corrupt(d);
  s = d->p;
  d->p += n;
  *len = (size_t)n;
  return s;
}

LT_M_HIDDEN void lt_m_decode(Dec *d);           /* any value (marshal_decode.c) */
/* An array part, packed runs included (marshal_array.c). */
LT_M_HIDDEN void lt_m_decode_elems(Dec *d, int t, lua_Integer offset, uint32_t narr);

#endif
