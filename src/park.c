/*
** park.c -- time, deadlines and the one blocking primitive: park on a word.
**
** lt_park(word, expected, deadline) sleeps while *word == expected; lt_unpark(word, n) wakes
** up to n sleepers on that word.  On Linux this is the futex system call (no memory per
** waiter, any thread may wake).  Elsewhere a fixed table of mutex+condvar buckets hashed by
** address stands in (a "parking lot"); waking broadcasts the bucket, which is correct because
** every caller re-checks its own condition.
*/
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <string.h>
#include <time.h>

#include "lthreading.h"

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

double lt_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double lt_deadline(double timeout) {
  if (timeout < 0 || isnan(timeout)) return LT_FOREVER;
  if (timeout > LT_TIMEOUT_MAX) timeout = LT_TIMEOUT_MAX;
  return lt_now() + timeout;
}

double lt_remaining(double deadline) {
  double left;
  if (deadline == LT_FOREVER) return -1;
  left = deadline - lt_now();
  return left > 0 ? left : 0;
}

static struct timespec to_timespec(double seconds) {
  struct timespec ts;
  ts.tv_sec = (time_t)seconds;
  ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
  if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
  if (ts.tv_nsec < 0) ts.tv_nsec = 0;
  return ts;
}

void lt_sleep(double seconds) {
  struct timespec ts;
  if (!(seconds > 0)) return;
  if (seconds > LT_TIMEOUT_MAX) seconds = LT_TIMEOUT_MAX;
  ts = to_timespec(seconds);
  while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {}
}

void lt_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

#if defined(LT_TEST_WINDOWS)
/* Held open for a random time in [0, 2 us), so that the windows of a race's two sides
** overlap every way: each side's is sometimes the longer (a fixed pair of lengths leaves
** some interleavings a slot of a few microseconds). */
void lt_test_window(double us) {
  static _Thread_local uint32_t x;                    /* xorshift32, per thread */
  double until;
  if (x == 0) x = ((uint32_t)(uintptr_t)&x ^ (uint32_t)(uint64_t)(lt_now() * 1e9)) | 1u;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  until = lt_now() + us * 2e-6 * (double)(x >> 8) / (double)(1u << 24);
  while (lt_now() < until) lt_cpu_relax();
}
#endif

/* ====================================================================== ADAPTIVE SPIN */

#if !defined(LT_SPIN_MAX_NS)
#define LT_SPIN_MAX_NS 20000    /* the longest spin before parking, in nanoseconds */
#endif
#if !defined(LT_SPIN_MIN_NS)
#define LT_SPIN_MIN_NS 500      /* ... and the shortest */
#endif

/*
** Spin while *w == v, within the object's spin budget (nanoseconds) and never past the
** deadline; returns 1 when the word changed.  The budget adapts: it doubles after a spin
** that saw the change (the other side is running: spinning pays) and halves after one that
** did not (the other side is asleep or shares our core: spinning only burns CPU), between
** LT_SPIN_MIN_NS and LT_SPIN_MAX_NS; lt_park_spun also doubles it after a park that a longer
** spin would have avoided.  A racy update of the budget only loses one adjustment.
*/
int lt_spin_changed(atomic_int *w, int v, double deadline, atomic_int *budget) {
  int ns = atomic_load_explicit(budget, memory_order_relaxed), i;
  if (ns <= 0) ns = LT_SPIN_MAX_NS;          /* a zeroed budget: start optimistic */
  double until = 0;
  for (i = 0;; i++) {
    if (atomic_load_explicit(w, memory_order_acquire) != v) {
      if (ns < LT_SPIN_MAX_NS)
        atomic_store_explicit(budget, ns * 2 < LT_SPIN_MAX_NS ? ns * 2 : LT_SPIN_MAX_NS,
                              memory_order_relaxed);
      return 1;
    }
    lt_cpu_relax();
    if ((i & 15) == 0) {
      double now = lt_now();
      if (until == 0) {
        until = now + ns * 1e-9;
        if (deadline != LT_FOREVER && deadline < until) until = deadline;
      } else if (now >= until) break;
    }
  }
  if (ns > LT_SPIN_MIN_NS)
    atomic_store_explicit(budget, ns / 2 > LT_SPIN_MIN_NS ? ns / 2 : LT_SPIN_MIN_NS,
                          memory_order_relaxed);
  return 0;
}

static void spin_grow(atomic_int *budget, int max_ns) {
  int ns = atomic_load_explicit(budget, memory_order_relaxed);
  if (ns > 0 && ns < max_ns)
    atomic_store_explicit(budget, ns * 2 < max_ns ? ns * 2 : max_ns, memory_order_relaxed);
}

int lt_park_spun(atomic_int *word, int expected, double deadline, atomic_int *budget,
                 int max_ns) {
  double t0 = lt_now();
  int r = lt_park(word, expected, deadline);
  if (r < 0) return r;                       /* -1 timed out, LT_INTERRUPTED */
  if (max_ns <= 0) max_ns = LT_SPIN_MAX_NS;
  if (lt_now() - t0 < max_ns * 1e-9) spin_grow(budget, max_ns);
  return 0;
}

/* ============================================================================ PARKING */

