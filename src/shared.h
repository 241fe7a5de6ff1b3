/*
** shared.h -- what shared.c (the Shared table) and shared_hash.c (its keyed hashes) share.
** Private to those two files.
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

#endif
