/*
** thread.c -- Thread: a Lua function running in its own lua_State on its own pthread.
**
** This file is the Thread object: its fields and class (and the snapshot that a proxy sent
** to another state carries), start(), join(), result(), is_alive(), cancel(), and the
** Thread class.  The new OS thread's run and its end are thread_run.c.  The process-wide
** side -- the list of active threads, the current and main thread, fork, the module's
** functions, process exit, print, fresh states -- is process.c; the excepthook is
** excepthook.c; what they share is thread_private.h.
**
** LIFE OF A THREAD
**   Thread(...) makes an lt_Thread (state NEW) and a proxy whose user values are
**   1: the instance's fields (a table, per state) and 2: its class (Thread or a subclass).
**   start() marshals package.path/cpath (one buffer, decoded first in the new thread, since
**   decoding the rest may require() modules through them) and the target, the args, the
**   other fields and the class (nil for a plain Thread with no extra fields), takes a
**   reference for the job and hands it to an OS thread (lt_spawn, worker.c: an idle one
**   that ran an earlier job, or a new one).  That thread takes a fresh state (made ahead
**   while it was idle, or now) and, for a plain Thread(f, ...), calls the target
**   directly; otherwise it rebuilds `self` there (the same object, its fields, its class)
**   and calls self:run().  Both run under a message handler that records a traceback.
**   Then, in that thread: the results (or the error value, after running the excepthook)
**   and the fields of self are marshaled into the object, the state is closed, the start
**   message dropped, the thread's own reference given up, and only then the object becomes
**   ENDED: `ended` is stored and a parked joiner woken, so join() returns to a thread whose
**   finalizers all ran and that holds nothing (thread_run.c; thread_destroy waits out the
**   few instructions of that publication: `inside`).  The OS thread then waits for its
**   next job, or exits and is joined by lthreading (worker.c).
**   A Thread proxy sent to another state carries a snapshot of its fields and class
**   (lt_thread_sent), so subclass methods (Timer:cancel) work from any thread.
**
** LOCKING
**   t->mu protects the mutable fields of one lt_Thread (state, name, results, ...); `ended`,
**   `joiners` and `native` are atomics read without it.  lt_G.mu (process.c) protects the
**   process-wide list of active threads, the counters, the stack size and the excepthook;
**   here it is taken alone, for the Thread-N counter and to put a thread on the list
**   (start); thread_run.c takes it off.  Never take t->mu while holding lt_G.mu or the
**   other way round: they are independent leaves.
*/
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lthreading.h"
#include "thread_private.h"

#define APPLIED 1          /* proxy flag: the fields copied back were applied to this proxy */
#define VIEWED  2          /* proxy flag: the sender's snapshot was looked at */

/* A refcounted buffer, so that a reader can decode it while a writer replaces it. */
typedef struct Snapshot { atomic_int refs; lt_Buf *buf; } Snapshot;

static void snap_release(Snapshot *sn) {
  if (sn && atomic_fetch_sub(&sn->refs, 1) == 1) { lt_buf_free(sn->buf); free(sn); }
}

const char lt_K_SELF = 0;              /* registry[&lt_K_SELF]: this thread's own proxy */

/* ======================================================================== HELPERS */

static char *xmemdup(const char *s, size_t n) {   /* n bytes and a '\0' */
  char *d = (char *)malloc(n + 1);
  if (d) { memcpy(d, s, n); d[n] = '\0'; }
  return d;
}

/* ===================================================================== THE OBJECT */

static void thread_destroy(lt_Object *o) {
  lt_Thread *t = (lt_Thread *)o;
  /* the last reference went while the ended thread was still publishing its end (it gave
  ** its own up first: end_thread, thread_run.c): a few instructions more */
  while (atomic_load_explicit(&t->inside, memory_order_acquire)) sched_yield();
  pthread_mutex_destroy(&t->mu);
  lt_intr_destroy(&t->intr);
  lt_buf_free(t->payload);
  lt_buf_free(t->paths);
  lt_buf_free(t->results);
  lt_buf_free(t->fields);
  snap_release(t->view);
  free(t->name);
  free(t);
}

