/*
** process.c -- the process-wide side of threads: which threads exist, the module's thread
** functions, process exit, print, and the fresh states that threads run in.
**
** CONTRACT
**   - lt_G.active, the list of active threads (what enumerate() and active_count() show):
**     a Thread is on it from start() until lt_mark_ended (thread.c); so are the main
**     thread, a Dummy for each foreign OS thread that asks for its current thread, and each
**     pool worker between lt_adopt_current and lt_release_current.
**   - lt_current(): this OS thread's Thread (lt_T_current).  The first call in the process
**     makes the calling OS thread the main thread and installs the fork handlers; a
**     foreign OS thread gets a Dummy, ended by a pthread key destructor when it exits.
**     After fork(), the child's forking thread is alone on the list and is the main thread.
**   - The module's functions: current_thread, main_thread, enumerate, active_count,
**     get_ident, get_native_id, stack_size, sleep, monotonic, __excepthook__, TIMEOUT_MAX,
**     the Thread class (thread.c), and the module metatable that makes
**     threading.excepthook process-wide (excepthook.c).
**   - Exit: lt_wait_nondaemon runs the lt_on_exit hooks, waits for every non-daemon Thread
**     but the caller, then joins the OS threads (worker.c); a Ctrl-C meanwhile abandons the
**     threads still running (interrupt.c).
**   - lt_freshstate/lt_newstate make the states threads run in; their print, like that of
**     any state that opens lthreading, writes each line with one call (lt_install_print).
**
** LOCKING
**   lt_G.mu protects the list of active threads, the counters, the stack size and the exit
**   hooks (and the excepthook, excepthook.c).  It is a leaf: never held while taking a
**   Thread's t->mu or the other way round, and released before anything that may raise or
**   block; a thread found on the list is kept by lt_incref before lt_G.mu is released.
**   Across fork(), the forking thread holds lt_G.mu, and waits out the threads that left the
**   list but are still publishing their end (lt_G.ending: a few instructions, no lock); the
**   child initialises lt_G.mu again, and every Thread's mutexes (their holders may be gone).
*/
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lthreading.h"
#include "thread_private.h"
#include "lualib.h"

lt_Process lt_G = { .mu = PTHREAD_MUTEX_INITIALIZER };

_Thread_local lt_Thread *lt_T_current;
static pthread_key_t dummy_key;
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* ======================================================================== HELPERS */

uintptr_t lt_thread_ident(void) { return (uintptr_t)pthread_self(); }

void lt_active_add(lt_Thread *t) {   /* lt_G.mu held */
  t->next = lt_G.active.next;
  t->prev = &lt_G.active;
  lt_G.active.next->prev = t;
  lt_G.active.next = t;
}

void lt_active_remove(lt_Thread *t) {  /* lt_G.mu held */
  if (t->next) {
    t->prev->next = t->next;
    t->next->prev = t->prev;
    t->next = t->prev = NULL;
  }
}

/* ======================================================= CURRENT THREAD, THREAD LIST */

/* The calling OS thread runs t from now on: its identity, and it is listed as active. */
static void list_running(lt_Thread *t) {
  t->state = STARTED;
  t->ident = (lua_Integer)lt_thread_ident();
  atomic_store(&t->native, lt_native_id());
  t->has_ident = 1;
  pthread_mutex_lock(&lt_G.mu);
  lt_active_add(t);
  pthread_mutex_unlock(&lt_G.mu);
}

static lt_Thread *new_current(const char *prefix, int kind) {
  char name[64];
  lt_Thread *t = (lt_Thread *)calloc(1, sizeof *t);
  if (t == NULL) return NULL;
  lt_object_init(&t->obj, &lt_ThreadClass);
  pthread_mutex_lock(&lt_G.mu);
  if (kind == 1) snprintf(name, sizeof name, "%s", prefix);
  else snprintf(name, sizeof name, "%s-%ld", prefix, ++lt_G.dummies);
  pthread_mutex_unlock(&lt_G.mu);
  lt_thread_setup(t, name, kind == 2, kind);
  list_running(t);
  return t;
}

