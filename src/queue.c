/*
** queue.c -- Queue, LifoQueue, PriorityQueue, SimpleQueue: messages between threads.
**   This file: the storage, the blocking, the methods.  Marshaling an item into an Item
**   and back, and PriorityQueue's keys and heap, are in queue_item.c (queue.h: what they
**   share).
**
** STORAGE
**   Queue/SimpleQueue (FIFO): a linked list of fixed segments with TWO locks, as in
**   Michael & Scott's two-lock queue: producers append at the tail under q->pmu, consumers
**   take at the head under q->tmu, and neither ever waits for the other's lock.  Each slot
**   carries its own "full" flag (a release store after the item is written), so a consumer
**   finds an item and its publication on one cache line and never reads the producers'
**   lines; consumers do not write slots back either (a reused segment is cleared by the
**   producer that takes it from q->spare).  nput and nget, monotonic counters each on its
**   own side's line, give qsize(), the room of a bounded queue (producers keep a copy of
**   nget, re-read only when it says "full") and, with ndone, the unfinished tasks.
**   LifoQueue: a growable stack; PriorityQueue: a binary min-heap of (priority, sequence
**   number, Item) -- the priority (a number, or a string compared bytewise; numbers sort
**   before strings) is read at put time, and the sequence number makes equal priorities
**   FIFO.  Both use one lock: plock == tlock == &q->pmu.
**
** BLOCKING
**   A getter that finds nothing spins outside the lock for a bounded, adaptive time (see
**   spin_until), then parks on q->get_word, Dekker-style: it registers in q->getters,
**   re-checks, and parks; a putter publishes nput first, then looks at q->getters.
**   q->get_sig keeps one wake-up in flight at most (see signal1); a getter leaving items
**   behind signals the next waiter, so nobody sleeps beside an item.  Putters of a bounded
**   queue wait for room the same way on put_word; join() on join_word.  An uncontended
**   put/get pair makes no system call.
**   shutdown() takes both locks (consumers' first), sets q->shut and wakes everybody.
**
** LOCKING
**   q->tmu -> q->pmu (only shutdown takes both).  Nothing that can raise (Lua API,
**   lt_encode/lt_decode) and no lt_buf_free (a destructor could run) under either: items
**   are encoded before locking, moved out under the lock, pushed and freed after unlocking.
**   (free() of our own memory under a lock is fine.)
*/
#include <limits.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "queue.h"

#if !defined(LT_QSPIN_MAX_NS)
#define LT_QSPIN_MAX_NS 30000  /* the longest spin of a waiter before parking, ns */
#endif
#if !defined(LT_QSPIN_MIN_NS)
#define LT_QSPIN_MIN_NS 2000   /* ... and the shortest */
#endif
#if !defined(LT_QSPIN_TIGHT)
#define LT_QSPIN_TIGHT 64      /* polls a spinning waiter makes before it yields between polls */
#endif
#define CHUNK 512              /* items moved per lock round trip by get_many */

enum { Q_FIFO, Q_LIFO, Q_PRIO };
enum { OK, EMPTY_OR_FULL, SHUTDOWN, INTERRUPTED };

static const ItemSrc PUT_ITEM = { 2, 0 };   /* put's and put_nowait's item */

/* ========================================================================== QUEUE */

#define SEG 256                /* items per FIFO segment */

/* A FIFO slot: an Item whose tag byte is an atomic "full" flag (0: empty, else tag + 1),
** so that a consumer finds an item and its publication on one cache line. */
typedef struct Slot {
  atomic_uchar full;
  unsigned char len;
  char s[6];
  union { lua_Integer i; lua_Number n; void *p; } v;
} Slot;
_Static_assert(sizeof(Slot) == sizeof(Item) && offsetof(Slot, len) == offsetof(Item, len)
               && sizeof(atomic_uchar) == 1, "a Slot is an Item with an atomic tag");

typedef struct Seg { _Atomic(struct Seg *) next; Slot slots[SEG]; } Seg;

static void slot_put(Slot *sl, const Item *it) {
  memcpy((char *)sl + 1, (const char *)it + 1, sizeof(Item) - 1);
  atomic_store_explicit(&sl->full, (unsigned char)(it->tag + 1), memory_order_release);
}

/* Copy the item out of a slot seen full (acquire).  The slot is not written: the line
** stays shared, and the producer clears the flags when it reuses the segment. */
static void slot_get(Slot *sl, Item *it) {
  memcpy((char *)it + 1, (const char *)sl + 1, sizeof(Item) - 1);
  it->tag = (unsigned char)(atomic_load_explicit(&sl->full, memory_order_relaxed) - 1);
}

/* A segment to append: the spare one, cleared, or a new one.  NULL: out of memory. */
static Seg *seg_get(_Atomic(Seg *) *spare);

static Seg *seg_new(void) {
  Seg *s = (Seg *)malloc(sizeof *s);
  int i;
  if (s == NULL) return NULL;
  atomic_init(&s->next, NULL);
  for (i = 0; i < SEG; i++) atomic_init(&s->slots[i].full, 0);
  return s;
}

static Seg *seg_get(_Atomic(Seg *) *spare) {
  Seg *s = atomic_exchange(spare, NULL);
  int i;
  if (s == NULL) return seg_new();
  atomic_store_explicit(&s->next, NULL, memory_order_relaxed);
  for (i = 0; i < SEG; i++) atomic_store_explicit(&s->slots[i].full, 0, memory_order_relaxed);
  return s;
}

