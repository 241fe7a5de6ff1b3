/*
** sync.c -- Condition, Semaphore, BoundedSemaphore, Event, Barrier and Timer, with Python
** 3.13's semantics.
**
** HOW EACH ONE WAITS
**   Condition  each waiter appends a node (on its own C stack) to the condition's FIFO
**              queue, fully releases the lock, then spins briefly and parks on its node's
**              word.  notify(n) pops up to n nodes and hands each a 1; a waiter that timed
**              out removes its own node, unless notify popped it first (then it counts as
**              notified).  The node's word: 0 waiting, 1 notified, 2 parked (wake it).
**   Semaphore  the counter is the futex word: acquire is one CAS when it is positive; at 0
**              a waiter spins briefly, then counts itself in `nwait` and parks.  release(n)
**              adds n and wakes up to n parked waiters only when `nwait` says there are any.
**   Event      one word, generation << 1 | flag (the futex word): set() turns the flag
**              on and bumps the generation in one CAS.  A waiter returns true once the word
**              moved, so a set() followed at once by clear() still releases it.  set() makes
**              a system call only when someone is parked (`nwait`).
**   Barrier    a pthread mutex + a sequence word (bumped and woken on every state
**              change, parked on with the mutex released) around Python's state machine
**              (filling, draining, resetting, broken) plus one more state, ACTION: the last
**              thread to arrive runs the action (decoded from its lt_Buf in its own state)
**              with the mutex released; arrivals, reset() and abort() from other threads
**              wait until the action is over, as they would behind Python's lock.
**   Timer      a Thread subclass written in Lua (TIMER_LUA below), made once per state and
**              registered as the named value "Timer", so it crosses threads by name.
**
** The waits that may be short (Condition, Semaphore, Event) first spin, within a budget
** that each object adapts between LT_SPIN_MIN_NS and LT_SPIN_MAX_NS (see lt_spin_changed): a
** cross-core wake-up costs tens of microseconds and most handoffs are faster, but when the
** two sides share one core (a loaded machine), spinning only delays the other side.
**
** LOCKING
**   Condition: its queue lock `q` (an lt_RawLock) is taken with nothing else held, and
**   nothing is taken under it (lthreading.h's documented order).  The condition's lock
**   (Lock/RLock) is the user's: the queue lock is never held while waiting for it.
**   Barrier: `mu` is a leaf; it is never held across Lua code (the action runs unlocked).
**   Semaphore and Event are lock-free.  Nothing here raises while holding a mutex.
*/
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <errno.h>

#include "lthreading.h"

/* ===================================================================== SHARED HELPERS */

/* Replace the metatable's __index (the methods table) by a function that serves some fields
** itself and falls back to the methods (its upvalue 1). */
static void set_index_with_fields(lua_State *L, lua_CFunction index) {
  /* L: mt (whose __index is the methods table) */
  lua_getfield(L, -1, "__index");
  lua_pushcclosure(L, index, 1);
  lua_setfield(L, -2, "__index");
}

/* ======================================================================== CONDITION */

typedef struct Waiter {
  atomic_int word;                 /* 0 waiting, 1 notified, 2 parked */
  int queued;                      /* still in the queue (guarded by the queue lock) */
  struct Waiter *next, *prev;
} Waiter;

typedef struct lt_Cond {
  lt_Object obj;
  lt_Object *lock;                 /* a Lock or RLock: one reference held */
  lt_RawLock q;                    /* guards head, tail, nwaiters and each node's queued */
  Waiter *head, *tail;
  int nwaiters;
  atomic_int spin;                 /* spin budget of waiters, ns (see lt_spin_changed) */
} lt_Cond;

static void cond_destroy(lt_Object *o) {
  lt_Cond *c = (lt_Cond *)o;
  if (c->lock) lt_decref(c->lock);
  free(c);
}

static void cond_metatable(lua_State *L);
static const lt_Class CondClass = { "Condition", 0, cond_destroy, cond_metatable };

static lt_Cond *checkcond(lua_State *L) { return (lt_Cond *)lt_checkself(L, &CondClass); }

static void q_unlink(lt_Cond *c, Waiter *w) {   /* queue lock held */
  if (w->prev) w->prev->next = w->next; else c->head = w->next;
  if (w->next) w->next->prev = w->prev; else c->tail = w->prev;
  w->next = w->prev = NULL;
  w->queued = 0;
  c->nwaiters--;
}

/*
** Wait on c until notified or the deadline.  The caller holds c->lock (checked).  Returns
** whether it was notified.  The node lives on this C stack: the notifier touches it only
** under the queue lock and last of all through the exchange that hands it its 1, so once
** this thread saw the 1 (or found itself out of the queue), nobody touches it again; a
** futex wake on its address after that is at most a spurious wake-up for someone else.
*/
static void cond_notify_(lt_Cond *c, lua_Integer n);

