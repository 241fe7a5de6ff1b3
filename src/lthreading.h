/*
** lthreading.h -- the one internal header of lthreading.
**
** ARCHITECTURE (read this first)
**   Every Lua thread runs in its own lua_State on its own pthread.  Nothing Lua-level is
**   shared between states.  Two things cross between them:
**   - VALUES are copied by the marshaler (marshal.c): lt_encode() turns Lua values into an
**     lt_Buf (plain bytes + a list of object references), lt_decode() rebuilds them in any
**     other state, as many times as wanted.
**   - OBJECTS (lt_Object: locks, threads, queues, ...) live in C, are reference counted
**     (object.c), and appear in each state as one userdata "proxy" per object per state.
**     A proxy owns one reference; so does each lt_Buf that mentions the object; so does
**     whatever C structure holds it (a running thread holds its own Thread object).
**     The object is destroyed by whoever drops the last reference, on any OS thread.
**
** FILES
**   park.c     time, deadlines, futex-style wait/wake (the one blocking primitive)
**   interrupt.c  Ctrl-C and Thread:cancel() reaching blocking calls and Lua code; OS names
**   object.c   lt_Object refcounting, proxies, per-state setup, named values, classes
**   marshal.c  the value marshaler: the format (its header), buffers, encoding
**   marshal_array.c   array parts: packed runs, arrays in bulk, streams   (marshal_private.h:
**   marshal_decode.c  decoding                                  private, shared by these three)
**   thread.c   Thread: fields, class, start, run and finish, join/result/cancel
**   process.c  the thread list, current/main thread, fork, module functions, exit, print
**   excepthook.c  threading.excepthook   (thread_private.h: what these three share)
**   worker.c   the OS threads: spawned, reused while idle (with a state made ahead), joined
**   lock.c     Lock, RLock and the lock-like surface shared by all lock-ish classes
**   sync.c     Condition, Semaphore, BoundedSemaphore, Event, Barrier, Timer  local.c: Local
**   queue.c    Queue family: storage, blocking, methods         (queue.h: private, shared
**   queue_item.c  a queue item marshaled, priority keys, batches   by these two)
**   shared.c   Shared
**   notify.c   an fd that mirrors a condition (fileno() of Queue, Future, Event)
**   cref.c     C objects by reference: __lthreading_ref (include/lthreading_ref.h)
**   pool.c     ThreadPoolExecutor: core, workers, submit, map, shutdown  (pool.h: private,
**   future.c   Future, its waiters, as_completed                          shared by these two)
**   pool_map.c pool:map's chunks (sizing, a chunk's run in a worker)
**   lthreading.c  luaopen_lthreading: assembles the module table
**
** LOCKING RULES
**   - Never call lua_error (or any Lua API that may raise, including allocation) while
**     holding a C mutex or owning unregistered heap memory.  Copy what you need out, unlock,
**     then raise.  lt_encode/lt_decode may raise: call them with no mutex held.
**   - Object mutexes are leaves: hold at most one object's internal mutex at a time, except
**     the documented orders  Condition's own queue lock -> nothing else;  a queue's lock
**     (q->pmu or q->tmu) -> its fileno() notifier's mutex (notify.c), a leaf;  a Future's
**     mu -> an as_completed/wait waiter's mu (future.c).
**     The process-wide thread list lock (process.c) and the worker lock (worker.c) may be
**     taken while holding nothing.
**   - lt_decref() may run a destructor: never call it while holding an object mutex that the
**     destructor could need (destructors only free memory and take no other locks).
**
** LUA VERSIONS
**   Lua 5.4 and 5.5 (the same calls build on both).  Version-specific calls are isolated in
**   the COMPAT section below; the build's version-specific settings are in the Makefile's
**   first block (LUA_VERSION).
*/
#ifndef LTHREADING_H
#define LTHREADING_H

#include <stddef.h>
#include <stdint.h>
#include <stdatomic.h>
#include <pthread.h>

#include "lua.h"
#include "lauxlib.h"

