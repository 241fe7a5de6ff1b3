/*
** thread_run.c -- a Thread's run on its own OS thread, and its end.
**
** lt_thread_main is what start() (thread.c) hands to an OS thread (lt_spawn, worker.c).  It
** takes a fresh state, and with the thread's memory_limit counts its bytes, then runs the
** thread: thread_body decodes package.path/cpath first (decoding the rest may require()
** modules through them), then the start message, and calls the target directly for a plain
** Thread(f, ...), else rebuilds `self` (the same object, its fields, its class) and calls
** self:run().  Both run under msgh, which records a traceback.
**
** THE END, IN THIS ORDER
**   1. finish_thread marshals what the run left into the object's Outcome: its results, or
**      its error value after the excepthook ran (not for a cancel()), and the fields of
**      self (whole if they can cross, else field by field, dropping those that cannot).
**      Nothing there raises but a memory error.
**   2. The state is closed: every finalizer of the thread's has run.
**   3. end_thread: the start message dropped, off the active list (enumerate() no longer
**      sees it, and nothing can make a new reference from a bare pointer), the thread's own
**      reference given up, then ENDED published (lt_publish_ended: results, `ended`, the
**      joiners woken).  So join() returns to a thread that holds nothing.  Until `inside`
**      is 0 the memory of t is still the thread's: thread_destroy waits for that, and
**      fork() waits for every thread between leaving the list and that point.
**   The process's own threads (main, dummies: process.c) end through lt_mark_ended.
*/
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "lthreading.h"
#include "thread_private.h"

static const char K_TB = 0;            /* registry[&K_TB]: traceback of the last error */


static int msgh(lua_State *L) {
  luaL_traceback(L, L, NULL, 1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &K_TB);
  return 1;                           /* the error value itself, unchanged */
}

/* Run under lua_pcall with msgh: rebuild self and call self:run(). 1: lt_Thread* */
static int thread_body(lua_State *L) {
  lt_Thread *t = (lt_Thread *)lua_touserdata(L, 1);
  lua_settop(L, 0);
  /* the paths first: decoding the rest may require() modules through them */
  lt_decode(L, t->paths);                                    /* L: path cpath */
  lua_getglobal(L, "package");
  if (lua_istable(L, -1)) {
    lua_pushvalue(L, 1); lua_setfield(L, -2, "path");
    lua_pushvalue(L, 2); lua_setfield(L, -2, "cpath");
  }
  lua_pop(L, 1);
  lt_decode(L, t->payload);              /* L: path cpath target args fields class */
  if (lua_isnil(L, 5) && lua_isnil(L, 6)) {
    /* A plain Thread(f, ...): run the target directly.  No `self` is built unless the
    ** thread asks current_thread() for it. */
    lua_settop(L, 4);
    lua_remove(L, 1);
    lua_remove(L, 1);                                        /* L: target args */
    lua_pushnil(L);
    lua_insert(L, 1);                                        /* L: nil target args */
    return lt_thread_run_with(L, 2, 3);
  }
  if (lua_isnil(L, 5)) { lua_newtable(L); lua_replace(L, 5); }
  if (lua_isnil(L, 6)) { lt_push_thread_class(L); lua_replace(L, 6); }
  lua_pushvalue(L, 3); lua_setfield(L, 5, "_target");
  lua_pushvalue(L, 4); lua_setfield(L, 5, "_args");
  lt_pushobject(L, &t->obj);                                 /* L: ... self */
  lua_pushvalue(L, 5); lt_setuv(L, -2, 1);
  lua_pushvalue(L, 6); lt_setuv(L, -2, 2);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &lt_K_SELF);
  lua_replace(L, 1);
  lua_settop(L, 1);                                          /* L: self */
  lua_getfield(L, 1, "run");
  lua_pushvalue(L, 1);
  lua_call(L, 1, LUA_MULTRET);
  return lua_gettop(L) - 1;
}


static const char *const RESULT_NAMES[] = {
  "result[1]", "result[2]", "result[3]", "result[4]", "result[5]", "result[6]",
  "result[7]", "result[8]"
};

/* Leave enumerate() first, then become ENDED: once join() returned, the thread is gone. */
void lt_mark_ended(lt_Thread *t, int ok, lt_Buf *results, lt_Buf *fields) {
  pthread_mutex_lock(&lt_G.mu);
  lt_active_remove(t);
  pthread_mutex_unlock(&lt_G.mu);
  lt_publish_ended(t, ok, results, fields);
}

/* Become ENDED (t is off the active list already) and wake the joiners. */
void lt_publish_ended(lt_Thread *t, int ok, lt_Buf *results, lt_Buf *fields) {
  pthread_mutex_lock(&t->mu);
  t->ok = ok;
  t->results = results;
  t->fields = fields;
  t->state = ENDED;
  pthread_mutex_unlock(&t->mu);
  /* Dekker with lt_wait_ended: `ended` is stored before `joiners` is read, both seq_cst. */
  atomic_store(&t->ended, 1);
  LT_TEST_WINDOW(53);                  /* (a joiner may register meanwhile) */
  if (atomic_load(&t->joiners) > 0) lt_unpark(&t->ended, INT_MAX);
}

