/*
** interrupt.c -- stopping threads: Ctrl-C in the main thread, t:cancel() in any Thread; and
** the names the OS shows for lthreading's threads.
**
** CONTRACT
**   Every interruptible OS thread has an lt_Intr (lthreading.h), embedded in its lt_Thread:
**   the main thread for its whole life (SIGINT), a Thread while its target runs (cancel).
**   `word` holds the pending interrupts: LT_INTR_CANCEL (t:cancel()) and LT_INTR_SIGINT
**   (Ctrl-C, main thread only).
**
**   Waits.  A Lua-facing call that may block arms (lt_intr_arm) once, before it spins or
**   parks, and disarms before it returns or raises.  While armed, lt_park waits with
**   futex_waitv on {its word, expected} and {the interrupt word, 0}, so an interrupter that
**   stores a bit and then wakes the interrupt word can never lose the wake-up; lt_park then
**   returns LT_INTERRUPTED (at once if a bit is already set).  Without futex_waitv (Linux
**   < 5.16: ENOSYS, or another OS) an armed park sleeps in slices of LT_INTR_SLICE seconds
**   and re-checks.  lt_rawlock_acquire (the internal locks) suspends the arming, so only the
**   wait the call is about can be interrupted, never a short internal one.  After an
**   interrupted wait the call undoes what it did -- no lock acquired, no item taken, no
**   waiter left in a queue, a notification it got passed on -- and with nothing held calls
**   lt_intr_raise(L), which raises CancelledError (clearing the bit: pcall may catch it and
**   the thread go on), or, for SIGINT, returns 0 when the interpreter's own hook is pending
**   (lua.c's lstop: the call then returns its "nothing got" values normally and the hook
**   raises "interrupted!" on return, once), else raises "interrupted!" itself.
**
**   Ctrl-C.  lua.c installs a SIGINT handler (without SA_RESTART) that only sets a hook on
**   the main state; a futex wait would just be re-entered.  The first time the main thread
**   parks armed while SIGINT's disposition is a handler other than ours (lua.c reinstalls
**   its own for every chunk it runs), ours is chained in front: it sets the main thread's
**   SIGINT bit, wakes its word (a raw futex call: async-signal-safe), then calls the
**   previous handler.  The bit is sticky; arming clears a stale one (a Ctrl-C that came
**   while the main thread ran Lua code was handled by lua.c's hook).  A Ctrl-C in the few
**   instructions between the call's start and its arming is left to lua.c's hook, which
**   raises when the wait ends (Python has the same window).  Process exit waits for the
**   non-daemon threads with SIGINT chained again (lua.c has reset it to SIG_DFL by then):
**   the next Ctrl-C ends that wait, the threads are abandoned, and SIG_DFL is back.
**
**   Cancel.  t:cancel() sets LT_INTR_CANCEL and wakes the word (a parked thread returns),
**   and -- under in->mu, while the thread is known to run its target, so the pthread_t is
**   alive and runs this very job -- sends the thread LT_SIGCANCEL.  Its handler, running
**   on that thread, installs a count hook on the thread's state (lua_sethook is what
**   lua.c's own handler does: safe from a handler on the state's thread); the hook restores
**   the hook the thread had (if any), clears the bit and raises CancelledError within one
**   VM instruction.  Nothing is hooked unless a thread is cancelled: no cost otherwise.  A
**   bit already consumed by a blocking call leaves the hook with nothing to do: it only
**   restores.  The signal is unblocked in a worker OS thread the first time it runs a
**   Thread (lthreading threads block asynchronous signals), installed with SA_RESTART, and
**   only if its disposition was SIG_DFL (else cancel reaches blocking calls only).
**   The hook is set on the thread's main state: a loop inside a coroutine is reached when
**   it yields or calls a blocking function.  C code that does not return to Lua (a blocking
**   io.read) is not interrupted; a system call that is never restarted (poll, nanosleep)
**   may return EINTR to its C caller once, as after any signal.
**
**   Names.  A Thread sets its OS name (pthread_setname_np: the first 15 bytes, up to a NUL)
**   when its target starts; renaming a running Thread renames its OS thread at once, under
**   in->mu (the thread cannot end meanwhile), reading the name under the Thread's own mutex
**   so that the last rename wins.  A worker OS thread going idle takes the process's name
**   back.  Pool workers show their Thread names.
**
** LOCKING
**   in->mu is a leaf except that it is held while reading the name under the Thread's
**   mutex (in->mu -> t->mu); nothing takes them the other way round.  Nothing here raises
**   with a mutex held.
*/
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lthreading.h"

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#endif