static void dummy_end(void *p) {   /* a foreign OS thread with a Dummy ends */
  lt_Thread *t = (lt_Thread *)p;
  lt_mark_ended(t, 1, NULL, NULL);
  lt_decref(&t->obj);
}

static void fork_prepare(void), fork_parent(void), fork_child(void);

static void process_init(void) {
  lt_G.active.next = lt_G.active.prev = &lt_G.active;
  pthread_key_create(&dummy_key, dummy_end);
  lt_G.main = new_current("MainThread", 1);
  lt_T_current = lt_G.main;
  if (lt_G.main) lt_intr_main(&lt_G.main->intr);       /* Ctrl-C interrupts its waits */
  pthread_atfork(fork_prepare, fork_parent, fork_child);
}

/* fork(): in the child only the forking thread is left.  The thread list keeps it alone,
** it is the main thread (as in Python), and the other Threads count as ended. */
static void fork_prepare(void) {
  pthread_mutex_lock(&lt_G.mu);
  /* a thread publishing its end (thread_run.c: end_thread) needs no lock: a few
  ** instructions, waited out so that the child never holds a Thread half ended */
  while (atomic_load(&lt_G.ending) > 0) sched_yield();
}
static void fork_parent(void) { pthread_mutex_unlock(&lt_G.mu); }
static void fork_child(void) {
  lt_Thread *t, *next, *me = lt_T_current;
  pthread_mutex_init(&lt_G.mu, NULL);
  atomic_store(&lt_G.ending, 0);
  for (t = lt_G.active.next; t != &lt_G.active; t = next) {
    next = t->next;
    pthread_mutex_init(&t->mu, NULL);          /* its holder may be gone */
    pthread_mutex_init(&t->intr.mu, NULL);
    if (t == me) continue;
    t->next = t->prev = NULL;
    t->state = ENDED;
    atomic_store(&t->ended, 1);
    lt_intr_forget(&t->intr);
  }
  lt_G.active.next = lt_G.active.prev = &lt_G.active;
  if (me != NULL) {
    lt_active_add(me);
    if (me != lt_G.main) {                        /* (the old one ended in the loop) */
      lt_G.main = me;
      lt_intr_main(&me->intr);
    }
  }
}

lt_Thread *lt_current(void) {
  pthread_once(&once, process_init);
  if (lt_T_current == NULL) {
    lt_T_current = new_current("Dummy", 2);
    if (lt_T_current) pthread_setspecific(dummy_key, lt_T_current);
  }
  return lt_T_current;
}

int lt_is_main_thread(void) { lt_current(); return lt_T_current == lt_G.main; }

lt_Thread *lt_adopt_current(const char *name, int daemon) {
  lt_Thread *t = (lt_Thread *)calloc(1, sizeof *t);
  if (t == NULL) return NULL;
  lt_object_init(&t->obj, &lt_ThreadClass);
  lt_thread_setup(t, name, daemon, 0);
  list_running(t);
  lt_T_current = t;
  lt_intr_begin(&t->intr, NULL, &t->mu, &t->name, 0);   /* its OS name; not cancellable */
  return t;
}

void lt_release_current(void) {
  lt_Thread *t = lt_T_current;
  if (t == NULL) return;
  lt_intr_end(&t->intr, NULL);
  lt_T_current = NULL;
  lt_mark_ended(t, 1, NULL, NULL);
  lt_decref(&t->obj);
}

/* ====================================================================== FUNCTIONS */

static int f_current_thread(lua_State *L) {
  lt_Thread *t = lt_current();
  if (t == NULL) return luaL_error(L, "not enough memory");
  if (t->kind != 0) { lt_pushobject(L, &t->obj); return 1; }   /* main or a dummy */
  /* in a thread: its own self, with its fields (made here for a plain Thread(f)) */
  /* (a finalizer run while the state closes may find that proxy finalized already) */
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &lt_K_SELF) == LUA_TUSERDATA && lt_toproxy(L, -1) != NULL)
    return 1;
  lua_pop(L, 1);
  lt_pushobject(L, &t->obj);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &lt_K_SELF);
  return 1;
}

static int f_main_thread(lua_State *L) {
  lt_current();
  lt_pushobject(L, &lt_G.main->obj);
  return 1;
}

