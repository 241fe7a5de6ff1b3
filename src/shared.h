/*
** shared.h -- what shared.c (the Shared table) and shared_hash.c (its keyed hashes, and
** reading keys other than strings) share.  Private to those two files.
*/
#ifndef LT_SHARED_H
#define LT_SHARED_H

#include "lthreading.h"

/* The process's hash seed (shared_hash.c's HASH SEED): made once, by lt_seed_init(). */
typedef struct lt_HashSeed { uint64_t k0, k1, num, flt, obj; } lt_HashSeed;
extern lt_HashSeed lt_seed;
void lt_seed_init(void);                      /* pthread_once: any thread, any number of times */

/* SipHash-1-3 of s[0..len) under the seed. */
uint64_t lt_hash_str(const char *s, size_t len);

static inline uint64_t lt_mix64(uint64_t x) {  /* splitmix64's finalizer */
  x ^= x >> 30; x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27; x *= 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

static inline uint64_t lt_hash_int(lua_Integer i) {
  return lt_mix64((uint64_t)i ^ lt_seed.num);
}

/* ============================================================ KEYS, VALUES */

#define SSTR_MAX 14

typedef struct Blob Blob;      /* a long string or an encoded value (shared.c) */

enum { K_EMPTY, K_FALSE, K_TRUE, K_INT, K_FLT, K_SSTR, K_LSTR, K_OBJ };
enum { V_FALSE, V_TRUE, V_INT, V_FLT, V_SSTR, V_BLOB };

/* Keys and values share this 16-byte shape; a short string spans s[] and v.  A short
** string key's unused bytes are zero, so that two such keys compare as two words. */
typedef struct Cell {
  unsigned char tag, len;
  char s[6];
  union { lua_Integer i; lua_Number n; Blob *b; lt_Object *o; } v;
} Cell;
#define CSTR(c) ((char *)(c) + offsetof(Cell, s))

/* A key as found on a Lua stack, for lookups: nothing allocated.  A K_SSTR key also has
** its stored form in cell. */
typedef struct KeyRef {
  int tag;
  Cell cell;
  lua_Integer i;
  lua_Number n;
  const char *s;
  size_t len;
  lt_Object *o;
  uint64_t hash;
} KeyRef;

/* Fill *k from the key at idx, of Lua type t, which is not a string.  Raises on a key that
** cannot be one (nil, NaN, a table...). */
void lt_keyref_other(lua_State *L, int idx, KeyRef *k, int t);

#endif
