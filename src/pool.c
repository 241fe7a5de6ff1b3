/*
** pool.c -- ThreadPoolExecutor: the executor core, its workers, submit, map, shutdown.
**
** THE POOL
**   A ThreadPoolExecutor object is a thin handle on a Core, the part the workers share.
**   The Core is reference counted by the handle and by each worker, so a pool dropped by
**   every Lua reference shuts down (its workers finish the queued work, then exit) and the
**   last worker frees the Core.  Every live Core is on a process-wide list; an lt_on_exit
**   hook shuts each one down and waits for its workers (Python's rule: work submitted
**   before exit still runs).
**
** WORKERS
**   Started lazily by submit() (when more tasks are queued than workers are idle, up to
**   max_workers) with lt_spawn.  Each makes one lua_State (lt_newstate, the pool creator's
**   package.path/cpath), registers as the Thread "ThreadPoolExecutor-N_M", and loops: take
**   a task, decode its function and arguments, call it under a traceback handler, encode
**   the results (or the error value) into the Future.  An error never ends a worker.  The
**   state lives as long as the worker, so globals a task sets are seen by later tasks on
**   the same worker (and only there).
**
** FUTURES
**   The Future object, its methods, its waiters and as_completed are in future.c; this
**   file moves a Future through its states with the calls in pool.h.
**
** LOCKING
**   core->mu: the task queue and worker counts; no future's lock is taken under it (see
**   future.c for fut->mu).  G.mu (the list of live cores) is taken alone.  Nothing that
**   can raise, and no lt_buf_free/lt_decref, under any of them.
*/
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pool.h"

/* ================================================================== POOL CORE */

/*
** FUNCTION CACHE
**   A Lua function whose only upvalue is _ENV (or that has none) is the same function in
**   every worker, whatever state it came from: its bytecode, with the worker's globals.
**   Such a function is encoded once per closure: the submitting state keeps, weakly keyed
**   by the closure, an FnRef {id, encoded function}; each worker keeps the functions it
**   decoded by id (dropping them all past LT_POOL_FNCACHE).  A task then carries the FnRef
**   and its arguments only, so a task of scalars costs no table or bytecode copy.
*/
#if !defined(LT_POOL_FNCACHE)
#define LT_POOL_FNCACHE 256    /* functions a worker keeps decoded */
#endif

typedef struct FnRef {
  atomic_int refs;
  lua_Integer id;
  lt_Buf *buf;
} FnRef;

static atomic_llong fn_ids = 0;

static void fnref_release(FnRef *r) {
  if (r && atomic_fetch_sub(&r->refs, 1) == 1) {
    lt_buf_free(r->buf);
    free(r);
  }
}

typedef struct Task {
  struct Task *next;
  FnRef *fn;                   /* a reference, or NULL: the function is call's first value */
  lt_Buf *call;                /* (the function, then) the arguments */
  Future *fut;                 /* a reference */
  lt_MapChunk *chunk;          /* a chunk of pool:map (pool_map.c), or NULL */
} Task;

typedef struct Core {
  atomic_int refs;
  lt_RawLock mu;
  Task *head, *tail;
  atomic_int ntasks;           /* queued (written under mu; read by spinning workers) */
  int max_workers;
  int nworkers;                /* started and not yet exited */
  int idle;                    /* workers waiting for a task (spinning or parked) */
  int parked;                  /* of them, parked on work_word */
  int spinning;                /* of them, spinning (at most one) */
  int waking;                  /* of the parked ones, woken and not yet back under mu */
  atomic_int shut;             /* no more submits; workers exit once the queue is empty */
  atomic_int work_word, exit_word;
  int exit_waiters;
  int id, next_worker;
  char *path, *cpath;          /* the creator's package.path / cpath */
  struct Core *next, *prev;    /* G.live */
  lt_Buf *init;                /* initializer, then initargs; NULL: none */
  char *prefix;                /* thread_name_prefix, or NULL */
  atomic_int broken;           /* an initializer failed (shut is set too) */
} Core;

typedef struct Pool { lt_Object obj; Core *core; } Pool;

static struct {
  pthread_mutex_t mu;
  Core live;                   /* list head */
  int counter;
} G = { PTHREAD_MUTEX_INITIALIZER, { .next = &G.live, .prev = &G.live }, 0 };

static _Thread_local Core *T_core;    /* the pool this OS thread works for, if any */

static void core_incref(Core *c) { atomic_fetch_add(&c->refs, 1); }