/* ====================================================================== CONFIGURATION */
#define LT_VERSION        "0.2.0"      /* the one place: module _VERSION, rockspec, CHANGELOG */
#if !defined(LT_MAX_DEPTH)
#define LT_MAX_DEPTH      1000       /* nesting limit of one marshaled value (C stack safety) */
#endif
#define LT_MIN_STACK      (32 * 1024)   /* stack_size() below this is an error */
/* The smallest stack a thread gets: stack_size() raises smaller requests to it.  Lua lets
** code nest LUAI_MAXCCALLS (200) C calls (220 while an error is handled) whatever the stack;
** the deepest of these measured (tools/stack_floor.lua: string.gsub callbacks, an xpcall
** handler recursing at the bottom) needs about 450 KiB on x86-64, also under ASan.  1 MiB
** leaves that twice over; the marshaler keeps the other half (lt_stack_low). */
#if !defined(LT_STACK_FLOOR)
#define LT_STACK_FLOOR    (1024 * 1024)
#endif
#define LT_TIMEOUT_MAX    (4294967.0) /* seconds, as Python's TIMEOUT_MAX on Linux */

#if defined(__GNUC__)
#define LT_UNUSED(x) ((void)(x))
#define LT_LIKELY(x) __builtin_expect(!!(x), 1)
#define LT_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define LT_INLINE inline __attribute__((always_inline))   /* a hot path's helper */
#else
#define LT_UNUSED(x) ((void)(x))
#define LT_LIKELY(x) (x)
#define LT_UNLIKELY(x) (x)
#define LT_INLINE inline
#endif

/* ============================================================================= COMPAT */
#if LUA_VERSION_NUM >= 504
#define lt_newuserdata(L, sz, nuv)   lua_newuserdatauv((L), (sz), (nuv))
#define lt_getuv(L, idx, n)          lua_getiuservalue((L), (idx), (n))
#define lt_setuv(L, idx, n)          lua_setiuservalue((L), (idx), (n))
#else
#error "lthreading needs Lua 5.4 or 5.5 (other versions: extend this COMPAT section)"
#endif

/* ====================================================================== TIME, PARKING */
/* park.c.  A deadline is an absolute lt_now() value; LT_FOREVER means no deadline. */
#define LT_FOREVER (-1.0)
double lt_now(void);                        /* monotonic clock, seconds */
double lt_deadline(double timeout);         /* timeout < 0 -> LT_FOREVER */
double lt_remaining(double deadline);       /* seconds left (>= 0), or -1 for LT_FOREVER */
void   lt_sleep(double seconds);
/* Block while *word == expected, until lt_unpark(word) or the deadline.  Spurious returns
** are allowed: callers re-check their condition.  Returns 0, or -1 once the deadline passed,
** or, only while the thread is armed (interrupt.c), LT_INTERRUPTED.  lt_park_spun too. */
int    lt_park(atomic_int *word, int expected, double deadline);
void   lt_unpark(atomic_int *word, int nwake);     /* nwake: INT_MAX for all */
void   lt_cpu_relax(void);
/* A race window held open for about `us` microseconds (a random time up to twice that),
** only in the build that a spec uses to make rare interleavings common (make's build/race:
** -DLT_TEST_WINDOWS); else nothing. */
#if defined(LT_TEST_WINDOWS)
void   lt_test_window(double us);
#define LT_TEST_WINDOW(us) lt_test_window(us)
#else
#define LT_TEST_WINDOW(us) ((void)0)
#endif
/* Spin while *w == v, for at most the adaptive budget (ns) kept in *budget (0: start at the
** maximum) and never past the deadline.  1 if the word changed.  The budget doubles when a
** spin pays off and halves when it does not (the other side sleeps or shares our core). */
int    lt_spin_changed(atomic_int *w, int v, double deadline, atomic_int *budget);
/* lt_park after such a spin: when woken (not timed out) sooner than the longest spin
** (max_ns; 0: lt_spin_changed's), spinning would have caught the change, so the budget
** doubles -- else a hand-off a little slower than the budget keeps both sides parking. */
int    lt_park_spun(atomic_int *word, int expected, double deadline, atomic_int *budget,
                    int max_ns);

/* ================================================================= OBJECTS (object.c) */
typedef struct lt_Object lt_Object;

typedef struct lt_Class {
  const char *name;                 /* "Lock"; the metatable is registry["lthreading.Lock"] */
  int nuv;                          /* user values in each proxy (0..2) */
  void (*destroy)(lt_Object *o);    /* free the object (refcount reached 0, any OS thread) */
  void (*metatable)(lua_State *L);  /* fill the new metatable on top of the stack */
} lt_Class;

struct lt_Object {
  const lt_Class *cls;
  atomic_long refs;
};

