/*
** future.c -- Future (the result of pool:submit), its waiters, threading.as_completed.
**
** CONTRACT
**   PENDING -> RUNNING -> FINISHED, or PENDING -> CANCELLED.  The result buffer is written
**   once, before the state becomes FINISHED, and freed with the Future, so result() decodes
**   it without any lock, as often as wanted.  Waiters spin briefly, then park on fut->word.
**   as_completed registers a Waiter with every future (a Link per future); finishing or
**   cancelling a future appends it to each linked Waiter's done list.  The pool (pool.c)
**   drives the states through the calls declared in pool.h.
**
** LOCKING
**   fut->mu: the state, the result, the links.  Order: fut->mu -> waiter->mu (a finishing
**   future notifies its waiters); nothing else nests.  Nothing that can raise, and no
**   lt_buf_free/lt_decref, under either.
*/
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"

static void future_destroy(lt_Object *o) {
  Future *f = (Future *)o;
  lt_buf_free(f->result);
  free(f->traceback);
  lt_notify_free(atomic_load(&f->note));
  free(f);
}

static void future_metatable(lua_State *L);
const lt_Class lt_FutureClass = { "Future", 0, future_destroy, future_metatable };

static void flock_(Future *f) { lt_rawlock_acquire(&f->mu, 1, LT_FOREVER); }
static void funlock(Future *f) { lt_rawlock_release(&f->mu); }

static int is_done(int st) { return st == F_CANCELLED || st == F_FINISHED; }

/* ------------------------------------------------------------- as_completed waiters */

struct Waiter {
  lt_RawLock mu;
  atomic_int word;
  int parked;
  int ndone;
  Future **done;               /* capacity: the number of futures */
};

/* A future became done (its mu held): tell the waiter. */
static void waiter_add(Waiter *w, Future *f) {
  int wake;
  lt_rawlock_acquire(&w->mu, 1, LT_FOREVER);
  w->done[w->ndone++] = f;
  wake = w->parked;
  atomic_fetch_add(&w->word, 1);
  lt_rawlock_release(&w->mu);
  if (wake) lt_unpark(&w->word, 1);
}

/* Make f done (mu held) and notify its as_completed waiters; the caller then wakes. */
static void mark_done(Future *f, int state) {
  Link *l;
  atomic_store(&f->state, state);
  for (l = f->links; l; l = l->next) {
    l->linked = 0;
    waiter_add(l->w, f);
  }
  f->links = NULL;
  atomic_fetch_add(&f->word, 1);
}

static int future_ready(void *arg) { return is_done(atomic_load(&((Future *)arg)->state)); }

/* After mark_done and unlocking: wake result() waiters and the fileno() fd. */
static void wake_waiters(Future *f) {
  if (atomic_load(&f->waiters) > 0) lt_unpark(&f->word, INT_MAX);
  lt_notify(&f->note, future_ready, f);
}

/* PENDING -> RUNNING; 0 if it was cancelled. */
int lt_future_start(Future *f) {
  int ok;
  flock_(f);
  ok = atomic_load(&f->state) == F_PENDING;
  if (ok) atomic_store(&f->state, F_RUNNING);
  funlock(f);
  return ok;
}

void lt_future_finish(Future *f, int ok, lt_Buf *result, char *tb, const char *cerr) {
  flock_(f);
  f->ok = ok;
  f->result = result;
  f->traceback = tb;
  f->cerr = cerr;
  mark_done(f, F_FINISHED);
  funlock(f);
  wake_waiters(f);
}

/* PENDING -> CANCELLED: 1 if cancelled now or before. */
int lt_future_cancel(Future *f) {
  int st, r;
  flock_(f);
  st = atomic_load(&f->state);
  if (st == F_PENDING) mark_done(f, F_CANCELLED);
  r = st == F_PENDING || st == F_CANCELLED;
  funlock(f);
  if (st == F_PENDING) wake_waiters(f);
  return r;
}

/* Wait until f is done or the deadline passed; returns whether it is done. */
int lt_future_wait(Future *f, double deadline) {
  double until;
  int i;
  if (is_done(atomic_load(&f->state))) return 1;
  until = lt_now() + LT_POOL_SPIN_NS;
  if (deadline != LT_FOREVER && deadline < until) until = deadline;
  for (i = 1; !is_done(atomic_load(&f->state)); i++)
    if (!spin_step(i, until)) break;
  for (;;) {
    int seen;
    if (is_done(atomic_load(&f->state))) return 1;
    seen = atomic_load(&f->word);
    atomic_fetch_add(&f->waiters, 1);
    if (is_done(atomic_load(&f->state))) { atomic_fetch_sub(&f->waiters, 1); return 1; }
    i = lt_park(&f->word, seen, deadline);
    atomic_fetch_sub(&f->waiters, 1);
    if (i < 0) return is_done(atomic_load(&f->state));
  }
}