/*
** Field groups are padded apart so that producers and consumers of a FIFO queue write
** different cache lines: per item, the only line both sides touch is the item's slot.
*/
typedef struct Queue {
  lt_Object obj;
  int kind;
  lua_Integer maxsize;         /* 0: unbounded */
  lt_RawLock *plock, *tlock;   /* producers' / consumers' lock: the same one unless FIFO */
  atomic_int shut;             /* shutdown() was called (set under *plock) */
  _Atomic(lt_Notify *) note;   /* fileno()'s notifier, NULL until asked for (notify.c) */
  _Atomic(Seg *) spare;        /* FIFO: a consumed segment kept for the producers */
  Item *stack;                 /* LIFO: scap slots, count used; under *plock */
  size_t scap;
  PEntry *heap;                /* PRIO: hcap slots, count used; under *plock */
  size_t hcap;
  unsigned long long seq;      /* PRIO: next sequence number */
  char pad1[64];
  lt_RawLock pmu;              /* FIFO producers: tail */
  Seg *tail;
  size_t tail_idx;
  atomic_size_t nput;          /* items stored and published, ever (written under *plock) */
  size_t nget_seen;            /* the producers' copy of nget (bounded queues), under *plock */
  char pad2[64];
  lt_RawLock tmu;              /* FIFO consumers: head */
  Seg *head;
  size_t head_idx;
  atomic_size_t nget;          /* items taken, ever (written under *tlock) */
  size_t nput_seen;            /* the consumers' copy of nput, under *tlock */
  char pad3[64];
  atomic_int getters, putters; /* waiters registered to be woken (parked or parking) */
  atomic_int get_sig, put_sig; /* a wake-up is on its way to a registered waiter */
  atomic_int get_spin, put_spin;   /* adaptive spin budgets of getters / putters, ns */
  char pad4[64];
  atomic_size_t ndone;         /* task_done() calls, ever: unfinished = nput - ndone */
  atomic_int joiners;
  atomic_int get_word, put_word, join_word;   /* futex words, bumped to wake */
} Queue;

/* Free a detached FIFO chain from slot idx of seg: its items, then its segments. */
static void free_chain(Seg *seg, size_t idx) {
  while (seg) {
    Seg *next = atomic_load(&seg->next);
    for (; idx < SEG && atomic_load(&seg->slots[idx].full); idx++) {
      Item it;
      slot_get(&seg->slots[idx], &it);
      lt_item_free(&it);
    }
    free(seg);
    seg = next;
    idx = 0;
  }
}

static size_t qcount(Queue *q);

static void queue_destroy(lt_Object *o) {
  Queue *q = (Queue *)o;
  size_t i, n = qcount(q);
  if (q->kind == Q_FIFO) {
    free_chain(q->head, q->head_idx);
    free(atomic_load(&q->spare));
  } else if (q->kind == Q_LIFO) {
    for (i = 0; i < n; i++) lt_item_free(&q->stack[i]);
  } else {
    for (i = 0; i < n; i++) lt_entry_free(&q->heap[i]);
  }
  free(q->stack);
  free(q->heap);
  lt_notify_free(atomic_load(&q->note));
  free(q);
}

/*
** Each kind has two classes of the same name: unbounded queues (the common case) get a
** metatable whose __index is the methods table itself, holding maxsize = 0 as a plain field,
** so that q:put(x) costs one table lookup; bounded queues need an __index function for
** q.maxsize.  queue_destroy identifies them all.
*/
static void mt_fifo(lua_State *L);  static void mt_fifo0(lua_State *L);
static void mt_lifo(lua_State *L);  static void mt_lifo0(lua_State *L);
static void mt_prio(lua_State *L);  static void mt_prio0(lua_State *L);
static void mt_simple(lua_State *L);
static const lt_Class FifoClass = { "Queue", 0, queue_destroy, mt_fifo };
static const lt_Class Fifo0Class = { "Queue", 0, queue_destroy, mt_fifo0 };
static const lt_Class LifoClass = { "LifoQueue", 0, queue_destroy, mt_lifo };
static const lt_Class Lifo0Class = { "LifoQueue", 0, queue_destroy, mt_lifo0 };
static const lt_Class PrioClass = { "PriorityQueue", 0, queue_destroy, mt_prio };
static const lt_Class Prio0Class = { "PriorityQueue", 0, queue_destroy, mt_prio0 };
static const lt_Class SimpleClass = { "SimpleQueue", 0, queue_destroy, mt_simple };

static Queue *checkq_slow(lua_State *L) {
  lt_Object *o = lt_toobject(L, 1, NULL);
  if (o == NULL || o->cls->destroy != queue_destroy) luaL_typeerror(L, 1, "Queue");
  return (Queue *)o;
}

static inline Queue *checkq(lua_State *L) {
  lt_Proxy *p = lt_fastproxy(L, 1);                 /* the four classes share the methods */
  if (LT_LIKELY(p != NULL && p->cls->destroy == queue_destroy)) return (Queue *)p->obj;
  return checkq_slow(L);
}

static void lock(lt_RawLock *l) { lt_rawlock_acquire(l, 1, LT_FOREVER); }
static void unlock(lt_RawLock *l) { lt_rawlock_release(l); }

/* Items in the queue: nget first, so that the difference never goes negative. */
static size_t qcount(Queue *q) {
  size_t got = atomic_load(&q->nget);
  return atomic_load(&q->nput) - got;
}

static int is_full(Queue *q) {
  return q->maxsize > 0 && qcount(q) >= (size_t)q->maxsize;
}

/* Items a getter may take now (*tlock held): from the cached nput, refreshed when used up. */
static size_t avail(Queue *q) {
  size_t got = atomic_load_explicit(&q->nget, memory_order_relaxed);
  if (q->nput_seen == got) q->nput_seen = atomic_load(&q->nput);
  return q->nput_seen - got;
}