/* The userdata block of a proxy. */
typedef struct lt_Proxy {
  lt_Object *obj;
  int flags;                        /* per-proxy, per-state bits for the class's own use */
  unsigned magic;                   /* LT_PROXY_MAGIC: see lt_checkself */
  void *cache;                      /* per-proxy, per-state pointer for the class's own use */
  const lt_Class *cls;              /* obj's class (see lt_fastproxy) */
} lt_Proxy;
#define LT_PROXY_MAGIC 0x6c744f62u  /* "ltOb" */

void lt_object_init(lt_Object *o, const lt_Class *cls);  /* refs = 1: the caller's */
void lt_incref(lt_Object *o);
void lt_decref(lt_Object *o);                              /* may destroy */
/* Push the state's one proxy for o, creating it (with its own new reference) if needed. */
void lt_pushobject(lua_State *L, lt_Object *o);
/* Counts the references this OS thread's Lua states took (proxies made, C objects received):
** an idle pool worker that took some since its last full collection collects (pool.c). */
extern _Thread_local unsigned lt_T_refs_taken;
/* Allocate a zeroed object of `size` bytes (its struct starts with lt_Object), initialised
** with refs = 1 owned by a new proxy pushed on the stack.  The caller then fills in its
** fields (nothing there may raise before they are consistent for cls->destroy). */
void *lt_newobject(lua_State *L, const lt_Class *cls, size_t size);
lt_Proxy  *lt_toproxy(lua_State *L, int idx);              /* any lthreading proxy or NULL */
lt_Object *lt_toobject(lua_State *L, int idx, const lt_Class *cls);  /* NULL if not one */
lt_Object *lt_checkobject(lua_State *L, int idx, const lt_Class *cls); /* arg error if not */
/*
** Fast forms, for the hot path of every method.  A full userdata of exactly a proxy's size
** whose magic word matches is taken as our proxy without looking at its metatable: a foreign
** userdata would need the same size and the same 32-bit magic at the same place, and then
** also a pointer to a live lt_Object of the class -- it cannot happen by accident.
** lt_fastproxy: the proxy by that test, holding a live object, or NULL (for methods
** shared by several classes, which check p->cls themselves).  lt_checkself: argument 1 of
** a method, of class cls, else the full check with its error message.  Both read only the
** proxy (the calling state's memory): the object's header shares a cache line with its
** lock, which other threads write.
*/
static inline lt_Proxy *lt_fastproxy(lua_State *L, int idx) {
  lt_Proxy *p = (lt_Proxy *)lua_touserdata(L, idx);
  if (LT_LIKELY(p != NULL && lua_rawlen(L, idx) == sizeof(lt_Proxy) && p->magic == LT_PROXY_MAGIC
                && p->obj != NULL))
    return p;
  return NULL;
}

static inline lt_Object *lt_checkself(lua_State *L, const lt_Class *cls) {
  lt_Proxy *p = lt_fastproxy(L, 1);
  if (LT_LIKELY(p != NULL && p->cls == cls)) return p->obj;
  return lt_checkobject(L, 1, cls);
}
/* Fill the new metatable on top for a class: __index = methods, __gc, __name, __tostring,
** plus the given metamethods (which may override those); marks it as an lthreading proxy
** metatable. */
void lt_classmetatable(lua_State *L, const lt_Class *cls, const luaL_Reg *methods,
                       const luaL_Reg *metamethods);

/* lua_close(L) for a state lthreading made (a Thread's): the proxies that finalizers make
** while it closes get no __gc from Lua; their references are dropped here afterwards. */
void lt_close_state(lua_State *L);
/* Per-state setup, idempotent: proxy cache, named values, metatables on demand. */
void lt_state_init(lua_State *L);
/* Named values: values that cross by name (classes, error values, the module itself):
** the receiver gets its own value of the same name.  lt_setname: value at idx <-> name. */
void lt_setname(lua_State *L, int idx, const char *name);
const char *lt_getname(lua_State *L, int idx);   /* the name of the value at idx, or NULL */
int  lt_pushnamed(lua_State *L, const char *name); /* push it (opening lthreading); type */
int  lt_pushnamed_raw(lua_State *L, const char *name); /* push it or nil; never opens */

/* Error values (tables whose tostring is their name): "BrokenBarrierError", "TimeoutError",
** "CancelledError", "BrokenThreadPool".  lt_raise pushes one and raises it. */
int  lt_raise(lua_State *L, const char *errname);