Future *lt_future_new(lua_State *L) {
  Future *f = (Future *)lt_newobject(L, &lt_FutureClass, sizeof(Future));
  atomic_init(&f->mu.word, 0);
  atomic_init(&f->state, F_PENDING);
  atomic_init(&f->word, 0);
  atomic_init(&f->waiters, 0);
  atomic_init(&f->note, NULL);
  return f;
}

/* Push f's results (f FINISHED) or raise its error. */
int lt_future_push_result(lua_State *L, Future *f) {
  if (atomic_load(&f->state) == F_CANCELLED) return lt_raise(L, "CancelledError");
  if (!f->ok) {
    if (f->result == NULL) return luaL_error(L, "%s", f->cerr ? f->cerr : "task failed");
    lt_decode(L, f->result);
    return lua_error(L);
  }
  return lt_decode(L, f->result);
}

/* ============================================================== FUTURE METHODS */

/* fut:result([timeout]) -> the task's values; raises its error, TimeoutError, or
** CancelledError. */
static int fu_result(lua_State *L) {
  Future *f = (Future *)lt_checkself(L, &lt_FutureClass);
  double deadline = lt_deadline(lt_opttimeout(L, 2));
  lua_settop(L, 1);
  if (!lt_future_wait(f, deadline)) return lt_raise(L, "TimeoutError");
  return lt_future_push_result(L, f);
}

/* fut:exception([timeout]) -> the task's error value and traceback, or nil if it
** succeeded; raises TimeoutError or CancelledError. */
static int fu_exception(lua_State *L) {
  Future *f = (Future *)lt_checkself(L, &lt_FutureClass);
  double deadline = lt_deadline(lt_opttimeout(L, 2));
  lua_settop(L, 1);
  if (!lt_future_wait(f, deadline)) return lt_raise(L, "TimeoutError");
  if (atomic_load(&f->state) == F_CANCELLED) return lt_raise(L, "CancelledError");
  if (f->ok) { lua_pushnil(L); return 1; }
  if (f->result == NULL) lua_pushstring(L, f->cerr ? f->cerr : "task failed");
  else lt_decode(L, f->result);
  if (f->traceback) lua_pushstring(L, f->traceback);
  else lua_pushnil(L);
  return 2;
}

static int fu_done(lua_State *L) {
  Future *f = (Future *)lt_checkself(L, &lt_FutureClass);
  lua_pushboolean(L, is_done(atomic_load(&f->state)));
  return 1;
}

static int fu_running(lua_State *L) {
  Future *f = (Future *)lt_checkself(L, &lt_FutureClass);
  lua_pushboolean(L, atomic_load(&f->state) == F_RUNNING);
  return 1;
}

static int fu_cancelled(lua_State *L) {
  Future *f = (Future *)lt_checkself(L, &lt_FutureClass);
  lua_pushboolean(L, atomic_load(&f->state) == F_CANCELLED);
  return 1;
}

static int fu_cancel(lua_State *L) {
  Future *f = (Future *)lt_checkself(L, &lt_FutureClass);
  lua_pushboolean(L, lt_future_cancel(f));
  return 1;
}

/* fut:fileno() -> an fd that polls readable once the future is done */
static int fu_fileno(lua_State *L) {
  Future *f = (Future *)lt_checkself(L, &lt_FutureClass);
  return lt_pushfileno(L, &f->note, future_ready, f);
}

static int fu_tostring(lua_State *L) {
  static const char *const names[] = { "pending", "running", "cancelled", "finished" };
  Future *f = (Future *)lt_checkself(L, &lt_FutureClass);
  int st = atomic_load(&f->state);
  lua_pushfstring(L, "<Future %s%s: %p>", names[st],
                  st == F_FINISHED ? (f->ok ? " returned" : " raised") : "", (void *)f);
  return 1;
}

/* ================================================================ as_completed */

typedef struct AC {
  Waiter w;
  int n, yielded;
  double deadline;
  int closed;
  Future **futs;               /* n references */
  Link *links;                 /* n */
} AC;

static void ac_close(AC *a) {
  int i;
  if (a->closed) return;
  a->closed = 1;
  for (i = 0; i < a->n; i++) {          /* unlink first: no future touches us after this */
    Future *f = a->futs[i];
    Link *l = &a->links[i];
    flock_(f);
    if (l->linked) {
      if (l->prev) l->prev->next = l->next;
      else f->links = l->next;
      if (l->next) l->next->prev = l->prev;
      l->linked = 0;
    }
    funlock(f);
  }
  for (i = 0; i < a->n; i++) lt_decref(&a->futs[i]->obj);
  free(a->futs);
  free(a->links);
  free(a->w.done);
  a->futs = NULL;
  a->links = NULL;
  a->w.done = NULL;
  a->n = 0;
}

static int ac_gc(lua_State *L) {
  ac_close((AC *)lua_touserdata(L, 1));
  return 0;
}

