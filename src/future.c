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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"

typedef struct Callback {      /* one add_done_callback function, encoded (owner: f) */
  struct Callback *next;
  lt_Buf *fn;
} Callback;

static void free_callbacks(Callback *cb) {
  while (cb) {
    Callback *next = cb->next;
    lt_buf_free(cb->fn);
    free(cb);
    cb = next;
  }
}

static void future_destroy(lt_Object *o) {
  Future *f = (Future *)o;
  free_callbacks(f->callbacks);          /* never run: the future never finished */
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
  LT_TEST_WINDOW(53);                  /* (a waiter may register meanwhile) */
  if (atomic_load(&f->waiters) > 0) lt_unpark(&f->word, INT_MAX);
  lt_notify(&f->note, future_ready, f);
}

/* ---------------------------------------------------------------- done callbacks */

/* The message handler of a callback: its error as a string, with a traceback. */
static int cb_msgh(lua_State *L) {
  luaL_traceback(L, L, luaL_tolstring(L, 1, NULL), 1);
  return 1;
}

/* lua_pcall'd: 1: Future* (light), 2: lt_Buf* of the function (light) or the function
** itself.  Calls fn(fut). */
static int cb_call(lua_State *L) {
  Future *f = (Future *)lua_touserdata(L, 1);
  if (lua_islightuserdata(L, 2)) {
    lt_decode(L, (const lt_Buf *)lua_touserdata(L, 2));
    lua_replace(L, 2);
  }
  lt_pushobject(L, &f->obj);
  lua_call(L, 1, 0);
  return 0;
}

/* Report a callback's error (a string on top, from cb_msgh) on stderr, as Python's
** logger does. */
static void cb_report(lua_State *L, Future *f) {
  const char *msg = lua_tostring(L, -1);
  fprintf(stderr, "exception calling callback for <Future at %p>:\n%s\n", (void *)f,
          msg ? msg : "(an error object that is not a string)");
  fflush(stderr);
}

/* Call fn(fut) in L, fn being the value at fn_idx or (fn_idx 0) the buffer b; an error is
** reported on stderr and ignored.  Never raises (but for a memory error reporting one). */
static void cb_run(lua_State *L, Future *f, int fn_idx, const lt_Buf *b) {
  int top = lua_gettop(L);
  if (!lua_checkstack(L, 6)) return;
  lua_pushcfunction(L, cb_msgh);
  lua_pushcfunction(L, cb_call);
  lua_pushlightuserdata(L, f);
  if (fn_idx) lua_pushvalue(L, fn_idx);
  else lua_pushlightuserdata(L, (void *)b);
  if (lua_pcall(L, 2, 0, top + 1) != LUA_OK) cb_report(L, f);
  lua_settop(L, top);
}

/* Run (in L) and free callbacks taken from a future that just became done. */
static void run_callbacks(lua_State *L, Future *f, Callback *cb) {
  Callback *it;
  for (it = cb; it; it = it->next) {
    if (L != NULL) cb_run(L, f, 0, it->fn);
    else fprintf(stderr, "lthreading: a done callback of <Future at %p> was not run "
                 "(no Lua state to run it in)\n", (void *)f);
  }
  free_callbacks(cb);
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

static void finish(lua_State *L, Future *f, int ok, lt_Buf *result, char *tb,
                   const char *cerr, const char *errname) {
  Callback *cb;
  flock_(f);
  f->ok = ok;
  f->result = result;
  f->traceback = tb;
  f->cerr = cerr;
  f->errname = errname;
  mark_done(f, F_FINISHED);
  cb = f->callbacks;
  f->callbacks = NULL;
  funlock(f);
  wake_waiters(f);
  if (cb) run_callbacks(L, f, cb);
}

void lt_future_finish(lua_State *L, Future *f, int ok, lt_Buf *result, char *tb,
                      const char *cerr) {
  finish(L, f, ok, result, tb, cerr, NULL);
}

void lt_future_fail_named(lua_State *L, Future *f, const char *errname) {
  finish(L, f, 0, NULL, NULL, NULL, errname);
}

/* PENDING -> CANCELLED: 1 if cancelled now or before. */
int lt_future_cancel(lua_State *L, Future *f) {
  int st, r;
  Callback *cb = NULL;
  flock_(f);
  st = atomic_load(&f->state);
  if (st == F_PENDING) {
    mark_done(f, F_CANCELLED);
    cb = f->callbacks;
    f->callbacks = NULL;
  }
  r = st == F_PENDING || st == F_CANCELLED;
  funlock(f);
  if (st == F_PENDING) wake_waiters(f);
  if (cb) run_callbacks(L, f, cb);
  return r;
}

/* Wait until f is done or the deadline passed; returns whether it is done, or
** LT_INTERRUPTED (armed by lt_future_wait). */
static int future_wait_(Future *f, double deadline) {
  double until;
  int i;
  until = lt_now() + LT_POOL_SPIN_NS;
  if (deadline != LT_FOREVER && deadline < until) until = deadline;
  for (i = 1; !is_done(atomic_load(&f->state)); i++)
    if (!spin_step(i, until)) break;
  for (;;) {
    int seen;
    if (is_done(atomic_load(&f->state))) return 1;
    seen = atomic_load(&f->word);
    atomic_fetch_add(&f->waiters, 1);
    LT_TEST_WINDOW(50);                /* (f may be done meanwhile) */
    if (is_done(atomic_load(&f->state))) { atomic_fetch_sub(&f->waiters, 1); return 1; }
    i = lt_park(&f->word, seen, deadline);
    atomic_fetch_sub(&f->waiters, 1);
    if (i == LT_INTERRUPTED && !is_done(atomic_load(&f->state))) return LT_INTERRUPTED;
    if (i < 0) return is_done(atomic_load(&f->state));
  }
}

int lt_future_wait(Future *f, double deadline) {
  int r;
  if (is_done(atomic_load(&f->state))) return 1;
  lt_intr_arm();
  r = future_wait_(f, deadline);
  lt_intr_disarm();
  return r;
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
    if (f->result == NULL && f->errname) return lt_raise(L, f->errname);
    if (f->result == NULL) return luaL_error(L, "%s", f->cerr ? f->cerr : "task failed");
    lt_decode(L, f->result);
    return lua_error(L);
  }
  return lt_decode(L, f->result);
}

