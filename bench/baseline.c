/*
** bench/baseline.c -- raw C baselines for bench/run.lua.
**
**   bench/baseline NAME [NAME...]     (or "all")
**
** Each baseline measures the C (or C + plain Lua C API) version of one operation that
** bench/run.lua measures through lthreading, in the same run, and prints machine-readable
** lines "key value" (one figure per line).  Every figure is the best of a few repetitions.
**
**   spawn      pthread_create + (in the thread) luaL_newstate + luaL_openlibs + lua_close
**              + pthread_join                                  -> spawn_us
**   lock       a Lua loop calling an empty C function twice per iteration, as methods
**              (o:acquire(); o:release()) of a userdata, minus the empty loop, plus a raw
**              pthread mutex lock/unlock pair                  -> lock_ns (= cfun + mutex),
**                                                                 lock_cfun_ns, lock_mutex_ns, loop_ns
**   copy       a 100000-integer array copied from one lua_State to another and back with
**              lua_rawgeti / lua_pushinteger + lua_rawseti     -> copy_us (round trip), copy_oneway_us
**              one way, 100000 floats (lua_pushnumber) and 100000 short strings 's1'..
**              (lua_tolstring + lua_pushlstring)              -> copy_float_oneway_us,
**                                                                 copy_str_oneway_us
**   handoff    two-thread ping-pong: mutex + condvar, and spin-then-futex
**                                                              -> handoff_condvar_rtps, handoff_condvar_cpu_us,
**                                                                 handoff_spin_rtps, handoff_spin_cpu_us
**   idle       the same two ping-pongs, but main sleeps 2 ms before each handoff: CPU per
**              wait                                            -> idle_condvar_cpu_us, idle_spin_cpu_us
**   sem        POSIX sem_wait + sem_post, uncontended          -> sem_ns
**   queue      producer thread -> consumer thread, 10^6 integers through a mutex+condvar
**              ring buffer                                      -> queue_mips (million items/s)
**   queue1     the same ring in one thread: put + get (lock, signal, unlock twice)
**                                                              -> queue_st_ns
**   atomic     2 threads doing atomic_fetch_add on one counter -> atomic_mops
**              2 threads doing mutex-protected increments      -> mutex_incr_mops
**   contend    1, 2, 4, 8 threads, each with a Lua state running a Lua loop that calls C
**              methods locking one pthread mutex: acquire/release, put/get on the ring,
**              incr                               -> contend_{lock,queue,incr}_{1,2,4,8}_mops
**   mem        resident KB per luaL_newstate + luaL_openlibs state, and per pthread blocked
**              on a condvar holding such a state    -> mem_state_kb, mem_thread_kb
*/
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "lauxlib.h"
#include "lua.h"
#include "lualib.h"