/* Room a putter may fill now (*plock held): from the cached nget, refreshed when used up. */
static size_t room(Queue *q) {
  size_t put = atomic_load_explicit(&q->nput, memory_order_relaxed), max;
  if (q->maxsize <= 0) return (size_t)-1;
  max = (size_t)q->maxsize;
  if (put - q->nget_seen >= max) q->nget_seen = atomic_load(&q->nget);
  return put - q->nget_seen >= max ? 0 : max - (put - q->nget_seen);
}


/* Grow a LIFO stack / PRIO heap to hold `want` entries (under *plock).  0: out of memory. */
static int reserve(Queue *q, size_t want) {
  if (q->kind == Q_PRIO) {
    size_t ncap = q->hcap ? q->hcap : 16;
    PEntry *nh;
    if (want <= q->hcap) return 1;
    while (ncap < want) ncap *= 2;
    if ((nh = (PEntry *)realloc(q->heap, ncap * sizeof *nh)) == NULL) return 0;
    q->heap = nh;
    q->hcap = ncap;
  } else {
    size_t ncap = q->scap ? q->scap : 16;
    Item *ns;
    if (want <= q->scap) return 1;
    while (ncap < want) ncap *= 2;
    if ((ns = (Item *)realloc(q->stack, ncap * sizeof *ns)) == NULL) return 0;
    q->stack = ns;
    q->scap = ncap;
  }
  return 1;
}

/*
** Store and publish k prepared entries (*plock held; shut and room checked).  Returns k,
** or 0 when out of memory (nothing stored then: a FIFO's segments are all allocated
** before the first item is published).  nput is raised before anything is published, so
** that a fast consumer's task_done() always finds the item counted as unfinished.
*/
static size_t store(Queue *q, PEntry *e, size_t k) {
  size_t i, n;
  if (q->kind == Q_FIFO) {
    Seg *first = NULL, *last = NULL;
    size_t have = SEG - q->tail_idx;
    while (have < k) {            /* the segments this batch needs, linked privately */
      Seg *ns = seg_get(&q->spare);
      if (ns == NULL) {
        while (first) { Seg *nx = atomic_load(&first->next); free(first); first = nx; }
        return 0;
      }
      if (last) atomic_store_explicit(&last->next, ns, memory_order_relaxed);
      else first = ns;
      last = ns;
      have += SEG;
    }
    atomic_store_explicit(&q->nput, atomic_load_explicit(&q->nput, memory_order_relaxed) + k,
                          memory_order_release);
    for (i = 0; i < k; i++) {
      if (q->tail_idx == SEG) {   /* link (release) before publishing into it */
        Seg *ns = first;
        first = atomic_load_explicit(&ns->next, memory_order_relaxed);
        atomic_store_explicit(&ns->next, NULL, memory_order_relaxed);
        atomic_store_explicit(&q->tail->next, ns, memory_order_release);
        q->tail = ns;
        q->tail_idx = 0;
      }
      slot_put(&q->tail->slots[q->tail_idx++], &e[i].item);
    }
    return k;
  }
  n = qcount(q);                  /* exact: every change is under this (single) lock */
  if (n + k < n || !reserve(q, n + k)) return 0;
  for (i = 0; i < k; i++) {
    if (q->kind == Q_LIFO) q->stack[n + i] = e[i].item;
    else { e[i].seq = q->seq++; lt_heap_push(q->heap, n + i, &e[i]); }
  }
  atomic_store_explicit(&q->nput, atomic_load_explicit(&q->nput, memory_order_relaxed) + k,
                        memory_order_release);
  return k;
}

/* The next FIFO slot, if an item is published in it (*tlock held).  Steps onto the next
** segment (recycling the consumed one) when the current one is used up. */
static Slot *fifo_peek(Queue *q) {
  Slot *sl;
  if (q->head == NULL) return NULL;                 /* dropped by shutdown(true) */
  if (q->head_idx == SEG) {
    Seg *old = q->head, *next = atomic_load_explicit(&old->next, memory_order_acquire);
    if (next == NULL) return NULL;
    q->head = next;
    q->head_idx = 0;
    free(atomic_exchange(&q->spare, old));
  }
  sl = &q->head->slots[q->head_idx];
  return atomic_load_explicit(&sl->full, memory_order_acquire) ? sl : NULL;
}

/* Take the item in sl, just returned by fifo_peek (*tlock held): take(q, out, 1)'s work. */
static void fifo_take(Queue *q, Slot *sl, Item *out) {
  slot_get(sl, out);
  q->head_idx++;
  atomic_store_explicit(&q->nget, atomic_load_explicit(&q->nget, memory_order_relaxed) + 1,
                        memory_order_release);
}

/* Is there an item for a getter (*tlock held)? */
static int ready(Queue *q) {
  return q->kind == Q_FIFO ? fifo_peek(q) != NULL : avail(q) > 0;
}

/* Take up to max items (*tlock held) into out[]; returns how many (>= 1 after ready()). */
static size_t take(Queue *q, Item *out, size_t max) {
  size_t k = 0;
  if (q->kind == Q_FIFO) {
    Slot *sl;
    while (k < max && (sl = fifo_peek(q)) != NULL) {
      slot_get(sl, &out[k++]);
      q->head_idx++;
    }
  } else {
    size_t n = qcount(q);         /* exact under the single lock (avail() may lag) */
    if (max > n) max = n;
    for (; k < max; k++, n--) {
      if (q->kind == Q_LIFO) out[k] = q->stack[n - 1];
      else lt_heap_pop(q->heap, n, &out[k]);
    }
  }
  atomic_store_explicit(&q->nget, atomic_load_explicit(&q->nget, memory_order_relaxed) + k,
                        memory_order_release);
  return k;
}

static void bump_wake(atomic_int *w, int n) {
  atomic_fetch_add(w, 1);
  lt_unpark(w, n);
}