/* Argument helpers shared by every class. */
/* Timeouts: nil or < 0 -> -1 (forever); else seconds.  NaN or above TIMEOUT_MAX
** (math.huge included) is an argument error: "bad argument #2 to 'acquire' (timeout is
** NaN)" / "(timeout too large: above TIMEOUT_MAX)".  Call them before taking anything, so
** that nothing is half done when they raise.  lt_checktimeout checks a number already read
** from argument idx. */
double lt_opttimeout(lua_State *L, int idx);
double lt_checktimeout(lua_State *L, int idx, lua_Number t);
const char *lt_badseconds(lua_Number t);  /* "is NaN", "too large: ...", or NULL if fine */
/* sleep(seconds): a number; NaN, negative or above TIMEOUT_MAX is an argument error. */
double lt_checksleep(lua_State *L, int idx);
/* Constructor options.  lt_optintoption: the integer option `name` at idx, def when nil;
** errors name the option: "bad argument #1 to 'Queue' (maxsize: integer expected, got
** 1.5)" / "(maxsize: number expected, got string)".  lt_checkoptions: the table of options
** at idx has only keys in known (NULL-terminated), else "(unknown option 'maxsise')". */
lua_Integer lt_optintoption(lua_State *L, int idx, const char *name, lua_Integer def);
void lt_checkoptions(lua_State *L, int idx, const char *const known[]);
void lt_checknoargs(lua_State *L);   /* Lock(), Event(): "(no arguments expected)" */
/* A bad option of a constructor that takes an options table (never returns):
**   bad option 'memory_limit' to 'Thread' (non-negative integer expected, got 1.5)
** lt_opt_error: with msg as the parenthesis.  lt_opt_typeerror: "EXPECTED expected, got X",
** X being the value at idx if it is a number (1.5, nan, -inf), else its type name. */
int lt_opt_error(lua_State *L, const char *fname, const char *option, const char *msg);
int lt_opt_typeerror(lua_State *L, const char *fname, const char *option,
                     const char *expected, int idx);

/* =============================================================== MARSHAL (marshal*.c) */
typedef struct lt_Buf lt_Buf;
/* Encode n values starting at stack index idx.  names: NULL, or n names used as the roots of
** error paths ("args" -> "cannot transfer args[2]: coroutine").  Raises a Lua error on a
** value that cannot cross; nothing leaks then.  The buffer holds one reference to every
** object it mentions. */
lt_Buf *lt_encode(lua_State *L, int idx, int n, const char *const *names);
/* The same, for a buffer that `owner` will keep inside itself (a queue item, a thread's
** result): a reference to the owner in the values is not counted, so an object holding
** itself is no reference cycle.  The buffer must not outlive the owner. */
lt_Buf *lt_encode_owned(lua_State *L, int idx, int n, const char *const *names,
                        lt_Object *owner);
/* Push the values (any number of times, any state).  Returns how many were pushed.
** Raises on memory errors and on a corrupt buffer. */
int     lt_decode(lua_State *L, const lt_Buf *b);
void    lt_buf_free(lt_Buf *b);                  /* drops the object references; NULL ok */
/* Low level, for fuzzing and tests: decode raw bytes (no object references allowed). */
int     lt_decode_bytes(lua_State *L, const char *data, size_t len);
/* Arrays in bulk (pool:map): encode t[first .. first+count-1] (t at idx, read with lua_geti)
** as one array value of exactly count elements, nils included; errors name element first+i
** as root[label+i] ("items[20]").  lt_decode_into rebuilds such a buffer's elements straight
** into the table at idx, element i (1-based) at key offset + i, and returns count; raises on
** any other buffer. */
lt_Buf *lt_encode_range(lua_State *L, int idx, lua_Integer first, lua_Integer count,
                        const char *root, lua_Integer label);
lua_Integer lt_decode_into(lua_State *L, const lt_Buf *b, int idx, lua_Integer offset);
/* A pool:map chunk in a worker.  lt_encode_map: the stack ends with f and a reader (of the
** chunk's items, pushed by lt_array_in); both are popped.  It encodes an array of count
** elements, element i (0-based) the first result of f called on the reader's next item;
** before each call, *stop non-zero raises CancelledError.  As encode, it raises (f's
** errors included) with nothing leaked.  Each result is written before the next item runs,
** so a result that cannot cross fails before any later item's error.
** lt_array_in pushes a reader (a userdata) of an array buffer (lt_encode_range's or
** lt_encode_map's); lt_array_next (the reader at stack index idx) pushes its next
** element and returns 1, or returns 0 past the last. */
lt_Buf *lt_encode_map(lua_State *L, lua_Integer count, const char *root, lua_Integer label,
                      const atomic_int *stop);