static void core_decref(Core *c) {
  if (atomic_fetch_sub(&c->refs, 1) != 1) return;
  pthread_mutex_lock(&G.mu);
  c->prev->next = c->next;
  c->next->prev = c->prev;
  pthread_mutex_unlock(&G.mu);
  free(c->path);
  free(c->cpath);
  lt_buf_free(c->init);
  free(c->prefix);
  free(c);
}

static void clock_(Core *c) { lt_rawlock_acquire(&c->mu, 1, LT_FOREVER); }
static void cunlock(Core *c) { lt_rawlock_release(&c->mu); }

static void task_free(Task *t) {
  fnref_release(t->fn);
  lt_buf_free(t->call);
  lt_map_chunk_free(t->chunk);
  lt_decref(&t->fut->obj);
  free(t);
}

/* With the core locked: mark it shut, take its queued tasks (when `take`), wake every worker
** and unlock.  Returns the tasks taken, for the caller to settle and free. */
static Task *core_close_queue(Core *c, int take) {
  Task *dropped = NULL;
  atomic_store(&c->shut, 1);
  if (take) {
    dropped = c->head;
    c->head = c->tail = NULL;
    atomic_store(&c->ntasks, 0);
  }
  atomic_fetch_add(&c->work_word, 1);
  cunlock(c);
  lt_unpark(&c->work_word, INT_MAX);
  return dropped;
}

/*
** Shut the core down: no more submits; with cancel, the queued tasks are cancelled (their
** done callbacks run in L); with wait, return once every worker exited (except the
** caller, if it is one of them), or LT_INTERRUPTED when that wait was interrupted (0
** otherwise).
*/
static int core_shutdown(lua_State *L, Core *c, int wait, int cancel) {
  Task *dropped;
  int r = 0;
  clock_(c);
  dropped = core_close_queue(c, cancel);
  while (dropped) {
    Task *next = dropped->next;
    lt_future_cancel(L, dropped->fut);
    task_free(dropped);
    dropped = next;
  }
  if (wait) {
    int self = T_core == c ? 1 : 0;
    lt_intr_arm();
    clock_(c);
    while (c->nworkers > self) {
      int seen = atomic_load(&c->exit_word);
      c->exit_waiters++;
      cunlock(c);
      r = lt_park(&c->exit_word, seen, LT_FOREVER);
      clock_(c);
      c->exit_waiters--;
      if (r == LT_INTERRUPTED) break;
    }
    cunlock(c);
    lt_intr_disarm();
  }
  return r == LT_INTERRUPTED ? r : 0;
}

/* Process exit: shut down every live pool and wait for its workers. */
static void pools_at_exit(void) {
  for (;;) {
    Core *c = NULL, *it;
    pthread_mutex_lock(&G.mu);
    for (it = G.live.next; it != &G.live; it = it->next) {
      int busy;
      clock_(it);
      busy = it->nworkers > (T_core == it ? 1 : 0) || !atomic_load(&it->shut);
      cunlock(it);
      if (busy) { c = it; core_incref(c); break; }
    }
    pthread_mutex_unlock(&G.mu);
    if (c == NULL) return;
    if (core_shutdown(NULL, c, 1, 0) == LT_INTERRUPTED) { core_decref(c); return; }  /* Ctrl-C */
    core_decref(c);
  }
}

/* ---------------------------------------------------------------------- workers */

static const char K_TB = 0;    /* registry[&K_TB]: traceback of the last task error */

static int msgh(lua_State *L) {
  luaL_traceback(L, L, NULL, 1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &K_TB);
  return 1;                    /* the error value, unchanged */
}

static const char K_FNS = 0;   /* worker: registry[&K_FNS] = {[id] = function} */
static _Thread_local int T_nfns;

/* Push the task's function in this worker: from the cache, or decoded into it. */
static void push_cached_fn(lua_State *L, FnRef *r) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &K_FNS) != LUA_TTABLE || T_nfns >= LT_POOL_FNCACHE) {
    lua_pop(L, 1);
    lua_createtable(L, 0, 16);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &K_FNS);
    T_nfns = 0;
  }
  if (lua_rawgeti(L, -1, r->id) == LUA_TNIL) {           /* L: fns nil */
    lua_pop(L, 1);
    lt_decode(L, r->buf);
    lua_pushvalue(L, -1);
    lua_rawseti(L, -3, r->id);
    T_nfns++;
  }
  lua_remove(L, -2);
}