#define REPS 5

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double cputime(void) {     /* the whole process: every thread */
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

static void die(const char *what, int err) {
  fprintf(stderr, "baseline: %s: %s\n", what, strerror(err));
  exit(2);
}

static void start_thread(pthread_t *t, void *(*fn)(void *), void *arg) {
  int err = pthread_create(t, NULL, fn, arg);
  if (err) die("pthread_create", err);
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

static long futex(atomic_int *addr, int op, int val) {
  return syscall(SYS_futex, (int *)addr, op, val, NULL, NULL, 0);
}

/* ================================================================================ spawn */
static void *spawn_body(void *arg) {
  (void)arg;
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  lua_close(L);
  return NULL;
}

static void bench_spawn(void) {
  const int n = 300;
  double best = 1e30;
  for (int r = 0; r < REPS; r++) {
    double t0 = now();
    for (int i = 0; i < n; i++) {
      pthread_t t;
      start_thread(&t, spawn_body, NULL);
      pthread_join(t, NULL);
    }
    double dt = (now() - t0) / n;
    if (dt < best) best = dt;
  }
  printf("spawn_us %.3f\n", best * 1e6);
}

/* ================================================================================= lock */
static int empty_cfunction(lua_State *L) { (void)L; return 0; }

static double run_chunk(lua_State *L, const char *code, lua_Integer n) {
  if (luaL_loadstring(L, code) != LUA_OK) {
    fprintf(stderr, "baseline: %s\n", lua_tostring(L, -1));
    exit(2);
  }
  lua_getglobal(L, "o");
  lua_pushinteger(L, n);
  double t0 = now();
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    fprintf(stderr, "baseline: %s\n", lua_tostring(L, -1));
    exit(2);
  }
  return now() - t0;
}

static void bench_lock(void) {
  const lua_Integer n = 2000000;
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  /* o: a full userdata whose metatable's __index holds acquire/release, both the empty
  ** C function: the same dispatch path as lock:acquire() on an lthreading proxy. */
  lua_newuserdatauv(L, sizeof(void *), 0);
  lua_newtable(L);                          /* metatable */
  lua_newtable(L);                          /* methods */
  lua_pushcfunction(L, empty_cfunction);
  lua_setfield(L, -2, "acquire");
  lua_pushcfunction(L, empty_cfunction);
  lua_setfield(L, -2, "release");
  lua_setfield(L, -2, "__index");
  lua_setmetatable(L, -2);
  lua_setglobal(L, "o");
  const char *calls = "local o, n = ... for i = 1, n do o:acquire(); o:release() end";
  const char *empty = "local o, n = ... for i = 1, n do end";
  double best_calls = 1e30, best_empty = 1e30;
  for (int r = 0; r < REPS; r++) {
    double a = run_chunk(L, empty, n), b = run_chunk(L, calls, n);
    if (a < best_empty) best_empty = a;
    if (b < best_calls) best_calls = b;
  }
  lua_close(L);
  double loop_ns = best_empty / (double)n * 1e9;
  double cfun_ns = (best_calls - best_empty) / (double)n * 1e9;

  pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
  const long mn = 5000000;
  double best_mutex = 1e30;
  for (int r = 0; r < REPS; r++) {
    double t0 = now();
    for (long i = 0; i < mn; i++) {
      pthread_mutex_lock(&m);
      pthread_mutex_unlock(&m);
    }
    double dt = now() - t0;
    if (dt < best_mutex) best_mutex = dt;
  }
  double mutex_ns = best_mutex / (double)mn * 1e9;
  printf("lock_ns %.3f\n", cfun_ns + mutex_ns);
  printf("lock_cfun_ns %.3f\n", cfun_ns);
  printf("lock_mutex_ns %.3f\n", mutex_ns);
  printf("loop_ns %.3f\n", loop_ns);
}

/* ================================================================================= copy */
/* Copy the array on top of `from` into a new table pushed on `to`. */
static void copy_array(lua_State *from, lua_State *to) {
  lua_Integer n = (lua_Integer)lua_rawlen(from, -1);
  lua_createtable(to, (int)n, 0);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(from, -1, i);
    lua_pushinteger(to, lua_tointeger(from, -1));
    lua_rawseti(to, -2, i);
    lua_pop(from, 1);
  }
}

static void copy_floats(lua_State *from, lua_State *to) {
  lua_Integer n = (lua_Integer)lua_rawlen(from, -1);
  lua_createtable(to, (int)n, 0);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(from, -1, i);
    lua_pushnumber(to, lua_tonumber(from, -1));
    lua_rawseti(to, -2, i);
    lua_pop(from, 1);
  }
}

static void copy_strings(lua_State *from, lua_State *to) {
  lua_Integer n = (lua_Integer)lua_rawlen(from, -1);
  lua_createtable(to, (int)n, 0);
  for (lua_Integer i = 1; i <= n; i++) {
    size_t len;
    const char *s;
    lua_rawgeti(from, -1, i);
    s = lua_tolstring(from, -1, &len);
    lua_pushlstring(to, s, len);
    lua_rawseti(to, -2, i);
    lua_pop(from, 1);
  }
}

/* One way, A -> B, best of REPS * 2: the array made by `make` (a Lua chunk) in A. */
static double oneway(lua_State *A, lua_State *B, const char *make,
                     void (*copy)(lua_State *, lua_State *)) {
  double best = 1e30;
  if (luaL_dostring(A, make) != LUA_OK) { fprintf(stderr, "baseline: %s\n", lua_tostring(A, -1)); exit(2); }
  for (int r = 0; r < REPS * 2; r++) {
    double t0 = now();
    copy(A, B);
    double dt = now() - t0;
    lua_pop(B, 1);
    if (dt < best) best = dt;
  }
  lua_pop(A, 1);
  return best;
}