typedef struct lt_ArrayIn lt_ArrayIn;
lt_ArrayIn *lt_array_in(lua_State *L, const lt_Buf *b);
int lt_array_next(lua_State *L, lt_ArrayIn *r, int idx);

/* ============================================================ POOL MAP (pool_map.c) */
/* pool:map runs its items in chunks: one pool task runs f over a slice of the items, which
** travel as one array, and sends the results back as one array.  pool.c drives it. */
typedef struct lt_MapJob lt_MapJob;       /* one map call: chunk sizing, measured cost, stop */
typedef struct lt_MapChunk lt_MapChunk;   /* one chunk task's items, then its results */
/* A job for a pool of nworkers; chunksize 0: sized from the measured cost per item.  Pushes
** the userdata that holds the caller's reference. */
lt_MapJob *lt_mapjob_new(lua_State *L, int nworkers, lua_Integer chunksize);
lua_Integer lt_mapjob_size(lt_MapJob *j, lua_Integer remaining);  /* the next chunk's size */
void lt_mapjob_stop(lt_MapJob *j);        /* map raised: running chunks stop at their next item */
/* Encode items[first .. first+count-1] (items at idx) for a chunk of j; pushes a box (a
** userdata) that owns the chunk until lt_map_chunk_take moves it out of the box, or frees
** it when collected.  Raises naming the item that cannot cross. */
lt_MapChunk **lt_map_chunk_new(lua_State *L, lt_MapJob *j, int idx, lua_Integer first,
                               lua_Integer count);
void lt_map_chunk_free(lt_MapChunk *c);   /* NULL ok */
/* Worker: run the chunk (f at stack index 2); raises the first failing item's error. */
int  lt_map_chunk_run(lua_State *L, lt_MapChunk *c);
lt_Buf *lt_map_chunk_results(lt_MapChunk *c);  /* after a run that returned: moved out */

/* ======================================================= FD NOTIFIER (notify.c) */
/* An fd that polls readable exactly while an object's condition ready(arg) holds (see
** notify.c).  The object keeps an _Atomic(lt_Notify *) slot, NULL until fileno() is asked
** for, and calls lt_notify(slot, ready, arg) after each change of the condition: with no
** fd asked for, that is one load and one predictable branch.  ready() only reads atomics
** and must not raise or lock.  The destructor calls lt_notify_free(slot's value). */
typedef struct lt_Notify lt_Notify;
typedef int (*lt_ReadyFn)(void *arg);
void lt_notify_sync(lt_Notify *n, lt_ReadyFn ready, void *arg);
/* The slot's notifier, made on first use (race-free: one CAS); raises if no fd is left. */
lt_Notify *lt_notify_make(lua_State *L, _Atomic(lt_Notify *) *slot);
int  lt_notify_fd(const lt_Notify *n);
/* obj:fileno(): lt_notify_make, sync it once, push its fd. */
int  lt_pushfileno(lua_State *L, _Atomic(lt_Notify *) *slot, lt_ReadyFn ready, void *arg);
void lt_notify_free(lt_Notify *n);                       /* NULL ok */
static inline void lt_notify(_Atomic(lt_Notify *) *slot, lt_ReadyFn ready, void *arg) {
  lt_Notify *n = atomic_load(slot);
  if (LT_UNLIKELY(n != NULL)) lt_notify_sync(n, ready, arg);
}

/* ============================================== C OBJECTS BY REFERENCE (cref.c) */
/* A full userdata whose metatable has __lthreading_ref (include/lthreading_ref.h): an
** lt_Object standing for its C object, holding one reference of the module's kind, or NULL
** with *why set (the userdata is left alone).  May raise only before it allocates. */
lt_Object *lt_cref_wrap(lua_State *L, int idx, const char **why);
int  lt_cref_is(const lt_Object *o);
/* Push the module's userdata for the object, in L (may raise). */
void lt_cref_push(lua_State *L, lt_Object *o);