static int cond_wait_(lt_Cond *c, double deadline) {
  Waiter w;
  lt_LockState st;
  int notified, r = 0;
  atomic_init(&w.word, 0);
  w.queued = 1;
  w.next = NULL;
  lt_rawlock_acquire(&c->q, 1, LT_FOREVER);
  w.prev = c->tail;
  if (c->tail) c->tail->next = &w; else c->head = &w;
  c->tail = &w;
  c->nwaiters++;
  lt_rawlock_release(&c->q);
  lt_lock_release_save(c->lock, &st);
  LT_TEST_WINDOW(50);                  /* (a notify may come meanwhile) */
  lt_intr_arm();
  if (!lt_spin_changed(&w.word, 0, deadline, &c->spin)) {
    int expect = 0;
    if (atomic_compare_exchange_strong(&w.word, &expect, 2)) {
      while (atomic_load(&w.word) == 2)
        if ((r = lt_park_spun(&w.word, 2, deadline, &c->spin, 0)) < 0) break;
    }
  }
  lt_intr_disarm();
  notified = atomic_load(&w.word) == 1;
  if (!notified) {                        /* timed out: leave the queue, unless popped */
    lt_rawlock_acquire(&c->q, 1, LT_FOREVER);
    if (w.queued) q_unlink(c, &w);
    else notified = 1;                    /* notify took us: its word is already 1 */
    lt_rawlock_release(&c->q);
  }
  /* interrupted: out of the queue; a notification that came meanwhile goes to the next */
  if (r == LT_INTERRUPTED && notified) cond_notify_(c, 1);
  lt_lock_acquire_restore(c->lock, &st, LT_FOREVER);   /* (never interrupted) */
  return r == LT_INTERRUPTED ? LT_INTERRUPTED : notified;
}

static void cond_notify_(lt_Cond *c, lua_Integer n) {
  lt_rawlock_acquire(&c->q, 1, LT_FOREVER);
  while (n-- > 0 && c->head) {
    Waiter *w = c->head;
    q_unlink(c, w);
    if (atomic_exchange(&w->word, 1) == 2) lt_unpark(&w->word, 1);
  }
  lt_rawlock_release(&c->q);
}

/* Condition([lock]): upvalue 1 is the RLock constructor (the default lock). */
static int f_condition(lua_State *L) {
  lt_Object *lock;
  lt_Cond *c;
  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_call(L, 0, 1);
  }
  lock = lt_checklocklike(L, 1);
  c = (lt_Cond *)lt_newobject(L, &CondClass, sizeof(lt_Cond));
  atomic_init(&c->q.word, 0);
  atomic_init(&c->spin, 0);   /* 0: lt_spin_changed starts at its maximum */
  lt_incref(lock);
  c->lock = lock;
  return 1;
}

static int cond_acquire(lua_State *L) {
  lt_Cond *c = checkcond(L);
  double timeout;
  int blocking = lt_acquire_args(L, &timeout, NULL);
  int got = lt_lock_acquire_obj(c->lock, blocking, lt_deadline(timeout));
  if (!got && blocking && lt_intr_pending()) lt_intr_raise(L);
  lua_pushboolean(L, got);
  return 1;
}

static int cond_release(lua_State *L) {
  lt_Cond *c = checkcond(L);
  if (!lt_lock_is_owned(c->lock))
    return luaL_error(L, c->lock->cls == &lt_LockClass ? "release unlocked lock"
                                                        : "cannot release un-acquired lock");
  lt_lock_release_obj(c->lock);
  return 0;
}

static int cond_wait(lua_State *L) {
  lt_Cond *c = checkcond(L);
  double timeout = lt_opttimeout(L, 2);
  int r;
  if (!lt_lock_is_owned(c->lock)) return luaL_error(L, "cannot wait on un-acquired lock");
  r = cond_wait_(c, lt_deadline(timeout));
  if (r == LT_INTERRUPTED) r = lt_intr_raise(L);   /* the lock is held again, as Python */
  lua_pushboolean(L, r);
  return 1;
}