/* What a thread leaves behind.  status, nres: how its run ended, with how many results (or
** its error value) on the stack; ok, results, fields: the outcome, filled in as it is made. */
typedef struct Outcome {
  lt_Thread *t;
  int status, nres, ok, settled;       /* settled: ok and results are final */
  lt_Buf *results, *fields;
} Outcome;

static int tostring_p(lua_State *L) {  /* lua_pcall'd: luaL_tolstring(value) */
  luaL_tolstring(L, 1, NULL);
  return 1;
}

/*
** lua_pcall'd: 1 = Outcome*, then the results or the error value.  Marshal what the thread
** leaves behind into the Outcome, running the excepthook on an error; nothing here raises
** but a memory error.  The fields of self are copied back whole if they can cross; else
** field by field, dropping each field whose key or value (or anything inside) cannot.
*/
static int finish_body(lua_State *L) {
  static const char *const errname[] = { "error value" };
  static const char *const fieldsname[] = { "self" };
  Outcome *out = (Outcome *)lua_touserdata(L, 1);
  lt_Thread *t = out->t;
  lua_remove(L, 1);
  if (!out->ok && lua_gettop(L) == 0) lua_pushliteral(L, "too many results to transfer");
  if (out->ok && out->nres > 0) {
    out->results = lt_thread_encode(L, out->nres, out->nres <= 8 ? RESULT_NAMES : NULL, t);
    if (out->results == NULL) out->ok = 0;   /* the encoding error becomes the thread's */
  }
  out->settled = out->ok;
  if (!out->ok) {
    /* the error value on top; the excepthook runs before the thread counts as ended */
    int err = lua_gettop(L);
    const char *tb;
    if (out->status != LUA_OK) lua_rawgetp(L, LUA_REGISTRYINDEX, &K_TB);
    else luaL_traceback(L, L, NULL, 0);
    tb = lua_tostring(L, -1);
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &lt_K_SELF) != LUA_TUSERDATA || !lt_toproxy(L, -1)) {
      lua_pop(L, 1);
      lt_pushobject(L, &t->obj);
    }
    if (!lt_intr_cancelled(L, err)) lt_excepthook_call(L, err, tb, -1);  /* not for cancel() */
    lua_settop(L, err);
    lua_pushvalue(L, err);
    out->results = lt_thread_encode(L, 1, errname, t);
    if (out->results == NULL) {        /* not transferable: its string form */
      lua_settop(L, err);
      lua_pushcfunction(L, tostring_p);
      lua_pushvalue(L, err);
      if (lua_pcall(L, 1, 1, 0) != LUA_OK || lua_type(L, -1) != LUA_TSTRING) {
        lua_settop(L, err);            /* (a __tostring that fails or returns no string) */
        lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, err));
      }
      out->results = lt_thread_encode(L, 1, errname, t);
    }
    out->settled = 1;
  }
  lua_settop(L, 0);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &lt_K_SELF) != LUA_TUSERDATA || lt_toproxy(L, 1) == NULL
      || !lt_thread_fields(L, 1, 0))
    return 0;
  lua_pushnil(L); lua_setfield(L, 2, "_target");
  lua_pushnil(L); lua_setfield(L, 2, "_args");
  lua_pushnil(L);
  if (!lua_next(L, 2)) return 0;        /* no fields: nothing to copy back */
  lua_settop(L, 2);
  lua_pushvalue(L, 2);
  if ((out->fields = lt_thread_encode(L, 1, fieldsname, t)) != NULL) return 0;
  lua_settop(L, 2);
  lua_newtable(L);                       /* 3: the fields that can cross */
  lua_pushnil(L);
  while (lua_next(L, 2)) {               /* L: self fields clean key value */
    lt_Buf *b;
    lua_pushvalue(L, -2);
    lua_pushvalue(L, -2);
    if ((b = lt_thread_encode(L, 2, NULL, t)) != NULL) {
      lt_buf_free(b);
      lua_pushvalue(L, -2);
      lua_pushvalue(L, -2);
      lua_rawset(L, 3);
    } else lua_pop(L, 1);                /* the error message */
    lua_pop(L, 1);                       /* the value; the key stays for lua_next */
  }
  out->fields = lt_thread_encode(L, 1, fieldsname, t);
  return 0;
}

/* Marshal what the thread left on the stack of L into *out; never raises. */
static void finish_thread(lua_State *L, lt_Thread *t, int status, Outcome *out) {
  out->t = t;
  out->status = status;
  out->ok = status == LUA_OK;
  out->settled = 0;
  out->results = out->fields = NULL;
  out->nres = out->ok ? lua_gettop(L) : 1;
  /* (a C function called with them needs LUA_MINSTACK more: returning ~LUAI_MAXSTACK
  ** values ends the thread with an error) */
  if (!lua_checkstack(L, LUA_MINSTACK + 4)) {
    lua_settop(L, 0);
    out->ok = 0;
    out->nres = 0;
  }
  lua_pushcfunction(L, finish_body);
  lua_pushlightuserdata(L, out);
  lua_rotate(L, 1, 2);
  if (lua_pcall(L, lua_gettop(L) - 1, 0, 0) != LUA_OK && !out->settled) out->ok = 0;
  lua_settop(L, 0);
}

