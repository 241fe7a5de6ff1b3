/*
** notify.c -- an fd that mirrors a condition, for event loops (q:fileno(), fut:fileno(),
** ev:fileno()).
**
** CONTRACT
**   A notifier is an eventfd (Linux) or a non-blocking pipe (elsewhere) that polls readable
**   exactly while its object's condition held when it was last synced: the queue holds
**   items (or is shut down), the future is done, the event is set.  It is level-triggered:
**   nobody reads it but us, and a sync that finds the condition false drains it.
**   - An object keeps an _Atomic(lt_Notify *) slot, NULL until fileno() is first asked
**     for.  lt_notify_make makes the notifier then (two threads asking at once get the same
**     one: a compare-and-swap installs it, the loser frees its own); lt_pushfileno also
**     syncs it once and pushes the fd.
**   - Every path that changes the condition calls lt_notify(slot, ready, arg) afterwards:
**     one atomic load and a predictable branch when no fd was asked for.
**   - The object's destructor calls lt_notify_free (closes the fd).
**
** WHY IT IS EXACT
**   lt_notify_sync evaluates ready(arg) and sets the fd to match under the notifier's own
**   mutex, so syncs are serialized and the last one to run saw every change made before it
**   began: a change is always followed by its own sync (or, for a change made before the
**   slot was filled, by the installer's sync).  Future and Event change their state with a
**   seq_cst store or RMW and then load the slot (seq_cst), and the installer reads the state
**   after its seq_cst CAS: one of the two sees the other.  A queue syncs under its own locks
**   instead, where its count is exact (see queue.c's q_fileno).
**
** LOCKING
**   n->mu is a leaf: ready() only reads atomics; nothing is taken under it.  It may be
**   taken under an object's lock (queue.c syncs under q->pmu in put_many).  Nothing here
**   raises except lt_pushfileno, before it owns anything.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/eventfd.h>
#endif

#include "lthreading.h"

struct lt_Notify {
  pthread_mutex_t mu;
  int on;                      /* the fd is readable (under mu) */
  int rfd, wfd;                /* the same fd for an eventfd */
};

static int set_flags(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return -1;
  return fcntl(fd, F_SETFD, FD_CLOEXEC);
}

/* A new notifier, not readable; NULL and errno on failure. */
static lt_Notify *notify_new(void) {
  lt_Notify *n = (lt_Notify *)malloc(sizeof *n);
  int fds[2], err;
  if (n == NULL) { errno = ENOMEM; return NULL; }
  n->on = 0;
#if defined(__linux__)
  n->rfd = n->wfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (n->rfd >= 0) {
    pthread_mutex_init(&n->mu, NULL);
    return n;
  }
  if (errno != ENOSYS && errno != EINVAL) { err = errno; free(n); errno = err; return NULL; }
#endif
  if (pipe(fds) != 0) { err = errno; free(n); errno = err; return NULL; }
  if (set_flags(fds[0]) != 0 || set_flags(fds[1]) != 0) {
    err = errno;
    close(fds[0]);
    close(fds[1]);
    free(n);
    errno = err;
    return NULL;
  }
  n->rfd = fds[0];
  n->wfd = fds[1];
  pthread_mutex_init(&n->mu, NULL);
  return n;
}

void lt_notify_free(lt_Notify *n) {
  if (n == NULL) return;
  close(n->rfd);
  if (n->wfd != n->rfd) close(n->wfd);
  pthread_mutex_destroy(&n->mu);
  free(n);
}

static void fd_raise(lt_Notify *n) {
  ssize_t r;
  if (n->wfd == n->rfd) {
    uint64_t one = 1;
    do r = write(n->wfd, &one, sizeof one); while (r < 0 && errno == EINTR);
  } else {
    char c = 1;
    do r = write(n->wfd, &c, 1); while (r < 0 && errno == EINTR);
  }
  (void)r;                     /* EAGAIN: already readable (it cannot be full otherwise) */
}

static void fd_drain(lt_Notify *n) {
  char buf[64];
  ssize_t r;
  for (;;) {                   /* an eventfd empties in one read; a pipe holds <= 1 byte */
    r = read(n->rfd, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0 || n->wfd == n->rfd) break;
  }
}

void lt_notify_sync(lt_Notify *n, lt_ReadyFn ready, void *arg) {
  int want;
  pthread_mutex_lock(&n->mu);
  want = ready(arg) ? 1 : 0;
  if (want != n->on) {
    n->on = want;
    if (want) fd_raise(n);
    else fd_drain(n);
  }
  pthread_mutex_unlock(&n->mu);
}

int lt_notify_fd(const lt_Notify *n) { return n->rfd; }

lt_Notify *lt_notify_make(lua_State *L, _Atomic(lt_Notify *) *slot) {
  lt_Notify *n = atomic_load(slot);
  if (n == NULL) {
    lt_Notify *expected = NULL;
    n = notify_new();
    if (n == NULL) luaL_error(L, "cannot make a file descriptor (%s)", strerror(errno));
    if (!atomic_compare_exchange_strong(slot, &expected, n)) {
      lt_notify_free(n);       /* another thread installed one first: use that */
      n = expected;
    }
  }
  return n;
}

int lt_pushfileno(lua_State *L, _Atomic(lt_Notify *) *slot, lt_ReadyFn ready, void *arg) {
  lt_Notify *n = lt_notify_make(L, slot);
  lt_notify_sync(n, ready, arg);
  lua_pushinteger(L, n->rfd);
  return 1;
}