/* wait_for(predicate, [timeout]): Python's loop, one overall deadline. */
static int cond_wait_for(lua_State *L) {
  lt_Cond *c = checkcond(L);
  double timeout = lt_opttimeout(L, 3), deadline = LT_FOREVER;
  int started = 0;
  luaL_checkany(L, 2);
  lua_settop(L, 2);
  lua_pushvalue(L, 2);
  lua_call(L, 0, 1);                                     /* L: self pred result */
  while (!lua_toboolean(L, 3)) {
    if (timeout >= 0) {
      if (!started) { deadline = lt_deadline(timeout); started = 1; }
      else if (lt_remaining(deadline) <= 0) break;
    }
    if (!lt_lock_is_owned(c->lock)) return luaL_error(L, "cannot wait on un-acquired lock");
    if (cond_wait_(c, deadline) == LT_INTERRUPTED) { lt_intr_raise(L); return 1; }
    lua_settop(L, 2);
    lua_pushvalue(L, 2);
    lua_call(L, 0, 1);
  }
  return 1;
}

static int cond_notify(lua_State *L) {
  lt_Cond *c = checkcond(L);
  lua_Integer n = luaL_optinteger(L, 2, 1);
  if (!lt_lock_is_owned(c->lock)) return luaL_error(L, "cannot notify on un-acquired lock");
  cond_notify_(c, n);
  return 0;
}

static int cond_notify_all(lua_State *L) {
  lt_Cond *c = checkcond(L);
  if (!lt_lock_is_owned(c->lock)) return luaL_error(L, "cannot notify on un-acquired lock");
  cond_notify_(c, LUA_MAXINTEGER);
  return 0;
}

static int cond_tostring(lua_State *L) {
  lt_Cond *c = checkcond(L);
  int n;
  lt_rawlock_acquire(&c->q, 1, LT_FOREVER);
  n = c->nwaiters;
  lt_rawlock_release(&c->q);
  lt_pushobject(L, c->lock);
  luaL_tolstring(L, -1, NULL);
  lua_pushfstring(L, "<Condition(%s, %d)>", lua_tostring(L, -1), n);
  return 1;
}

static void cond_metatable(lua_State *L) {
  static const luaL_Reg meth[] = {
    {"acquire", cond_acquire}, {"release", cond_release}, {"wait", cond_wait},
    {"wait_for", cond_wait_for}, {"notify", cond_notify}, {"notify_all", cond_notify_all},
    {"notifyAll", cond_notify_all}, {NULL, NULL}
  };
  static const luaL_Reg metameth[] = { {"__tostring", cond_tostring}, {NULL, NULL} };
  lt_classmetatable(L, &CondClass, meth, metameth);
  lt_locklike_methods(L);
}

/* ======================================================================== SEMAPHORE */

typedef struct lt_Sem {
  lt_Object obj;
  atomic_int value;                /* the counter, and the futex word waiters park on */
  atomic_int nwait;                /* waiters parked or about to park */
  atomic_int spin;                 /* spin budget of waiters, ns (see lt_spin_changed) */
  int bound;                       /* BoundedSemaphore: the initial value; else -1 */
} lt_Sem;

static void sem_destroy(lt_Object *o) { free(o); }
static void sem_metatable(lua_State *L);
static void bsem_metatable(lua_State *L);
static const lt_Class SemClass = { "Semaphore", 0, sem_destroy, sem_metatable };
static const lt_Class BSemClass = { "BoundedSemaphore", 0, sem_destroy, bsem_metatable };

static int sem_trydec(lt_Sem *s) {
  int v = atomic_load_explicit(&s->value, memory_order_relaxed);
  while (v > 0)
    if (atomic_compare_exchange_weak_explicit(&s->value, &v, v - 1, memory_order_acquire,
                                              memory_order_relaxed))
      return 1;
  return 0;
}

/*
** The slow path.  A waiter counts itself in nwait before its last look at the counter, and
** release() adds to the counter before looking at nwait (both sequentially consistent), so
** either release sees the waiter and wakes it, or the waiter sees the new count (in the
** futex's own check at the latest).
*/
static int sem_acquire_slow(lt_Sem *s, double timeout) {
  double deadline = lt_deadline(timeout);
  int got = 0, r;
  lt_intr_arm();
  if (lt_spin_changed(&s->value, 0, deadline, &s->spin) && sem_trydec(s)) {
    lt_intr_disarm();
    return 1;
  }
  atomic_fetch_add(&s->nwait, 1);
  LT_TEST_WINDOW(50);                  /* (a release may come meanwhile) */
  for (;;) {
    if (sem_trydec(s)) { got = 1; break; }
    if ((r = lt_park_spun(&s->value, 0, deadline, &s->spin, 0)) < 0) {
      got = r == LT_INTERRUPTED ? 0 : sem_trydec(s);   /* interrupted: acquire nothing */
      break;
    }
  }
  lt_intr_disarm();
  atomic_fetch_sub(&s->nwait, 1);
  /* interrupted while a release came: pass it on */
  if (!got && atomic_load(&s->value) > 0 && atomic_load(&s->nwait) > 0) lt_unpark(&s->value, 1);
  return got;
}