/* ============================================================== FUTURE METHODS */

/* result()/exception(): self and the timeout at 2; waits.  The future, or NULL when the
** wait was interrupted and the caller is to return nothing (Ctrl-C: lua.c's hook raises);
** raises TimeoutError, or CancelledError when this thread was cancelled meanwhile. */
static Future *wait_self(lua_State *L) {
  Future *f = (Future *)lt_checkself(L, &lt_FutureClass);
  double deadline = lt_deadline(lt_opttimeout(L, 2));
  int w;
  lua_settop(L, 1);
  if ((w = lt_future_wait(f, deadline)) == LT_INTERRUPTED) { lt_intr_raise(L); return NULL; }
  if (!w) lt_raise(L, "TimeoutError");
  return f;
}

/* fut:result([timeout]) -> the task's values; raises its error, TimeoutError, or
** CancelledError. */
static int fu_result(lua_State *L) {
  Future *f = wait_self(L);
  return f == NULL ? 0 : lt_future_push_result(L, f);
}

/* fut:exception([timeout]) -> the task's error value and traceback, or nil if it
** succeeded; raises TimeoutError or CancelledError. */
static int fu_exception(lua_State *L) {
  Future *f = wait_self(L);
  if (f == NULL) return 0;
  if (atomic_load(&f->state) == F_CANCELLED) return lt_raise(L, "CancelledError");
  if (f->ok) { lua_pushnil(L); return 1; }
  if (f->result == NULL && f->errname) lt_pushnamed(L, f->errname);
  else if (f->result == NULL) lua_pushstring(L, f->cerr ? f->cerr : "task failed");
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
  lua_pushboolean(L, lt_future_cancel(L, f));
  return 1;
}

