/*
** excepthook.c -- threading.excepthook: what runs when a Thread ends with an error.
**
** CONTRACT
**   One hook for the whole process (lt_G.hook), kept marshaled in a refcounted Hook so that
**   each state decodes its own copy.  NULL means the default, lt_default_excepthook
**   (threading.__excepthook__), which writes "Exception in thread NAME:", the error value
**   and its traceback to stderr with one write.  threading.excepthook = f replaces the hook
**   (lt_set_excepthook: a callable or nil, else an error); reading threading.excepthook
**   decodes it (lt_push_hook).  Both are reached through the module's metatable (process.c).
**   lt_excepthook_call runs the hook in the ending thread's own state with Python's args
**   table {exc_type, exc_value, exc_traceback, thread} and never raises: an error inside
**   the hook is reported as "Exception in threading.excepthook:" and its message, written
**   without allocating.  A user's hook runs under the thread's memory_limit (lt_T_ml, set by
**   thread.c while the thread runs); the default hook and the reports do not.
**
** LOCKING
**   lt_G.mu (process.c) protects lt_G.hook: held only to take a reference to the hook or to
**   swap it, with nothing else held.  Encoding and decoding happen with no lock held; the
**   last reference frees a Hook, on any thread.  Writes to stderr hold stdio's own lock
**   (flockfile), so that reports from threads do not interleave.
*/
#include <stdio.h>
#include <stdlib.h>

#include "lthreading.h"
#include "thread_private.h"

typedef struct Hook { atomic_int refs; lt_Buf *buf; } Hook;

/* =================================================================== EXCEPTHOOK */

static void hook_release(Hook *h) {
  if (h && atomic_fetch_sub(&h->refs, 1) == 1) { lt_buf_free(h->buf); free(h); }
}

static Hook *hook_get(void) {
  Hook *h;
  pthread_mutex_lock(&lt_G.mu);
  h = lt_G.hook;
  if (h) atomic_fetch_add(&h->refs, 1);
  pthread_mutex_unlock(&lt_G.mu);
  return h;
}

/* Write a whole message to stderr at once, so that threads do not interleave. */
void lt_write_stderr(const char *s, size_t n) {
  flockfile(stderr);
  fwrite(s, 1, n, stderr);
  fflush(stderr);
  funlockfile(stderr);
}

/* threading.__excepthook__(args): the default hook. */
int lt_default_excepthook(lua_State *L) {
  luaL_Buffer B;
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_buffinit(L, &B);
  luaL_addstring(&B, "Exception in thread ");
  lua_getfield(L, 1, "thread");
  if (lua_isnil(L, -1)) { lua_pop(L, 1); lua_pushstring(L, "?"); }
  else {
    lua_getfield(L, -1, "name");
    lua_remove(L, -2);
  }
  luaL_addvalue(&B);
  luaL_addstring(&B, ":\n");
  lua_getfield(L, 1, "exc_value");
  luaL_tolstring(L, -1, NULL);
  lua_remove(L, -2);
  luaL_addvalue(&B);
  luaL_addchar(&B, '\n');
  if (lua_getfield(L, 1, "exc_traceback") == LUA_TSTRING) {
    luaL_addvalue(&B);
    luaL_addchar(&B, '\n');
  } else lua_pop(L, 1);
  luaL_pushresult(&B);
  {
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    lt_write_stderr(s, n);
  }
  return 0;
}

static int decode_hook(lua_State *L) {
  return lt_decode(L, (const lt_Buf *)lua_touserdata(L, 1));
}

/* Push the installed hook (or the default).  Decoding may raise (memory): the hook
** reference is released first. */
void lt_push_hook(lua_State *L) {
  Hook *h = hook_get();
  int rc;
  if (h == NULL) { lua_pushcfunction(L, lt_default_excepthook); return; }
  lua_pushcfunction(L, decode_hook);
  lua_pushlightuserdata(L, h->buf);
  rc = lua_pcall(L, 1, 1, 0);
  hook_release(h);
  if (rc != LUA_OK) lua_error(L);
}

_Thread_local MemLimit *lt_T_ml;   /* the running Thread's, while it has a memory_limit */

static int hook_report(lua_State *L) {
  /* message handler for errors inside the hook itself: its report is not memory-limited */
  if (lt_T_ml) lt_T_ml->limit = 0;
  luaL_traceback(L, L, luaL_tolstring(L, 1, NULL), 1);
  return 1;
}

/* Call the excepthook with the standard args table.  A hook of the user's runs under the
** thread's memory_limit (lthreading's default one does not). */
static int call_hook_protected(lua_State *L) {
  /* 1: error value, 2: traceback, 3: thread proxy */
  lt_push_hook(L);
  lua_createtable(L, 0, 4);
  lua_pushstring(L, luaL_typename(L, 1));
  lua_setfield(L, -2, "exc_type");
  lua_pushvalue(L, 1);
  lua_setfield(L, -2, "exc_value");
  lua_pushvalue(L, 2);
  lua_setfield(L, -2, "exc_traceback");
  lua_pushvalue(L, 3);
  lua_setfield(L, -2, "thread");
  if (lt_T_ml && lua_tocfunction(L, -2) != lt_default_excepthook) lt_T_ml->limit = lt_T_ml->cap;
  lua_call(L, 1, 0);
  if (lt_T_ml) lt_T_ml->limit = 0;
  return 0;
}

/* "Exception in threading.excepthook:" and the hook's error (on top), written without
** allocating anything: the state may have no memory left. */
static void report_hook_failure(lua_State *L) {
  static const char head[] = "Exception in threading.excepthook:\n";
  size_t n = 0;
  const char *msg = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &n) : NULL;
  flockfile(stderr);
  fwrite(head, 1, sizeof head - 1, stderr);
  if (msg) fwrite(msg, 1, n, stderr);
  else fprintf(stderr, "(error object is a %s value)", luaL_typename(L, -1));
  fputc('\n', stderr);
  fflush(stderr);
  funlockfile(stderr);
}

int lt_excepthook_call(lua_State *L, int err, const char *traceback, int thread) {
  int top = lua_gettop(L), rc;
  err = lua_absindex(L, err);
  thread = lua_absindex(L, thread);
  if (!lua_checkstack(L, 8)) return 0;
  lua_pushcfunction(L, hook_report);
  lua_pushcfunction(L, call_hook_protected);
  lua_pushvalue(L, err);
  if (traceback) lua_pushstring(L, traceback); else lua_pushnil(L);
  lua_pushvalue(L, thread);
  rc = lua_pcall(L, 3, 0, top + 1);
  if (lt_T_ml) lt_T_ml->limit = 0;
  if (rc != LUA_OK) report_hook_failure(L);
  lua_settop(L, top);
  return 1;
}

int lt_set_excepthook(lua_State *L) {   /* value at 1 */
  Hook *h = NULL, *old;
  if (!lua_isnil(L, 1)) {
    static const char *const names[] = { "excepthook" };
    lt_Buf *b;
    if (!lua_isfunction(L, 1) && !luaL_getmetafield(L, 1, "__call"))
      return luaL_error(L, "excepthook must be callable (got %s)", luaL_typename(L, 1));
    b = lt_encode(L, 1, 1, names);
    h = (Hook *)malloc(sizeof *h);
    if (h == NULL) { lt_buf_free(b); return luaL_error(L, "not enough memory"); }
    atomic_init(&h->refs, 1);
    h->buf = b;
  }
  pthread_mutex_lock(&lt_G.mu);
  old = lt_G.hook;
  lt_G.hook = h;
  pthread_mutex_unlock(&lt_G.mu);
  hook_release(old);
  return 0;
}