/* Wake one registered waiter unless a wake-up is on its way (`sig`).  Each waiter clears `sig`
** as it registers and unregisters: one that left between our look and our exchange must not
** leave a late `sig` keeping the next asleep beside its item (spec/race_spec.lua). */
static void signal1(atomic_int *nwait, atomic_int *sig, atomic_int *word) {
  if (atomic_load_explicit(nwait, memory_order_relaxed) > 0
      && atomic_load_explicit(sig, memory_order_relaxed) == 0
      && (LT_TEST_WINDOW(53), atomic_exchange(sig, 1) == 0))   /* (the window: the race) */
    bump_wake(word, 1);
}

/*
** fileno()'s condition: items to get, or shut down (get_nowait then says so).  Synced under
** the queue's locks, where it is exact: under *plock no producer is half way through a
** store, so the count is of published items (q_ready_p); under *tlock a producer may be,
** so a FIFO consumer looks at the next slot itself (q_ready_t).  A wake-up that finds
** nothing then never happens; and the fd never stays readable beside an empty queue.
*/
static int q_ready_p(void *arg) {
  Queue *q = (Queue *)arg;
  return qcount(q) > 0 || atomic_load(&q->shut);
}

static int q_ready_t(void *arg) {
  Queue *q = (Queue *)arg;
  return (q->kind == Q_FIFO ? fifo_peek(q) != NULL : qcount(q) > 0) || atomic_load(&q->shut);
}

/*
** After publishing items: a getter may go.  The fence orders the publication before the
** look at `getters` (Dekker: a waiter registers, fences, then re-checks), so that either
** the waiter sees the items or we see the waiter.
*/
static void after_store(Queue *q) {
  atomic_thread_fence(memory_order_seq_cst);
  signal1(&q->getters, &q->get_sig, &q->get_word);
  if (q->maxsize > 0 && !is_full(q)) signal1(&q->putters, &q->put_sig, &q->put_word);
}

/* After taking items (and releasing *tlock): a putter of a bounded queue may go; and if
** items are left while getters wait, another getter (the cascade). */
static void after_take(Queue *q) {
  if (q->maxsize > 0) {           /* putters register under *plock, not ours: Dekker */
    atomic_thread_fence(memory_order_seq_cst);
    signal1(&q->putters, &q->put_sig, &q->put_word);
  }
  /* getters register under *tlock, which we held while taking: no fence needed */
  if (atomic_load_explicit(&q->getters, memory_order_relaxed) > 0 && qcount(q) > 0)
    signal1(&q->getters, &q->get_sig, &q->get_word);
}

/*
** Spin outside the locks until there are items (want_items) or room, or shutdown, within
** the side's spin budget and never past the deadline.  The budget adapts as
** lt_spin_changed's: it doubles after a spin that saw the change (the other side runs on
** another core: spinning pays) and halves after one that did not (the other side sleeps,
** or shares our core: spinning only delays it); and it doubles after a park that ended
** within LT_QSPIN_MAX_NS (lt_park_spun in wait_for).  After LT_QSPIN_TIGHT quick polls (a
** hand-off between two running threads), the waiter yields between polls: if the thread
** it waits for shares its core (a loaded machine), that thread runs instead of being
** starved by the spin.
** A FIFO getter spins holding *tlock (it polls the next slot, which only the holder may
** do); everybody else spins without the lock, on the counters.
*/
static void spin_until(Queue *q, int want_items, double deadline) {
  atomic_int *budget = want_items ? &q->get_spin : &q->put_spin;
  int ns = atomic_load_explicit(budget, memory_order_relaxed), polls = 0;
  double until = lt_now() + ns * 1e-9;
  if (deadline != LT_FOREVER && deadline < until) until = deadline;
  for (;;) {
    if (atomic_load_explicit(&q->shut, memory_order_relaxed) ||
        (!want_items ? !is_full(q) : q->kind == Q_FIFO ? fifo_peek(q) != NULL
                                                         : qcount(q) > 0)) {
      if (ns < LT_QSPIN_MAX_NS)
        atomic_store_explicit(budget, ns * 2 < LT_QSPIN_MAX_NS ? ns * 2 : LT_QSPIN_MAX_NS,
                              memory_order_relaxed);
      return;
    }
    if (++polls <= LT_QSPIN_TIGHT) lt_cpu_relax();       /* quick hand-offs: poll tight */
    else sched_yield();           /* then let a thread that shares our core run */
    if ((polls & 7) == 0 && lt_now() >= until) break;
  }
  if (ns > LT_QSPIN_MIN_NS)
    atomic_store_explicit(budget, ns / 2 > LT_QSPIN_MIN_NS ? ns / 2 : LT_QSPIN_MIN_NS,
                          memory_order_relaxed);
}