/*
** ARMED PARKS (interrupt.c): while the calling thread is armed (lt_intr_armed, its
** interrupt word), lt_park also returns -- LT_INTERRUPTED -- once that word is non-zero:
** with futex_waitv on both words (Linux >= 5.16), else in slices of LT_INTR_SLICE seconds.
*/
#if !defined(LT_INTR_SLICE)
#define LT_INTR_SLICE 0.01
#endif

static int park_plain(atomic_int *word, int expected, double deadline);

#if defined(__linux__) && defined(SYS_futex_waitv)
static atomic_int no_waitv;                 /* the kernel said ENOSYS */
#endif

static int park_armed(atomic_int *word, int expected, double deadline, atomic_int *intr) {
  double slice;
  int r;
  if (atomic_load(intr) != 0) return LT_INTERRUPTED;
  lt_intr_parking(intr);                    /* the main thread: chain our SIGINT handler */
  if (atomic_load(intr) != 0) return LT_INTERRUPTED;
#if defined(__linux__) && defined(SYS_futex_waitv)
  if (!atomic_load_explicit(&no_waitv, memory_order_relaxed)) {
    struct futex_waitv w[2];
    struct timespec ts, *tsp = NULL;
    long rc;
    memset(w, 0, sizeof w);
    w[0].val = (uint32_t)expected;
    w[0].uaddr = (uintptr_t)word;
    w[0].flags = FUTEX_32 | FUTEX_PRIVATE_FLAG;
    w[1].val = 0;
    w[1].uaddr = (uintptr_t)intr;
    w[1].flags = FUTEX_32 | FUTEX_PRIVATE_FLAG;
    if (deadline != LT_FOREVER) {          /* futex_waitv's timeout is absolute */
      if (deadline <= lt_now()) return -1;
      ts = to_timespec(deadline);
      tsp = &ts;
    }
    rc = syscall(SYS_futex_waitv, w, 2, 0, tsp, CLOCK_MONOTONIC);
    if (atomic_load(intr) != 0) return LT_INTERRUPTED;
    if (rc != -1) return 0;
    if (errno == ETIMEDOUT) return -1;
    if (errno != ENOSYS) return 0;          /* EAGAIN, EINTR: the caller re-checks */
    atomic_store(&no_waitv, 1);
  }
#endif
  slice = lt_now() + LT_INTR_SLICE;
  if (deadline != LT_FOREVER && deadline <= slice) slice = deadline;
  r = park_plain(word, expected, slice);
  if (atomic_load(intr) != 0) return LT_INTERRUPTED;
  return r < 0 && slice != deadline ? 0 : r;
}

int lt_park(atomic_int *word, int expected, double deadline) {
  atomic_int *intr = lt_intr_armed;
  if (intr != NULL) return park_armed(word, expected, deadline, intr);
  return park_plain(word, expected, deadline);
}

#if defined(__linux__)

static int park_plain(atomic_int *word, int expected, double deadline) {
  struct timespec ts, *tsp = NULL;
  if (deadline != LT_FOREVER) {
    double left = deadline - lt_now();
    if (left <= 0) return -1;
    ts = to_timespec(left);
    tsp = &ts;
  }
  /* FUTEX_WAIT's timeout is relative, measured on CLOCK_MONOTONIC. */
  if (syscall(SYS_futex, (int *)word, FUTEX_WAIT_PRIVATE, expected, tsp, NULL, 0) == -1
      && errno == ETIMEDOUT)
    return -1;
  return 0;
}

void lt_unpark(atomic_int *word, int nwake) {
  syscall(SYS_futex, (int *)word, FUTEX_WAKE_PRIVATE, nwake, NULL, NULL, 0);
}

#else  /* portable parking lot */

#define NBUCKETS 64
static struct bucket { pthread_mutex_t m; pthread_cond_t c; } buckets[NBUCKETS];
static pthread_once_t buckets_once = PTHREAD_ONCE_INIT;

static void buckets_init(void) {
  int i;
  for (i = 0; i < NBUCKETS; i++) {
    pthread_mutex_init(&buckets[i].m, NULL);
    pthread_cond_init(&buckets[i].c, NULL);
  }
}

static struct bucket *bucket_of(atomic_int *word) {
  pthread_once(&buckets_once, buckets_init);
  return &buckets[((uintptr_t)word >> 4) % NBUCKETS];
}

static int park_plain(atomic_int *word, int expected, double deadline) {
  struct bucket *b = bucket_of(word);
  int rc = 0;
  pthread_mutex_lock(&b->m);
  if (atomic_load(word) == expected) {
    if (deadline == LT_FOREVER) pthread_cond_wait(&b->c, &b->m);
    else {
      struct timespec now, abs;
      double left = deadline - lt_now();
      if (left <= 0) rc = -1;
      else {
        clock_gettime(CLOCK_REALTIME, &now);
        abs = to_timespec((double)now.tv_sec + now.tv_nsec * 1e-9 + left);
        if (pthread_cond_timedwait(&b->c, &b->m, &abs) == ETIMEDOUT) rc = -1;
      }
    }
  }
  pthread_mutex_unlock(&b->m);
  return rc;
}

void lt_unpark(atomic_int *word, int nwake) {
  struct bucket *b = bucket_of(word);
  (void)nwake;
  pthread_mutex_lock(&b->m);
  pthread_cond_broadcast(&b->c);
  pthread_mutex_unlock(&b->m);
}

#endif