static void thread_metatable(lua_State *L);
const lt_Class lt_ThreadClass = { "Thread", 2, thread_destroy, thread_metatable };

/* Fill a zeroed lt_Thread. */
void lt_thread_setup(lt_Thread *t, const char *name, int daemon, int kind) {
  pthread_mutex_init(&t->mu, NULL);
  lt_intr_init(&t->intr);
  t->daemon = daemon;
  t->kind = kind;
  t->namelen = strlen(name);
  t->name = xmemdup(name, t->namelen);
}

/* ========================================================================= THREADS */

static lt_Proxy *selfproxy(lua_State *L) {
  lt_Proxy *p = lt_toproxy(L, 1);
  if (p == NULL || p->obj->cls != &lt_ThreadClass) luaL_typeerror(L, 1, "Thread");
  return p;
}

static int decode_snapshot(lua_State *L) {     /* lua_pcall'd: 1 = lt_Buf* */
  return lt_decode(L, (const lt_Buf *)lua_touserdata(L, 1));
}

/*
** A Thread proxy in a state other than its creator's starts with neither fields nor class.
** The first time it needs them, it takes the snapshot its sender made (lt_thread_sent):
** so a Timer or a Thread subclass keeps its methods and fields in every thread it reaches.
*/
static void ensure_view(lua_State *L, int idx) {
  lt_Proxy *p = (lt_Proxy *)lua_touserdata(L, idx);
  lt_Thread *t = (lt_Thread *)p->obj;
  Snapshot *sn;
  if (p->flags & VIEWED) return;
  p->flags |= VIEWED;
  {
    int has = lt_getuv(L, idx, 1) != LUA_TNIL;
    has |= lt_getuv(L, idx, 2) != LUA_TNIL;
    lua_pop(L, 2);
    if (has) return;                          /* the creator's own proxy */
  }
  pthread_mutex_lock(&t->mu);
  sn = t->view;
  if (sn) atomic_fetch_add(&sn->refs, 1);
  pthread_mutex_unlock(&t->mu);
  if (sn == NULL) return;
  lua_pushcfunction(L, decode_snapshot);
  lua_pushlightuserdata(L, sn->buf);
  if (lua_pcall(L, 1, 2, 0) == LUA_OK) {      /* L: fields class */
    lt_setuv(L, idx, 2);
    lt_setuv(L, idx, 1);
  } else lua_pop(L, 1);                       /* keep the plain Thread view */
  snap_release(sn);
}

/* Push field table (user value 1) of the proxy at idx, creating it if asked. */
int lt_thread_fields(lua_State *L, int idx, int create) {
  idx = lua_absindex(L, idx);
  ensure_view(L, idx);
  if (lt_getuv(L, idx, 1) == LUA_TTABLE) return 1;
  lua_pop(L, 1);
  if (!create) { lua_pushnil(L); return 0; }
  lua_newtable(L);
  lua_pushvalue(L, -1);
  lt_setuv(L, idx, 1);
  return 1;
}

/* Push the class (user value 2) of the proxy at idx, Thread by default. */
static void push_class(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  ensure_view(L, idx);
  if (lt_getuv(L, idx, 2) != LUA_TNIL) return;
  lua_pop(L, 1);
  lt_pushnamed(L, "Thread");
}

/* After the thread ended: give this proxy the fields the thread left in self. */
static void apply_fields(lua_State *L, int idx, lt_Thread *t) {
  lt_Proxy *p = (lt_Proxy *)lua_touserdata(L, idx);
  idx = lua_absindex(L, idx);
  if ((p->flags & APPLIED) || t->fields == NULL) return;
  p->flags |= APPLIED;
  lt_decode(L, t->fields);                                 /* L: new */
  lt_thread_fields(L, idx, 0);                                  /* L: new old */
  if (lua_istable(L, -1)) {                                /* keep our own target/args */
    lua_getfield(L, -1, "_target");
    lua_setfield(L, -3, "_target");
    lua_getfield(L, -1, "_args");
    lua_setfield(L, -3, "_args");
  }
  lua_pop(L, 1);
  lt_setuv(L, idx, 1);
}