#if !defined(LT_SIGCANCEL)
#define LT_SIGCANCEL (SIGRTMIN + 4)
#endif

_Thread_local atomic_int *lt_intr_armed;

static _Thread_local lt_Intr *T_intr;           /* this thread's, while interruptible */
static _Thread_local lua_State *volatile T_L;   /* its state, while cancellable: the handler's */
static _Thread_local volatile sig_atomic_t T_hooked;   /* our count hook is set on T_L */
static _Thread_local lua_Hook T_saved_hook;     /* the thread's own hook, put back after ours */
static _Thread_local int T_saved_mask, T_saved_count;
static _Thread_local int T_cancelled;           /* this Thread raised CancelledError by cancel */
static _Thread_local int T_unblocked;           /* LT_SIGCANCEL unblocked on this OS thread */

static _Atomic(lt_Intr *) main_intr;            /* the main thread's: SIGINT sets its bit */
static char proc_name[16];                      /* the main thread's OS name, for idle workers */
static struct sigaction prev_int;               /* the SIGINT disposition ours chains to */
static atomic_int exiting;                      /* main thread, exit wait: bits are sticky */
static atomic_int exit_abandoned;               /* an exit wait was interrupted */
static int exit_restore_dfl;                    /* (main thread) SIGINT was SIG_DFL before it */
static int cancel_signal_ok;                    /* LT_SIGCANCEL's handler is ours */
static pthread_once_t sig_once = PTHREAD_ONCE_INIT;

/* ========================================================================== BASICS */

void lt_intr_init(lt_Intr *in) {
  atomic_init(&in->word, 0);
  pthread_mutex_init(&in->mu, NULL);
  in->state = 0;
  in->cancellable = 0;
}

void lt_intr_destroy(lt_Intr *in) { pthread_mutex_destroy(&in->mu); }

void lt_intr_forget(lt_Intr *in) {              /* fork child: its thread does not exist */
  in->state = 2;                                 /* (the caller re-initialised in->mu) */
}

static void wake_word(atomic_int *w) {          /* async-signal-safe on Linux */
#if defined(__linux__)
  syscall(SYS_futex, (int *)w, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
#else
  (void)w;                                      /* armed parks sleep in slices there */
#endif
}

void lt_intr_arm(void) {
  lt_Intr *in = T_intr;
  if (in == NULL) return;
  if (in == atomic_load_explicit(&main_intr, memory_order_relaxed)
      && !atomic_load_explicit(&exiting, memory_order_relaxed)
      && (atomic_load_explicit(&in->word, memory_order_relaxed) & LT_INTR_SIGINT))
    atomic_fetch_and(&in->word, ~LT_INTR_SIGINT);         /* stale: lua.c's hook had it */
  lt_intr_armed = &in->word;
}

void lt_intr_disarm(void) { lt_intr_armed = NULL; }

int lt_intr_pending(void) {
  lt_Intr *in = T_intr;
  return in ? atomic_load(&in->word) : 0;
}

/* ========================================================================= CANCEL */

static void cancel_hook(lua_State *L, lua_Debug *ar);

/* Set our count hook on L, keeping the thread's own.  On the thread itself: from the
** signal handler, or with the signal blocked. */
static void hook_install(lua_State *L) {
  lua_Hook h = lua_gethook(L);
  if (T_hooked && h == cancel_hook) return;     /* (the thread may have replaced ours) */
  if (h != cancel_hook) {
    T_saved_hook = h;
    T_saved_mask = lua_gethookmask(L);
    T_saved_count = lua_gethookcount(L);
  }
  T_hooked = 1;
  lua_sethook(L, cancel_hook, LUA_MASKCOUNT, 1);
}

/* Put the thread's own hook back (on L, and on the thread's state if L is a coroutine
** that inherited ours). */
static void hook_restore(lua_State *L) {
  lua_State *main = T_L;
  lua_sethook(L, T_saved_hook, T_saved_mask, T_saved_count);
  if (main != NULL && main != L && lua_gethook(main) == cancel_hook)
    lua_sethook(main, T_saved_hook, T_saved_mask, T_saved_count);
}

static void cancel_hook(lua_State *L, lua_Debug *ar) {
  lt_Intr *in = T_intr;
  (void)ar;
  hook_restore(L);                 /* first: a cancel signal from now on installs anew */
  T_hooked = 0;
  if (in != NULL && (atomic_fetch_and(&in->word, ~LT_INTR_CANCEL) & LT_INTR_CANCEL)) {
    T_cancelled = 1;
    lt_raise(L, "CancelledError");
  }
}

static void on_sigcancel(int sig) {
  int saved = errno;
  lt_Intr *in = T_intr;
  lua_State *L = T_L;
  (void)sig;
  if (L != NULL && in != NULL && (atomic_load(&in->word) & LT_INTR_CANCEL)) hook_install(L);
  errno = saved;
}

static void sig_setup(void) {
  struct sigaction cur, sa;
  if (sigaction(LT_SIGCANCEL, NULL, &cur) != 0) return;
  if (!(cur.sa_flags & SA_SIGINFO) && cur.sa_handler == SIG_DFL) {
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigcancel;
    sa.sa_flags = SA_RESTART;
    sigfillset(&sa.sa_mask);
    if (sigaction(LT_SIGCANCEL, &sa, NULL) == 0) cancel_signal_ok = 1;
  }
}

/* The OS name: the first 15 bytes of *name (read under namemu), up to a NUL. */
static void set_os_name(pthread_t tid, pthread_mutex_t *namemu, char *const *name) {
  char buf[16];
  size_t n;
  pthread_mutex_lock(namemu);
  n = *name ? strnlen(*name, 15) : 0;
  if (n) memcpy(buf, *name, n);
  pthread_mutex_unlock(namemu);
  buf[n] = '\0';
  if (n) pthread_setname_np(tid, buf);
}

void lt_intr_begin(lt_Intr *in, lua_State *L, pthread_mutex_t *namemu, char *const *name,
                   int cancellable) {
  pthread_once(&sig_once, sig_setup);
  T_cancelled = 0;
  if (cancellable && cancel_signal_ok && !T_unblocked) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, LT_SIGCANCEL);
    if (pthread_sigmask(SIG_UNBLOCK, &s, NULL) == 0) T_unblocked = 1;
  }
  pthread_mutex_lock(&in->mu);
  in->tid = pthread_self();
  in->cancellable = cancellable;
  in->state = 1;
  set_os_name(in->tid, namemu, name);
  pthread_mutex_unlock(&in->mu);
  if (!cancellable) return;
  T_intr = in;
  T_L = L;
  atomic_signal_fence(memory_order_seq_cst);
  if (atomic_load(&in->word) & LT_INTR_CANCEL) {   /* cancelled before it ran: hook now */
    sigset_t s, old;
    sigemptyset(&s);
    sigaddset(&s, LT_SIGCANCEL);
    pthread_sigmask(SIG_BLOCK, &s, &old);
    hook_install(L);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
  }
}

