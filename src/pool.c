/*
** pool.c -- ThreadPoolExecutor, Future, threading.as_completed.
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
**   PENDING -> RUNNING -> FINISHED, or PENDING -> CANCELLED.  The result buffer is written
**   once, before the state becomes FINISHED, and freed with the Future, so result() decodes
**   it without any lock, as often as wanted.  Waiters spin briefly, then park on fut->word.
**   as_completed registers a Waiter with every future (a Link per future); finishing or
**   cancelling a future appends it to each linked Waiter's done list.
**
** LOCKING
**   core->mu: the task queue and worker counts.  fut->mu: the state, the result, the links.
**   Order: fut->mu -> waiter->mu (a finishing future notifies its waiters); nothing else
**   nests.  G.mu (the list of live cores) is taken alone.  Nothing that can raise, and no
**   lt_buf_free/lt_decref, under any of them.
*/
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lthreading.h"

#if !defined(LT_POOL_SPIN_NS)
#define LT_POOL_SPIN_NS 50e-6  /* seconds an idle worker or a result() waiter spins */
#endif
#if !defined(LT_POOL_SPIN_TIGHT)
#define LT_POOL_SPIN_TIGHT 64  /* polls before a spinner yields between polls */
#endif

/* One poll of a bounded spin: tight at first, then yielding, so that a thread we wait for
** that shares our core (a loaded machine) runs instead of being starved.  Returns 0 once
** `until` passed. */
static int spin_step(int i, double until) {
  if (i <= LT_POOL_SPIN_TIGHT) lt_cpu_relax();
  else sched_yield();
  return (i & 7) != 0 || lt_now() < until;
}

enum { F_PENDING, F_RUNNING, F_CANCELLED, F_FINISHED };

/* ======================================================================== FUTURES */

typedef struct Waiter Waiter;

typedef struct Link {          /* one future's membership in one as_completed Waiter */
  struct Link *next, *prev;
  Waiter *w;
  int linked;                  /* under the future's mu */
} Link;

typedef struct Future {
  lt_Object obj;
  lt_RawLock mu;
  atomic_int state;
  int ok;                      /* FINISHED: 1 values, 0 error */
  lt_Buf *result;              /* the values, or the error value */
  char *traceback;             /* of the error, or NULL */
  const char *cerr;            /* an error without a value (no Lua state to encode it) */
  atomic_int word, waiters;    /* result() waiters park on word */
  Link *links;
} Future;

static void future_destroy(lt_Object *o) {
  Future *f = (Future *)o;
  lt_buf_free(f->result);
  free(f->traceback);
  free(f);
}

static void future_metatable(lua_State *L);
static const lt_Class FutureClass = { "Future", 0, future_destroy, future_metatable };

static void flock_(Future *f) { lt_rawlock_acquire(&f->mu, 1, LT_FOREVER); }
static void funlock(Future *f) { lt_rawlock_release(&f->mu); }

static int is_done(int st) { return st == F_CANCELLED || st == F_FINISHED; }

/* ------------------------------------------------------------- as_completed waiters */

struct Waiter {
  lt_RawLock mu;
  atomic_int word;
  int parked;
  int ndone;
  Future **done;               /* capacity: the number of futures */
};

/* A future became done (its mu held): tell the waiter. */
static void waiter_add(Waiter *w, Future *f) {
  int wake;
  lt_rawlock_acquire(&w->mu, 1, LT_FOREVER);
  w->done[w->ndone++] = f;
  wake = w->parked;
  atomic_fetch_add(&w->word, 1);
  lt_rawlock_release(&w->mu);
  if (wake) lt_unpark(&w->word, 1);
}

/* Make f done (mu held) and notify its as_completed waiters; the caller then wakes. */
static void mark_done(Future *f, int state) {
  Link *l;
  atomic_store(&f->state, state);
  for (l = f->links; l; l = l->next) {
    l->linked = 0;
    waiter_add(l->w, f);
  }
  f->links = NULL;
  atomic_fetch_add(&f->word, 1);
}

static void wake_waiters(Future *f) {
  if (atomic_load(&f->waiters) > 0) lt_unpark(&f->word, INT_MAX);
}

