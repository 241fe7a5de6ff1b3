/*
** lock.c -- Lock, RLock, and the lock-like surface (__call, __close, with) of every
** lock-ish class.
**
** The raw lock is one atomic word (0 free, 1 held, 2 held and maybe contended) waited on
** with lt_park: Drepper's "mutex2".  It has no owner, so any thread may release a Lock, and
** timeouts are native.  Before parking, a waiter spins for a bounded, adaptive time
** (lt_spin_changed: at most about one cross-core wake-up, less when spinning stops paying),
** because most critical sections are shorter than the cost of sleeping and being woken.
** RLock adds an owner (the OS thread's ident) and a depth; only the owner touches the depth.
*/
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "lthreading.h"


typedef struct lt_Lock {
  lt_Object obj;
  lt_RawLock raw;
  atomic_uintptr_t owner;      /* RLock: ident of the owner, 0 if none */
  long depth;                  /* RLock: recursion depth, owner-only */
} lt_Lock;

/* ====================================================================== RAW LOCK */

/* Spin (adaptively) while the lock is held by a running owner; 1 if we got it. */
static int raw_spin(lt_RawLock *l, double deadline) {
  int tries;
  for (tries = 0; tries < 4; tries++) {
    int w = atomic_load_explicit(&l->word, memory_order_relaxed), expect = 0;
    if (w == 2) return 0;                 /* others already sleep: join them */
    if (w == 1 && !lt_spin_changed(&l->word, 1, deadline, &l->spin)) return 0;
    if (atomic_compare_exchange_strong_explicit(&l->word, &expect, 1, memory_order_acquire,
                                                memory_order_relaxed))
      return 1;
  }
  return 0;
}

/* The slow path: spin, then park.  0 when the deadline passed, or when an armed wait was
** interrupted (then without a last try: an interrupted acquire acquires nothing). */
static int raw_slow(lt_RawLock *l, double deadline) {
  int expect;
  if (raw_spin(l, deadline)) return 1;
  while (atomic_exchange_explicit(&l->word, 2, memory_order_acquire) != 0) {
    int r = lt_park_spun(&l->word, 2, deadline, &l->spin, 0);
    if (r == LT_INTERRUPTED) return 0;
    if (r < 0) {
      /* timed out: one last try, then give up (a stray 2 only costs a spare wake-up) */
      expect = 0;
      return atomic_compare_exchange_strong_explicit(&l->word, &expect, 2,
                                                     memory_order_acquire,
                                                     memory_order_relaxed);
    }
  }
  return 1;
}

/* The internal locks: never interrupted, even inside an armed call (interrupt.c). */
int lt_rawlock_acquire(lt_RawLock *l, int blocking, double deadline) {
  int expect = 0, got;
  atomic_int *armed;
  if (atomic_compare_exchange_strong_explicit(&l->word, &expect, 1, memory_order_acquire,
                                              memory_order_relaxed))
    return 1;
  if (!blocking) return 0;
  if ((armed = lt_intr_armed) == NULL) return raw_slow(l, deadline);
  lt_intr_armed = NULL;
  got = raw_slow(l, deadline);
  lt_intr_armed = armed;
  return got;
}

/* The user's acquire: interruptible.  0 and lt_intr_pending() when interrupted. */
static int raw_acquire_intr(lt_RawLock *l, int blocking, double deadline) {
  int expect = 0, got;
  if (atomic_compare_exchange_strong_explicit(&l->word, &expect, 1, memory_order_acquire,
                                              memory_order_relaxed))
    return 1;
  if (!blocking) return 0;
  lt_intr_arm();
  got = raw_slow(l, deadline);
  lt_intr_disarm();
  return got;
}

void lt_rawlock_release(lt_RawLock *l) {
  if (atomic_exchange_explicit(&l->word, 0, memory_order_release) == 2)
    lt_unpark(&l->word, 1);
}

/* ==================================================================== LOCK OBJECTS */

static void lock_destroy(lt_Object *o) { free(o); }
static void lock_metatable(lua_State *L);
static void rlock_metatable(lua_State *L);
const lt_Class lt_LockClass = { "Lock", 0, lock_destroy, lock_metatable };
const lt_Class lt_RLockClass = { "RLock", 0, lock_destroy, rlock_metatable };

static lt_Lock *checklock(lua_State *L, const lt_Class *cls) {
  return (lt_Lock *)lt_checkself(L, cls);
}

int lt_acquire_args(lua_State *L, double *timeout, const char *nonblocking_msg) {
  int blocking = 1;
  *timeout = -1;
  switch (lua_type(L, 2)) {
    case LUA_TNONE: case LUA_TNIL: break;
    case LUA_TBOOLEAN: blocking = lua_toboolean(L, 2); break;
    case LUA_TNUMBER: *timeout = lt_checktimeout(L, 2, lua_tonumber(L, 2)); break;
    default: luaL_typeerror(L, 2, "number");
  }
  if (!lua_isnoneornil(L, 3)) {
    *timeout = lt_opttimeout(L, 3);
    if (!blocking && *timeout >= 0)
      luaL_error(L, "%s", nonblocking_msg ? nonblocking_msg
                                          : "can't specify a timeout for a non-blocking call");
  }
  return blocking;
}

