/*
** worker.c -- the OS threads under lthreading's Threads and pool workers.
**
** lt_spawn(fn, arg, nondaemon) runs fn(arg) on an OS thread that has asynchronous signals
** blocked and the configured stack size.  When fn returns, that OS thread does not exit
** at once: it waits, idle, up to IDLE_SECONDS for the next lt_spawn (at most IDLE_MAX
** threads wait), which then costs one wake-up instead of creating and ending an OS thread.
** A worker whose last job made a Lua state (lt_newstate) prepares the next one while it
** waits (lt_spare_state), so a new Thread's state is built while its starter is still
** busy.  Python allows the reuse: idents and native ids may be recycled once a thread has
** ended; every per-thread value of lthreading (T_current, the marshal depth limit) is set
** again for each job.
**
** An OS thread that does exit (idle too long, too many idle, or the process is ending)
** puts itself on the zombie list: the next lt_spawn joins those already gone, process exit
** joins them all.  Non-daemon jobs are counted: lt_exit_workers waits for them, then stops
** the idle workers and joins them, so that nothing is left running or allocated.
**
** LOCKING
**   W.mu protects the idle and zombie lists, the counters and `closing`; it is a leaf (no
**   other lock is taken under it).  A worker's `go` word is its mailbox: lt_spawn takes it
**   off the idle list under W.mu, reads its tid, writes fn/arg/counted, then swaps go to
**   RUN and, if the old word had PARKED (the worker sleeps on it), wakes it.  After the
**   swap the spawner reads nothing of the worker: it may already have run the job, ended
**   and been freed (the futex wake is a system call on the address, harmless then: every
**   waiter of lthreading re-checks its condition).  lt_exit_workers swaps go to QUIT.
*/
#include <errno.h>
#include <signal.h>
#include <stdlib.h>

#include "lthreading.h"

#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#define IDLE_MAX      8          /* idle OS threads kept for reuse (LTHREADING_IDLE_THREADS) */
#define IDLE_SECONDS  2.0        /* how long one waits for a job before it exits */

enum { IDLE, RUN, QUIT, PARKED = 4 };

typedef struct Worker {
  atomic_int go;                 /* IDLE, RUN (fn/arg hold a job), QUIT; | PARKED */
  void *(*fn)(void *);
  void *arg;
  int counted;                   /* the job is non-daemon: counted in W.nondaemon */
  int listed;                    /* on W.idle (W.mu) */
  int wants_spare;               /* a job took a state from lt_newstate: keep one ready */
  size_t stack;                  /* its stack size, 0: the system's default */
  lua_Integer native;            /* its gettid() */
  lua_State *spare;              /* a fresh state for the next job, or NULL */
  pthread_t tid;                 /* written by the worker itself, read after W.mu */
  struct Worker *next;           /* W.idle or W.zombies */
} Worker;

static struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;             /* broadcast when a non-daemon job ends */
  Worker *idle, *zombies;
  int nidle, nondaemon, closing;
} W = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL, 0, 0, 0 };

static _Thread_local Worker *T_worker;

/* The most idle OS threads to keep: IDLE_MAX, or $LTHREADING_IDLE_THREADS (0 turns reuse
** off: every job gets a new OS thread), read once. */
static int idle_max = IDLE_MAX;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

/* In the child of a fork() only the forking thread exists: forget the others, so that a
** spawn there makes a new thread.  fork() holds W.mu, so the lists are whole in the child;
** their records are freed, with the spare states idle ones made (and a zombie's not yet
** being closed: worker_main clears `spare` before closing it).  Threads that were running a
** job keep what they held: no list has it. */
static void before_fork(void) { pthread_mutex_lock(&W.mu); }
static void after_fork_parent(void) { pthread_mutex_unlock(&W.mu); }
static void after_fork_child(void) {
  Worker *lists[2] = { W.idle, W.zombies }, *w, *next;
  int i;
  pthread_mutex_init(&W.mu, NULL);
  pthread_cond_init(&W.cv, NULL);
  for (i = 0; i < 2; i++)
    for (w = lists[i]; w != NULL; w = next) {
      next = w->next;
      if (w->spare) lua_close(w->spare);
      free(w);
    }
  W.idle = W.zombies = NULL;
  W.nidle = 0;
  W.nondaemon = T_worker != NULL && T_worker->counted ? 1 : 0;
}

static void worker_init(void) {
  const char *v = getenv("LTHREADING_IDLE_THREADS");
  pthread_atfork(before_fork, after_fork_parent, after_fork_child);
  if (v != NULL && *v != '\0') {
    char *end;
    long n = strtol(v, &end, 10);
    if (*end == '\0' && n >= 0 && n <= 1024) idle_max = (int)n;
  }
}