/* lua_pcall'd with msgh: 1: Task*.  Decode and call; the results are returned. */
static int task_body(lua_State *L) {
  Task *t = (Task *)lua_touserdata(L, 1);
  int n;
  lua_settop(L, 1);
  if (t->fn) push_cached_fn(L, t->fn);
  n = lt_decode(L, t->call);
  if (t->chunk) return lt_map_chunk_run(L, t->chunk);  /* f at 2: its results stay in C */
  lua_call(L, t->fn ? n : n - 1, LUA_MULTRET);
  return lua_gettop(L) - 1;
}

typedef struct Enc { lt_Buf *b; lt_Object *owner; } Enc;

/* lua_pcall'd: encode values 2..top into e->b.  1: Enc* */
static int encode_p(lua_State *L) {
  static const char *const names[] = {
    "result[1]", "result[2]", "result[3]", "result[4]", "result[5]", "result[6]",
    "result[7]", "result[8]"
  };
  Enc *e = (Enc *)lua_touserdata(L, 1);
  int n = lua_gettop(L) - 1;
  e->b = lt_encode_owned(L, 2, n, n <= 8 ? names : NULL, e->owner);
  return 0;
}

/* Encode the n values on top (popping them); NULL and the error message on top if not. */
static lt_Buf *try_encode(lua_State *L, int n, lt_Object *owner) {
  Enc e;
  e.b = NULL;
  e.owner = owner;
  luaL_checkstack(L, 3, NULL);
  lua_pushcfunction(L, encode_p);
  lua_pushlightuserdata(L, &e);
  lua_rotate(L, -2 - n, 2);
  if (lua_pcall(L, n + 1, 0, 0) != LUA_OK) return NULL;
  return e.b;
}

static char *dup_top_string(lua_State *L) {
  size_t len;
  const char *s = lua_tolstring(L, -1, &len);
  char *d;
  if (s == NULL || (d = (char *)malloc(len + 1)) == NULL) return NULL;
  memcpy(d, s, len + 1);
  return d;
}

/* Run one task in L (empty stack on entry and exit) and finish its future. */
static void run_task(lua_State *L, Task *t) {
  Future *f = t->fut;
  lt_Buf *res = NULL;
  char *tb = NULL;
  int status;
  lua_pushcfunction(L, msgh);
  lua_pushcfunction(L, task_body);
  lua_pushlightuserdata(L, t);
  status = lua_pcall(L, 1, LUA_MULTRET, 1);
  lua_remove(L, 1);                                 /* L: results... | err */
  if (status == LUA_OK && t->chunk) {              /* encoded by the chunk's run */
    lua_settop(L, 0);
    lt_future_finish(L, f, 1, lt_map_chunk_results(t->chunk), NULL, NULL);
    return;
  }
  if (status == LUA_OK) {
    res = try_encode(L, lua_gettop(L), &f->obj);    /* L: (empty) | encoding error */
    if (res != NULL) {
      lt_future_finish(L, f, 1, res, NULL, NULL);
      return;
    }
  } else {
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &K_TB) == LUA_TSTRING) tb = dup_top_string(L);
    lua_pop(L, 1);
    lua_pushnil(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &K_TB);
  }
  lua_settop(L, 1);                                 /* L: err */
  lua_pushvalue(L, 1);
  res = try_encode(L, 1, &f->obj);
  if (res == NULL) {                                /* the error value can't cross: its string */
    lua_settop(L, 1);
    luaL_tolstring(L, 1, NULL);
    res = try_encode(L, 1, &f->obj);
  }
  lua_settop(L, 0);
  lt_future_finish(L, f, 0, res, tb, res ? NULL : "task failed (its error could not be reported)");
}

/* lua_pcall'd by idle_collect: drop the cached functions, then collect fully. */
static int collect_p(lua_State *L) {
  lua_pushnil(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &K_FNS);
  T_nfns = 0;
  lua_gc(L, LUA_GCCOLLECT, 0);
  return 0;
}

/*
** A worker about to sleep whose tasks took references since its last full collection
** (objects or C objects that came in args, items, upvalues, or were made here) collects
** its state, cached functions included: without it, what the tasks dropped would hold
** those objects (a Lock, a Queue, a C module's buffer) for as long as the pool idles, since
** an idle state allocates nothing and so never collects.  Python's worker drops its work
** item after each task; this is the same, a moment later, and only when there is no work.
*/
static void idle_collect(lua_State *L) {
  static _Thread_local unsigned seen = 0;
  int round;
  /* (a second round for what the finalizers of the first took and dropped; no more, so a
  ** finalizer that always makes another cannot keep the worker from sleeping) */
  for (round = 0; round < 2 && L != NULL && lt_T_refs_taken != seen; round++) {
    seen = lt_T_refs_taken;
    lua_pushcfunction(L, collect_p);
    if (lua_pcall(L, 0, 0, 0) != LUA_OK) lua_pop(L, 1);
  }
}