/* ============================================================= OS THREADS (worker.c) */
/* Run fn(arg) on an OS thread with asynchronous signals blocked and the configured stack
** size: an idle one that ran an earlier job, else a new one.  nondaemon: process exit
** waits for this job.  Returns 0 or an errno value; *tid (may be NULL) gets the thread's
** pthread_t.  lthreading joins its OS threads itself: never join or detach one. */
int  lt_spawn(void *(*fn)(void *), void *arg, int nondaemon, pthread_t *tid);
/* Process exit: wait for the non-daemon jobs (except the caller's own), stop the idle
** workers and join every OS thread that ended. */
void lt_exit_workers(void);
/* In a worker: the fresh state it made ahead (then NULL until it made the next), and from
** now on it keeps one ready while idle.  NULL elsewhere. */
lua_State  *lt_spare_state(void);
lua_Integer lt_native_id(void);             /* get_native_id() of the calling OS thread */
/* Has the calling OS thread used up half of its C stack?  The marshaler goes no deeper then
** (nested transfers: a module required while decoding that decodes in turn), which leaves
** the other half for the Lua code still to run below it.  0 when the stack is unknown. */
int  lt_stack_low(void);

/* ======================================== THREADS (thread.c, process.c, excepthook.c) */
typedef struct lt_Thread lt_Thread;
extern const lt_Class lt_ThreadClass;
lt_Thread *lt_current(void);                /* this OS thread's Thread (a Dummy if foreign) */
uintptr_t  lt_thread_ident(void);           /* get_ident() of this OS thread */
size_t lt_stack_size(void);                 /* stack_size(): bytes, 0 = the system's default */
int  lt_is_main_thread(void);
void lt_wait_nondaemon(void);               /* process exit: hooks, then lt_exit_workers */
void lt_install_print(lua_State *L);        /* line-atomic print, if print is the stock one */
/* A fresh state as threads get it: standard libraries, lthreading preloaded, line-atomic
** print.  NULL when out of memory.  (The caller sets package.path/cpath.)  lt_newstate may
** return one the calling worker made ahead (lt_spare_state); lt_freshstate always makes it. */
lua_State *lt_newstate(void);
lua_State *lt_freshstate(void);
/* Make the calling OS thread (one started with lt_spawn) an lthreading Thread called `name`
** for current_thread()/enumerate(), until lt_release_current().  Used by pool workers. */
lt_Thread *lt_adopt_current(const char *name, int daemon);
void lt_release_current(void);
/* Run fn at process exit, before waiting for non-daemon threads (pools shut down here). */
void lt_on_exit(void (*fn)(void));
extern _Thread_local int lt_depth_limit;    /* marshal nesting limit of this OS thread */
/* Called by luaopen in every state. */
void lt_open_thread(lua_State *L);          /* Thread and the thread functions, in the module */
void lt_push_thread_class(lua_State *L);    /* the state's Thread class (made on first use) */
/* The marshaler sends the Thread proxy at idx: snapshot its class and fields for the
** receiving states (a Timer's cancel() works from any thread).  Never raises. */
void lt_thread_sent(lua_State *L, int idx);
int  lt_excepthook_call(lua_State *L, int errvalue_idx, const char *traceback,
                        int thread_idx);    /* run the installed hook; never raises */

/* =================================================================== LOCKS (lock.c) */
/* The raw lock word used by Lock, RLock and Condition's waiters:
** 0 = free, 1 = held, 2 = held and someone may be parked. */
typedef struct lt_RawLock { atomic_int word, spin; } lt_RawLock;  /* zeroed = free */
int  lt_rawlock_acquire(lt_RawLock *l, int blocking, double deadline);  /* 1 got it, 0 not */
void lt_rawlock_release(lt_RawLock *l);
/* acquire([blocking = true], [timeout]) / acquire(timeout) at stack index 2: returns
** blocking; *timeout seconds or -1 (forever).  Python's errors; nonblocking_msg (or NULL
** for Lock's) is the one for a timeout given with blocking = false. */
int  lt_acquire_args(lua_State *L, double *timeout, const char *nonblocking_msg);
/* The lock-like surface: every lock-ish class puts these in its metatable:
** __call(self, ...) -> acquire(...) and self or nil;  __close -> release;  with(f, ...). */
void lt_locklike_methods(lua_State *L);     /* adds __call, __close, with to table on top */