/* Push the name (any bytes).  Room is made before the lock is taken (it may raise); if the
** name grew meanwhile, again. */
static void push_name(lua_State *L, lt_Thread *t) {
  luaL_Buffer B;
  size_t len, room = LUAL_BUFFERSIZE;
  char *p;
  luaL_buffinit(L, &B);
  p = luaL_prepbuffsize(&B, room);
  for (;;) {
    pthread_mutex_lock(&t->mu);
    len = t->name ? t->namelen : 1;
    if (len <= room) memcpy(p, t->name ? t->name : "?", len);
    pthread_mutex_unlock(&t->mu);
    if (len <= room) break;
    p = luaL_prepbuffsize(&B, len);
    room = len;
  }
  luaL_addsize(&B, len);
  luaL_pushresult(&B);
}

/* t.name = tostring(value at idx), any bytes. */
static void set_name(lua_State *L, lt_Thread *t, int idx) {
  size_t len;
  const char *s = luaL_tolstring(L, idx, &len);
  char *d = xmemdup(s, len), *old;
  if (d == NULL) luaL_error(L, "not enough memory");
  pthread_mutex_lock(&t->mu);
  old = t->name;
  t->name = d;
  t->namelen = len;
  pthread_mutex_unlock(&t->mu);
  free(old);
  lua_pop(L, 1);
}

static int t_index(lua_State *L) {
  lt_Thread *t = (lt_Thread *)selfproxy(L)->obj;
  if (lua_type(L, 2) == LUA_TSTRING) {
    const char *k = lua_tostring(L, 2);
    if (strcmp(k, "name") == 0) { push_name(L, t); return 1; }
    if (strcmp(k, "daemon") == 0) {
      int d;
      pthread_mutex_lock(&t->mu); d = t->daemon; pthread_mutex_unlock(&t->mu);
      lua_pushboolean(L, d);
      return 1;
    }
    if (strcmp(k, "ident") == 0 || strcmp(k, "native_id") == 0) {
      int has, state;
      lua_Integer v;
      pthread_mutex_lock(&t->mu);
      has = t->has_ident;
      v = t->ident;
      state = t->state;
      pthread_mutex_unlock(&t->mu);
      if (k[0] == 'n') {     /* the thread publishes it first thing: wait for that if need be */
        while ((v = (lua_Integer)atomic_load(&t->native)) == 0 && state == STARTED)
          lt_sleep(20e-6);
        has = v != 0;
      }
      if (has) lua_pushinteger(L, v); else lua_pushnil(L);
      return 1;
    }
  }
  if (lt_thread_fields(L, 1, 0)) {
    lua_pushvalue(L, 2);
    if (lua_rawget(L, -2) != LUA_TNIL) return 1;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  push_class(L, 1);
  lua_pushvalue(L, 2);
  lua_gettable(L, -2);
  return 1;
}

static int t_newindex(lua_State *L) {
  lt_Thread *t = (lt_Thread *)selfproxy(L)->obj;
  if (lua_type(L, 2) == LUA_TSTRING) {
    const char *k = lua_tostring(L, 2);
    if (strcmp(k, "name") == 0) {
      set_name(L, t, 3);
      lt_intr_rename(&t->intr, &t->mu, &t->name);    /* the OS name, if it runs */
      return 0;
    }
    if (strcmp(k, "daemon") == 0) {
      int started;
      luaL_checktype(L, 3, LUA_TBOOLEAN);
      pthread_mutex_lock(&t->mu);
      started = t->state != NEW;
      if (!started) t->daemon = lua_toboolean(L, 3);
      pthread_mutex_unlock(&t->mu);
      if (started) return luaL_error(L, "cannot set daemon status of active thread");
      return 0;
    }
    if (strcmp(k, "ident") == 0 || strcmp(k, "native_id") == 0)
      return luaL_error(L, "Thread.%s is read-only", k);
  }
  lt_thread_fields(L, 1, 1);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 3);
  lua_rawset(L, -3);
  return 0;
}