/* Take the next task, waiting (spin, then park) while there is none; NULL: exit.  L: the
** worker's state (or NULL), collected before parking (idle_collect). */
static Task *take_task(Core *c, lua_State *L) {
  int spun = 0;
  clock_(c);
  for (;;) {
    Task *t = c->head;
    if (t) {
      c->head = t->next;
      if (c->head == NULL) c->tail = NULL;
      atomic_fetch_sub(&c->ntasks, 1);
      cunlock(c);
      return t;
    }
    if (atomic_load(&c->shut)) { cunlock(c); return NULL; }
    c->idle++;
    if (!spun && c->spinning == 0) {        /* one idle worker spins, the others park */
      double until = lt_now() + LT_POOL_SPIN_NS;
      int i;
      spun = 1;
      c->spinning++;
      cunlock(c);
      for (i = 1; atomic_load(&c->ntasks) == 0 && !atomic_load(&c->shut); i++)
        if (!spin_step(i, until)) break;
      clock_(c);
      c->spinning--;
    } else {
      int seen = atomic_load(&c->work_word);
      spun = 1;
      c->parked++;
      cunlock(c);
      idle_collect(L);                      /* (work that comes meanwhile: no sleep) */
      lt_park(&c->work_word, seen, LT_FOREVER);
      clock_(c);
      c->parked--;
      if (c->waking > 0) c->waking--;
    }
    c->idle--;
  }
}

static void set_path(lua_State *L, const char *field, const char *value) {
  if (value == NULL) return;
  lua_getglobal(L, "package");
  if (lua_istable(L, -1)) {
    lua_pushstring(L, value);
    lua_setfield(L, -2, field);
  }
  lua_pop(L, 1);
}

static int setup_p(lua_State *L) {
  Core *c = (Core *)lua_touserdata(L, 1);
  set_path(L, "path", c->path);
  set_path(L, "cpath", c->cpath);
  return 0;
}

/* ------------------------------------------------------- initializer, broken pool */

/* The message handler of the initializer: its error as a string, with a traceback. */
static int init_msgh(lua_State *L) {
  luaL_traceback(L, L, luaL_tolstring(L, 1, NULL), 1);
  return 1;
}

/* lua_pcall'd: decode the initializer and its arguments (1: lt_Buf*) and call it. */
static int init_body(lua_State *L) {
  const lt_Buf *b = (const lt_Buf *)lua_touserdata(L, 1);
  int n;
  lua_settop(L, 0);
  n = lt_decode(L, b);
  lua_call(L, n - 1, 0);
  return 0;
}

/* Run the pool's initializer in this worker's state; 0 (reported on stderr, as Python's
** logger does) if it raised or there is no state to run it in. */
static int run_initializer(lua_State *L, Core *c) {
  if (L == NULL) {
    fprintf(stderr, "Exception in initializer:\ncannot create a Lua state (out of memory)\n");
    return 0;
  }
  lua_pushcfunction(L, init_msgh);
  lua_pushcfunction(L, init_body);
  lua_pushlightuserdata(L, c->init);
  if (lua_pcall(L, 1, 0, 1) == LUA_OK) { lua_settop(L, 0); return 1; }
  fprintf(stderr, "Exception in initializer:\n%s\n",
          lua_isstring(L, -1) ? lua_tostring(L, -1) : "(an error object that is not a string)");
  fflush(stderr);
  lua_settop(L, 0);
  return 0;
}

/* An initializer failed: the pool is broken, as Python's.  No more submits (they raise
** BrokenThreadPool); the queued tasks fail with BrokenThreadPool (their callbacks run in
** L, which may be NULL); idle workers exit. */
static void core_break(lua_State *L, Core *c) {
  Task *dropped;
  clock_(c);
  atomic_store(&c->broken, 1);
  dropped = core_close_queue(c, 1);
  while (dropped) {
    Task *next = dropped->next;
    if (lt_future_start(dropped->fut)) lt_future_fail_named(L, dropped->fut, "BrokenThreadPool");
    task_free(dropped);
    dropped = next;
  }
}

/* The worker's Thread name: thread_name_prefix_i, or ThreadPoolExecutor-N_i (Python's). */
static void worker_name(Core *c, int index, char *buf, size_t size) {
  if (c->prefix) snprintf(buf, size, "%s_%d", c->prefix, index);
  else snprintf(buf, size, "ThreadPoolExecutor-%d_%d", c->id, index);
}