static void bench_copy(void) {
  const int n = 100000;
  lua_State *A = luaL_newstate(), *B = luaL_newstate();
  luaL_openlibs(A);
  luaL_openlibs(B);
  lua_createtable(A, n, 0);
  for (int i = 1; i <= n; i++) {
    lua_pushinteger(A, i);
    lua_rawseti(A, -2, i);
  }
  double best_rt = 1e30, best_one = 1e30;
  for (int r = 0; r < REPS * 2; r++) {
    double t0 = now();
    copy_array(A, B);                       /* there */
    double t1 = now();
    copy_array(B, A);                       /* and back */
    double t2 = now();
    lua_pop(B, 1);
    lua_pop(A, 1);                          /* the copy that came back */
    if (t2 - t0 < best_rt) best_rt = t2 - t0;
    if (t1 - t0 < best_one) best_one = t1 - t0;
  }
  lua_pop(A, 1);
  double fl = oneway(A, B, "local t = {} for i = 1, 100000 do t[i] = i * 0.5 + 0.25 end return t",
                     copy_floats);
  double st = oneway(A, B, "local t = {} for i = 1, 100000 do t[i] = 's' .. i end return t",
                     copy_strings);
  lua_close(A);
  lua_close(B);
  printf("copy_us %.3f\n", best_rt * 1e6);
  printf("copy_oneway_us %.3f\n", best_one * 1e6);
  printf("copy_float_oneway_us %.3f\n", fl * 1e6);
  printf("copy_str_oneway_us %.3f\n", st * 1e6);
}

/* ============================================================================== handoff */
/* Mutex + condvar ping-pong: main sets turn = 1 and waits for 0; the worker waits for 1
** and sets 0.  One round trip = two handoffs.  The run lasts n round trips, or, with n = 0,
** about PP_SECONDS (then main raises `stop` and hands over one last time). */
#define PP_SECONDS 0.25
static struct {
  pthread_mutex_t m;
  pthread_cond_t c;
  int turn, stop;
} cv = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};

static void *cv_worker(void *arg) {
  (void)arg;
  pthread_mutex_lock(&cv.m);
  for (;;) {
    while (cv.turn != 1) pthread_cond_wait(&cv.c, &cv.m);
    if (cv.stop) break;
    cv.turn = 0;
    pthread_cond_signal(&cv.c);
  }
  pthread_mutex_unlock(&cv.m);
  return NULL;
}

static void sleep_s(double s) {
  struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {}
}

/* delay > 0: main sleeps that long (seconds) before each handoff (idle waits). */
static void cv_pingpong(long n, double delay, double *rtps, double *cpu_us) {
  pthread_t t;
  long i;
  cv.turn = 0;
  cv.stop = 0;
  start_thread(&t, cv_worker, NULL);
  double t0 = now(), c0 = cputime();
  pthread_mutex_lock(&cv.m);
  for (i = 0; n == 0 || i < n; i++) {
    if (n == 0 && (i & 255) == 0 && now() - t0 >= PP_SECONDS) break;
    if (delay > 0) {
      pthread_mutex_unlock(&cv.m);
      sleep_s(delay);
      pthread_mutex_lock(&cv.m);
    }
    cv.turn = 1;
    pthread_cond_signal(&cv.c);
    while (cv.turn != 0) pthread_cond_wait(&cv.c, &cv.m);
  }
  double dt = now() - t0, dc = cputime() - c0;
  cv.stop = 1;
  cv.turn = 1;
  pthread_cond_signal(&cv.c);
  pthread_mutex_unlock(&cv.m);
  pthread_join(t, NULL);
  *rtps = (double)i / dt;
  *cpu_us = dc / (double)i * 1e6;
}