/* PENDING -> RUNNING; 0 if it was cancelled. */
static int future_start(Future *f) {
  int ok;
  flock_(f);
  ok = atomic_load(&f->state) == F_PENDING;
  if (ok) atomic_store(&f->state, F_RUNNING);
  funlock(f);
  return ok;
}

static void future_finish(Future *f, int ok, lt_Buf *result, char *tb, const char *cerr) {
  flock_(f);
  f->ok = ok;
  f->result = result;
  f->traceback = tb;
  f->cerr = cerr;
  mark_done(f, F_FINISHED);
  funlock(f);
  wake_waiters(f);
}

/* PENDING -> CANCELLED: 1 if cancelled now or before. */
static int future_cancel(Future *f) {
  int st, r;
  flock_(f);
  st = atomic_load(&f->state);
  if (st == F_PENDING) mark_done(f, F_CANCELLED);
  r = st == F_PENDING || st == F_CANCELLED;
  funlock(f);
  if (st == F_PENDING) wake_waiters(f);
  return r;
}

/* Wait until f is done or the deadline passed; returns whether it is done. */
static int future_wait(Future *f, double deadline) {
  double until;
  int i;
  if (is_done(atomic_load(&f->state))) return 1;
  until = lt_now() + LT_POOL_SPIN_NS;
  if (deadline != LT_FOREVER && deadline < until) until = deadline;
  for (i = 1; !is_done(atomic_load(&f->state)); i++)
    if (!spin_step(i, until)) break;
  for (;;) {
    int seen;
    if (is_done(atomic_load(&f->state))) return 1;
    seen = atomic_load(&f->word);
    atomic_fetch_add(&f->waiters, 1);
    if (is_done(atomic_load(&f->state))) { atomic_fetch_sub(&f->waiters, 1); return 1; }
    i = lt_park(&f->word, seen, deadline);
    atomic_fetch_sub(&f->waiters, 1);
    if (i < 0) return is_done(atomic_load(&f->state));
  }
}

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