static int collect_active(lua_State *L, int push) {
  lt_Thread **list;
  lt_Thread *t;
  int n = 0, i;
  lt_current();
  pthread_mutex_lock(&lt_G.mu);
  for (t = lt_G.active.next; t != &lt_G.active; t = t->next) n++;
  list = (lt_Thread **)malloc(sizeof *list * (size_t)(n ? n : 1));
  if (list) {
    i = 0;
    for (t = lt_G.active.next; t != &lt_G.active; t = t->next) { lt_incref(&t->obj); list[i++] = t; }
  }
  pthread_mutex_unlock(&lt_G.mu);
  if (list == NULL) return luaL_error(L, "not enough memory");
  if (push) {
    lua_createtable(L, n, 0);
    for (i = 0; i < n; i++) {
      lt_pushobject(L, &list[n - 1 - i]->obj);     /* oldest first */
      lua_rawseti(L, -2, i + 1);
    }
  }
  for (i = 0; i < n; i++) lt_decref(&list[i]->obj);
  free(list);
  if (!push) lua_pushinteger(L, n);
  return 1;
}

static int f_enumerate(lua_State *L) { return collect_active(L, 1); }
static int f_active_count(lua_State *L) { return collect_active(L, 0); }

static int f_get_ident(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)lt_thread_ident());
  return 1;
}

static int f_get_native_id(lua_State *L) {
  lua_pushinteger(L, lt_native_id());
  return 1;
}

/* stack_size([bytes]): below 32 KiB is an error; below LT_STACK_FLOOR, raised to it (Lua
** code may nest LUAI_MAXCCALLS C calls deep whatever the stack: see lthreading.h). */
static int f_stack_size(lua_State *L) {
  size_t old;
  if (!lua_isnoneornil(L, 1)) {
    lua_Integer sz = luaL_checkinteger(L, 1);
    if (sz != 0 && sz < LT_MIN_STACK)
      return luaL_error(L, "size not valid: %I bytes (minimum is 32 KiB)", sz);
    if (sz != 0 && sz < LT_STACK_FLOOR) sz = LT_STACK_FLOOR;
    pthread_mutex_lock(&lt_G.mu);
    old = lt_G.stacksize;
    lt_G.stacksize = (size_t)sz;
    pthread_mutex_unlock(&lt_G.mu);
  } else old = lt_stack_size();
  lua_pushinteger(L, (lua_Integer)old);
  return 1;
}

size_t lt_stack_size(void) {
  size_t s;
  pthread_mutex_lock(&lt_G.mu);
  s = lt_G.stacksize;
  pthread_mutex_unlock(&lt_G.mu);
  return s;
}

static int f_sleep(lua_State *L) {
  lua_Number s = lt_checksleep(L, 1);
  if (lt_intr_sleep(s) == LT_INTERRUPTED) lt_intr_raise(L);
  return 0;
}

static int f_monotonic(lua_State *L) {
  lua_pushnumber(L, lt_now());
  return 1;
}

/* Module __index / __newindex: threading.excepthook is process-wide. */
static int m_index(lua_State *L) {
  const char *k = lua_tostring(L, 2);
  if (k && strcmp(k, "excepthook") == 0) { lt_push_hook(L); return 1; }
  return 0;
}

static int m_newindex(lua_State *L) {
  const char *k = lua_tostring(L, 2);
  if (k && strcmp(k, "excepthook") == 0) {
    lua_settop(L, 3);
    lua_replace(L, 1);
    lua_settop(L, 1);
    return lt_set_excepthook(L);
  }
  lua_rawset(L, 1);
  return 0;
}

/* =========================================================================== EXIT */

static void (*exit_hooks[8])(void);
static int n_exit_hooks;

void lt_on_exit(void (*fn)(void)) {
  int i, found = 0;
  pthread_mutex_lock(&lt_G.mu);
  for (i = 0; i < n_exit_hooks; i++) found |= exit_hooks[i] == fn;
  if (!found && n_exit_hooks < 8) exit_hooks[n_exit_hooks++] = fn;
  pthread_mutex_unlock(&lt_G.mu);
}