extern const lt_Class lt_LockClass, lt_RLockClass;
void lt_open_lock(lua_State *L);            /* sets Lock, RLock in the module table on top */
/* Condition support: is this a Lock or RLock?  Save/restore the owner state of an RLock. */
typedef struct lt_LockState { uintptr_t owner; long count; } lt_LockState;
lt_Object *lt_checklocklike(lua_State *L, int idx);  /* a Lock or RLock */
int  lt_lock_is_owned(lt_Object *lock);     /* held by this thread (Lock: held at all) */
void lt_lock_release_save(lt_Object *lock, lt_LockState *st);   /* fully release */
int  lt_lock_acquire_restore(lt_Object *lock, lt_LockState *st, double deadline);
int  lt_lock_acquire_obj(lt_Object *lock, int blocking, double deadline);
void lt_lock_release_obj(lt_Object *lock);  /* caller checked it may */

/* ===================================================== INTERRUPTS (interrupt.c) */
/*
** Stopping a wait from outside: Ctrl-C (SIGINT) in the main thread, t:cancel() in a Thread.
** Each interruptible OS thread (the main thread; a Thread while its target runs) has an
** lt_Intr whose `word` holds the pending interrupts.  A blocking call ARMS (lt_intr_arm)
** before it may park and DISARMS after; while armed, lt_park also waits on that word and
** returns LT_INTERRUPTED once it is non-zero.  Unarmed parks, and lt_rawlock_acquire (the
** internal locks, also inside an armed call), never see interrupts.  After an interrupted
** wait the call undoes what it did (no lock acquired, no item taken, no waiter left
** queued), and, holding nothing, returns lt_intr_raise(L)'s way: CancelledError, or for
** SIGINT the interpreter's "interrupted!".  See interrupt.c for the whole contract.
*/
#define LT_INTERRUPTED (-2)         /* lt_park & co: an interrupt is pending (armed only) */
enum { LT_INTR_CANCEL = 1, LT_INTR_SIGINT = 2 };    /* bits of lt_Intr.word */
typedef struct lt_Intr {
  atomic_int word;                  /* pending LT_INTR_* bits; the futex word armed parks add */
  pthread_mutex_t mu;               /* guards state, tid (a leaf; may be taken before t->mu) */
  int state;                        /* 0 not running yet, 1 running (tid valid), 2 done */
  int cancellable;                  /* a Thread's target (not main, dummy, pool worker) */
  pthread_t tid;
} lt_Intr;
extern _Thread_local atomic_int *lt_intr_armed;   /* the armed word, or NULL (park.c) */
void lt_intr_init(lt_Intr *in);
void lt_intr_destroy(lt_Intr *in);
void lt_intr_main(lt_Intr *in);     /* this OS thread is the main thread: SIGINT is its */
void lt_intr_arm(void);             /* no-op in a thread that cannot be interrupted */
void lt_intr_disarm(void);
int  lt_intr_pending(void);         /* this thread's pending bits (0: none) */
int  lt_intr_raise(lua_State *L);   /* raise for the pending interrupt; 0: return normally */
void lt_intr_parking(atomic_int *armed);  /* lt_park, armed, is about to sleep */
/* lt_sleep, interruptible: 0 slept, LT_INTERRUPTED. */
int  lt_intr_sleep(double seconds);
/* A Thread's life, called on the thread itself (thread.c; process.c for a pool worker).
** namemu/name: the Thread's mutex and name, read under in->mu to set the OS name (first 15
** bytes, up to a NUL). */
void lt_intr_begin(lt_Intr *in, lua_State *L, pthread_mutex_t *namemu, char *const *name,
                   int cancellable);
void lt_intr_end(lt_Intr *in, lua_State *L);
int  lt_intr_cancel(lt_Intr *in);   /* 1 asked (not done yet), 0 done, -1 not cancellable */
void lt_intr_rename(lt_Intr *in, pthread_mutex_t *namemu, char *const *name);
int  lt_intr_cancelled(lua_State *L, int idx);  /* error at idx ended this thread by cancel */
void lt_intr_forget(lt_Intr *in);   /* fork child: the thread is gone (mu re-initialised) */
/* Process exit, main thread: a second Ctrl-C ends the wait for non-daemon threads. */
int  lt_intr_exit_begin(void);      /* 0: an earlier exit wait was interrupted: skip */
void lt_intr_exit_end(int interrupted);

/* ======================================================== the other modules' openers */
void lt_open_sync(lua_State *L);            /* Condition .. Barrier, Timer, in module table */
void lt_open_local(lua_State *L);
void lt_open_queue(lua_State *L);
void lt_open_shared(lua_State *L);
void lt_open_pool(lua_State *L);

int luaopen_lthreading(lua_State *L);

#endif