/* The iterator: the next future to finish; nil when all were given. */
static int ac_next(lua_State *L) {
  AC *a = (AC *)lua_touserdata(L, lua_upvalueindex(1));
  for (;;) {
    Future *f = NULL;
    int seen;
    if (a->closed || a->yielded >= a->n) { ac_close(a); lua_pushnil(L); return 1; }
    lt_rawlock_acquire(&a->w.mu, 1, LT_FOREVER);
    if (a->yielded < a->w.ndone) f = a->w.done[a->yielded++];
    seen = atomic_load(&a->w.word);
    if (f == NULL) a->w.parked = 1;
    lt_rawlock_release(&a->w.mu);
    if (f) { lt_pushobject(L, &f->obj); return 1; }
    if (lt_park(&a->w.word, seen, a->deadline) < 0) {
      int late;
      lt_rawlock_acquire(&a->w.mu, 1, LT_FOREVER);
      a->w.parked = 0;
      late = a->yielded < a->w.ndone;
      lt_rawlock_release(&a->w.mu);
      if (!late) { ac_close(a); return lt_raise(L, "TimeoutError"); }
    } else {
      lt_rawlock_acquire(&a->w.mu, 1, LT_FOREVER);
      a->w.parked = 0;
      lt_rawlock_release(&a->w.mu);
    }
  }
}

static const char K_ACMETA = 0;

/* threading.as_completed(futures, [timeout]) -> iterator over the futures (duplicates
** once) as they finish or are cancelled: those done already first.  Once the timeout
** (counted from this call) passes with futures left, the iterator raises TimeoutError. */
static int f_as_completed(lua_State *L) {
  AC *a;
  lua_Integer n, i;
  int k = 0;
  double deadline;
  luaL_checktype(L, 1, LUA_TTABLE);
  deadline = lt_deadline(lt_opttimeout(L, 2));
  lua_settop(L, 2);
  n = luaL_len(L, 1);
  lua_newtable(L);                                        /* 3: seen set */
  for (i = 1; i <= n; i++) {                              /* check and dedup first */
    lua_geti(L, 1, i);
    if (lt_toobject(L, -1, &lt_FutureClass) == NULL)
      return luaL_error(L, "as_completed: futures[%I] is not a Future (got %s)", i,
                        luaL_typename(L, -1));
    lua_pushboolean(L, 1);
    lua_rawset(L, 3);
  }
  n = 0;
  lua_pushnil(L);
  while (lua_next(L, 3)) { lua_pop(L, 1); n++; }
  a = (AC *)lt_newuserdata(L, sizeof(AC), 0);             /* 4 */
  memset(a, 0, sizeof *a);
  a->closed = 1;                                          /* until filled */
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &K_ACMETA) == LUA_TNIL) {
    lua_pop(L, 1);
    lua_createtable(L, 0, 2);
    lua_pushcfunction(L, ac_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, ac_gc);
    lua_setfield(L, -2, "__close");
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &K_ACMETA);
  }
  lua_setmetatable(L, 4);
  a->deadline = deadline;
  atomic_init(&a->w.mu.word, 0);
  atomic_init(&a->w.word, 0);
  a->futs = (Future **)calloc((size_t)(n ? n : 1), sizeof(Future *));
  a->links = (Link *)calloc((size_t)(n ? n : 1), sizeof(Link));
  a->w.done = (Future **)calloc((size_t)(n ? n : 1), sizeof(Future *));
  if (!a->futs || !a->links || !a->w.done) {
    free(a->futs); free(a->links); free(a->w.done);
    a->futs = NULL; a->links = NULL; a->w.done = NULL;
    return luaL_error(L, "not enough memory");
  }
  a->closed = 0;
  lua_pushnil(L);
  while (lua_next(L, 3)) {                                /* no raise in this loop */
    Future *f = (Future *)lt_toobject(L, -2, &lt_FutureClass);
    Link *l = &a->links[k];
    lua_pop(L, 1);
    lt_incref(&f->obj);
    a->futs[k++] = f;
    a->n = k;
    l->w = &a->w;
    flock_(f);
    if (is_done(atomic_load(&f->state))) {
      waiter_add(&a->w, f);
    } else {
      l->prev = NULL;
      l->next = f->links;
      if (f->links) f->links->prev = l;
      f->links = l;
      l->linked = 1;
    }
    funlock(f);
  }
  lua_pushvalue(L, 4);
  lua_pushcclosure(L, ac_next, 1);                        /* iterator, nil, nil, closer */
  lua_pushnil(L);
  lua_pushnil(L);
  lua_pushvalue(L, 4);
  return 4;
}

/* ============================================================================ OPEN */

static void future_metatable(lua_State *L) {
  static const luaL_Reg meth[] = {
    {"result", fu_result}, {"exception", fu_exception}, {"done", fu_done},
    {"running", fu_running}, {"cancelled", fu_cancelled}, {"cancel", fu_cancel},
    {"fileno", fu_fileno}, {NULL, NULL}
  };
  static const luaL_Reg metameth[] = { {"__tostring", fu_tostring}, {NULL, NULL} };
  lt_classmetatable(L, &lt_FutureClass, meth, metameth);
}

void lt_open_future(lua_State *L) {
  lua_pushcfunction(L, f_as_completed);
  lua_setfield(L, -2, "as_completed");
}