static lua_Integer sys_native_id(void) {
#if defined(__linux__)
  return (lua_Integer)syscall(SYS_gettid);
#else
  return (lua_Integer)(uintptr_t)pthread_self();
#endif
}

lua_Integer lt_native_id(void) {
  return T_worker ? T_worker->native : sys_native_id();
}

/* The C stack of the calling OS thread: [lo, hi), and mid, below which lt_stack_low says
** so; all 0 while not known (known = 1 once looked up, even if that failed). */
static _Thread_local struct { uintptr_t lo, mid, hi; int known; } T_stack;

static void stack_lookup(void) {
  pthread_attr_t a;
  void *addr;
  size_t size;
  T_stack.known = 1;
#if defined(__GLIBC__)
  if (pthread_getattr_np(pthread_self(), &a) != 0) return;
  if (pthread_attr_getstack(&a, &addr, &size) == 0 && size >= 2 * LT_MIN_STACK) {
    T_stack.lo = (uintptr_t)addr;
    T_stack.hi = (uintptr_t)addr + size;
    T_stack.mid = T_stack.lo + size / 2;
  }
  pthread_attr_destroy(&a);
#else
  (void)a; (void)addr; (void)size;
#endif
}

int lt_stack_low(void) {
#if defined(__GNUC__)
  uintptr_t sp = (uintptr_t)__builtin_frame_address(0);   /* (ASan: the real stack) */
#else
  char here;
  uintptr_t sp = (uintptr_t)&here;
#endif
  if (LT_UNLIKELY(!T_stack.known)) stack_lookup();
  /* (a stack pointer outside the known stack: a host's own fiber or alternate stack) */
  return sp >= T_stack.lo && sp < T_stack.mid;
}

lua_State *lt_spare_state(void) {
  Worker *w = T_worker;
  lua_State *L;
  if (w == NULL) return NULL;
  w->wants_spare = 1;
  L = w->spare;
  w->spare = NULL;
  return L;
}

/* Join the workers that exited.  Unless `block`, only those already gone (a spawn must not
** wait for a thread that is still unwinding); process exit joins them all. */
static void reap_zombies(int block) {
  Worker *z, *keep = NULL;
  pthread_mutex_lock(&W.mu);
  z = W.zombies;
  W.zombies = NULL;
  pthread_mutex_unlock(&W.mu);
  while (z) {
    Worker *next = z->next;
#if defined(__GLIBC__)
    int done = (block ? pthread_join(z->tid, NULL) : pthread_tryjoin_np(z->tid, NULL)) == 0;
#else
    int done = pthread_join(z->tid, NULL) == 0;
#endif
    if (done) free(z);
    else { z->next = keep; keep = z; }
    z = next;
  }
  if (keep) {
    Worker *last = keep;
    while (last->next) last = last->next;
    pthread_mutex_lock(&W.mu);
    last->next = W.zombies;
    W.zombies = keep;
    pthread_mutex_unlock(&W.mu);
  }
}

static void zombie_add(Worker *w) {     /* W.mu held: it is exiting; a reaper joins it */
  w->next = W.zombies;
  W.zombies = w;
}

/* Wait for the next job; 0 when the worker is to exit (idle too long: it left the list
** for the zombie list; or told to QUIT). */
static int wait_job(Worker *w) {
  double deadline = lt_now() + IDLE_SECONDS;
  int go, gone = 0;
  while (((go = atomic_load(&w->go)) & ~PARKED) == IDLE) {
    if (go != (IDLE | PARKED) && !atomic_compare_exchange_strong(&w->go, &go, IDLE | PARKED))
      continue;                         /* a job came meanwhile */
    if (lt_park(&w->go, IDLE | PARKED, deadline) == 0) continue;
    /* timed out */
    pthread_mutex_lock(&W.mu);
    if (w->listed) {                    /* nobody took it: leave the list and exit */
      Worker **pp = &W.idle;
      while (*pp != w) pp = &(*pp)->next;
      *pp = w->next;
      w->listed = 0;
      W.nidle--;
      zombie_add(w);
      gone = 1;
    }
    pthread_mutex_unlock(&W.mu);
    if (gone) return 0;
    deadline = LT_FOREVER;              /* taken just now: its job (or QUIT) is coming */
  }
  return (go & ~PARKED) == RUN;
}

static void async_signals(sigset_t *set) {  /* what the workers block: they go to the main thread */
  sigfillset(set);
  sigdelset(set, SIGSEGV); sigdelset(set, SIGBUS); sigdelset(set, SIGFPE);
  sigdelset(set, SIGILL); sigdelset(set, SIGTRAP); sigdelset(set, SIGABRT);
}