/* fut:add_done_callback(fn): fn(fut) once fut is done or cancelled, in the thread that
** finished it (fn crosses like a task); at once, here, if it is done already.  An error in
** fn is reported on stderr and ignored. */
static int fu_add_done_callback(lua_State *L) {
  static const char *const names[] = { "fn" };
  Future *f = (Future *)lt_checkself(L, &lt_FutureClass);
  Callback *cb, **tail;
  int done;
  luaL_checkany(L, 2);
  lua_settop(L, 2);
  if (!is_done(atomic_load(&f->state))) {
    lt_Buf *b = lt_encode_owned(L, 2, 1, names, &f->obj);   /* f in fn's upvalues: no cycle */
    if ((cb = (Callback *)malloc(sizeof *cb)) == NULL) {
      lt_buf_free(b);
      return luaL_error(L, "not enough memory");
    }
    cb->next = NULL;
    cb->fn = b;
    flock_(f);
    done = is_done(atomic_load(&f->state));
    if (!done) {
      for (tail = &f->callbacks; *tail; tail = &(*tail)->next) {}
      *tail = cb;
    }
    funlock(f);
    if (!done) return 0;
    free_callbacks(cb);              /* it finished meanwhile: call it here after all */
  }
  cb_run(L, f, 2, NULL);
  return 0;
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

/* The next future to give (*f, 1), none left (0), the deadline passed (-1), or
** LT_INTERRUPTED (armed by ac_next; nothing given). */
static int ac_wait(AC *a, Future **f) {
  for (;;) {
    int seen, r;
    if (a->closed || a->yielded >= a->n) return 0;
    lt_rawlock_acquire(&a->w.mu, 1, LT_FOREVER);
    if (a->yielded < a->w.ndone) *f = a->w.done[a->yielded++];
    seen = atomic_load(&a->w.word);
    if (*f == NULL) a->w.parked = 1;
    lt_rawlock_release(&a->w.mu);
    if (*f) return 1;
    if ((r = lt_park(&a->w.word, seen, a->deadline)) < 0) {
      int late;
      lt_rawlock_acquire(&a->w.mu, 1, LT_FOREVER);
      a->w.parked = 0;
      late = a->yielded < a->w.ndone;
      lt_rawlock_release(&a->w.mu);
      if (r == LT_INTERRUPTED) return r;
      if (!late) return -1;
    } else {
      lt_rawlock_acquire(&a->w.mu, 1, LT_FOREVER);
      a->w.parked = 0;
      lt_rawlock_release(&a->w.mu);
    }
  }
}

/* The iterator: the next future to finish; nil when all were given. */
static int ac_next(lua_State *L) {
  AC *a = (AC *)lua_touserdata(L, lua_upvalueindex(1));
  Future *f = NULL;
  int r;
  lt_intr_arm();
  r = ac_wait(a, &f);
  lt_intr_disarm();
  if (r == 1) { lt_pushobject(L, &f->obj); return 1; }
  if (r == LT_INTERRUPTED) { lt_intr_raise(L); lua_pushnil(L); return 1; }
  ac_close(a);
  if (r < 0) return lt_raise(L, "TimeoutError");
  lua_pushnil(L);
  return 1;
}

static const char K_ACMETA = 0;

/* Register a waiter with each Future of the array at index 1 (checked: fname names the
** caller in the error).  Pushes the set of the futures (each once) and the AC userdata,
** whose __gc/__close unlinks it; returns the AC. */
static AC *ac_new(lua_State *L, const char *fname, double deadline) {
  AC *a;
  lua_Integer n, i;
  int k = 0, seen, ac;
  n = luaL_len(L, 1);
  lua_newtable(L);                                        /* seen set */
  seen = lua_gettop(L);
  for (i = 1; i <= n; i++) {                              /* check and dedup first */
    lua_geti(L, 1, i);
    if (lt_toobject(L, -1, &lt_FutureClass) == NULL)
      luaL_error(L, "%s: futures[%I] is not a Future (got %s)", fname, (LUAI_UACINT)i,
                 luaL_typename(L, -1));
    lua_pushboolean(L, 1);
    lua_rawset(L, seen);
  }
  n = 0;
  lua_pushnil(L);
  while (lua_next(L, seen)) { lua_pop(L, 1); n++; }
  a = (AC *)lt_newuserdata(L, sizeof(AC), 0);
  ac = lua_gettop(L);
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
  lua_setmetatable(L, ac);
  a->deadline = deadline;
  atomic_init(&a->w.mu.word, 0);
  atomic_init(&a->w.word, 0);
  a->futs = (Future **)calloc((size_t)(n ? n : 1), sizeof(Future *));
  a->links = (Link *)calloc((size_t)(n ? n : 1), sizeof(Link));
  a->w.done = (Future **)calloc((size_t)(n ? n : 1), sizeof(Future *));
  if (!a->futs || !a->links || !a->w.done) {
    free(a->futs); free(a->links); free(a->w.done);
    a->futs = NULL; a->links = NULL; a->w.done = NULL;
    luaL_error(L, "not enough memory");
  }
  a->closed = 0;
  lua_pushnil(L);
  while (lua_next(L, seen)) {                             /* no raise in this loop */
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
  return a;
}

/* threading.as_completed(futures, [timeout]) -> iterator over the futures (duplicates
** once) as they finish or are cancelled: those done already first.  Once the timeout
** (counted from this call) passes with futures left, the iterator raises TimeoutError. */
static int f_as_completed(lua_State *L) {
  double deadline;
  luaL_checktype(L, 1, LUA_TTABLE);
  deadline = lt_deadline(lt_opttimeout(L, 2));
  lua_settop(L, 2);
  ac_new(L, "as_completed", deadline);                    /* 3: seen set, 4: AC */
  lua_pushvalue(L, 4);
  lua_pushcclosure(L, ac_next, 1);                        /* iterator, nil, nil, closer */
  lua_pushnil(L);
  lua_pushnil(L);
  lua_pushvalue(L, 4);
  return 4;
}

/* ======================================================================== wait */

enum { W_FIRST_COMPLETED, W_FIRST_EXCEPTION, W_ALL_COMPLETED };

/* Is wait() over (a->w.mu held)?  *scanned: how many of w.done were looked at already. */
static int wait_over(AC *a, int mode, int *scanned) {
  if (a->w.ndone >= a->n) return 1;
  if (mode == W_FIRST_COMPLETED) return a->w.ndone > 0;
  if (mode == W_FIRST_EXCEPTION) {
    for (; *scanned < a->w.ndone; (*scanned)++) {
      Future *f = a->w.done[*scanned];                    /* done: ok is final */
      if (atomic_load(&f->state) == F_FINISHED && !f->ok) return 1;
    }
  }
  return 0;
}

/*
** threading.wait(futures, [timeout], [return_when = "ALL_COMPLETED"]) -> done, not_done:
** two arrays of the futures (each once, in the order given), as Python's wait: it returns
** when return_when says (FIRST_COMPLETED: any done; FIRST_EXCEPTION: any finished with an
** error, or all done; ALL_COMPLETED: all done) or when the timeout passed.
*/
static int f_wait(lua_State *L) {
  static const char *const modes[] = {
    "FIRST_COMPLETED", "FIRST_EXCEPTION", "ALL_COMPLETED", NULL
  };
  double deadline;
  int mode, scanned = 0, i = 0, n;
  AC *a;
  luaL_checktype(L, 1, LUA_TTABLE);
  deadline = lt_deadline(lt_opttimeout(L, 2));
  mode = luaL_checkoption(L, 3, "ALL_COMPLETED", modes);
  lua_settop(L, 3);
  a = ac_new(L, "wait", deadline);                        /* 4: seen set, 5: AC */
  lt_intr_arm();
  for (;;) {
    int over, seen;
    lt_rawlock_acquire(&a->w.mu, 1, LT_FOREVER);
    over = wait_over(a, mode, &scanned);
    seen = atomic_load(&a->w.word);
    a->w.parked = !over;
    lt_rawlock_release(&a->w.mu);
    if (over) break;
    i = lt_park(&a->w.word, seen, deadline);
    lt_rawlock_acquire(&a->w.mu, 1, LT_FOREVER);
    a->w.parked = 0;
    lt_rawlock_release(&a->w.mu);
    if (i < 0) break;                                     /* timed out, interrupted */
  }
  lt_intr_disarm();
  ac_close(a);
  if (i == LT_INTERRUPTED) { lt_intr_raise(L); return 0; }   /* (Ctrl-C: lua.c's hook) */
  n = (int)luaL_len(L, 1);
  lua_newtable(L);                                        /* 6: done */
  lua_newtable(L);                                        /* 7: not_done */
  for (i = 1; i <= n; i++) {
    Future *f;
    lua_geti(L, 1, i);
    lua_pushvalue(L, -1);
    if (lua_rawget(L, 4) == LUA_TNIL) { lua_pop(L, 2); continue; }   /* given twice */
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_pushnil(L);
    lua_rawset(L, 4);
    f = (Future *)lt_toobject(L, -1, &lt_FutureClass);
    if (f == NULL) { lua_pop(L, 1); continue; }           /* the array changed meanwhile */
    if (is_done(atomic_load(&f->state))) lua_rawseti(L, 6, (lua_Integer)luaL_len(L, 6) + 1);
    else lua_rawseti(L, 7, (lua_Integer)luaL_len(L, 7) + 1);
  }
  return 2;
}

/* ============================================================================ OPEN */

static void future_metatable(lua_State *L) {
  static const luaL_Reg meth[] = {
    {"result", fu_result}, {"exception", fu_exception}, {"done", fu_done},
    {"running", fu_running}, {"cancelled", fu_cancelled}, {"cancel", fu_cancel},
    {"add_done_callback", fu_add_done_callback}, {"fileno", fu_fileno}, {NULL, NULL}
  };
  static const luaL_Reg metameth[] = { {"__tostring", fu_tostring}, {NULL, NULL} };
  lt_classmetatable(L, &lt_FutureClass, meth, metameth);
}

void lt_open_future(lua_State *L) {
  lua_pushcfunction(L, f_as_completed);
  lua_setfield(L, -2, "as_completed");
  lua_pushcfunction(L, f_wait);
  lua_setfield(L, -2, "wait");
  lua_pushliteral(L, "FIRST_COMPLETED");
  lua_setfield(L, -2, "FIRST_COMPLETED");
  lua_pushliteral(L, "FIRST_EXCEPTION");
  lua_setfield(L, -2, "FIRST_EXCEPTION");
  lua_pushliteral(L, "ALL_COMPLETED");
  lua_setfield(L, -2, "ALL_COMPLETED");
}