static void *worker_main(void *arg) {
  Core *c = (Core *)arg;
  lua_State *L;
  Task *t;
  char name[256];
  int index;
  clock_(c);
  index = c->next_worker++;
  cunlock(c);
  T_core = c;
  worker_name(c, index, name, sizeof name);
  lt_adopt_current(name, 0);   /* non-daemon, as Python's workers; the pool joins them at exit */
  L = lt_newstate();
  if (L != NULL) {
    lua_pushcfunction(L, setup_p);
    lua_pushlightuserdata(L, c);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) lua_pop(L, 1);
  }
  if (c->init != NULL && !run_initializer(L, c)) core_break(L, c);
  while ((t = take_task(c, L)) != NULL) {
    if (lt_future_start(t->fut)) {
      if (L != NULL) run_task(L, t);
      else lt_future_finish(NULL, t->fut, 0, NULL, NULL,
                            "cannot create a Lua state (out of memory)");
    }
    task_free(t);
  }
  if (L != NULL) lt_close_state(L);
  lt_release_current();
  T_core = NULL;
  clock_(c);
  c->nworkers--;
  atomic_fetch_add(&c->exit_word, 1);
  if (c->exit_waiters > 0) lt_unpark(&c->exit_word, INT_MAX);
  cunlock(c);
  core_decref(c);
  return NULL;
}

/* ================================================================= POOL OBJECTS */

static void pool_destroy(lt_Object *o) {
  Pool *p = (Pool *)o;
  if (p->core) {
    core_shutdown(NULL, p->core, 0, 0); /* the workers finish the queue, then exit */
    core_decref(p->core);
  }
  free(p);
}

static void pool_metatable(lua_State *L);
static const lt_Class PoolClass = { "ThreadPoolExecutor", 0, pool_destroy, pool_metatable };

static Core *checkcore(lua_State *L) {
  return ((Pool *)lt_checkself(L, &PoolClass))->core;
}