static void *worker_main(void *p) {
  Worker *w = (Worker *)p;
  lua_State *L;
  int zombie = 0;
  sigset_t all;
  /* Again here: a pthread_create interposed at run time (GCC 14's ASan runtime preloaded) gives
  ** the thread its creator's mask, dropping the attribute's. */
  async_signals(&all);
  pthread_sigmask(SIG_SETMASK, &all, NULL);
  T_worker = w;
  w->tid = pthread_self();
  w->native = sys_native_id();
  /* 2 KiB of stack per level: at the floor (1 MiB) 512 levels, which fit in the half of the
  ** stack the marshaler may use (lt_stack_low) even with ASan's bigger frames */
  if (w->stack > 0 && w->stack < (size_t)LT_MAX_DEPTH * 2048)
    lt_depth_limit = (int)(w->stack / 2048);
  do {
    w->fn(w->arg);
    pthread_mutex_lock(&W.mu);
    if (w->counted) {
      W.nondaemon--;
      pthread_cond_broadcast(&W.cv);
    }
    if (W.closing || W.nidle >= idle_max) {
      zombie_add(w);
      zombie = 1;
    } else {
      atomic_store(&w->go, IDLE);
      w->listed = 1;
      w->next = W.idle;
      W.idle = w;
      W.nidle++;
    }
    pthread_mutex_unlock(&W.mu);
    if (zombie) break;
    if (w->wants_spare && w->spare == NULL) w->spare = lt_freshstate();
  } while (wait_job(w));
  if ((L = w->spare) != NULL) {
    w->spare = NULL;                    /* (a fork() child closes what is left here) */
    lua_close(L);
  }
  return NULL;
}

#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
#define HAVE_ATTR_SIGMASK 1        /* the new thread's mask set by pthread_create itself */
#endif

static int create_worker(Worker *w, pthread_t *tid) {
  pthread_attr_t attr;
  sigset_t all;
  int rc;
  pthread_attr_init(&attr);
  if (w->stack > 0 && (rc = pthread_attr_setstacksize(&attr, w->stack)) != 0) {
    pthread_attr_destroy(&attr);
    return rc;
  }
  async_signals(&all);             /* asynchronous signals go to the main thread */
#if defined(HAVE_ATTR_SIGMASK)
  if (pthread_attr_setsigmask_np(&attr, &all) == 0)
    rc = pthread_create(tid, &attr, worker_main, w);
  else
#endif
  {
    sigset_t old;
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(tid, &attr, worker_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
  }
  pthread_attr_destroy(&attr);
  return rc;
}

int lt_spawn(void *(*fn)(void *), void *arg, int nondaemon, pthread_t *out) {
  size_t stack = (size_t)lt_stack_size();
  Worker *w, **pp;
  pthread_t tid;
  int rc;
  pthread_once(&init_once, worker_init);
  reap_zombies(0);
  pthread_mutex_lock(&W.mu);
  for (pp = &W.idle; (w = *pp) != NULL; pp = &w->next)
    if (w->stack == stack) {
      *pp = w->next;
      w->listed = 0;
      W.nidle--;
      break;
    }
  if (nondaemon) W.nondaemon++;
  pthread_mutex_unlock(&W.mu);
  if (w != NULL) {                      /* an idle worker: hand it the job */
    if (out) *out = w->tid;
    w->fn = fn;
    w->arg = arg;
    w->counted = nondaemon;
    if (atomic_exchange(&w->go, RUN) & PARKED) lt_unpark(&w->go, 1);   /* w is gone for us */
    return 0;
  }
  rc = ENOMEM;                          /* else a new OS thread */
  if ((w = (Worker *)calloc(1, sizeof *w)) != NULL) {
    atomic_init(&w->go, RUN);
    w->fn = fn;
    w->arg = arg;
    w->counted = nondaemon;
    w->stack = stack;
    if ((rc = create_worker(w, &tid)) != 0) free(w);
  }
  if (rc != 0) {
    if (nondaemon) {
      pthread_mutex_lock(&W.mu);
      W.nondaemon--;
      pthread_mutex_unlock(&W.mu);
    }
    return rc;
  }
  if (out) *out = tid;          /* (w->tid is the worker's to write: it may already run) */
  return 0;
}

void lt_exit_workers(void) {
  int self = T_worker != NULL && T_worker->counted;   /* exit called from such a job */
  Worker *idle, *w;
  pthread_mutex_lock(&W.mu);
  while (W.nondaemon > self) pthread_cond_wait(&W.cv, &W.mu);
  W.closing = 1;
  idle = W.idle;
  W.idle = NULL;
  W.nidle = 0;
  for (w = idle; w != NULL; w = w->next) w->listed = 0;
  pthread_mutex_unlock(&W.mu);
  while (idle != NULL) {
    w = idle;
    idle = w->next;
    if (atomic_exchange(&w->go, QUIT) & PARKED) lt_unpark(&w->go, 1);
    pthread_join(w->tid, NULL);
    free(w);
  }
  if (!self) reap_zombies(1);
}