static int t_tostring(lua_State *L) {
  lt_Thread *t = (lt_Thread *)selfproxy(L)->obj;
  int state, daemon;
  lua_Integer ident;
  pthread_mutex_lock(&t->mu);
  state = t->state; daemon = t->daemon; ident = t->ident;
  pthread_mutex_unlock(&t->mu);
  lua_pushstring(L, "<Thread(");
  push_name(L, t);
  if (state == NEW) lua_pushstring(L, ", initial");
  else lua_pushfstring(L, ", %s %I", state == ENDED ? "stopped" : "started", ident);
  lua_pushstring(L, daemon ? " daemon)>" : ")>");
  lua_concat(L, 4);
  return 1;
}

/* Class(...) -> a new instance, then instance:init(...). */
static int class_call(lua_State *L) {
  lt_Thread *t;
  int n = lua_gettop(L), daemon;
  long num;
  char name[64];
  luaL_checktype(L, 1, LUA_TTABLE);
  daemon = lt_current()->daemon;
  t = (lt_Thread *)lt_newobject(L, &lt_ThreadClass, sizeof *t);      /* L: cls ... self */
  pthread_mutex_lock(&lt_G.mu);
  num = ++lt_G.counter;
  pthread_mutex_unlock(&lt_G.mu);
  snprintf(name, sizeof name, "Thread-%ld", num);
  lt_thread_setup(t, name, daemon, 0);
  if (t->name == NULL) return luaL_error(L, "not enough memory");
  lua_pushvalue(L, 1);
  lt_setuv(L, -2, 2);
  lua_newtable(L);
  lt_setuv(L, -2, 1);
  lua_insert(L, 2);                                                  /* L: cls self a... */
  lua_getfield(L, 2, "init");
  lua_insert(L, 3);                                                  /* L: cls self init a... */
  lua_pushvalue(L, 2);
  lua_insert(L, 4);                                                  /* L: cls self init self a... */
  lua_call(L, n, 0);
  lua_settop(L, 2);
  return 1;
}

#define MAX_ARGS 1000000                 /* args.n: at most Lua's stack limit (LUAI_MAXSTACK) */

static int callable(lua_State *L, int idx) {
  if (lua_isfunction(L, idx)) return 1;
  if (luaL_getmetafield(L, idx, "__call") == LUA_TNIL) return 0;
  lua_pop(L, 1);
  return 1;
}

/* How many values the args table at ai holds: args.n when present, else #args.  args.n must
** be an integer 0 .. MAX_ARGS: anything else is an error naming it (fname: the class). */
static int args_count(lua_State *L, int ai, const char *fname) {
  lua_Integer n = 0;
  int isint = 0;
  ai = lua_absindex(L, ai);
  if (lua_getfield(L, ai, "n") != LUA_TNIL) {
    if (lua_type(L, -1) == LUA_TNUMBER) n = lua_tointegerx(L, -1, &isint);
    if (!isint || n < 0 || n > MAX_ARGS)
      lt_opt_typeerror(L, fname, "args.n", "integer from 0 to 1000000", -1);
  } else n = luaL_len(L, ai);          /* (a __len may say anything) */
  lua_pop(L, 1);
  if (n > MAX_ARGS) lt_opt_error(L, fname, "args", "#args is more than 1000000");
  return n < 0 ? 0 : (int)n;
}

/* The class name for error messages: Timer's, else Thread's (also for subclasses). */
static const char *class_name(lua_State *L, int self) {
  const char *name;
  push_class(L, self);
  name = lt_getname(L, -1);              /* interned, kept by the registry */
  lua_pop(L, 1);
  return name != NULL && strcmp(name, "Timer") == 0 ? "Timer" : "Thread";
}