/* Spin-then-futex ping-pong: turn says whose move it is (0 main, 1 worker); a side that
** has spun SPIN times without seeing its turn announces itself in sleeping[me] and parks
** on the turn word.  seq_cst on both sides (Dekker): no lost wake-ups. */
#define SPIN 2000
static struct {
  atomic_int turn;
  atomic_int sleeping[2];
  atomic_int stop;
} sf;

static void sf_wait_turn(int me) {
  for (int i = 0; i < SPIN; i++) {
    if (atomic_load_explicit(&sf.turn, memory_order_acquire) == me) return;
    cpu_relax();
  }
  for (;;) {
    atomic_store(&sf.sleeping[me], 1);
    if (atomic_load(&sf.turn) == me) break;
    futex(&sf.turn, FUTEX_WAIT_PRIVATE, 1 - me);
    if (atomic_load(&sf.turn) == me) break;
  }
  atomic_store(&sf.sleeping[me], 0);
}

static void sf_give_turn(int to) {
  atomic_store(&sf.turn, to);
  if (atomic_load(&sf.sleeping[to])) futex(&sf.turn, FUTEX_WAKE_PRIVATE, 1);
}

static void *sf_worker(void *arg) {
  (void)arg;
  for (;;) {
    sf_wait_turn(1);
    if (atomic_load(&sf.stop)) break;
    sf_give_turn(0);
  }
  return NULL;
}

static void sf_pingpong(long n, double delay, double *rtps, double *cpu_us) {
  pthread_t t;
  long i;
  atomic_store(&sf.turn, 0);
  atomic_store(&sf.sleeping[0], 0);
  atomic_store(&sf.sleeping[1], 0);
  atomic_store(&sf.stop, 0);
  start_thread(&t, sf_worker, NULL);
  double t0 = now(), c0 = cputime();
  for (i = 0; n == 0 || i < n; i++) {
    if (n == 0 && (i & 255) == 0 && now() - t0 >= PP_SECONDS) break;
    if (delay > 0) sleep_s(delay);
    sf_give_turn(1);
    sf_wait_turn(0);
  }
  double dt = now() - t0, dc = cputime() - c0;
  atomic_store(&sf.stop, 1);
  sf_give_turn(1);
  pthread_join(t, NULL);
  *rtps = (double)i / dt;
  *cpu_us = dc / (double)i * 1e6;
}

static void bench_handoff(void) {
  double best = 0, cpu = 0, r, c;
  for (int i = 0; i < 3; i++) {
    cv_pingpong(0, 0, &r, &c);
    if (r > best) { best = r; cpu = c; }
  }
  printf("handoff_condvar_rtps %.1f\n", best);
  printf("handoff_condvar_cpu_us %.3f\n", cpu);
  best = 0;
  for (int i = 0; i < 3; i++) {
    sf_pingpong(0, 0, &r, &c);
    if (r > best) { best = r; cpu = c; }
  }
  printf("handoff_spin_rtps %.1f\n", best);
  printf("handoff_spin_cpu_us %.3f\n", cpu);
}

/* A waiter that is woken every 2 ms: CPU per wait (spinning must stay bounded). */
static void bench_idle(void) {
  double best = 1e30, r, c;
  for (int i = 0; i < 3; i++) {
    cv_pingpong(100, 0.002, &r, &c);
    if (c < best) best = c;
  }
  printf("idle_condvar_cpu_us %.3f\n", best);
  best = 1e30;
  for (int i = 0; i < 3; i++) {
    sf_pingpong(100, 0.002, &r, &c);
    if (c < best) best = c;
  }
  printf("idle_spin_cpu_us %.3f\n", best);
}

/* ================================================================================== sem */
static void bench_sem(void) {
  sem_t s;
  sem_init(&s, 0, 1);
  const long n = 10000000;
  double best = 1e30;
  for (int r = 0; r < REPS; r++) {
    double t0 = now();
    for (long i = 0; i < n; i++) {
      sem_wait(&s);
      sem_post(&s);
    }
    double dt = now() - t0;
    if (dt < best) best = dt;
  }
  sem_destroy(&s);
  printf("sem_ns %.3f\n", best / (double)n * 1e9);
}