static char *dup_field(lua_State *L, const char *field) {
  char *d = NULL;
  lua_getglobal(L, "package");
  if (lua_istable(L, -1) && lua_getfield(L, -1, field) == LUA_TSTRING) {
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    if ((d = (char *)malloc(len + 1)) != NULL) memcpy(d, s, len + 1);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return d;
}

static int default_workers(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (n > 1024 ? 1024 : (int)n) : 1;
}

/* The table form's other options, at 2 (initializer), 3 (initargs), 4 (prefix): checked. */
static void check_options(lua_State *L) {
  if (!lua_isnil(L, 2) && lua_type(L, 2) != LUA_TFUNCTION
      && luaL_getmetafield(L, 2, "__call") == LUA_TNIL)
    luaL_argerror(L, 1, "initializer must be a callable");
  if (!lua_isnil(L, 3) && !lua_istable(L, 3))
    luaL_argerror(L, 1, lua_pushfstring(L, "initargs: table expected, got %s",
                                        luaL_typename(L, 3)));
  if (!lua_isnil(L, 4) && lua_type(L, 4) != LUA_TSTRING)
    luaL_argerror(L, 1, lua_pushfstring(L, "thread_name_prefix: string expected, got %s",
                                        luaL_typename(L, 4)));
}

/* Fill c's initializer (2: the function, 3: initargs or nil) and prefix (4).  May raise;
** c belongs to the pool object already, whose destructor frees what was set. */
static void set_options(lua_State *L, Core *c) {
  static const char *const names[] = {
    "initializer", "initargs[1]", "initargs[2]", "initargs[3]", "initargs[4]",
    "initargs[5]", "initargs[6]", "initargs[7]"
  };
  if (!lua_isnil(L, 4)) {
    size_t len;
    const char *s = lua_tolstring(L, 4, &len);
    if ((c->prefix = (char *)malloc(len + 1)) == NULL) luaL_error(L, "not enough memory");
    memcpy(c->prefix, s, len + 1);
  }
  if (!lua_isnil(L, 2)) {
    int base = lua_gettop(L) + 1, n = 1;
    lua_Integer i, nargs = lua_istable(L, 3) ? luaL_len(L, 3) : 0;
    luaL_checkstack(L, (int)(nargs < 200 ? nargs : 200) + 2, "too many initargs");
    lua_pushvalue(L, 2);
    for (i = 1; i <= nargs; i++, n++) {
      if (n >= 200) luaL_error(L, "too many initargs");
      lua_geti(L, 3, i);
    }
    c->init = lt_encode(L, base, n, n <= 8 ? names : NULL);
    lua_settop(L, base - 1);
  }
}

/* ThreadPoolExecutor([max_workers]) or ThreadPoolExecutor{max_workers = n, initializer = f,
** initargs = {...}, thread_name_prefix = "name"} */
static int f_pool(lua_State *L) {
  lua_Integer max;
  Pool *p;
  Core *c;
  static const char *const known[] = {
    "max_workers", "initializer", "initargs", "thread_name_prefix", NULL
  };
  int opts = lua_istable(L, 1);
  if (opts) {
    lt_checkoptions(L, 1, known);
    lua_settop(L, 1);
    lua_getfield(L, 1, "initializer");                   /* 2 */
    lua_getfield(L, 1, "initargs");                      /* 3 */
    lua_getfield(L, 1, "thread_name_prefix");            /* 4 */
    check_options(L);
    lua_getfield(L, 1, "max_workers");
    lua_replace(L, 1);
  }
  max = lt_optintoption(L, 1, "max_workers", 0);
  if (lua_isnoneornil(L, 1)) max = default_workers();
  luaL_argcheck(L, max > 0, 1, "max_workers must be greater than 0");
  luaL_argcheck(L, max <= 100000, 1, "max_workers too large: above 100000");
  lua_settop(L, opts ? 4 : 0);
  p = (Pool *)lt_newobject(L, &PoolClass, sizeof(Pool));
  c = (Core *)calloc(1, sizeof(Core));
  if (c == NULL) return luaL_error(L, "not enough memory");
  atomic_init(&c->refs, 1);
  atomic_init(&c->mu.word, 0);
  atomic_init(&c->ntasks, 0);
  atomic_init(&c->shut, 0);
  atomic_init(&c->work_word, 0);
  atomic_init(&c->exit_word, 0);
  c->max_workers = (int)max;
  c->path = dup_field(L, "path");
  c->cpath = dup_field(L, "cpath");
  pthread_mutex_lock(&G.mu);
  c->id = G.counter++;
  c->next = G.live.next;
  c->prev = &G.live;
  G.live.next->prev = c;
  G.live.next = c;
  pthread_mutex_unlock(&G.mu);
  p->core = c;
  lt_on_exit(pools_at_exit);
  if (opts) set_options(L, c);
  return 1;
}

static const char K_FNCACHE = 0;   /* registry[&K_FNCACHE] = {[function] = FnBox} weak k */

static int fnbox_gc(lua_State *L) {
  FnRef **box = (FnRef **)lua_touserdata(L, 1);
  fnref_release(*box);
  *box = NULL;
  return 0;
}

/* Is the function at idx cacheable (a Lua function whose only upvalue is _ENV)? */
static int cacheable(lua_State *L, int idx) {
  int i;
  const char *name;
  if (lua_type(L, idx) != LUA_TFUNCTION || lua_iscfunction(L, idx)) return 0;
  for (i = 1; (name = lua_getupvalue(L, idx, i)) != NULL; i++) {
    lua_pop(L, 1);
    if (strcmp(name, "_ENV") != 0) return 0;
  }
  return 1;
}

/* The FnRef of the function at idx (this state's cache keeps it alive), or NULL. */
static FnRef *cached_fn(lua_State *L, int idx) {
  static const char *const names[] = { "fn" };
  FnRef **box, *r;
  idx = lua_absindex(L, idx);
  if (!cacheable(L, idx)) return NULL;
  luaL_checkstack(L, 6, NULL);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &K_FNCACHE) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &K_FNCACHE);
  }
  lua_pushvalue(L, idx);
  if (lua_rawget(L, -2) == LUA_TUSERDATA) {                /* L: cache box */
    r = *(FnRef **)lua_touserdata(L, -1);
    lua_pop(L, 2);
    return r;
  }
  lua_pop(L, 1);
  box = (FnRef **)lt_newuserdata(L, sizeof(FnRef *), 0);  /* L: cache box */
  *box = NULL;
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, fnbox_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  r = (FnRef *)malloc(sizeof *r);
  if (r == NULL) luaL_error(L, "not enough memory");
  r->buf = NULL;
  atomic_init(&r->refs, 1);
  r->id = (lua_Integer)atomic_fetch_add(&fn_ids, 1) + 1;
  *box = r;                                                /* owned by the box from here */
  r->buf = lt_encode(L, idx, 1, names);
  lua_pushvalue(L, idx);
  lua_pushvalue(L, -2);
  lua_rawset(L, -4);                                       /* cache[fn] = box */
  lua_pop(L, 2);
  return r;
}