/* Thread.init(self, {target=, args=, name=, daemon=, memory_limit=, ...}) or
** (self, target, ...).  Each option is checked: a bad one is an error that names it. */
static int t_init(lua_State *L) {
  lt_Thread *t = (lt_Thread *)selfproxy(L)->obj;
  int n = lua_gettop(L);
  const char *fname = class_name(L, 1);
  lt_thread_fields(L, 1, 1);
  lua_replace(L, 1);                           /* L: fields args... (self no longer needed) */
  if (n == 2 && lua_type(L, 2) == LUA_TTABLE && !callable(L, 2)) {
    lua_pushnil(L);
    while (lua_next(L, 2)) {
      const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
      if (strcmp(k, "target") == 0) {
        if (!lua_isnil(L, -1) && !callable(L, -1))
          lt_opt_typeerror(L, fname, "target", "function", -1);
        lua_setfield(L, 1, "_target");
      } else if (strcmp(k, "args") == 0) {
        if (!lua_istable(L, -1)) lt_opt_typeerror(L, fname, "args", "table", -1);
        args_count(L, -1, fname);
        lua_setfield(L, 1, "_args");
      } else if (strcmp(k, "name") == 0) {
        set_name(L, t, -1);
        lua_pop(L, 1);
      } else if (strcmp(k, "memory_limit") == 0) {
        lua_Integer lim = 0;
        int isint = lua_isnil(L, -1);
        if (lua_type(L, -1) == LUA_TNUMBER) lim = lua_tointegerx(L, -1, &isint);
        if (!isint || lim < 0)
          lt_opt_typeerror(L, fname, "memory_limit", "non-negative integer", -1);
        pthread_mutex_lock(&t->mu); t->memlimit = (size_t)lim; pthread_mutex_unlock(&t->mu);
        lua_pop(L, 1);
      } else if (strcmp(k, "daemon") == 0) {
        if (!lua_isnil(L, -1)) {
          if (!lua_isboolean(L, -1)) lt_opt_typeerror(L, fname, "daemon", "boolean", -1);
          pthread_mutex_lock(&t->mu); t->daemon = lua_toboolean(L, -1);
          pthread_mutex_unlock(&t->mu);
        }
        lua_pop(L, 1);
      } else {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, 1);
      }
    }
  } else if (n >= 2) {
    int i;
    if (!lua_isnil(L, 2) && !callable(L, 2))
      luaL_error(L, "bad argument #1 to '%s' (function expected, got %s)", fname,
                 luaL_typename(L, 2));
    lua_pushvalue(L, 2);
    lua_setfield(L, 1, "_target");
    lua_createtable(L, n - 2, 1);
    for (i = 3; i <= n; i++) { lua_pushvalue(L, i); lua_rawseti(L, -2, i - 2); }
    lua_pushinteger(L, n - 2);
    lua_setfield(L, -2, "n");
    lua_setfield(L, 1, "_args");
  }
  return 0;
}

/* Call the target at index ti with the args table at ai (nil: none), unpacked up to
** args.n or #args; returns all its results, which end the stack above index 1. */
int lt_thread_run_with(lua_State *L, int ti, int ai) {
  int n = 0, i;
  if (lua_isnil(L, ti)) return 0;
  lua_settop(L, ai);
  lua_pushvalue(L, ti);                                   /* L: ... target */
  if (lua_istable(L, ai)) {
    n = args_count(L, ai, "Thread");
    luaL_checkstack(L, n + 2, "args.n too large for the stack");
    for (i = 1; i <= n; i++) lua_geti(L, ai, i);
  }
  lua_call(L, n, LUA_MULTRET);
  return lua_gettop(L) - ai;
}

/* Thread.run(self): target(table.unpack(args, 1, args.n or #args)). */
static int t_run(lua_State *L) {
  lua_settop(L, 1);
  lua_getfield(L, 1, "_target");
  lua_getfield(L, 1, "_args");
  return lt_thread_run_with(L, 2, 3);
}

static int t_extend(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_newtable(L);
  lua_createtable(L, 0, 2);
  lua_pushvalue(L, 1);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, class_call);
  lua_setfield(L, -2, "__call");
  lua_setmetatable(L, -2);
  return 1;
}

typedef struct TryEnc { lt_Buf *b; const char *const *names; lt_Object *owner; } TryEnc;

/* lua_pcall'd helper: encode values 2..top as described by the TryEnc at 1. */
static int encode_values(lua_State *L) {
  TryEnc *te = (TryEnc *)lua_touserdata(L, 1);
  te->b = lt_encode_owned(L, 2, lua_gettop(L) - 1, te->names, te->owner);
  return 0;
}