void lt_intr_end(lt_Intr *in, lua_State *L) {
  pthread_mutex_lock(&in->mu);
  in->state = 2;                                 /* no more signals from cancel() */
  pthread_mutex_unlock(&in->mu);
  T_L = NULL;                                    /* a late signal finds nothing to hook */
  atomic_signal_fence(memory_order_seq_cst);
  if (T_hooked && L != NULL) hook_restore(L);
  T_hooked = 0;
  T_intr = NULL;
  lt_intr_armed = NULL;
  if (proc_name[0]) pthread_setname_np(pthread_self(), proc_name);
}

int lt_intr_cancel(lt_Intr *in) {
  int asked;
  pthread_mutex_lock(&in->mu);
  asked = in->state == 1 && !in->cancellable ? -1 : in->state != 2;
  if (asked > 0) {
    atomic_fetch_or(&in->word, LT_INTR_CANCEL);
    lt_unpark(&in->word, INT_MAX);               /* a thread parked armed returns */
    if (in->state == 1 && cancel_signal_ok) pthread_kill(in->tid, LT_SIGCANCEL);
  }
  pthread_mutex_unlock(&in->mu);
  return asked;
}

void lt_intr_rename(lt_Intr *in, pthread_mutex_t *namemu, char *const *name) {
  pthread_mutex_lock(&in->mu);
  if (in->state == 1) set_os_name(in->tid, namemu, name);
  pthread_mutex_unlock(&in->mu);
}

int lt_intr_cancelled(lua_State *L, int idx) {
  const char *n;
  if (!T_cancelled) return 0;
  n = lt_getname(L, idx);
  return n != NULL && strcmp(n, "CancelledError") == 0;
}

/* ========================================================================= SIGINT */

static void on_sigint(int sig, siginfo_t *si, void *uc) {
  int saved = errno;
  lt_Intr *m = atomic_load(&main_intr);
  if (m != NULL) {
    atomic_fetch_or(&m->word, LT_INTR_SIGINT);
    wake_word(&m->word);
  }
  if (prev_int.sa_flags & SA_SIGINFO) {
    if (prev_int.sa_sigaction) prev_int.sa_sigaction(sig, si, uc);
  } else if (prev_int.sa_handler == SIG_DFL) {
    sigaction(SIGINT, &prev_int, NULL);          /* exit wait: the next Ctrl-C kills */
  } else if (prev_int.sa_handler != SIG_IGN) {
    prev_int.sa_handler(sig);
  }
  errno = saved;
}