/* The methods are shared by both classes: each has a thin entry per class, so that
** lt_checkself's fast path (one class) serves both. */
static int sem_acquire_(lua_State *L, lt_Sem *s) {
  double timeout = -1;
  int blocking = lua_gettop(L) == 1 ? 1 : lt_acquire_args(L, &timeout,
                                                     "can't specify timeout for non-blocking acquire");
  int got = sem_trydec(s);
  if (!got && blocking) {
    got = sem_acquire_slow(s, timeout);
    if (!got && lt_intr_pending()) lt_intr_raise(L);
  }
  lua_pushboolean(L, got);
  return 1;
}

static int sem_release_(lua_State *L, lt_Sem *s) {
  lua_Integer n = luaL_optinteger(L, 2, 1);
  int v, over;
  if (n < 1) return luaL_argerror(L, 2, "n must be one or more");
  v = atomic_load(&s->value);
  do {
    lua_Integer limit = s->bound >= 0 ? s->bound : INT_MAX;
    over = (lua_Integer)v + n > limit;
    if (over) break;
  } while (!atomic_compare_exchange_weak(&s->value, &v, v + (int)n));
  if (over)
    return luaL_error(L, s->bound >= 0 ? "Semaphore released too many times"
                                       : "Semaphore value too large");
  LT_TEST_WINDOW(53);                  /* (a waiter may register meanwhile) */
  if (atomic_load(&s->nwait) > 0) lt_unpark(&s->value, n > INT_MAX ? INT_MAX : (int)n);
  return 0;
}

static int sem_tostring_(lua_State *L, lt_Sem *s) {
  int v = atomic_load(&s->value);
  if (s->bound >= 0)
    lua_pushfstring(L, "<BoundedSemaphore at %p: value=%d/%d>", (void *)s, v, s->bound);
  else lua_pushfstring(L, "<Semaphore at %p: value=%d>", (void *)s, v);
  return 1;
}