/* Encode n values on top (popping them) into a buffer kept by thread t; NULL and the error
** message on top if it fails. */
lt_Buf *lt_thread_encode(lua_State *L, int n, const char *const *names, lt_Thread *t) {
  TryEnc te;
  te.b = NULL; te.names = names; te.owner = &t->obj;
  lua_pushcfunction(L, encode_values);
  lua_pushlightuserdata(L, &te);
  lua_rotate(L, -2 - n, 2);
  if (lua_pcall(L, n + 1, 0, 0) != LUA_OK) return NULL;
  return te.b;
}

static int encode_snapshot(lua_State *L) {     /* lua_pcall'd: 1 = lt_Thread*, 2 fields, 3 class */
  lt_Thread *t = (lt_Thread *)lua_touserdata(L, 1);
  static const char *const names[] = { "self", "class" };
  lt_Buf **out = (lt_Buf **)lua_touserdata(L, 4);
  *out = lt_encode_owned(L, 2, 2, names, &t->obj);
  return 0;
}

/*
** Called by the marshaler when the Thread proxy at idx is sent to another thread: record
** its fields (less the target and args) and its class, for ensure_view over there.
** Values that cannot cross only mean no snapshot: sending the thread itself never fails.
*/
void lt_thread_sent(lua_State *L, int idx) {
  lt_Proxy *p = (lt_Proxy *)lua_touserdata(L, idx);
  lt_Thread *t = (lt_Thread *)p->obj;
  Snapshot *sn, *old;
  lt_Buf *b = NULL;
  int top = lua_gettop(L);
  idx = lua_absindex(L, idx);
  if (lt_getuv(L, idx, 2) == LUA_TNIL || !lua_checkstack(L, 8)) { lua_settop(L, top); return; }
  lua_pushcfunction(L, encode_snapshot);               /* L: class f */
  lua_pushlightuserdata(L, t);
  lua_newtable(L);                                      /* fields without _target/_args */
  if (lt_getuv(L, idx, 1) == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
      if (strcmp(k, "_target") != 0 && strcmp(k, "_args") != 0) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -5);
      } else lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  lua_pushvalue(L, top + 1);                            /* the class */
  lua_pushlightuserdata(L, &b);
  if (lua_pcall(L, 4, 0, 0) != LUA_OK || b == NULL) { lua_settop(L, top); return; }
  lua_settop(L, top);
  sn = (Snapshot *)malloc(sizeof *sn);
  if (sn == NULL) { lt_buf_free(b); return; }
  atomic_init(&sn->refs, 1);
  sn->buf = b;
  pthread_mutex_lock(&t->mu);
  old = t->view;
  t->view = sn;
  pthread_mutex_unlock(&t->mu);
  snap_release(old);
}