/* ================================================================================ queue */
#define RING 65536                       /* large: "unbounded" for the producer, mostly */
static struct {
  pthread_mutex_t m;
  pthread_cond_t not_empty, not_full;
  long head, tail;                       /* head: next to read; tail: next to write */
  long items[RING];
  long n;
} rq = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER,
        0, 0, {0}, 0};

static void *rq_producer(void *arg) {
  (void)arg;
  for (long i = 1; i <= rq.n; i++) {
    pthread_mutex_lock(&rq.m);
    while (rq.tail - rq.head == RING) pthread_cond_wait(&rq.not_full, &rq.m);
    rq.items[rq.tail++ % RING] = i;
    pthread_cond_signal(&rq.not_empty);
    pthread_mutex_unlock(&rq.m);
  }
  return NULL;
}

static double rq_run(long n) {
  pthread_t t;
  rq.head = rq.tail = 0;
  rq.n = n;
  long sum = 0;
  double t0 = now();
  start_thread(&t, rq_producer, NULL);
  for (long i = 0; i < n; i++) {
    pthread_mutex_lock(&rq.m);
    while (rq.tail == rq.head) pthread_cond_wait(&rq.not_empty, &rq.m);
    sum += rq.items[rq.head++ % RING];
    pthread_cond_signal(&rq.not_full);
    pthread_mutex_unlock(&rq.m);
  }
  pthread_join(t, NULL);
  double dt = now() - t0;
  if (sum != n * (n + 1) / 2) { fprintf(stderr, "baseline: queue sum wrong\n"); exit(2); }
  return (double)n / dt;
}

/* The same ring, one thread: a put and a get under the mutex, no waiting. */
static void bench_queue1(void) {
  const long n = 10000000;
  double best = 1e30;
  long sum = 0;
  for (int r = 0; r < REPS; r++) {
    rq.head = rq.tail = 0;
    double t0 = now();
    for (long i = 0; i < n; i++) {
      pthread_mutex_lock(&rq.m);
      rq.items[rq.tail++ % RING] = i;
      pthread_cond_signal(&rq.not_empty);
      pthread_mutex_unlock(&rq.m);
      pthread_mutex_lock(&rq.m);
      sum += rq.items[rq.head++ % RING];
      pthread_cond_signal(&rq.not_full);
      pthread_mutex_unlock(&rq.m);
    }
    double dt = now() - t0;
    if (dt < best) best = dt;
  }
  if (sum != (long)REPS * (n * (n - 1) / 2)) { fprintf(stderr, "baseline: queue1 sum\n"); exit(2); }
  printf("queue_st_ns %.3f\n", best / (double)n * 1e9);
}

static void bench_queue(void) {
  double best = 0;
  for (int r = 0; r < 3; r++) {
    double v = rq_run(1000000);
    if (v > best) best = v;
  }
  printf("queue_mips %.3f\n", best / 1e6);
}

/* =============================================================================== atomic */
static struct {
  atomic_long counter;
  pthread_mutex_t m;
  long plain;
  long n;
} ac = {0, PTHREAD_MUTEX_INITIALIZER, 0, 0};

static void *atomic_worker(void *arg) {
  (void)arg;
  for (long i = 0; i < ac.n; i++) atomic_fetch_add(&ac.counter, 1);
  return NULL;
}

static void *mutex_worker(void *arg) {
  (void)arg;
  for (long i = 0; i < ac.n; i++) {
    pthread_mutex_lock(&ac.m);
    ac.plain++;
    pthread_mutex_unlock(&ac.m);
  }
  return NULL;
}

static double two_threads(void *(*fn)(void *), long n) {
  pthread_t a, b;
  ac.n = n;
  double t0 = now();
  start_thread(&a, fn, NULL);
  start_thread(&b, fn, NULL);
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  return 2.0 * (double)n / (now() - t0);
}

static void bench_atomic(void) {
  double best = 0, v;
  for (int r = 0; r < 3; r++) if ((v = two_threads(atomic_worker, 5000000)) > best) best = v;
  printf("atomic_mops %.3f\n", best / 1e6);
  best = 0;
  for (int r = 0; r < 3; r++) if ((v = two_threads(mutex_worker, 2000000)) > best) best = v;
  printf("mutex_incr_mops %.3f\n", best / 1e6);
}

