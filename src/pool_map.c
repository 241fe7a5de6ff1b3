/*
** pool_map.c -- pool:map in chunks.
**
** One task per item costs a future, a queue entry, a wake-up and two small marshals each,
** about a microsecond: more than many functions worth mapping.  So map groups its items:
** a chunk is one pool task that runs f over a slice of the items.  The slice crosses as one
** array (lt_encode_range: a packed block for numbers and strings), the results come back as
** one array, decoded straight into map's result table (lt_decode_into).
**
** PER ITEM, AS BEFORE
**   Results keep their order (nils included).  f gets one item, and its first result is
**   kept.  A chunk stops at its first failing item; map raises the error of the first
**   failing item in order: f's error, or a result that cannot cross (each result is
**   encoded before the next item runs).  In the worker, the items are read one by one from
**   their buffer and the results written one by one (lt_encode_map): no
**   table of either is built there.  When map raises, the chunks
**   not started are cancelled and the running ones stop before their next item (the job's
**   stop flag), so no item that had not started when map raised runs.
**
** SIZING (pool.c asks lt_mapjob_size for each chunk while it encodes them all, in order,
** before waiting for any: an item that cannot cross fails map before anything waits)
**   - an explicit chunksize: every chunk has it (the last one what is left);
**   - else the first chunk is one item, and the sizes double until a chunk that ran at
**     least LT_MAP_MEASURE_NS has finished (a shorter one's time is mostly fixed costs);
**     then a chunk gets about LT_MAP_CHUNK_NS of work at the measured cost per item (the
**     workers' time over the items they ran, marshaling included), at least LT_MAP_MIN_NS;
**   - never more than a 1 / (4 x workers) share of the items left, so that there are at
**     least 4 chunks per worker and the last ones are small (the workers finish together).
*/
#include <stdlib.h>
#include <string.h>

#include "lthreading.h"

#if !defined(LT_MAP_CHUNK_NS)
#define LT_MAP_CHUNK_NS 2e6    /* work per chunk, ns, once the cost per item is known */
#endif
#if !defined(LT_MAP_MIN_NS)
#define LT_MAP_MIN_NS 2e5      /* ... and at least this much (the tail's small chunks) */
#endif
#if !defined(LT_MAP_MEASURE_NS)
#define LT_MAP_MEASURE_NS 1e5  /* a chunk's time tells the cost per item once this long */
#endif

struct lt_MapJob {
  atomic_int refs;             /* the caller's box and each chunk */
  atomic_int stop;             /* map raised: chunks stop before their next item */
  atomic_llong ns, items;      /* finished chunks: their time in the workers, their items */
  int nworkers;                /* the caller's alone from here */
  lua_Integer chunksize;       /* fixed, or 0 */
  lua_Integer ramp;            /* the next size while nothing was measured */
};

struct lt_MapChunk {
  lt_MapJob *job;              /* a reference */
  lt_Buf *items, *results;
  lua_Integer first, count;
};

static void job_release(lt_MapJob *j) {
  if (j != NULL && atomic_fetch_sub(&j->refs, 1) == 1) free(j);
}

static int jobbox_gc(lua_State *L) {
  lt_MapJob **box = (lt_MapJob **)lua_touserdata(L, 1);
  job_release(*box);
  *box = NULL;
  return 0;
}

static const char K_JOBMETA = 0, K_CHUNKMETA = 0;

/* Push a userdata holding one pointer, freed by gc when the pointer is still there. */
static void **push_box(lua_State *L, const char *key, lua_CFunction gc) {
  void **box = (void **)lt_newuserdata(L, sizeof(void *), 0);
  *box = NULL;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, key) == LUA_TNIL) {
    lua_pop(L, 1);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, gc);
    lua_setfield(L, -2, "__gc");
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, key);
  }
  lua_setmetatable(L, -2);
  return box;
}