/*
** Wait until the queue has an item (want_items; *tlock held) or room (*plock held); the
** lock is released while parked (and while spinning, except by FIFO getters) and held
** again on return.
** Returns OK, EMPTY_OR_FULL (not blocking, or timed out), SHUTDOWN (puts: as soon as
** shut down; gets: once shut down and empty), or INTERRUPTED (armed by wait_for: nothing
** taken; the caller passes a wake-up it may have had on, as after_take/after_store do).
** Parking is Dekker-style: register in getters/putters, then re-check; whoever publishes
** items/room changes the count first, then looks for registered waiters.
*/
static int wait_for_(Queue *q, int want_items, int block, double deadline) {
  lt_RawLock *l = want_items ? q->tlock : q->plock;
  atomic_int *word = want_items ? &q->get_word : &q->put_word;
  atomic_int *nwait = want_items ? &q->getters : &q->putters;
  atomic_int *sig = want_items ? &q->get_sig : &q->put_sig;
  int spun = 0, timedout = 0;
  for (;;) {
    int seen, r;
    if (want_items) {
      if (ready(q)) return OK;
      if (atomic_load(&q->shut)) return ready(q) ? OK : SHUTDOWN;
    } else {
      if (atomic_load(&q->shut)) return SHUTDOWN;
      if (room(q) > 0) return OK;
    }
    if (!block || timedout) return EMPTY_OR_FULL;
    if (!spun) {
      int hold = want_items && q->kind == Q_FIFO;
      spun = 1;
      if (!hold) unlock(l);
      spin_until(q, want_items, deadline);
      if (!hold) lock(l);
      continue;
    }
    seen = atomic_load(word);
    atomic_store(sig, 0);           /* (a waker's late `sig` must not outlive its waiter) */
    atomic_fetch_add(nwait, 1);
    atomic_thread_fence(memory_order_seq_cst);
    LT_TEST_WINDOW(50);                /* (a waker may look at nwait/sig meanwhile) */
    if ((want_items ? ready(q) : room(q) > 0) || atomic_load(&q->shut)) {
      atomic_fetch_sub(nwait, 1);
      atomic_store(sig, 0);
      continue;
    }
    unlock(l);
    r = lt_park_spun(word, seen, deadline, want_items ? &q->get_spin : &q->put_spin,
                     LT_QSPIN_MAX_NS);
    if (r < 0) timedout = 1;
    atomic_fetch_sub(nwait, 1);
    atomic_store(sig, 0);
    lock(l);
    if (r == LT_INTERRUPTED) return INTERRUPTED;
  }
}

/* wait_for_, armed (interrupt.c) once it has to wait. */
static int wait_for(Queue *q, int want_items, int block, double deadline) {
  int status = wait_for_(q, want_items, 0, deadline);
  if (status != EMPTY_OR_FULL || !block) return status;
  lt_intr_arm();
  status = wait_for_(q, want_items, 1, deadline);
  lt_intr_disarm();
  return status;
}

/* put()/get() argument shapes: ([block = true], [timeout]) or (timeout). */
static int block_args(lua_State *L, int idx, double *deadline) {
  int block = 1;
  double timeout = -1;
  if (lua_gettop(L) < idx) { *deadline = LT_FOREVER; return 1; }   /* the common call */
  switch (lua_type(L, idx)) {
    case LUA_TNONE: case LUA_TNIL: break;
    case LUA_TNUMBER: timeout = lt_checktimeout(L, idx, lua_tonumber(L, idx)); break;
    case LUA_TBOOLEAN: block = lua_toboolean(L, idx); break;
    default: luaL_typeerror(L, idx, "boolean or number");
  }
  if (!lua_isnoneornil(L, idx + 1)) timeout = lt_opttimeout(L, idx + 1);
  *deadline = lt_deadline(timeout);
  return block;
}

static int fail(lua_State *L, int status, int want_items) {
  luaL_pushfail(L);
  lua_pushstring(L, status == SHUTDOWN ? "shutdown" : want_items ? "empty" : "full");
  return 2;
}

/* Put one prepared entry; it is freed unless stored.  OK / EMPTY_OR_FULL / SHUTDOWN, or
** -1 when out of memory. */
static int put_entry(Queue *q, PEntry *e, int block, double deadline) {
  int status;
  LT_TEST_WINDOW(150);                 /* (the getter may park before this item comes) */
  lock(q->plock);
  status = !atomic_load(&q->shut) && room(q) > 0 ? OK             /* wait_for's first check */
           : wait_for(q, 0, block, deadline);
  if (status == OK && store(q, e, 1) == 0) status = -1;
  if (status == OK) lt_notify(&q->note, q_ready_p, q);
  unlock(q->plock);
  if (status == OK || status == INTERRUPTED) after_store(q);
  if (status != OK) lt_entry_free(e);
  return status;
}

/* Encode the item at idx into *e (with its priority for a PriorityQueue).  May raise,
** owning nothing then. */
static void prepare(lua_State *L, Queue *q, int idx, PEntry *e, const ItemSrc *src) {
  e->key.tag = K_INT;
  if (q->kind != Q_PRIO) { lt_item_encode(L, idx, &e->item, &q->obj, src); return; }
  lt_key_fetch(L, idx, src);                             /* L: ... priority */
  lt_item_encode(L, idx, &e->item, &q->obj, src);
  if (!lt_key_copy(L, -1, &e->key)) {
    lt_item_free(&e->item);
    luaL_error(L, "not enough memory");
  }
  lua_pop(L, 1);
}

/* ======================================================================== METHODS */

/* q:put(item, [block = true], [timeout]) -> true | nil, "full" | nil, "shutdown" */
static int q_put(lua_State *L) {
  Queue *q = checkq(L);
  double deadline;
  int block = block_args(L, 3, &deadline), status;
  PEntry e;
  prepare(L, q, 2, &e, &PUT_ITEM);
  status = put_entry(q, &e, block, deadline);
  if (status < 0) return luaL_error(L, "not enough memory");
  if (status == INTERRUPTED) lt_intr_raise(L);
  if (status != OK) return fail(L, status, 0);
  lua_pushboolean(L, 1);
  return 1;
}

static int q_put_nowait(lua_State *L) {
  Queue *q = checkq(L);
  int status;
  PEntry e;
  prepare(L, q, 2, &e, &PUT_ITEM);
  status = put_entry(q, &e, 0, LT_FOREVER);
  if (status < 0) return luaL_error(L, "not enough memory");
  if (status != OK) return fail(L, status, 0);
  lua_pushboolean(L, 1);
  return 1;
}