static int is_ours(const struct sigaction *sa) {
  return (sa->sa_flags & SA_SIGINFO) && sa->sa_sigaction == on_sigint;
}

static int is_handler(const struct sigaction *sa) {
  if (sa->sa_flags & SA_SIGINFO) return sa->sa_sigaction != NULL;
  return sa->sa_handler != SIG_DFL && sa->sa_handler != SIG_IGN;
}

static void sigint_chain(const struct sigaction *cur) {
  struct sigaction sa;
  prev_int = *cur;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_sigint;
  sa.sa_flags = SA_SIGINFO | (cur->sa_flags & (SA_RESTART | SA_ONSTACK));
  sa.sa_mask = cur->sa_mask;
  sigaction(SIGINT, &sa, NULL);
}

void lt_intr_main(lt_Intr *in) {
  T_intr = in;
  atomic_store(&main_intr, in);
  if (proc_name[0] == 0 && pthread_getname_np(pthread_self(), proc_name, sizeof proc_name))
    proc_name[0] = 0;                            /* (once: a fork child keeps the parent's) */
}

void lt_intr_parking(atomic_int *armed) {
  lt_Intr *m = atomic_load_explicit(&main_intr, memory_order_relaxed);
  struct sigaction cur;
  if (m == NULL || armed != &m->word) return;
  if (sigaction(SIGINT, NULL, &cur) == 0 && !is_ours(&cur) && is_handler(&cur))
    sigint_chain(&cur);
}

int lt_intr_raise(lua_State *L) {
  lt_Intr *in = T_intr;
  int bits = in ? atomic_load(&in->word) : 0;
  if (bits & LT_INTR_CANCEL) {
    atomic_fetch_and(&in->word, ~LT_INTR_CANCEL);
    T_cancelled = 1;
    return lt_raise(L, "CancelledError");
  }
  if (bits & LT_INTR_SIGINT) {
    lua_Hook h = lua_gethook(L);
    atomic_fetch_and(&in->word, ~LT_INTR_SIGINT);
    if (h != NULL && h != cancel_hook) return 0;  /* the interpreter's hook raises on return */
    return luaL_error(L, "interrupted!");
  }
  return 0;
}

int lt_intr_sleep(double seconds) {
  atomic_int never;
  double deadline;
  int r;
  if (T_intr == NULL) { lt_sleep(seconds); return 0; }
  if (!(seconds > 0)) return 0;
  atomic_init(&never, 0);
  deadline = lt_deadline(seconds);
  lt_intr_arm();
  while ((r = lt_park(&never, 0, deadline)) == 0) {}
  lt_intr_disarm();
  return r == LT_INTERRUPTED ? LT_INTERRUPTED : 0;
}

/* ====================================================================== EXIT WAIT */

int lt_intr_exit_begin(void) {
  lt_Intr *m = atomic_load(&main_intr);
  struct sigaction cur;
  if (atomic_load(&exit_abandoned)) return 0;
  if (m == NULL || T_intr != m) return 1;        /* exit from another thread: as before */
  atomic_store(&exiting, 1);
  atomic_fetch_and(&m->word, ~LT_INTR_SIGINT);   /* the Ctrl-C that ended the script */
  if (sigaction(SIGINT, NULL, &cur) == 0 && !is_ours(&cur)) {
    if (!(cur.sa_flags & SA_SIGINFO) && cur.sa_handler == SIG_DFL) {
      exit_restore_dfl = 1;
      sigint_chain(&cur);
    } else if (is_handler(&cur)) sigint_chain(&cur);
  }
  return 1;
}

void lt_intr_exit_end(int interrupted) {
  lt_Intr *m = atomic_load(&main_intr);
  struct sigaction cur;
  if (interrupted) {
    static const char msg[] =
      "lthreading: interrupted while waiting for threads at exit: they are abandoned\n";
    atomic_store(&exit_abandoned, 1);
    if (write(2, msg, sizeof msg - 1) < 0) {}
  }
  if (m == NULL || T_intr != m) return;          /* the rest is the main thread's */
  if (exit_restore_dfl && sigaction(SIGINT, NULL, &cur) == 0 && is_ours(&cur)) {
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(SIGINT, &dfl, NULL);
  }
  exit_restore_dfl = 0;
  atomic_store(&exiting, 0);
}