/* =========================================================================== contention */
/* T threads, each with its own lua_State running the same Lua loop as bench/run.lua's
** contention figure, calling methods of a userdata that lock one shared pthread mutex:
**   lock   o:acquire(); o:release()         (pthread_mutex_lock / unlock)
**   queue  o:put(i); o:get()                (the mutex + condvar ring above, unbounded)
**   incr   o:incr()                         (mutex-protected counter, returns the value)
** -> contend_<kind>_<T>_mops: million operations per second, all threads together. */
static pthread_mutex_t cm = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cq = PTHREAD_COND_INITIALIZER;
static long cq_items[RING], cq_head, cq_tail, c_counter;

static int c_acquire(lua_State *L) { (void)L; pthread_mutex_lock(&cm); return 0; }
static int c_release(lua_State *L) { (void)L; pthread_mutex_unlock(&cm); return 0; }
static int c_put(lua_State *L) {
  long v = (long)lua_tointeger(L, 2);
  pthread_mutex_lock(&cm);
  cq_items[cq_tail++ % RING] = v;
  pthread_cond_signal(&cq);
  pthread_mutex_unlock(&cm);
  return 0;
}
static int c_get(lua_State *L) {
  long v;
  pthread_mutex_lock(&cm);
  while (cq_tail == cq_head) pthread_cond_wait(&cq, &cm);
  v = cq_items[cq_head++ % RING];
  pthread_mutex_unlock(&cm);
  lua_pushinteger(L, v);
  return 1;
}
static int c_incr(lua_State *L) {
  long v;
  pthread_mutex_lock(&cm);
  v = ++c_counter;
  pthread_mutex_unlock(&cm);
  lua_pushinteger(L, v);
  return 1;
}

typedef struct CJob { const char *loop; long n; pthread_barrier_t *ready, *go; } CJob;

static void *contend_body(void *arg) {
  CJob *j = (CJob *)arg;
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  lua_newuserdatauv(L, sizeof(void *), 0);
  lua_newtable(L);
  lua_newtable(L);
  static const luaL_Reg m[] = { {"acquire", c_acquire}, {"release", c_release}, {"put", c_put},
                                {"get", c_get}, {"incr", c_incr}, {NULL, NULL} };
  luaL_setfuncs(L, m, 0);
  lua_setfield(L, -2, "__index");
  lua_setmetatable(L, -2);
  if (luaL_loadstring(L, j->loop) != LUA_OK) { fprintf(stderr, "baseline: %s\n", lua_tostring(L, -1)); exit(2); }
  lua_insert(L, -2);
  lua_pushinteger(L, j->n);
  pthread_barrier_wait(j->ready);
  pthread_barrier_wait(j->go);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) { fprintf(stderr, "baseline: %s\n", lua_tostring(L, -1)); exit(2); }
  lua_close(L);
  return NULL;
}

static double contend_run(const char *loop, int nthreads, long n) {
  pthread_t t[8];
  pthread_barrier_t ready, go;
  CJob j = { loop, n, &ready, &go };
  pthread_barrier_init(&ready, NULL, (unsigned)nthreads + 1);
  pthread_barrier_init(&go, NULL, (unsigned)nthreads + 1);
  cq_head = cq_tail = 0;
  for (int i = 0; i < nthreads; i++) start_thread(&t[i], contend_body, &j);
  /* as the Lua side: the clock starts once every thread is ready, before they are let go
  ** (read after the release, it could start after the threads had done much of the work:
  ** on 2 cores, 8 released threads may keep this one off a core for milliseconds) */
  pthread_barrier_wait(&ready);
  double t0 = now();
  pthread_barrier_wait(&go);
  for (int i = 0; i < nthreads; i++) pthread_join(t[i], NULL);
  double dt = now() - t0;
  pthread_barrier_destroy(&ready);
  pthread_barrier_destroy(&go);
  return (double)nthreads * (double)n / dt / 1e6;
}