static int get_common(lua_State *L, Queue *q, int block, double deadline) {
  int status;
  Item it;                                /* (lt_item_deliver's slots: within LUA_MINSTACK) */
  Slot *sl;
  lock(q->tlock);
  if (q->kind == Q_FIFO && (sl = fifo_peek(q)) != NULL) {     /* an item there: take it */
    fifo_take(q, sl, &it);
    status = OK;
  } else if ((status = ready(q) ? OK : wait_for(q, 1, block, deadline)) == OK)
    take(q, &it, 1);
  lt_notify(&q->note, q_ready_t, q);      /* (found it empty: the fd stops polling readable) */
  unlock(q->tlock);
  if (status == INTERRUPTED) { after_take(q); lt_intr_raise(L); }
  if (status != OK) return fail(L, status, 1);
  after_take(q);
  lt_item_deliver(L, &it);
  return 1;
}

/* q:get([block = true], [timeout]) -> item | nil, "empty" | nil, "shutdown" */
static int q_get(lua_State *L) {
  Queue *q = checkq(L);
  double deadline;
  int block = block_args(L, 2, &deadline);
  return get_common(L, q, block, deadline);
}

static int q_get_nowait(lua_State *L) {
  return get_common(L, checkq(L), 0, LT_FOREVER);
}

/* ---------------------------------------------------------------------- batches */

/* q:put_many(array, [block = true], [timeout]) -> true | nil, "full"|"shutdown", n_put.
** The items of array[1 .. #array] go in in order, as many per lock round trip as there is
** room for; a bounded queue may make it wait (and time out) part way. */
static int q_put_many(lua_State *L) {
  Queue *q = checkq(L);
  double deadline;
  int block, status = OK;
  lua_Integer n, i;
  Batch *b;
  luaL_checktype(L, 2, LUA_TTABLE);
  block = block_args(L, 3, &deadline);
  lua_settop(L, 2);
  n = luaL_len(L, 2);
  if (n < 0) n = 0;
  if ((lua_Unsigned)n > ((size_t)-1 - sizeof(Batch)) / sizeof(PEntry))
    return luaL_error(L, "too many items");
  b = lt_batch_new(L, (size_t)n);                         /* L: q array batch */
  for (i = 1; i <= n; i++) {
    ItemSrc src;
    src.arg = 2;
    src.index = i;
    lua_geti(L, 2, i);
    prepare(L, q, 4, &b->e[b->n], &src);
    b->n++;
    lua_pop(L, 1);
  }
  lock(q->plock);
  while (b->done < b->n) {
    size_t k, got;
    status = wait_for(q, 0, block, deadline);
    if (status != OK) break;
    k = room(q);
    if (k > b->n - b->done) k = b->n - b->done;
    got = store(q, &b->e[b->done], k);
    if (got == 0) { status = -1; break; }
    b->done += got;
    lt_notify(&q->note, q_ready_p, q);
    after_store(q);                     /* now: this thread may wait for room next */
  }
  unlock(q->plock);
  i = (lua_Integer)b->done;
  for (; b->done < b->n; b->done++) lt_entry_free(&b->e[b->done]);
  if (status < 0) return luaL_error(L, "not enough memory");
  if (status == INTERRUPTED) { after_store(q); lt_intr_raise(L); }  /* the first i stay put */
  if (status != OK) { fail(L, status, 0); lua_pushinteger(L, i); return 3; }
  lua_pushboolean(L, 1);
  return 1;
}

typedef struct Fill { Item *items; size_t k; lua_Integer base; } Fill;

/* lua_pcall'd: t[base + j] = items[j] for j < k.  1: Fill*, 2: t */
static int fill_p(lua_State *L) {
  Fill *f = (Fill *)lua_touserdata(L, 1);
  size_t j;
  for (j = 0; j < f->k; j++) {
    lt_item_push(L, &f->items[j]);
    lua_rawseti(L, 2, f->base + (lua_Integer)j + 1);
  }
  return 0;
}

/* q:get_many([max], [block = true], [timeout]) -> array of 1..max items | nil, reason.
** Waits like get() for the first item, then takes what is there, up to max, moving up to
** CHUNK items per lock round trip.  If an item cannot be rebuilt (a memory error, a module
** missing in this thread), the error propagates and the items of that chunk are lost. */
static int q_get_many(lua_State *L) {
  Queue *q = checkq(L);
  lua_Integer max = luaL_optinteger(L, 2, LUA_MAXINTEGER), total = 0;
  double deadline;
  int block = block_args(L, 3, &deadline), status;
  Item items[CHUNK];
  luaL_argcheck(L, max >= 1, 2, "max must be at least 1");
  lua_settop(L, 1);
  lua_createtable(L, max < CHUNK ? (int)max : CHUNK, 0);       /* L: q t */
  luaL_checkstack(L, 6, NULL);
  lock(q->tlock);
  status = wait_for(q, 1, block, deadline);
  if (status != OK) {
    lt_notify(&q->note, q_ready_t, q);
    unlock(q->tlock);
    if (status == INTERRUPTED) { after_take(q); lt_intr_raise(L); }
    return fail(L, status, 1);
  }
  for (;;) {
    size_t k = max - total < CHUNK ? (size_t)(max - total) : CHUNK, j;
    int heavy = 0;
    k = take(q, items, k);
    lt_notify(&q->note, q_ready_t, q);
    unlock(q->tlock);
    after_take(q);
    for (j = 0; j < k; j++) heavy |= item_heavy(&items[j]);
    if (!heavy) {                     /* nothing owned: may raise freely */
      for (j = 0; j < k; j++) {
        lt_item_push(L, &items[j]);
        lua_rawseti(L, 2, total + (lua_Integer)j + 1);
      }
    } else {
      Fill f;
      int st;
      f.items = items; f.k = k; f.base = total;
      lua_pushcfunction(L, fill_p);
      lua_pushlightuserdata(L, &f);
      lua_pushvalue(L, 2);
      st = lua_pcall(L, 2, 0, 0);
      for (j = 0; j < k; j++) lt_item_free(&items[j]);
      if (st != LUA_OK) return lua_error(L);
    }
    total += (lua_Integer)k;
    if (total >= max || k < CHUNK) break;
    lock(q->tlock);
    if (!ready(q)) { unlock(q->tlock); break; }
  }
  return 1;
}