/*
** Queue a task calling the values at idx .. idx+n-1 (function first) for a new Future,
** pushed.  Starts a worker when more tasks wait than workers are idle.  chunk: NULL, or the
** box of a pool:map chunk (n = 1: the function), moved into the task.
*/
static void submit(lua_State *L, Core *c, int idx, int n, lt_MapChunk **chunk) {
  static const char *const names[] = {
    "fn", "args[1]", "args[2]", "args[3]", "args[4]", "args[5]", "args[6]", "args[7]"
  };
  Future *f;
  Task *t;
  lt_Buf *call;
  FnRef *fn;
  int spawn = 0, wake = 0, rc;
  if (atomic_load(&c->broken)) lt_raise(L, "BrokenThreadPool");
  if (atomic_load(&c->shut)) luaL_error(L, "cannot schedule new futures after shutdown");
  fn = cached_fn(L, idx);                             /* a borrowed pointer, or NULL */
  f = lt_future_new(L);                               /* owned by its proxy, on top */
  if (fn) call = lt_encode(L, idx + 1, n - 1, n <= 8 ? names + 1 : NULL);
  else call = lt_encode(L, idx, n, n <= 8 ? names : NULL);
  if ((t = (Task *)malloc(sizeof *t)) == NULL) {
    lt_buf_free(call);
    luaL_error(L, "not enough memory");
  }
  t->next = NULL;
  t->chunk = chunk ? *chunk : NULL;                   /* the task owns it from here */
  if (chunk) *chunk = NULL;
  t->fn = fn;
  if (fn) atomic_fetch_add(&fn->refs, 1);
  t->call = call;
  t->fut = f;
  lt_incref(&f->obj);
  clock_(c);
  if (atomic_load(&c->shut)) {
    cunlock(c);
    task_free(t);
    if (atomic_load(&c->broken)) lt_raise(L, "BrokenThreadPool");
    luaL_error(L, "cannot schedule new futures after shutdown");
  }
  if (c->tail) c->tail->next = t;
  else c->head = t;
  c->tail = t;
  atomic_fetch_add(&c->ntasks, 1);
  if (atomic_load(&c->ntasks) > c->idle && c->nworkers < c->max_workers) {
    spawn = 1;
    c->nworkers++;
  }
  /* wake a parked worker only for tasks that no spinning or woken worker will take */
  if (atomic_load(&c->ntasks) > c->spinning + c->waking && c->parked > c->waking) {
    c->waking++;
    atomic_fetch_add(&c->work_word, 1);
    wake = 1;
  }
  cunlock(c);
  if (wake) lt_unpark(&c->work_word, 1);
  if (!spawn) return;
  core_incref(c);                                     /* the worker's */
  rc = lt_spawn(worker_main, c, 0, NULL);
  if (rc != 0) {
    int none;
    Task **pt;
    clock_(c);
    c->nworkers--;
    none = c->nworkers == 0;
    if (none) {                                       /* nobody will run it: take it back */
      for (pt = &c->head; *pt && *pt != t; pt = &(*pt)->next) {}
      if (*pt) {
        *pt = t->next;
        if (c->tail == t) {
          Task *it;
          c->tail = NULL;
          for (it = c->head; it; it = it->next) c->tail = it;
        }
        atomic_fetch_sub(&c->ntasks, 1);
      } else none = 0;
    }
    cunlock(c);
    core_decref(c);
    if (none) {
      lt_future_cancel(L, f);
      task_free(t);
      luaL_error(L, "can't start new thread (%s)", strerror(rc));
    }
  }
}

/* pool:submit(f, ...) -> Future */
static int p_submit(lua_State *L) {
  Core *c = checkcore(L);
  luaL_checkany(L, 2);
  submit(L, c, 2, lua_gettop(L) - 1, NULL);
  return 1;
}

/* pool:shutdown([wait = true], [cancel_futures = false]) */
static int p_shutdown(lua_State *L) {
  Core *c = checkcore(L);
  int wait = lua_isnoneornil(L, 2) ? 1 : lua_toboolean(L, 2);
  if (core_shutdown(L, c, wait, lua_toboolean(L, 3)) == LT_INTERRUPTED) lt_intr_raise(L);
  return 0;
}

static int p_close(lua_State *L) {
  if (core_shutdown(L, checkcore(L), 1, 0) == LT_INTERRUPTED) lt_intr_raise(L);
  return 0;
}

