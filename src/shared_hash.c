/*
** shared_hash.c -- the keyed hashes of Shared's map (shared.c): the per-process seed,
** SipHash-1-3 for strings, and reading a key other than a string from a Lua stack.
*/
#include <fcntl.h>
#include <math.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "shared.h"

/*
** HASH SEED.  Keys may come from whoever feeds a program its data, so the hashes are keyed
** with a per-process random seed (as Lua seeds its string hash per state): without it, one
** could pick many keys that fall on the same slot and make every access linear.  Strings
** use SipHash-1-3 (Python's and Rust's string hash), a keyed function that has no
** seed-independent multicollisions; numbers and objects go through the splitmix64
** finalizer after an XOR with the seed (one instruction more than unseeded).  The seed is
** made once, by the first Shared() of the process; every thread that reaches a Shared got
** it after that (through whatever handed it over), so the plain reads below are ordered.
*/
lt_HashSeed lt_seed;
static pthread_once_t seed_once = PTHREAD_ONCE_INIT;

static void seed_init(void) {
  uint64_t r[5];
  size_t got = 0;
#if defined(SYS_getrandom)
  while (got < sizeof r) {          /* GRND_NONBLOCK: never wait for the entropy pool */
    long n = syscall(SYS_getrandom, (char *)r + got, sizeof r - got, 1 /* GRND_NONBLOCK */);
    if (n <= 0) break;
    got += (size_t)n;
  }
#endif
  if (got < sizeof r) {
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    got = 0;
    while (fd >= 0 && got < sizeof r) {
      ssize_t n = read(fd, (char *)r + got, sizeof r - got);
      if (n <= 0) break;
      got += (size_t)n;
    }
    if (fd >= 0) close(fd);
  }
  if (got < sizeof r) {             /* no randomness: clocks, addresses, pid */
    struct timespec a, b;
    uint64_t x;
    size_t i;
    clock_gettime(CLOCK_REALTIME, &a);
    clock_gettime(CLOCK_MONOTONIC, &b);
    x = (uint64_t)a.tv_sec * 1000000007ULL ^ (uint64_t)a.tv_nsec ^ ((uint64_t)b.tv_nsec << 32)
        ^ (uint64_t)(uintptr_t)&x ^ ((uint64_t)(uintptr_t)&lt_seed << 16) ^ (uint64_t)getpid();
    for (i = 0; i < 5; i++) r[i] = lt_mix64(x += 0x9e3779b97f4a7c15ULL);
  }
  lt_seed.k0 = r[0]; lt_seed.k1 = r[1]; lt_seed.num = r[2]; lt_seed.flt = r[3]; lt_seed.obj = r[4];
}

void lt_seed_init(void) { pthread_once(&seed_once, seed_init); }

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND do {                                                          \
    v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);                   \
    v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                                      \
    v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                                      \
    v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32); } while (0)

/* SipHash-1-3 under the process's seed (words read in native byte order: the value only
** has to agree within the process). */
uint64_t lt_hash_str(const char *s, size_t len) {
  uint64_t v0 = 0x736f6d6570736575ULL ^ lt_seed.k0, v1 = 0x646f72616e646f6dULL ^ lt_seed.k1;
  uint64_t v2 = 0x6c7967656e657261ULL ^ lt_seed.k0, v3 = 0x7465646279746573ULL ^ lt_seed.k1;
  uint64_t b = (uint64_t)len << 56, m;
  const unsigned char *p = (const unsigned char *)s, *end = p + (len & ~(size_t)7);
  for (; p != end; p += 8) {
    memcpy(&m, p, 8);
    v3 ^= m; SIPROUND; v0 ^= m;
  }
  switch (len & 7) {
    case 7: b |= (uint64_t)p[6] << 48; /* FALLTHROUGH */
    case 6: b |= (uint64_t)p[5] << 40; /* FALLTHROUGH */
    case 5: b |= (uint64_t)p[4] << 32; /* FALLTHROUGH */
    case 4: b |= (uint64_t)p[3] << 24; /* FALLTHROUGH */
    case 3: b |= (uint64_t)p[2] << 16; /* FALLTHROUGH */
    case 2: b |= (uint64_t)p[1] << 8;  /* FALLTHROUGH */
    case 1: b |= (uint64_t)p[0];       /* FALLTHROUGH */
    default: break;
  }
  v3 ^= b; SIPROUND; v0 ^= b;
  v2 ^= 0xff; SIPROUND; SIPROUND; SIPROUND;
  return v0 ^ v1 ^ v2 ^ v3;
}

/* ============================================================== OTHER KEYS */

/* The key at idx, of type t, not a string (shared.c's keyref does those): numbers (a float
** with an integral value is that integer, as in Lua), booleans, lthreading objects.  Raises
** on anything else. */
void lt_keyref_other(lua_State *L, int idx, KeyRef *k, int t) {
  switch (t) {
    case LUA_TNUMBER: {
      lua_Number n = lua_tonumber(L, idx);
      if (lua_isinteger(L, idx)) {
        k->tag = K_INT; k->i = lua_tointeger(L, idx);
      } else if (isnan(n)) {
        luaL_argerror(L, idx, "Shared index is NaN");
      } else if (n == floor(n) && n >= -9223372036854775808.0 && n < 9223372036854775808.0) {
        k->tag = K_INT; k->i = (lua_Integer)n;
      } else {
        uint64_t bits;
        k->tag = K_FLT; k->n = n;
        memcpy(&bits, &n, sizeof bits);
        k->hash = lt_mix64(bits ^ lt_seed.flt);
        return;
      }
      k->hash = lt_hash_int(k->i);
      return;
    }
    case LUA_TBOOLEAN:
      k->tag = lua_toboolean(L, idx) ? K_TRUE : K_FALSE;
      k->hash = lt_mix64((uint64_t)k->tag * 0x9e3779b97f4a7c15ULL);
      return;
    case LUA_TUSERDATA: {
      lt_Proxy *p = lt_toproxy(L, idx);
      if (p != NULL) {
        k->tag = K_OBJ; k->o = p->obj;
        k->hash = lt_mix64((uint64_t)(uintptr_t)p->obj ^ lt_seed.obj);
        return;
      }
    }
    /* FALLTHROUGH */
    default:
      if (lua_isnoneornil(L, idx)) luaL_argerror(L, idx, "Shared index is nil");
      luaL_argerror(L, idx, lua_pushfstring(L, "Shared keys are strings, numbers, booleans "
                                            "or lthreading objects (got %s)",
                                            luaL_typename(L, idx)));
  }
}