/* ------------------------------------------------------------------ the rest */

static int q_qsize(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)qcount(checkq(L)));
  return 1;
}

static int q_empty(lua_State *L) {
  lua_pushboolean(L, qcount(checkq(L)) == 0);
  return 1;
}

static int q_full(lua_State *L) {
  lua_pushboolean(L, is_full(checkq(L)));
  return 1;
}

/* Items put and not yet task_done()'d. */
static long unfinished(Queue *q) {
  size_t done = atomic_load(&q->ndone);
  return (long)(atomic_load(&q->nput) - done);
}

static int q_task_done(lua_State *L) {
  Queue *q = checkq(L);
  size_t v = atomic_load(&q->ndone);
  do {                            /* nput only grows: once checked, v < nput stays true */
    if ((long)(atomic_load(&q->nput) - v) <= 0)
      return luaL_error(L, "task_done() called too many times");
  } while (!atomic_compare_exchange_weak(&q->ndone, &v, v + 1));
  atomic_thread_fence(memory_order_seq_cst);
  if (unfinished(q) <= 0 && atomic_load(&q->joiners) > 0) bump_wake(&q->join_word, INT_MAX);
  return 0;
}

/* q:join([timeout]) -> true once every item put was task_done()'d; false on timeout. */
static int q_join(lua_State *L) {
  Queue *q = checkq(L);
  double deadline = lt_deadline(lt_opttimeout(L, 2));
  int done = 0, r = 0;
  lt_intr_arm();
  for (;;) {
    int seen;
    if (unfinished(q) <= 0) { done = 1; break; }
    seen = atomic_load(&q->join_word);
    atomic_fetch_add(&q->joiners, 1);
    atomic_thread_fence(memory_order_seq_cst);
    if (unfinished(q) <= 0) { atomic_fetch_sub(&q->joiners, 1); done = 1; break; }
    r = lt_park(&q->join_word, seen, deadline);
    atomic_fetch_sub(&q->joiners, 1);
    if (r < 0) { done = unfinished(q) <= 0; break; }
  }
  lt_intr_disarm();
  if (!done && r == LT_INTERRUPTED) lt_intr_raise(L);
  lua_pushboolean(L, done);
  return 1;
}

/* Count n dropped items as done, as Python's shutdown(True): unfinished tasks go down by
** n, never below zero (task_done() may have been called for items still queued). */
static void drop_unfinished(Queue *q, size_t n) {
  size_t v = atomic_load(&q->ndone), put = atomic_load(&q->nput);  /* nput: fixed (locked) */
  size_t k;
  do {
    k = put - v < n ? put - v : n;
  } while (k > 0 && !atomic_compare_exchange_weak(&q->ndone, &v, v + k));
}

/*
** q:shutdown([immediate = false]), as Python 3.13: puts fail from now on; gets drain what
** is left, then fail.  immediate: the items still queued are dropped and count as done;
** items a get() already took still need their task_done() (no error), and join() returns
** once they had it.  Every waiter wakes to re-check.
** Both locks are taken (consumers' first) so that no put or get is half done.
*/
static int q_shutdown(lua_State *L) {
  Queue *q = checkq(L);
  int immediate = lua_toboolean(L, 2);
  Seg *chain = NULL;
  Item *stack = NULL;
  PEntry *heap = NULL;
  size_t n = 0, idx = 0, i;
  lock(q->tlock);
  if (q->plock != q->tlock) lock(q->plock);
  atomic_store(&q->shut, 1);
  if (immediate) {
    n = qcount(q);
    if (q->kind == Q_FIFO) {
      chain = q->head; idx = q->head_idx;
      q->head = q->tail = NULL;
      q->head_idx = q->tail_idx = SEG;
    }
    stack = q->stack; heap = q->heap;
    q->stack = NULL; q->heap = NULL; q->scap = q->hcap = 0;
    q->nput_seen = q->nget_seen = atomic_load(&q->nput);
    atomic_store(&q->nget, q->nput_seen);
    drop_unfinished(q, n);
  }
  lt_notify(&q->note, q_ready_p, q);      /* both locks held: exact */
  if (q->plock != q->tlock) unlock(q->plock);
  unlock(q->tlock);
  bump_wake(&q->get_word, INT_MAX);
  bump_wake(&q->put_word, INT_MAX);
  bump_wake(&q->join_word, INT_MAX);
  free_chain(chain, idx);
  if (stack) for (i = 0; i < n; i++) lt_item_free(&stack[i]);
  if (heap) for (i = 0; i < n; i++) lt_entry_free(&heap[i]);
  free(stack);
  free(heap);
  return 0;
}

/* A bounded queue's __index: q.maxsize; everything else: the methods. */
static int q_index(lua_State *L) {
  lua_settop(L, 2);
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(2)) != LUA_TNIL) return 1;
  if (lua_type(L, 2) == LUA_TSTRING && strcmp(lua_tostring(L, 2), "maxsize") == 0) {
    lua_pushinteger(L, checkq(L)->maxsize);
    return 1;
  }
  lua_pushnil(L);
  return 1;
}