/* lua_pcall'd by p_map: 1: Core (light userdata), 2: f, 3: items, 4: futures (filled as
** submitted), 5: deadline, 6: the MapJob (light userdata).  Submits every chunk, then
** returns the results; raises the first failure in order. */
static int map_run(lua_State *L) {
  Core *c = (Core *)lua_touserdata(L, 1);
  double deadline = lua_tonumber(L, 5);
  lt_MapJob *job = (lt_MapJob *)lua_touserdata(L, 6);
  lua_Integer n, first, size, k = 0, m, done = 0;
  lua_settop(L, 4);
  n = luaL_len(L, 3);
  for (first = 1; first <= n; first += size) {
    size = lt_mapjob_size(job, n - first + 1);
    lt_MapChunk **box = lt_map_chunk_new(L, job, 3, first, size);   /* L: ... box */
    submit(L, c, 2, 1, box);                                        /* L: ... box fut */
    lua_rawseti(L, 4, ++k);
    lua_pop(L, 1);
  }
  lua_createtable(L, n > 0 && n < INT_MAX ? (int)n : 0, 0);   /* 5: results */
  for (m = 1; m <= k; m++) {
    Future *f;
    int w;
    lua_rawgeti(L, 4, m);
    f = (Future *)lt_toobject(L, -1, &lt_FutureClass);
    w = lt_future_wait(f, deadline);
    if (w == LT_INTERRUPTED && lt_intr_raise(L) == 0) {  /* Ctrl-C: p_map cancels the rest */
      lua_sethook(L, NULL, 0, 0);                         /* raise it here, once (as lstop) */
      return luaL_error(L, "interrupted!");
    }
    if (w != 1) return lt_raise(L, "TimeoutError");
    lua_pop(L, 1);
    if (atomic_load(&f->state) == F_CANCELLED || !f->ok)
      return lt_future_push_result(L, f);               /* raises */
    done += lt_decode_into(L, f->result, 5, done);
  }
  return 1;
}

/*
** pool:map(f, items, [timeout], [chunksize]) -> {f(items[1]), f(items[2]), ...}.  The
** items run in chunks (pool_map.c), each item as before: its result in its place, its
** error raised by map.  Whatever makes map raise (an item's error, the timeout, an item that
** cannot cross, a result that cannot be rebuilt here), every chunk not started yet is
** cancelled and the running ones stop before their next item, as Python's map cancels its
** futures not started: those items never run.
*/
static int p_map(lua_State *L) {
  Core *c = checkcore(L);
  double deadline;
  lua_Integer i, n, chunksize;
  lt_MapJob *job;
  luaL_checkany(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  deadline = lt_deadline(lt_opttimeout(L, 4));
  chunksize = lt_optintoption(L, 5, "chunksize", 0);
  luaL_argcheck(L, chunksize > 0 || lua_isnoneornil(L, 5), 5, "chunksize must be at least 1");
  lua_settop(L, 3);
  lua_newtable(L);                                      /* 4: futures */
  job = lt_mapjob_new(L, c->max_workers, chunksize);    /* 5: the job's box */
  lua_pushcfunction(L, map_run);
  lua_pushlightuserdata(L, c);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 3);
  lua_pushvalue(L, 4);
  lua_pushnumber(L, deadline);
  lua_pushlightuserdata(L, job);
  if (lua_pcall(L, 6, 1, 0) == LUA_OK) return 1;
  lt_mapjob_stop(job);                                  /* L: pool f items futures job err */
  n = (lua_Integer)lua_rawlen(L, 4);
  for (i = 1; i <= n; i++) {
    lt_Object *o;
    lua_rawgeti(L, 4, i);
    if ((o = lt_toobject(L, -1, &lt_FutureClass)) != NULL) lt_future_cancel(L, (Future *)o);
    lua_pop(L, 1);
  }
  return lua_error(L);
}

/* ============================================================================ OPEN */

static void pool_metatable(lua_State *L) {
  static const luaL_Reg meth[] = {
    {"submit", p_submit}, {"map", p_map}, {"shutdown", p_shutdown}, {NULL, NULL}
  };
  static const luaL_Reg metameth[] = { {"__close", p_close}, {NULL, NULL} };
  lt_classmetatable(L, &PoolClass, meth, metameth);
}

void lt_open_pool(lua_State *L) {
  lua_pushcfunction(L, f_pool);
  lua_setfield(L, -2, "ThreadPoolExecutor");
  lt_open_future(L);
}