lt_MapJob *lt_mapjob_new(lua_State *L, int nworkers, lua_Integer chunksize) {
  lt_MapJob **box = (lt_MapJob **)push_box(L, &K_JOBMETA, jobbox_gc);
  lt_MapJob *j = (lt_MapJob *)calloc(1, sizeof *j);
  if (j == NULL) luaL_error(L, "not enough memory");
  atomic_init(&j->refs, 1);
  atomic_init(&j->stop, 0);
  atomic_init(&j->ns, 0);
  atomic_init(&j->items, 0);
  j->nworkers = nworkers > 0 ? nworkers : 1;
  j->chunksize = chunksize;
  j->ramp = 1;
  *box = j;
  return j;
}

void lt_mapjob_stop(lt_MapJob *j) {
  atomic_store(&j->stop, 1);
}

lua_Integer lt_mapjob_size(lt_MapJob *j, lua_Integer remaining) {
  lua_Integer size, share;
  long long items, ns;
  if (remaining <= 1) return remaining;
  if (j->chunksize > 0) return j->chunksize < remaining ? j->chunksize : remaining;
  share = (lua_Integer)j->nworkers * 4;
  share = remaining / share + (remaining % share != 0);
  items = atomic_load(&j->items);
  ns = atomic_load(&j->ns);
  if (items > 0) {
    double per = (double)(ns > 0 ? ns : 1) / (double)items, want = LT_MAP_CHUNK_NS / per,
           least = LT_MAP_MIN_NS / per;
    if (want > (double)share) want = (double)share;
    if (want < least) want = least;
    size = want >= (double)remaining ? remaining : (lua_Integer)want;
  } else {
    size = j->ramp < share ? j->ramp : share;
    if (j->ramp < ((lua_Integer)1 << 40)) j->ramp *= 2;
  }
  if (size < 1) size = 1;
  return size < remaining ? size : remaining;
}

void lt_map_chunk_free(lt_MapChunk *c) {
  if (c == NULL) return;
  lt_buf_free(c->items);
  lt_buf_free(c->results);
  job_release(c->job);
  free(c);
}

static int chunkbox_gc(lua_State *L) {
  lt_MapChunk **box = (lt_MapChunk **)lua_touserdata(L, 1);
  lt_map_chunk_free(*box);
  *box = NULL;
  return 0;
}

lt_MapChunk **lt_map_chunk_new(lua_State *L, lt_MapJob *j, int idx, lua_Integer first,
                               lua_Integer count) {
  lt_MapChunk **box, *c;
  idx = lua_absindex(L, idx);
  box = (lt_MapChunk **)push_box(L, &K_CHUNKMETA, chunkbox_gc);
  c = (lt_MapChunk *)calloc(1, sizeof *c);
  if (c == NULL) luaL_error(L, "not enough memory");
  c->first = first;
  c->count = count;
  c->job = j;
  atomic_fetch_add(&j->refs, 1);
  *box = c;                                  /* owned by the box from here */
  c->items = lt_encode_range(L, idx, first, count, "items", first);
  return box;
}

lt_Buf *lt_map_chunk_results(lt_MapChunk *c) {
  lt_Buf *b = c->results;
  c->results = NULL;
  return b;
}

int lt_map_chunk_run(lua_State *L, lt_MapChunk *c) {
  double t0 = lt_now();
  lt_Buf *b;
  lua_settop(L, 2);                                     /* 2: f */
  lt_array_in(L, c->items);                             /* 3: the items' reader */
  b = lt_encode_map(L, c->count, "results", c->first, &c->job->stop);
  lt_buf_free(c->results);
  c->results = b;
  t0 = lt_now() - t0;
  if (t0 >= LT_MAP_MEASURE_NS * 1e-9) {   /* long enough that its fixed costs do not count */
    atomic_fetch_add(&c->job->ns, (long long)(t0 * 1e9));
    atomic_fetch_add(&c->job->items, (long long)c->count);
  }
  return 0;
}