/* q:fileno() -> an fd that polls readable while the queue holds items or is shut down.
** The first sync holds both locks: a store or take that missed the new slot is complete
** and seen; later ones see the slot (they take a lock this released after installing it). */
static int q_fileno(lua_State *L) {
  Queue *q = checkq(L);
  lt_Notify *n = lt_notify_make(L, &q->note);
  lock(q->tlock);
  if (q->plock != q->tlock) lock(q->plock);
  lt_notify_sync(n, q_ready_p, q);
  if (q->plock != q->tlock) unlock(q->plock);
  unlock(q->tlock);
  lua_pushinteger(L, lt_notify_fd(n));
  return 1;
}

static int q_tostring(lua_State *L) {
  Queue *q = checkq(L);
  lua_pushfstring(L, "<%s maxsize=%I qsize=%I: %p>", q->obj.cls->name,
                  (lua_Integer)q->maxsize, (lua_Integer)qcount(q), (void *)q);
  return 1;
}

/* ============================================================================ OPEN */

static void build_metatable(lua_State *L, const lt_Class *cls, int bounded) {
  static const luaL_Reg meth[] = {
    {"put", q_put}, {"get", q_get}, {"put_nowait", q_put_nowait},
    {"get_nowait", q_get_nowait}, {"put_many", q_put_many}, {"get_many", q_get_many},
    {"qsize", q_qsize}, {"empty", q_empty}, {"full", q_full},
    {"task_done", q_task_done}, {"join", q_join}, {"shutdown", q_shutdown},
    {"fileno", q_fileno}, {NULL, NULL}
  };
  static const luaL_Reg metameth[] = { {"__tostring", q_tostring}, {NULL, NULL} };
  lt_classmetatable(L, cls, meth, metameth);                  /* L: mt */
  lua_getfield(L, -1, "__index");                             /* L: mt methods */
  if (!bounded) {
    lua_pushinteger(L, 0);
    lua_setfield(L, -2, "maxsize");
    lua_pop(L, 1);
    return;
  }
  lua_pushvalue(L, -2);
  lua_insert(L, -2);                                          /* L: mt mt methods */
  lua_pushcclosure(L, q_index, 2);
  lua_setfield(L, -2, "__index");
}

static void mt_fifo(lua_State *L) { build_metatable(L, &FifoClass, 1); }
static void mt_fifo0(lua_State *L) { build_metatable(L, &Fifo0Class, 0); }
static void mt_lifo(lua_State *L) { build_metatable(L, &LifoClass, 1); }
static void mt_lifo0(lua_State *L) { build_metatable(L, &Lifo0Class, 0); }
static void mt_prio(lua_State *L) { build_metatable(L, &PrioClass, 1); }
static void mt_prio0(lua_State *L) { build_metatable(L, &Prio0Class, 0); }
static void mt_simple(lua_State *L) { build_metatable(L, &SimpleClass, 0); }

static int new_queue(lua_State *L, const lt_Class *cls, int kind, lua_Integer maxsize) {
  Queue *q;
  if (maxsize < 0) maxsize = 0;
  q = (Queue *)lt_newobject(L, cls, sizeof(Queue));
  q->kind = kind;
  q->maxsize = maxsize;
  atomic_init(&q->pmu.word, 0);
  atomic_init(&q->tmu.word, 0);
  q->plock = &q->pmu;
  q->tlock = kind == Q_FIFO ? &q->tmu : &q->pmu;
  atomic_init(&q->shut, 0);
  atomic_init(&q->note, NULL);
  atomic_init(&q->spare, NULL);
  atomic_init(&q->ndone, 0);
  atomic_init(&q->nput, 0);
  atomic_init(&q->nget, 0);
  atomic_init(&q->getters, 0);
  atomic_init(&q->putters, 0);
  atomic_init(&q->joiners, 0);
  atomic_init(&q->get_word, 0);
  atomic_init(&q->put_word, 0);
  atomic_init(&q->join_word, 0);
  atomic_init(&q->get_spin, LT_QSPIN_MAX_NS);
  atomic_init(&q->put_spin, LT_QSPIN_MAX_NS);
  if (kind == Q_FIFO) {           /* the object is consistent for queue_destroy already */
    Seg *s = seg_new();
    if (s == NULL) return luaL_error(L, "not enough memory");
    q->head = q->tail = s;
  }
  return 1;
}

/* Queue([maxsize]) or Queue{maxsize = n}; maxsize <= 0: unbounded (as Python). */
static lua_Integer opt_maxsize(lua_State *L) {
  static const char *const known[] = { "maxsize", NULL };
  if (lua_istable(L, 1)) {
    lt_checkoptions(L, 1, known);
    lua_getfield(L, 1, "maxsize");
    lua_replace(L, 1);
  }
  return lt_optintoption(L, 1, "maxsize", 0);
}

static int f_queue(lua_State *L) {
  lua_Integer m = opt_maxsize(L);
  return new_queue(L, m > 0 ? &FifoClass : &Fifo0Class, Q_FIFO, m);
}

static int f_lifo(lua_State *L) {
  lua_Integer m = opt_maxsize(L);
  return new_queue(L, m > 0 ? &LifoClass : &Lifo0Class, Q_LIFO, m);
}

static int f_prio(lua_State *L) {
  lua_Integer m = opt_maxsize(L);
  return new_queue(L, m > 0 ? &PrioClass : &Prio0Class, Q_PRIO, m);
}

static int f_simple(lua_State *L) {
  lt_checknoargs(L);
  return new_queue(L, &SimpleClass, Q_FIFO, 0);
}

void lt_open_queue(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"Queue", f_queue}, {"LifoQueue", f_lifo}, {"PriorityQueue", f_prio},
    {"SimpleQueue", f_simple}, {NULL, NULL}
  };
  luaL_setfuncs(L, funcs, 0);
}