static void bench_contend(void) {
  static const struct { const char *name, *loop; long n; } kinds[] = {
    {"lock", "local o, n = ... for i = 1, n do o:acquire(); o:release() end", 200000},
    {"queue", "local o, n = ... for i = 1, n do o:put(i); o:get() end", 100000},
    {"incr", "local o, n = ... for i = 1, n do o:incr('k') end", 200000},
  };
  static const int counts[] = { 1, 2, 4, 8 };
  for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
    for (size_t c = 0; c < 4; c++) {
      double best = 0;
      for (int r = 0; r < 3; r++) {
        double v = contend_run(kinds[k].loop, counts[c], kinds[k].n / counts[c] * 2);
        if (v > best) best = v;
      }
      printf("contend_%s_%d_mops %.3f\n", kinds[k].name, counts[c], best);
    }
}

/* ============================================================================== memory */
/* Resident memory per state: 1000 luaL_newstate + luaL_openlibs states in this process
** (mem_state_kb); then 1000 pthreads, each with such a state of its own, blocked on a
** condvar (mem_thread_kb).  From VmRSS in /proc/self/status. */
static long rss_kb(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  if (f == NULL) return -1;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, "VmRSS:", 6) == 0) { kb = atol(line + 6); break; }
  fclose(f);
  return kb;
}

#define MEM_N 1000
static pthread_mutex_t mm = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t mc = PTHREAD_COND_INITIALIZER, mready = PTHREAD_COND_INITIALIZER;
static int m_ready, m_go;

static void *mem_body(void *arg) {
  (void)arg;
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  pthread_mutex_lock(&mm);
  m_ready++;
  pthread_cond_signal(&mready);
  while (!m_go) pthread_cond_wait(&mc, &mm);
  pthread_mutex_unlock(&mm);
  lua_close(L);
  return NULL;
}

static void bench_mem(void) {
  static lua_State *states[MEM_N];
  static pthread_t t[MEM_N];
  long r0 = rss_kb();
  for (int i = 0; i < MEM_N; i++) { states[i] = luaL_newstate(); luaL_openlibs(states[i]); }
  long r1 = rss_kb();
  for (int i = 0; i < MEM_N; i++) lua_close(states[i]);
  long r2 = rss_kb();
  for (int i = 0; i < MEM_N; i++) start_thread(&t[i], mem_body, NULL);
  pthread_mutex_lock(&mm);
  while (m_ready < MEM_N) pthread_cond_wait(&mready, &mm);
  pthread_mutex_unlock(&mm);
  long r3 = rss_kb();
  pthread_mutex_lock(&mm);
  m_go = 1;
  pthread_cond_broadcast(&mc);
  pthread_mutex_unlock(&mm);
  for (int i = 0; i < MEM_N; i++) pthread_join(t[i], NULL);
  printf("mem_state_kb %.3f\n", (double)(r1 - r0) / MEM_N);
  printf("mem_thread_kb %.3f\n", (double)(r3 - r2) / MEM_N);
}

/* ================================================================================= main */
static const struct { const char *name; void (*fn)(void); } benches[] = {
  {"spawn", bench_spawn}, {"lock", bench_lock},     {"copy", bench_copy},
  {"handoff", bench_handoff}, {"idle", bench_idle}, {"sem", bench_sem},   {"queue", bench_queue},
  {"queue1", bench_queue1},
  {"atomic", bench_atomic}, {"contend", bench_contend}, {"mem", bench_mem},
};
#define NBENCH (sizeof benches / sizeof benches[0])

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s NAME... | all\n  names:", argv[0]);
    for (size_t i = 0; i < NBENCH; i++) fprintf(stderr, " %s", benches[i].name);
    fprintf(stderr, "\n");
    return 2;
  }
  for (int a = 1; a < argc; a++) {
    int found = 0;
    for (size_t i = 0; i < NBENCH; i++) {
      if (strcmp(argv[a], "all") == 0 || strcmp(argv[a], benches[i].name) == 0) {
        benches[i].fn();
        fflush(stdout);
        found = 1;
      }
    }
    if (!found) { fprintf(stderr, "baseline: unknown benchmark '%s'\n", argv[a]); return 2; }
  }
  return 0;
}