/*
** Shut the core down: no more submits; with cancel, the queued tasks are cancelled; with
** wait, return once every worker exited (except the caller, if it is one of them).
*/
static void core_shutdown(Core *c, int wait, int cancel) {
  Task *dropped = NULL;
  clock_(c);
  atomic_store(&c->shut, 1);
  if (cancel) {
    dropped = c->head;
    c->head = c->tail = NULL;
    atomic_store(&c->ntasks, 0);
  }
  atomic_fetch_add(&c->work_word, 1);
  cunlock(c);
  lt_unpark(&c->work_word, INT_MAX);
  while (dropped) {
    Task *next = dropped->next;
    future_cancel(dropped->fut);
    task_free(dropped);
    dropped = next;
  }
  if (wait) {
    int self = T_core == c ? 1 : 0;
    clock_(c);
    while (c->nworkers > self) {
      int seen = atomic_load(&c->exit_word);
      c->exit_waiters++;
      cunlock(c);
      lt_park(&c->exit_word, seen, LT_FOREVER);
      clock_(c);
      c->exit_waiters--;
    }
    cunlock(c);
  }
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
    core_shutdown(c, 1, 0);
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
    future_finish(f, 1, lt_map_chunk_results(t->chunk), NULL, NULL);
    return;
  }
  if (status == LUA_OK) {
    res = try_encode(L, lua_gettop(L), &f->obj);    /* L: (empty) | encoding error */
    if (res != NULL) {
      future_finish(f, 1, res, NULL, NULL);
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
  future_finish(f, 0, res, tb, res ? NULL : "task failed (its error could not be reported)");
}

/* Take the next task, waiting (spin, then park) while there is none; NULL: exit. */
static Task *take_task(Core *c) {
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

static void *worker_main(void *arg) {
  Core *c = (Core *)arg;
  lua_State *L;
  Task *t;
  char name[64];
  int index;
  clock_(c);
  index = c->next_worker++;
  cunlock(c);
  T_core = c;
  snprintf(name, sizeof name, "ThreadPoolExecutor-%d_%d", c->id, index);
  lt_adopt_current(name, 0);   /* non-daemon, as Python's workers; the pool joins them at exit */
  L = lt_newstate();
  if (L != NULL) {
    lua_pushcfunction(L, setup_p);
    lua_pushlightuserdata(L, c);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) lua_pop(L, 1);
  }
  while ((t = take_task(c)) != NULL) {
    if (future_start(t->fut)) {
      if (L != NULL) run_task(L, t);
      else future_finish(t->fut, 0, NULL, NULL, "cannot create a Lua state (out of memory)");
    }
    task_free(t);
  }
  if (L != NULL) lua_close(L);
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
    core_shutdown(p->core, 0, 0);       /* the workers finish the queue, then exit */
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

/* ThreadPoolExecutor([max_workers]) or ThreadPoolExecutor{max_workers = n} */
static int f_pool(lua_State *L) {
  lua_Integer max;
  Pool *p;
  Core *c;
  static const char *const known[] = { "max_workers", NULL };
  if (lua_istable(L, 1)) {
    lt_checkoptions(L, 1, known);
    lua_getfield(L, 1, "max_workers");
    lua_replace(L, 1);
  }
  max = lt_optintoption(L, 1, "max_workers", 0);
  if (lua_isnoneornil(L, 1)) max = default_workers();
  luaL_argcheck(L, max > 0, 1, "max_workers must be greater than 0");
  luaL_argcheck(L, max <= 100000, 1, "max_workers too large: above 100000");
  lua_settop(L, 0);
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
  return 1;
}

static Future *new_future(lua_State *L) {
  Future *f = (Future *)lt_newobject(L, &FutureClass, sizeof(Future));
  atomic_init(&f->mu.word, 0);
  atomic_init(&f->state, F_PENDING);
  atomic_init(&f->word, 0);
  atomic_init(&f->waiters, 0);
  return f;
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
  if (atomic_load(&c->shut)) luaL_error(L, "cannot schedule new futures after shutdown");
  fn = cached_fn(L, idx);                             /* a borrowed pointer, or NULL */
  f = new_future(L);                                  /* owned by its proxy, on top */
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
      future_cancel(f);
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
  core_shutdown(c, wait, lua_toboolean(L, 3));
  return 0;
}

static int p_close(lua_State *L) {
  core_shutdown(checkcore(L), 1, 0);
  return 0;
}

/* Push f's results (f FINISHED) or raise its error. */
static int push_result(lua_State *L, Future *f) {
  if (atomic_load(&f->state) == F_CANCELLED) return lt_raise(L, "CancelledError");
  if (!f->ok) {
    if (f->result == NULL) return luaL_error(L, "%s", f->cerr ? f->cerr : "task failed");
    lt_decode(L, f->result);
    return lua_error(L);
  }
  return lt_decode(L, f->result);
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
    lua_rawgeti(L, 4, m);
    f = (Future *)lt_toobject(L, -1, &FutureClass);
    if (!future_wait(f, deadline)) return lt_raise(L, "TimeoutError");
    lua_pop(L, 1);
    if (atomic_load(&f->state) == F_CANCELLED || !f->ok) return push_result(L, f);  /* raises */
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
    if ((o = lt_toobject(L, -1, &FutureClass)) != NULL) future_cancel((Future *)o);
    lua_pop(L, 1);
  }
  return lua_error(L);
}

/* ============================================================== FUTURE METHODS */

/* fut:result([timeout]) -> the task's values; raises its error, TimeoutError, or
** CancelledError. */
static int fu_result(lua_State *L) {
  Future *f = (Future *)lt_checkself(L, &FutureClass);
  double deadline = lt_deadline(lt_opttimeout(L, 2));
  lua_settop(L, 1);
  if (!future_wait(f, deadline)) return lt_raise(L, "TimeoutError");
  return push_result(L, f);
}

/* fut:exception([timeout]) -> the task's error value and traceback, or nil if it
** succeeded; raises TimeoutError or CancelledError. */
static int fu_exception(lua_State *L) {
  Future *f = (Future *)lt_checkself(L, &FutureClass);
  double deadline = lt_deadline(lt_opttimeout(L, 2));
  lua_settop(L, 1);
  if (!future_wait(f, deadline)) return lt_raise(L, "TimeoutError");
  if (atomic_load(&f->state) == F_CANCELLED) return lt_raise(L, "CancelledError");
  if (f->ok) { lua_pushnil(L); return 1; }
  if (f->result == NULL) lua_pushstring(L, f->cerr ? f->cerr : "task failed");
  else lt_decode(L, f->result);
  if (f->traceback) lua_pushstring(L, f->traceback);
  else lua_pushnil(L);
  return 2;
}

static int fu_done(lua_State *L) {
  Future *f = (Future *)lt_checkself(L, &FutureClass);
  lua_pushboolean(L, is_done(atomic_load(&f->state)));
  return 1;
}

static int fu_running(lua_State *L) {
  Future *f = (Future *)lt_checkself(L, &FutureClass);
  lua_pushboolean(L, atomic_load(&f->state) == F_RUNNING);
  return 1;
}

static int fu_cancelled(lua_State *L) {
  Future *f = (Future *)lt_checkself(L, &FutureClass);
  lua_pushboolean(L, atomic_load(&f->state) == F_CANCELLED);
  return 1;
}

static int fu_cancel(lua_State *L) {
  Future *f = (Future *)lt_checkself(L, &FutureClass);
  lua_pushboolean(L, future_cancel(f));
  return 1;
}

static int fu_tostring(lua_State *L) {
  static const char *const names[] = { "pending", "running", "cancelled", "finished" };
  Future *f = (Future *)lt_checkself(L, &FutureClass);
  int st = atomic_load(&f->state);
  lua_pushfstring(L, "<Future %s%s: %p>", names[st],
                  st == F_FINISHED ? (f->ok ? " returned" : " raised") : "", (void *)f);
  return 1;
}

/* ================================================================ as_completed */

typedef struct AC {
  Waiter w;
  int n, yielded;
  double deadline;
  int closed;
  Future **futs;               /* n references */
  Link *links;                 /* n */
} AC;

static void ac_close(AC *a) {
  int i;
  if (a->closed) return;
  a->closed = 1;
  for (i = 0; i < a->n; i++) {          /* unlink first: no future touches us after this */
    Future *f = a->futs[i];
    Link *l = &a->links[i];
    flock_(f);
    if (l->linked) {
      if (l->prev) l->prev->next = l->next;
      else f->links = l->next;
      if (l->next) l->next->prev = l->prev;
      l->linked = 0;
    }
    funlock(f);
  }
  for (i = 0; i < a->n; i++) lt_decref(&a->futs[i]->obj);
  free(a->futs);
  free(a->links);
  free(a->w.done);
  a->futs = NULL;
  a->links = NULL;
  a->w.done = NULL;
  a->n = 0;
}

static int ac_gc(lua_State *L) {
  ac_close((AC *)lua_touserdata(L, 1));
  return 0;
}

/* The iterator: the next future to finish; nil when all were given. */
static int ac_next(lua_State *L) {
  AC *a = (AC *)lua_touserdata(L, lua_upvalueindex(1));
  for (;;) {
    Future *f = NULL;
    int seen;
    if (a->closed || a->yielded >= a->n) { ac_close(a); lua_pushnil(L); return 1; }
    lt_rawlock_acquire(&a->w.mu, 1, LT_FOREVER);
    if (a->yielded < a->w.ndone) f = a->w.done[a->yielded++];
    seen = atomic_load(&a->w.word);
    if (f == NULL) a->w.parked = 1;
    lt_rawlock_release(&a->w.mu);
    if (f) { lt_pushobject(L, &f->obj); return 1; }
    if (lt_park(&a->w.word, seen, a->deadline) < 0) {
      int late;
      lt_rawlock_acquire(&a->w.mu, 1, LT_FOREVER);
      a->w.parked = 0;
      late = a->yielded < a->w.ndone;
      lt_rawlock_release(&a->w.mu);
      if (!late) { ac_close(a); return lt_raise(L, "TimeoutError"); }
    } else {
      lt_rawlock_acquire(&a->w.mu, 1, LT_FOREVER);
      a->w.parked = 0;
      lt_rawlock_release(&a->w.mu);
    }
  }
}

static const char K_ACMETA = 0;

/* threading.as_completed(futures, [timeout]) -> iterator over the futures (duplicates
** once) as they finish or are cancelled: those done already first.  Once the timeout
** (counted from this call) passes with futures left, the iterator raises TimeoutError. */
static int f_as_completed(lua_State *L) {
  AC *a;
  lua_Integer n, i;
  int k = 0;
  double deadline;
  luaL_checktype(L, 1, LUA_TTABLE);
  deadline = lt_deadline(lt_opttimeout(L, 2));
  lua_settop(L, 2);
  n = luaL_len(L, 1);
  lua_newtable(L);                                        /* 3: seen set */
  for (i = 1; i <= n; i++) {                              /* check and dedup first */
    lua_geti(L, 1, i);
    if (lt_toobject(L, -1, &FutureClass) == NULL)
      return luaL_error(L, "as_completed: futures[%I] is not a Future (got %s)", i,
                        luaL_typename(L, -1));
    lua_pushboolean(L, 1);
    lua_rawset(L, 3);
  }
  n = 0;
  lua_pushnil(L);
  while (lua_next(L, 3)) { lua_pop(L, 1); n++; }
  a = (AC *)lt_newuserdata(L, sizeof(AC), 0);             /* 4 */
  memset(a, 0, sizeof *a);
  a->closed = 1;                                          /* until filled */
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &K_ACMETA) == LUA_TNIL) {
    lua_pop(L, 1);
    lua_createtable(L, 0, 2);
    lua_pushcfunction(L, ac_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, ac_gc);
    lua_setfield(L, -2, "__close");
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &K_ACMETA);
  }
  lua_setmetatable(L, 4);
  a->deadline = deadline;
  atomic_init(&a->w.mu.word, 0);
  atomic_init(&a->w.word, 0);
  a->futs = (Future **)calloc((size_t)(n ? n : 1), sizeof(Future *));
  a->links = (Link *)calloc((size_t)(n ? n : 1), sizeof(Link));
  a->w.done = (Future **)calloc((size_t)(n ? n : 1), sizeof(Future *));
  if (!a->futs || !a->links || !a->w.done) {
    free(a->futs); free(a->links); free(a->w.done);
    a->futs = NULL; a->links = NULL; a->w.done = NULL;
    return luaL_error(L, "not enough memory");
  }
  a->closed = 0;
  lua_pushnil(L);
  while (lua_next(L, 3)) {                                /* no raise in this loop */
    Future *f = (Future *)lt_toobject(L, -2, &FutureClass);
    Link *l = &a->links[k];
    lua_pop(L, 1);
    lt_incref(&f->obj);
    a->futs[k++] = f;
    a->n = k;
    l->w = &a->w;
    flock_(f);
    if (is_done(atomic_load(&f->state))) {
      waiter_add(&a->w, f);
    } else {
      l->prev = NULL;
      l->next = f->links;
      if (f->links) f->links->prev = l;
      f->links = l;
      l->linked = 1;
    }
    funlock(f);
  }
  lua_pushvalue(L, 4);
  lua_pushcclosure(L, ac_next, 1);                        /* iterator, nil, nil, closer */
  lua_pushnil(L);
  lua_pushnil(L);
  lua_pushvalue(L, 4);
  return 4;
}

/* ============================================================================ OPEN */

static void pool_metatable(lua_State *L) {
  static const luaL_Reg meth[] = {
    {"submit", p_submit}, {"map", p_map}, {"shutdown", p_shutdown}, {NULL, NULL}
  };
  static const luaL_Reg metameth[] = { {"__close", p_close}, {NULL, NULL} };
  lt_classmetatable(L, &PoolClass, meth, metameth);
}

static void future_metatable(lua_State *L) {
  static const luaL_Reg meth[] = {
    {"result", fu_result}, {"exception", fu_exception}, {"done", fu_done},
    {"running", fu_running}, {"cancelled", fu_cancelled}, {"cancel", fu_cancel},
    {NULL, NULL}
  };
  static const luaL_Reg metameth[] = { {"__tostring", fu_tostring}, {NULL, NULL} };
  lt_classmetatable(L, &FutureClass, meth, metameth);
}

void lt_open_pool(lua_State *L) {
  lua_pushcfunction(L, f_pool);
  lua_setfield(L, -2, "ThreadPoolExecutor");
  lua_pushcfunction(L, f_as_completed);
  lua_setfield(L, -2, "as_completed");
}