static void *limited_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  MemLimit *m = (MemLimit *)ud;
  void *p;
  if (ptr == NULL) osize = 0;
  if (nsize == 0) { free(ptr); m->used -= osize; return NULL; }
  if (m->limit && nsize > osize && m->used - osize + nsize > m->limit) return NULL;
  p = realloc(ptr, nsize);
  if (p) m->used = m->used - osize + nsize;
  return p;
}

/* The start message (target, args, self's fields, class) and the paths, decoded by now:
** dropped before the thread counts as ended, so that the references they hold (objects
** passed in args) are gone by the time join() returns. */
static void drop_payload(lt_Thread *t) {
  lt_Buf *payload, *paths;
  pthread_mutex_lock(&t->mu);
  payload = t->payload;
  paths = t->paths;
  t->payload = t->paths = NULL;
  pthread_mutex_unlock(&t->mu);
  lt_buf_free(payload);
  lt_buf_free(paths);
}

/*
** The thread's end, and its last touch of t.  Once join() returned, the thread holds nothing:
** its state is closed (thread_main), its start message dropped, and its own reference to t
** given up *before* it becomes ENDED, so that the joiner's last proxy, collected, frees the
** Thread (and the references its results hold) right there.  Leaving the active list comes
** next: after it nothing can make a new reference to t from a bare pointer.  Until `inside`
** is 0, t's memory is the thread's still; thread_destroy waits for that.  From leaving the
** list to `inside` = 0 the thread is counted in lt_G.ending, which fork() waits out
** (process.c): a fork() child never holds a Thread half ended (its join() would hang, its
** destroy wait for a thread that is not there).  Nothing in that span blocks: the frees
** that may (a pool dropped with the last reference) come before it or after it.
*/
static void end_thread(lt_Thread *t, int ok, lt_Buf *results, lt_Buf *fields) {
  int last;
  drop_payload(t);
  pthread_mutex_lock(&lt_G.mu);
  lt_active_remove(t);
  atomic_fetch_add(&lt_G.ending, 1);
  pthread_mutex_unlock(&lt_G.mu);
  last = atomic_fetch_sub_explicit(&t->obj.refs, 1, memory_order_acq_rel) == 1;
  lt_publish_ended(t, ok, results, fields);         /* (last: no one to see it) */
  atomic_store_explicit(&t->inside, 0, memory_order_release);    /* no touching t after, */
  atomic_fetch_sub(&lt_G.ending, 1);
  if (last) t->obj.cls->destroy(&t->obj);                        /* unless it is ours */
}

void *lt_thread_main(void *arg) {
  lt_Thread *t = (lt_Thread *)arg;
  lua_State *L;
  MemLimit ml;
  int status;
  lt_T_current = t;
  atomic_store(&t->native, lt_native_id());
  pthread_mutex_lock(&t->mu);        /* (start() stores the same, maybe after we ran) */
  t->ident = (lua_Integer)lt_thread_ident();
  t->has_ident = 1;
  pthread_mutex_unlock(&t->mu);
  ml.used = ml.limit = 0;
  ml.cap = t->memlimit;
  L = lt_newstate();                     /* often made ahead, by this worker while idle */
  if (L != NULL && t->memlimit) {        /* count its bytes from now on */
    int kb = lua_gc(L, LUA_GCCOUNT, 0), b = lua_gc(L, LUA_GCCOUNTB, 0);
    ml.used = (size_t)kb * 1024 + (size_t)b;
    lua_setallocf(L, limited_alloc, &ml);
    lt_T_ml = &ml;
  }
  if (L == NULL) {
    static const char msg[] = "lthreading: cannot create a Lua state (out of memory)\n";
    lt_write_stderr(msg, sizeof msg - 1);
    end_thread(t, 0, NULL, NULL);
  } else {
    Outcome out;
    lua_pushcfunction(L, msgh);
    lua_pushcfunction(L, thread_body);
    lua_pushlightuserdata(L, t);
    ml.limit = t->memlimit;          /* the run is limited (and a user's excepthook); */
    lt_intr_begin(&t->intr, L, &t->mu, &t->name, 1);   /* cancellable from here */
    status = lua_pcall(L, 1, LUA_MULTRET, 1);          /* setup and reporting are not */
    lt_intr_end(&t->intr, L);
    ml.limit = 0;
    lua_remove(L, 1);
    finish_thread(L, t, status, &out);
    /* Close first, so that no finalizer of this state runs after join() returned. */
    lt_close_state(L);
    lt_T_ml = NULL;
    end_thread(t, out.ok, out.results, out.fields);
  }
  lt_T_current = NULL;                      /* this OS thread may run another job next */
  return NULL;
}
