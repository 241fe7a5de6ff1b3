/*
** pool.h -- what pool.c (the executor) and future.c (the Future object) share.  Private to
** those two files.
**
** A Future is made by the pool's submit (lt_future_new) and moved through its states by
** the workers (lt_future_start, lt_future_finish) and by whoever cancels it
** (lt_future_cancel); everything else about it (its methods, its waiters, as_completed)
** lives in future.c.  See future.c for the Future's locking rules.
*/
#ifndef LT_POOL_H
#define LT_POOL_H

#include <sched.h>

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
static inline int spin_step(int i, double until) {
  if (i <= LT_POOL_SPIN_TIGHT) lt_cpu_relax();
  else sched_yield();
  return (i & 7) != 0 || lt_now() < until;
}

enum { F_PENDING, F_RUNNING, F_CANCELLED, F_FINISHED };

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
  const char *errname;         /* or a named error value ("BrokenThreadPool"), raised as is */
  atomic_int word, waiters;    /* result() waiters park on word */
  Link *links;
  struct Callback *callbacks;  /* add_done_callback's, in order, until done (under mu) */
  _Atomic(lt_Notify *) note;   /* fileno()'s notifier, NULL until asked for */
} Future;

extern const lt_Class lt_FutureClass;

/* A new PENDING Future, owned by its proxy pushed on the stack. */
Future *lt_future_new(lua_State *L);
/* PENDING -> RUNNING; 0 if it was cancelled. */
int  lt_future_start(Future *f);
/* -> FINISHED with the values (ok) or the error value in result (owned by f from now on),
** the error's traceback (malloc'd, or NULL) and, when result is NULL, an error message.
** Then f's done callbacks run in L (the finishing thread's state; NULL: none, they are
** reported on stderr as not run).  Never raises. */
void lt_future_finish(lua_State *L, Future *f, int ok, lt_Buf *result, char *tb,
                      const char *cerr);
/* -> FINISHED with the named error value errname (a static string), as a failed task. */
void lt_future_fail_named(lua_State *L, Future *f, const char *errname);
/* PENDING -> CANCELLED: 1 if cancelled now or before.  The callbacks run in L, as above. */
int  lt_future_cancel(lua_State *L, Future *f);
/* Wait until f is done or the deadline passed; returns whether it is done. */
int  lt_future_wait(Future *f, double deadline);
/* Push f's results (f FINISHED) or raise its error (CancelledError if cancelled). */
int  lt_future_push_result(lua_State *L, Future *f);
/* Set as_completed, wait and its constants in the module table on top. */
void lt_open_future(lua_State *L);

#endif