/* The common call, acquire() with no argument, skips the argument parsing. */
static int acquire_args(lua_State *L, double *deadline) {
  double timeout;
  int blocking;
  if (lua_gettop(L) == 1) { *deadline = LT_FOREVER; return 1; }
  blocking = lt_acquire_args(L, &timeout, NULL);
  *deadline = lt_deadline(timeout);
  return blocking;
}

static int lock_acquire(lua_State *L) {
  lt_Lock *l = checklock(L, &lt_LockClass);
  double deadline;
  int blocking = acquire_args(L, &deadline);
  int got = raw_acquire_intr(&l->raw, blocking, deadline);
  if (!got && blocking && lt_intr_pending()) lt_intr_raise(L);
  lua_pushboolean(L, got);
  return 1;
}

static int lock_release(lua_State *L) {
  lt_Lock *l = checklock(L, &lt_LockClass);
  if (atomic_load_explicit(&l->raw.word, memory_order_relaxed) == 0)
    return luaL_error(L, "release unlocked lock");
  lt_rawlock_release(&l->raw);
  return 0;
}

static int lock_locked(lua_State *L) {
  lt_Lock *l = checklock(L, &lt_LockClass);
  lua_pushboolean(L, atomic_load(&l->raw.word) != 0);
  return 1;
}

static int lock_tostring(lua_State *L) {
  lt_Lock *l = (lt_Lock *)lt_checkobject(L, 1, NULL);
  lua_pushfstring(L, "<%s %s: %p>", atomic_load(&l->raw.word) ? "locked" : "unlocked",
                  l->obj.cls->name, (void *)l);
  return 1;
}

/* ---------------------------------------------------------------------- RLock */

static int rlock_acquire_(lt_Lock *l, int blocking, double deadline) {
  uintptr_t me = lt_thread_ident();
  if (atomic_load_explicit(&l->owner, memory_order_relaxed) == me) { l->depth++; return 1; }
  if (!raw_acquire_intr(&l->raw, blocking, deadline)) return 0;
  atomic_store_explicit(&l->owner, me, memory_order_relaxed);
  l->depth = 1;
  return 1;
}

static int rlock_acquire(lua_State *L) {
  lt_Lock *l = checklock(L, &lt_RLockClass);
  double deadline;
  int blocking = acquire_args(L, &deadline);
  int got = rlock_acquire_(l, blocking, deadline);
  if (!got && blocking && lt_intr_pending()) lt_intr_raise(L);
  lua_pushboolean(L, got);
  return 1;
}

static int rlock_release(lua_State *L) {
  lt_Lock *l = checklock(L, &lt_RLockClass);
  if (atomic_load_explicit(&l->owner, memory_order_relaxed) != lt_thread_ident())
    return luaL_error(L, "cannot release un-acquired lock");
  if (--l->depth == 0) {
    atomic_store_explicit(&l->owner, 0, memory_order_relaxed);
    lt_rawlock_release(&l->raw);
  }
  return 0;
}

static int rlock_locked(lua_State *L) {
  lt_Lock *l = checklock(L, &lt_RLockClass);
  lua_pushboolean(L, atomic_load(&l->raw.word) != 0);
  return 1;
}

/* ================================================ lock-like objects, as Condition sees them */

lt_Object *lt_checklocklike(lua_State *L, int idx) {
  lt_Object *o = lt_toobject(L, idx, NULL);
  if (o == NULL || (o->cls != &lt_LockClass && o->cls != &lt_RLockClass))
    luaL_typeerror(L, idx, "lock: Lock or RLock");  /* Condition(lock) */
  return o;
}

int lt_lock_is_owned(lt_Object *o) {
  lt_Lock *l = (lt_Lock *)o;
  if (o->cls == &lt_RLockClass)
    return atomic_load_explicit(&l->owner, memory_order_relaxed) == lt_thread_ident();
  return atomic_load(&l->raw.word) != 0;
}

void lt_lock_release_save(lt_Object *o, lt_LockState *st) {
  lt_Lock *l = (lt_Lock *)o;
  st->owner = 0;
  st->count = 0;
  if (o->cls == &lt_RLockClass) {
    st->owner = atomic_load_explicit(&l->owner, memory_order_relaxed);
    st->count = l->depth;
    l->depth = 0;
    atomic_store_explicit(&l->owner, 0, memory_order_relaxed);
  }
  lt_rawlock_release(&l->raw);
}

int lt_lock_acquire_restore(lt_Object *o, lt_LockState *st, double deadline) {
  lt_Lock *l = (lt_Lock *)o;
  if (!lt_rawlock_acquire(&l->raw, 1, deadline)) return 0;
  if (o->cls == &lt_RLockClass) {
    atomic_store_explicit(&l->owner, st->owner, memory_order_relaxed);
    l->depth = st->count;
  }
  return 1;
}

int lt_lock_acquire_obj(lt_Object *o, int blocking, double deadline) {   /* interruptible */
  if (o->cls == &lt_RLockClass) return rlock_acquire_((lt_Lock *)o, blocking, deadline);
  return raw_acquire_intr(&((lt_Lock *)o)->raw, blocking, deadline);
}