/* Exit: wait for every non-daemon Thread (not the caller); 0 if Ctrl-C ended the wait. */
static int wait_threads_at_exit(void) {
  for (;;) {
    lt_Thread *t, *found = NULL;
    int ended, r;
    pthread_mutex_lock(&lt_G.mu);
    for (t = lt_G.active.next; t != &lt_G.active; t = t->next)
      if (t != lt_T_current && t->kind == 0 && !t->daemon && !atomic_load(&t->ended)) {
        found = t;
        lt_incref(&t->obj);
        break;
      }
    pthread_mutex_unlock(&lt_G.mu);
    if (found == NULL) return 1;
    r = lt_wait_ended(found, LT_FOREVER, &ended);
    lt_decref(&found->obj);
    if (r == LT_INTERRUPTED) return 0;
  }
}

/* Exit: run the exit hooks, wait for the non-daemon threads, join the finished OS threads.
** A Ctrl-C meanwhile (interrupt.c) abandons the threads still running, as daemons. */
void lt_wait_nondaemon(void) {
  int i, n, done = 1;
  if (!lt_intr_exit_begin()) return;
  pthread_mutex_lock(&lt_G.mu);
  n = n_exit_hooks;
  pthread_mutex_unlock(&lt_G.mu);
  for (i = 0; i < n && done; i++) {
    exit_hooks[i]();
    done = !(lt_intr_pending() & LT_INTR_SIGINT);
  }
  if (done) done = wait_threads_at_exit();
  lt_intr_exit_end(!done);
  if (done) lt_exit_workers();
}

/* ================================================================ PRINT, STATES */

/* print(...) that writes each line with one call, so lines from threads never mix. */
static int lt_print(lua_State *L) {
  int n = lua_gettop(L), i;
  luaL_Buffer B;
  size_t len;
  const char *s;
  luaL_buffinit(L, &B);
  for (i = 1; i <= n; i++) {
    if (i > 1) luaL_addchar(&B, '\t');
    luaL_tolstring(L, i, NULL);
    luaL_addvalue(&B);
  }
  luaL_addchar(&B, '\n');
  luaL_pushresult(&B);
  s = lua_tolstring(L, -1, &len);
  flockfile(stdout);
  fwrite(s, 1, len, stdout);
  fflush(stdout);
  funlockfile(stdout);
  return 0;
}

void lt_install_print(lua_State *L) {
  lua_getglobal(L, "print");
  if (lua_iscfunction(L, -1) && lua_tocfunction(L, -1) != lt_print
      && lua_getupvalue(L, -1, 1) == NULL) {
    lua_pushcfunction(L, lt_print);
    lua_setglobal(L, "print");
  }
  lua_pop(L, 1);
}

static void thread_openlibs(lua_State *L) {
  luaL_openlibs(L);
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_lthreading);
  lua_setfield(L, -2, "lthreading");
  lua_pop(L, 1);
  lt_install_print(L);
}

lua_State *lt_freshstate(void) {
  lua_State *L = luaL_newstate();
  if (L != NULL) thread_openlibs(L);   /* only memory errors possible: the panic handler */
  return L;
}

lua_State *lt_newstate(void) {
  lua_State *L = lt_spare_state();
  return L != NULL ? L : lt_freshstate();
}

void lt_open_thread(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"current_thread", f_current_thread}, {"main_thread", f_main_thread},
    {"enumerate", f_enumerate}, {"active_count", f_active_count},
    {"get_ident", f_get_ident}, {"get_native_id", f_get_native_id},
    {"stack_size", f_stack_size}, {"sleep", f_sleep}, {"monotonic", f_monotonic},
    {"__excepthook__", lt_default_excepthook},
    {"currentThread", f_current_thread}, {"activeCount", f_active_count},
    {NULL, NULL}
  };
  /* module table on top */
  lt_current();
  luaL_setfuncs(L, funcs, 0);
  lua_pushnumber(L, LT_TIMEOUT_MAX);
  lua_setfield(L, -2, "TIMEOUT_MAX");
  lt_push_thread_class(L);
  lua_setfield(L, -2, "Thread");
  /* the module's own metatable: excepthook */
  lua_createtable(L, 0, 2);
  lua_pushcfunction(L, m_index);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, m_newindex);
  lua_setfield(L, -2, "__newindex");
  lua_setmetatable(L, -2);
}