static int t_start(lua_State *L) {
  static const char *const names[] = {
    "target", "args", "self", "class"
  };
  static const char *const pathnames[] = { "package.path", "package.cpath" };
  lt_Thread *t = (lt_Thread *)selfproxy(L)->obj;
  lt_Buf *payload, *paths;
  pthread_t tid;
  int state, daemon, rc;
  lua_settop(L, 1);
  pthread_mutex_lock(&t->mu);
  state = t->state;
  pthread_mutex_unlock(&t->mu);
  if (state != NEW) return luaL_error(L, "threads can only be started once");
  lua_getglobal(L, "package");                                  /* 2 */
  if (lua_istable(L, 2)) { lua_getfield(L, 2, "path"); lua_getfield(L, 2, "cpath"); }
  else { lua_pushnil(L); lua_pushnil(L); }
  lua_remove(L, 2);                                             /* L: self path cpath */
  lt_thread_fields(L, 1, 1);                                         /* 4: fields */
  lua_getfield(L, 4, "_target");                                /* 5 */
  lua_getfield(L, 4, "_args");                                  /* 6 */
  lua_newtable(L);                                              /* 7: other fields */
  lua_pushnil(L);
  while (lua_next(L, 4)) {
    if (lua_type(L, -2) == LUA_TSTRING && (strcmp(lua_tostring(L, -2), "_target") == 0 ||
                                           strcmp(lua_tostring(L, -2), "_args") == 0)) {
      lua_pop(L, 1);
      continue;
    }
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, 7);
  }
  push_class(L, 1);                                             /* 8 */
  lua_remove(L, 4);                                      /* L: self path cpath t a f c */
  {                                   /* a plain Thread: no class, no fields to send */
    const char *cname = lt_getname(L, 7);
    if (cname && strcmp(cname, "Thread") == 0) { lua_pushnil(L); lua_replace(L, 7); }
    lua_pushnil(L);
    if (!lua_next(L, 6)) { lua_pushnil(L); lua_replace(L, 6); }
    else lua_pop(L, 2);
  }
  paths = lt_encode(L, 2, 2, pathnames);      /* nothing allocated before: may raise */
  payload = lt_thread_encode(L, 4, names, t);        /* pops target args fields class */
  if (payload == NULL) {                       /* a value that cannot cross */
    lt_buf_free(paths);
    return lua_error(L);
  }
  pthread_mutex_lock(&t->mu);
  if (t->state != NEW) {
    pthread_mutex_unlock(&t->mu);
    lt_buf_free(payload);
    lt_buf_free(paths);
    return luaL_error(L, "threads can only be started once");
  }
  t->state = STARTED;
  t->payload = payload;
  t->paths = paths;
  daemon = t->daemon;
  pthread_mutex_unlock(&t->mu);
  lt_incref(&t->obj);                                           /* the new thread's */
  atomic_store(&t->inside, 1);
  pthread_mutex_lock(&lt_G.mu);
  lt_active_add(t);
  pthread_mutex_unlock(&lt_G.mu);
  rc = lt_spawn(lt_thread_main, t, !daemon, &tid);
  if (rc != 0) {
    pthread_mutex_lock(&lt_G.mu);
    lt_active_remove(t);
    pthread_mutex_unlock(&lt_G.mu);
    pthread_mutex_lock(&t->mu);
    t->state = NEW;
    t->payload = t->paths = NULL;
    pthread_mutex_unlock(&t->mu);
    lt_buf_free(payload);
    lt_buf_free(paths);
    atomic_store(&t->inside, 0);
    lt_decref(&t->obj);
    return luaL_error(L, "can't start new thread (%s)", strerror(rc));
  }
  pthread_mutex_lock(&t->mu);        /* ident is the pthread_t: get_ident() in the thread */
  t->ident = (lua_Integer)(uintptr_t)tid;
  t->has_ident = 1;
  pthread_mutex_unlock(&t->mu);
  return 0;
}

static atomic_int join_spin;           /* adaptive spin budget of join() (lt_spin_changed) */

/* 0, or LT_INTERRUPTED (the thread had not ended). */
int lt_wait_ended(lt_Thread *t, double deadline, int *ended) {
  int r = 0;
  /* A short thread often ends within a wake-up's time: spin (bounded) before parking. */
  if (!atomic_load(&t->ended)) {
    lt_intr_arm();
    lt_spin_changed(&t->ended, 0, deadline, &join_spin);
    while (!atomic_load(&t->ended)) {
      atomic_fetch_add(&t->joiners, 1);
      LT_TEST_WINDOW(50);              /* (the thread may publish its end meanwhile) */
      r = atomic_load(&t->ended) ? 0 : lt_park(&t->ended, 0, deadline);
      atomic_fetch_sub(&t->joiners, 1);
      if (r < 0) break;
    }
    lt_intr_disarm();
  }
  /* lt_mark_ended stores `ended` (seq_cst) after writing the results: seeing 1 here makes
  ** them visible, no lock needed */
  *ended = atomic_load(&t->ended);
  return r == LT_INTERRUPTED && !*ended ? LT_INTERRUPTED : 0;
}

static void check_joinable(lua_State *L, lt_Thread *t) {
  int state;
  if (t == lt_current()) luaL_error(L, "cannot join current thread");
  pthread_mutex_lock(&t->mu);
  state = t->state;
  pthread_mutex_unlock(&t->mu);
  if (state == NEW) luaL_error(L, "cannot join thread before it is started");
}