void lt_lock_release_obj(lt_Object *o) {
  lt_Lock *l = (lt_Lock *)o;
  if (o->cls == &lt_RLockClass && --l->depth > 0) return;
  if (o->cls == &lt_RLockClass) atomic_store_explicit(&l->owner, 0, memory_order_relaxed);
  lt_rawlock_release(&l->raw);
}

/* ============================================= the lock-like surface (all lock-ish classes) */

/* obj(...) -> obj:acquire(...) and obj or nil, so that `local _ <close> = obj()` scopes.
** A bad timeout is reported here, as acquire's (called from C, acquire has no name). */
static int ll_call_entry(lua_State *L) {
  int n = lua_gettop(L), i;
  for (i = 2; i <= 3 && i <= n; i++) {
    const char *why = lua_type(L, i) == LUA_TNUMBER ? lt_badseconds(lua_tonumber(L, i)) : NULL;
    if (why != NULL) return luaL_error(L, "bad argument #%d to 'acquire' (timeout %s)", i - 1, why);
  }
  lua_getfield(L, 1, "acquire");
  luaL_checkstack(L, n + 1, NULL);
  for (i = 1; i <= n; i++) lua_pushvalue(L, i);
  lua_call(L, n, 1);
  if (lua_toboolean(L, -1)) lua_pushvalue(L, 1);
  else lua_pushnil(L);
  return 1;
}

static int ll_close(lua_State *L) {
  lua_getfield(L, 1, "release");
  lua_pushvalue(L, 1);
  lua_call(L, 1, 0);
  return 0;
}

static int ll_with_k(lua_State *L, int status, lua_KContext ctx) {
  int ok = status == LUA_OK || status == LUA_YIELD, base = (int)ctx;
  lua_getfield(L, 1, "release");
  lua_pushvalue(L, 1);
  lua_call(L, 1, 0);
  if (!ok) return lua_error(L);
  return lua_gettop(L) - base;
}

/* obj:with(f, ...): acquire, f(...), release even on error; f's values. */
static int ll_with(lua_State *L) {
  int n = lua_gettop(L), status;
  luaL_checkany(L, 2);
  lua_getfield(L, 1, "acquire");
  lua_pushvalue(L, 1);
  lua_call(L, 1, 1);
  if (!lua_toboolean(L, -1)) return luaL_error(L, "could not acquire the lock");
  lua_pop(L, 1);
  lua_rotate(L, 2, -1);           /* L: self args... f */
  lua_insert(L, 2);               /* L: self f args... */
  status = lua_pcallk(L, n - 2, LUA_MULTRET, 0, 1, ll_with_k);
  return ll_with_k(L, status, 1);
}

void lt_locklike_methods(lua_State *L) {
  /* metatable on top, its __index table already set */
  lua_pushcfunction(L, ll_call_entry);
  lua_setfield(L, -2, "__call");
  lua_pushcfunction(L, ll_close);
  lua_setfield(L, -2, "__close");
  lua_getfield(L, -1, "__index");
  lua_pushcfunction(L, ll_with);
  lua_setfield(L, -2, "with");
  lua_pop(L, 1);
}

/* ============================================================================ OPEN */

static void lock_metatable(lua_State *L) {
  static const luaL_Reg meth[] = {
    {"acquire", lock_acquire}, {"release", lock_release}, {"locked", lock_locked},
    {"acquire_lock", lock_acquire}, {"release_lock", lock_release},
    {"locked_lock", lock_locked}, {NULL, NULL}
  };
  static const luaL_Reg metameth[] = { {"__tostring", lock_tostring}, {NULL, NULL} };
  lt_classmetatable(L, &lt_LockClass, meth, metameth);
  lt_locklike_methods(L);
}

static void rlock_metatable(lua_State *L) {
  static const luaL_Reg meth[] = {
    {"acquire", rlock_acquire}, {"release", rlock_release}, {"locked", rlock_locked},
    {NULL, NULL}
  };
  static const luaL_Reg metameth[] = { {"__tostring", lock_tostring}, {NULL, NULL} };
  lt_classmetatable(L, &lt_RLockClass, meth, metameth);
  lt_locklike_methods(L);
}

static int new_lock(lua_State *L, const lt_Class *cls) {
  lt_Lock *l = (lt_Lock *)lt_newobject(L, cls, sizeof(lt_Lock));
  atomic_init(&l->raw.word, 0);
  atomic_init(&l->raw.spin, 0);
  atomic_init(&l->owner, 0);
  return 1;
}

static int f_lock(lua_State *L) { lt_checknoargs(L); return new_lock(L, &lt_LockClass); }
static int f_rlock(lua_State *L) { lt_checknoargs(L); return new_lock(L, &lt_RLockClass); }

void lt_open_lock(lua_State *L) {
  lua_pushcfunction(L, f_lock);
  lua_setfield(L, -2, "Lock");
  lua_pushcfunction(L, f_rlock);
  lua_setfield(L, -2, "RLock");
}