#define SEM_ENTRIES(prefix, cls) \
  static int prefix##_acquire(lua_State *L) { \
    return sem_acquire_(L, (lt_Sem *)lt_checkself(L, &cls)); } \
  static int prefix##_release(lua_State *L) { \
    return sem_release_(L, (lt_Sem *)lt_checkself(L, &cls)); } \
  static int prefix##_tostring(lua_State *L) { \
    return sem_tostring_(L, (lt_Sem *)lt_checkself(L, &cls)); } \
  static void prefix##_metatable(lua_State *L) { \
    static const luaL_Reg meth[] = { \
      {"acquire", prefix##_acquire}, {"release", prefix##_release}, {NULL, NULL} }; \
    static const luaL_Reg metameth[] = { {"__tostring", prefix##_tostring}, {NULL, NULL} }; \
    lt_classmetatable(L, &cls, meth, metameth); \
    lt_locklike_methods(L); \
  }

SEM_ENTRIES(sem, SemClass)
SEM_ENTRIES(bsem, BSemClass)

static int new_sem(lua_State *L, const lt_Class *cls) {
  lua_Integer v = lt_optintoption(L, 1, "value", 1);
  lt_Sem *s;
  if (v < 0) return luaL_argerror(L, 1, "value: semaphore initial value must be >= 0");
  if (v > INT_MAX) return luaL_argerror(L, 1, "value: semaphore initial value too large");
  s = (lt_Sem *)lt_newobject(L, cls, sizeof(lt_Sem));
  atomic_init(&s->value, (int)v);
  atomic_init(&s->nwait, 0);
  atomic_init(&s->spin, 0);   /* 0: lt_spin_changed starts at its maximum */
  s->bound = cls == &BSemClass ? (int)v : -1;
  return 1;
}

static int f_semaphore(lua_State *L) { return new_sem(L, &SemClass); }
static int f_bounded_semaphore(lua_State *L) { return new_sem(L, &BSemClass); }

/* ============================================================================ EVENT */

typedef struct lt_Event {
  lt_Object obj;
  atomic_int state;                /* generation << 1 | flag: the futex word */
  atomic_int nwait;                /* waiters parked or about to park */
  atomic_int spin;                 /* spin budget of waiters, ns (see lt_spin_changed) */
  _Atomic(lt_Notify *) note;       /* fileno()'s notifier, NULL until asked for */
} lt_Event;

static void event_destroy(lt_Object *o) {
  lt_notify_free(atomic_load(&((lt_Event *)o)->note));
  free(o);
}

static int event_ready(void *arg) { return atomic_load(&((lt_Event *)arg)->state) & 1; }
static void event_metatable(lua_State *L);
static const lt_Class EventClass = { "Event", 0, event_destroy, event_metatable };

static lt_Event *checkevent(lua_State *L) { return (lt_Event *)lt_checkself(L, &EventClass); }

/*
** The flag and the generation share one word, so that they change together: set() turns
** the flag on and bumps the generation in one compare-and-swap, clear() only clears the
** flag.  A waiter that saw the word with the flag off returns true as soon as the word
** differs: only a set() changes a word whose flag is off.  (With two words, a set()
** preempted between them could wake a later wait() that no set() answered.)  The nwait/word
** pair works as the Semaphore's nwait/value pair: set() changes the word, then looks at nwait.
*/
static int event_wait_(lt_Event *e, double timeout) {
  double deadline;
  int s, got;
  s = atomic_load(&e->state);
  if (s & 1) return 1;
  if (timeout == 0) return 0;
  deadline = lt_deadline(timeout);
  lt_intr_arm();
  if (lt_spin_changed(&e->state, s, deadline, &e->spin)) { lt_intr_disarm(); return 1; }
  atomic_fetch_add(&e->nwait, 1);
  LT_TEST_WINDOW(50);                  /* (a set may come meanwhile) */
  for (;;) {
    int r;
    if (atomic_load(&e->state) != s) { got = 1; break; }
    if ((r = lt_park_spun(&e->state, s, deadline, &e->spin, 0)) < 0) {
      got = r == LT_INTERRUPTED ? LT_INTERRUPTED : atomic_load(&e->state) != s;
      break;
    }
  }
  lt_intr_disarm();
  atomic_fetch_sub(&e->nwait, 1);
  return got;
}

static int event_is_set(lua_State *L) {
  lt_Event *e = checkevent(L);
  lua_pushboolean(L, atomic_load(&e->state) & 1);
  return 1;
}

static int event_set(lua_State *L) {
  lt_Event *e = checkevent(L);
  int s = atomic_load(&e->state);
  for (;;) {
    int ns;
    if (s & 1) return 0;                               /* already set */
    ns = (int)(((((unsigned)s >> 1) + 1u) << 1) | 1u);  /* next generation, flag on */
    if (atomic_compare_exchange_weak(&e->state, &s, ns)) break;
  }
  LT_TEST_WINDOW(53);                  /* (a waiter may register meanwhile) */
  if (atomic_load(&e->nwait) > 0) lt_unpark(&e->state, INT_MAX);
  lt_notify(&e->note, event_ready, e);
  return 0;
}

static int event_clear(lua_State *L) {
  lt_Event *e = checkevent(L);
  atomic_fetch_and(&e->state, ~1);
  lt_notify(&e->note, event_ready, e);
  return 0;
}

static int event_wait(lua_State *L) {
  lt_Event *e = checkevent(L);
  int r = event_wait_(e, lt_opttimeout(L, 2));
  if (r == LT_INTERRUPTED) r = lt_intr_raise(L);
  lua_pushboolean(L, r);
  return 1;
}

/* ev:fileno() -> an fd that polls readable while the flag is set */
static int event_fileno(lua_State *L) {
  lt_Event *e = checkevent(L);
  return lt_pushfileno(L, &e->note, event_ready, e);
}

static int event_tostring(lua_State *L) {
  lt_Event *e = checkevent(L);
  lua_pushfstring(L, "<Event at %p: %s>", (void *)e, (atomic_load(&e->state) & 1) ? "set" : "unset");
  return 1;
}

static void event_metatable(lua_State *L) {
  static const luaL_Reg meth[] = {
    {"is_set", event_is_set}, {"isSet", event_is_set}, {"set", event_set},
    {"clear", event_clear}, {"wait", event_wait}, {"fileno", event_fileno}, {NULL, NULL}
  };
  static const luaL_Reg metameth[] = { {"__tostring", event_tostring}, {NULL, NULL} };
  lt_classmetatable(L, &EventClass, meth, metameth);
}

static int f_event(lua_State *L) {
  lt_Event *e;
  lt_checknoargs(L);
  e = (lt_Event *)lt_newobject(L, &EventClass, sizeof(lt_Event));
  atomic_init(&e->state, 0);
  atomic_init(&e->nwait, 0);
  atomic_init(&e->spin, 0);   /* 0: lt_spin_changed starts at its maximum */
  atomic_init(&e->note, NULL);
  return 1;
}

/* ========================================================================== BARRIER */

enum { B_BROKEN = -2, B_RESETTING = -1, B_FILLING = 0, B_DRAINING = 1, B_ACTION = 2 };

typedef struct lt_Barrier {
  lt_Object obj;
  pthread_mutex_t mu;              /* guards everything below but parties, timeout, action */
  atomic_int seq;                  /* bumped (and woken) on every state change, under mu */
  int parties, count, state;
  uintptr_t runner;                /* ident of the thread running the action (B_ACTION) */
  double timeout;                  /* the default timeout, -1 forever */
  lt_Buf *action;                  /* NULL: none; immutable once made */
} lt_Barrier;

static void barrier_destroy(lt_Object *o) {
  lt_Barrier *b = (lt_Barrier *)o;
  pthread_mutex_destroy(&b->mu);
  lt_buf_free(b->action);
  free(b);
}

static void barrier_metatable(lua_State *L);
static const lt_Class BarrierClass = { "Barrier", 0, barrier_destroy, barrier_metatable };

static lt_Barrier *checkbarrier(lua_State *L) {
  return (lt_Barrier *)lt_checkself(L, &BarrierClass);
}

/* Wake every waiter: the state changed (mu held). */
static void bar_broadcast(lt_Barrier *b) {
  atomic_fetch_add(&b->seq, 1);
  lt_unpark(&b->seq, INT_MAX);
}

/* Wait for the next state change or the deadline, mu released meanwhile (mu held on entry
** and on return).  1 woken (maybe spuriously: callers loop), 0 timed out, LT_INTERRUPTED. */
static int bar_wait(lt_Barrier *b, double deadline) {
  int seen = atomic_load(&b->seq), r;
  pthread_mutex_unlock(&b->mu);
  r = lt_park(&b->seq, seen, deadline);
  pthread_mutex_lock(&b->mu);
  return r == 0 ? 1 : r == -1 ? 0 : r;
}

/* The same, never interrupted (the caller may be armed). */
static void bar_wait_quiet(lt_Barrier *b) {
  atomic_int *armed = lt_intr_armed;
  lt_intr_armed = NULL;
  bar_wait(b, LT_FOREVER);
  lt_intr_armed = armed;
}

static void barrier_break_(lt_Barrier *b) {       /* mu held */
  b->state = B_BROKEN;
  bar_broadcast(b);
}

/* A thread leaves wait(): the last one out of a draining or resetting barrier refills it. */
static void barrier_exit_(lt_Barrier *b) {        /* mu held */
  b->count--;
  if (b->count == 0 && (b->state == B_RESETTING || b->state == B_DRAINING)) {
    b->state = B_FILLING;
    bar_broadcast(b);
  }
}

/* reset() and abort() from another thread wait for a running action, as behind Python's
** lock; from inside the action they act at once (Python would deadlock there). */
static void barrier_lock_quiet(lt_Barrier *b) {
  uintptr_t me = lt_thread_ident();
  pthread_mutex_lock(&b->mu);
  while (b->state == B_ACTION && b->runner != me) bar_wait_quiet(b);
}

/* lua_pcall'd: decode the action (1: light userdata lt_Buf) here and call it. */
static int run_action(lua_State *L) {
  const lt_Buf *buf = (const lt_Buf *)lua_touserdata(L, 1);
  lua_settop(L, 0);
  lt_decode(L, buf);
  lua_settop(L, 1);
  lua_call(L, 0, 0);
  return 0;
}

static int barrier_wait(lua_State *L) {
  lt_Barrier *b = checkbarrier(L);
  double timeout = lua_isnoneornil(L, 2) ? b->timeout : lt_opttimeout(L, 2);
  double deadline = lt_deadline(timeout);
  int index, broken = 0, action_failed = 0, interrupted = 0;
  lua_settop(L, 1);
  lt_intr_arm();
  pthread_mutex_lock(&b->mu);
  if (b->state == B_ACTION && b->runner == lt_thread_ident()) {
    pthread_mutex_unlock(&b->mu);     /* it would wait for itself (Python deadlocks) */
    return luaL_error(L, "a Barrier's action cannot wait on its own Barrier (called from inside its own action)");
  }
  while (b->state == B_DRAINING || b->state == B_RESETTING || b->state == B_ACTION)
    if (bar_wait(b, LT_FOREVER) == LT_INTERRUPTED) {  /* not counted yet: just leave */
      pthread_mutex_unlock(&b->mu);
      lt_intr_disarm();
      lt_intr_raise(L);
      return 0;
    }
  if (b->state < 0) {
    pthread_mutex_unlock(&b->mu);
    lt_intr_disarm();
    return lt_raise(L, "BrokenBarrierError");
  }
  index = b->count++;
  if (index + 1 == b->parties) {               /* the last to arrive releases the others */
    lt_intr_disarm();                          /* (the action runs Lua code) */
    if (b->action) {
      int status;
      b->state = B_ACTION;
      b->runner = lt_thread_ident();
      pthread_mutex_unlock(&b->mu);
      lua_pushcfunction(L, run_action);
      lua_pushlightuserdata(L, b->action);
      status = lua_pcall(L, 1, 0, 0);         /* on error: L: self err */
      pthread_mutex_lock(&b->mu);
      b->runner = 0;
      if (status != LUA_OK) { action_failed = 1; barrier_break_(b); }
      else if (b->state != B_ACTION) broken = 1;  /* the action itself aborted or reset */
    }
    if (!action_failed && !broken) {
      b->state = B_DRAINING;
      bar_broadcast(b);
    }
  } else {
    while (b->state == B_FILLING || b->state == B_ACTION) {
      int r;
      if (b->state == B_ACTION) { bar_wait_quiet(b); continue; }  /* the round is full */
      r = bar_wait(b, deadline);
      if (r == 0 && b->state == B_FILLING) {
        barrier_break_(b);                    /* timed out: break it for everyone */
        break;
      }
      if (r == LT_INTERRUPTED && b->state == B_FILLING) {
        interrupted = 1;                      /* leave the round, as Python's finally */
        break;
      }
    }
    if (b->state < 0) broken = 1;
    lt_intr_disarm();
  }
  barrier_exit_(b);
  pthread_mutex_unlock(&b->mu);
  if (interrupted) { lt_intr_raise(L); return 0; }
  if (action_failed) return lua_error(L);
  if (broken) return lt_raise(L, "BrokenBarrierError");
  lua_pushinteger(L, index);
  return 1;
}

static int barrier_reset(lua_State *L) {
  lt_Barrier *b = checkbarrier(L);
  barrier_lock_quiet(b);
  if (b->count > 0) {
    if (b->state == B_FILLING || b->state == B_BROKEN || b->state == B_ACTION)
      b->state = B_RESETTING;                 /* cleared by the last thread to leave */
  } else b->state = B_FILLING;
  bar_broadcast(b);
  pthread_mutex_unlock(&b->mu);
  return 0;
}

static int barrier_abort(lua_State *L) {
  lt_Barrier *b = checkbarrier(L);
  barrier_lock_quiet(b);
  barrier_break_(b);
  pthread_mutex_unlock(&b->mu);
  return 0;
}

/* __index: the fields parties, n_waiting, broken; then the methods (upvalue 1). */
static int barrier_index(lua_State *L) {
  lt_Barrier *b = checkbarrier(L);
  const char *k = lua_tostring(L, 2);
  if (k != NULL && lua_type(L, 2) == LUA_TSTRING) {
    if (strcmp(k, "parties") == 0) { lua_pushinteger(L, b->parties); return 1; }
    if (strcmp(k, "n_waiting") == 0 || strcmp(k, "broken") == 0) {
      int state, count;
      pthread_mutex_lock(&b->mu);
      state = b->state;
      count = b->count;
      pthread_mutex_unlock(&b->mu);
      if (k[0] == 'b') lua_pushboolean(L, state == B_BROKEN);
      else lua_pushinteger(L, (state == B_FILLING || state == B_ACTION) ? count : 0);
      return 1;
    }
  }
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(1));
  return 1;
}

static int barrier_tostring(lua_State *L) {
  lt_Barrier *b = checkbarrier(L);
  int state, count;
  pthread_mutex_lock(&b->mu);
  state = b->state;
  count = b->count;
  pthread_mutex_unlock(&b->mu);
  if (state == B_BROKEN) lua_pushfstring(L, "<Barrier at %p: broken>", (void *)b);
  else lua_pushfstring(L, "<Barrier at %p: waiters=%d/%d>", (void *)b,
                       (state == B_FILLING || state == B_ACTION) ? count : 0, b->parties);
  return 1;
}

static void barrier_metatable(lua_State *L) {
  static const luaL_Reg meth[] = {
    {"wait", barrier_wait}, {"reset", barrier_reset}, {"abort", barrier_abort},
    {NULL, NULL}
  };
  static const luaL_Reg metameth[] = { {"__tostring", barrier_tostring}, {NULL, NULL} };
  lt_classmetatable(L, &BarrierClass, meth, metameth);
  set_index_with_fields(L, barrier_index);
}

/* Barrier(parties, [action], [timeout]) */
static int f_barrier(lua_State *L) {
  static const char *const names[] = { "action" };
  lua_Integer parties;
  double timeout;
  int has_action = !lua_isnoneornil(L, 2);
  lt_Barrier *b;
  if (lua_isnoneornil(L, 1)) luaL_typeerror(L, 1, "parties: number");
  parties = lt_optintoption(L, 1, "parties", 0);
  if (parties < 1) return luaL_argerror(L, 1, "parties must be > 0");
  if (parties > INT_MAX) return luaL_argerror(L, 1, "too many parties");
  if (has_action && !lua_isfunction(L, 2)) {
    if (!luaL_getmetafield(L, 2, "__call")) luaL_typeerror(L, 2, "action: callable");
    lua_pop(L, 1);
  }
  timeout = lt_opttimeout(L, 3);
  lua_settop(L, 2);
  b = (lt_Barrier *)lt_newobject(L, &BarrierClass, sizeof(lt_Barrier));  /* L: p a self */
  pthread_mutex_init(&b->mu, NULL);
  atomic_init(&b->seq, 0);
  b->parties = (int)parties;
  b->timeout = timeout;
  b->state = B_FILLING;
  if (has_action) b->action = lt_encode(L, 2, 1, names);   /* may raise: b is consistent */
  return 1;
}

/* ============================================================================ TIMER */

/* Called with the module's Thread class, Event constructor and TIMEOUT_MAX; returns the
** Timer class. */
static const char TIMER_LUA[] =
  "local Thread, Event, TIMEOUT_MAX = ...\n"
  "local type, pairs, select, error, pack, unpack = type, pairs, select, error, table.pack,"
  " table.unpack\n"
  "local getmetatable = debug and debug.getmetatable or getmetatable\n"
  "local Timer = Thread:extend()\n"
  "-- Timer(interval, f, ...) or Timer{interval =, target =, args =, name =, daemon =}\n"
  "function Timer:init(interval, f, ...)\n"
  "  local opts, what\n"
  "  if type(interval) == 'table' and f == nil and select('#', ...) == 0 then\n"
  "    opts = {}\n"
  "    for k, v in pairs(interval) do opts[k] = v end\n"
  "    interval, opts.interval, what = opts.interval, nil, \"option 'interval'\"\n"
  "  else\n"
  "    opts, what = {target = f, args = pack(...)}, 'argument #1'\n"
  "    local mt = f ~= nil and type(f) ~= 'function' and getmetatable(f)\n"
  "    if f ~= nil and type(f) ~= 'function' and not (type(mt) == 'table' and mt.__call) then\n"
  "      error(\"bad argument #2 to 'Timer' (function expected, got \" .. type(f) .. ')', 0)\n"
  "    end\n"
  "  end\n"
  "  -- a number, not NaN, at most TIMEOUT_MAX (a negative one fires at once)\n"
  "  if type(interval) ~= 'number' then\n"
  "    error(\"bad \" .. what .. \" to 'Timer' (number expected, got \" .. type(interval) .. ')', 0)\n"
  "  elseif interval ~= interval or interval > TIMEOUT_MAX then\n"
  "    error(\"bad \" .. what .. \" to 'Timer' (number up to TIMEOUT_MAX expected, got \" ..\n"
  "          (interval ~= interval and 'nan' or tostring(interval)) .. ')', 0)\n"
  "  end\n"
  "  Thread.init(self, opts)\n"
  "  self.interval = interval\n"
  "  self.finished = Event()\n"
  "end\n"
  "-- wait out the interval, then call the target unless cancelled; returns its values\n"
  "function Timer:run()\n"
  "  local finished = self.finished\n"
  "  local interval = self.interval\n"
  "  finished:wait(interval > 0 and interval or 0)\n"
  "  if finished:is_set() then return end\n"
  "  local r = pack(Thread.run(self))\n"
  "  finished:set()\n"
  "  return unpack(r, 1, r.n)\n"
  "end\n"
  "-- stop the timer if it is still waiting (also before start); harmless afterwards\n"
  "function Timer:cancel()\n"
  "  self.finished:set()\n"
  "end\n"
  "return Timer\n";

static void open_timer(lua_State *L) {
  /* module table on top, with Thread and Event already in it */
  if (lt_pushnamed_raw(L, "Timer") == LUA_TNIL) {
    lua_pop(L, 1);
    if (luaL_loadbuffer(L, TIMER_LUA, sizeof TIMER_LUA - 1, "=lthreading.Timer") != LUA_OK)
      lua_error(L);
    lua_getfield(L, -2, "Thread");
    lua_getfield(L, -3, "Event");
    lua_pushnumber(L, LT_TIMEOUT_MAX);
    lua_call(L, 3, 1);
    lt_setname(L, -1, "Timer");
  }
  lua_setfield(L, -2, "Timer");
}

/* ============================================================================= OPEN */

void lt_open_sync(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"Semaphore", f_semaphore}, {"BoundedSemaphore", f_bounded_semaphore},
    {"Event", f_event}, {"Barrier", f_barrier}, {NULL, NULL}
  };
  /* module table on top, Lock and RLock already in it */
  luaL_setfuncs(L, funcs, 0);
  lua_getfield(L, -1, "RLock");
  lua_pushcclosure(L, f_condition, 1);
  lua_setfield(L, -2, "Condition");
  open_timer(L);
}