static int t_join(lua_State *L) {
  lt_Thread *t = (lt_Thread *)selfproxy(L)->obj;
  double deadline = lt_deadline(lt_opttimeout(L, 2));
  int ended;
  check_joinable(L, t);
  if (lt_wait_ended(t, deadline, &ended) == LT_INTERRUPTED) lt_intr_raise(L);
  if (ended) apply_fields(L, 1, t);
  lua_pushboolean(L, ended);
  return 1;
}

static int t_is_alive(lua_State *L) {
  lt_Thread *t = (lt_Thread *)selfproxy(L)->obj;
  int state;
  pthread_mutex_lock(&t->mu);
  state = t->state;
  pthread_mutex_unlock(&t->mu);
  if (state == ENDED) apply_fields(L, 1, t);
  lua_pushboolean(L, state == STARTED);
  return 1;
}

static int t_result(lua_State *L) {
  lt_Thread *t = (lt_Thread *)selfproxy(L)->obj;
  int ended, n;
  check_joinable(L, t);
  if (lt_wait_ended(t, LT_FOREVER, &ended) == LT_INTERRUPTED) { lt_intr_raise(L); return 0; }
  apply_fields(L, 1, t);
  lua_settop(L, 0);
  if (t->results == NULL) {
    if (t->ok) return 0;
    lua_pushstring(L, "thread failed (its error could not be transferred)");
    return lua_error(L);
  }
  n = lt_decode(L, t->results);
  if (!t->ok) return lua_error(L);
  return n;
}

/* t:cancel(): CancelledError in t at its next cancellation point (interrupt.c). */
static int t_cancel(lua_State *L) {
  lt_Thread *t = (lt_Thread *)selfproxy(L)->obj;
  int state;
  pthread_mutex_lock(&t->mu);
  state = t->state;
  pthread_mutex_unlock(&t->mu);
  if (t->kind == 1) return luaL_error(L, "cannot cancel the main thread");
  if (t->kind == 2) return luaL_error(L, "cannot cancel a thread lthreading did not start");
  if (state == NEW) return luaL_error(L, "cannot cancel thread before it is started");
  state = state == ENDED ? 0 : lt_intr_cancel(&t->intr);
  if (state < 0)
    return luaL_error(L, "cannot cancel a pool worker (Future:cancel() cancels a pending task)");
  lua_pushboolean(L, state);
  return 1;
}

static int t_getname(lua_State *L) {
  push_name(L, (lt_Thread *)selfproxy(L)->obj);
  return 1;
}

static int t_setname(lua_State *L) {
  lua_settop(L, 2);
  lua_pushstring(L, "name");
  lua_insert(L, 2);
  return t_newindex(L);
}

static int t_isdaemon(lua_State *L) {
  lua_settop(L, 1);
  lua_pushstring(L, "daemon");
  return t_index(L);
}

static int t_setdaemon(lua_State *L) {
  lua_settop(L, 2);
  lua_pushstring(L, "daemon");
  lua_insert(L, 2);
  return t_newindex(L);
}

static const luaL_Reg thread_methods[] = {
  {"init", t_init}, {"run", t_run}, {"start", t_start}, {"join", t_join},
  {"is_alive", t_is_alive}, {"result", t_result}, {"extend", t_extend}, {"cancel", t_cancel},
  {"getName", t_getname}, {"setName", t_setname}, {"isDaemon", t_isdaemon},
  {"setDaemon", t_setdaemon}, {"isAlive", t_is_alive},
  {NULL, NULL}
};

static void thread_metatable(lua_State *L) {
  static const luaL_Reg meta[] = {
    {"__index", t_index}, {"__newindex", t_newindex}, {"__tostring", t_tostring},
    {NULL, NULL}
  };
  lt_classmetatable(L, &lt_ThreadClass, NULL, meta);
}

/* Push the state's Thread class, making it (once per state) if needed. */
void lt_push_thread_class(lua_State *L) {
  if (lt_pushnamed_raw(L, "Thread") != LUA_TNIL) return;
  lua_pop(L, 1);
  lua_createtable(L, 0, 16);
  luaL_setfuncs(L, thread_methods, 0);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, class_call);
  lua_setfield(L, -2, "__call");
  lua_setmetatable(L, -2);
  lt_setname(L, -1, "Thread");
}
