/*
** lthreading.c -- luaopen_lthreading: assembles the module table.
**
** luaopen may run many times in one state (busted clears package.loaded): every run returns
** a fresh module table over the same per-state classes and error values (they are named
** values, made once per state) and the same process-wide objects and threads.
** Process-wide, once: the shared library pins itself in memory (RTLD_NODELETE) so that
** daemon threads still running lthreading code when lua_close unloads C libraries never
** jump into unmapped code; and exit waits for non-daemon threads (Python's rule): from the
** main state's finalizer, and from atexit() for scripts that call os.exit.
*/
#include <stdlib.h>
#include <string.h>

#include "lthreading.h"

#if defined(__unix__) || defined(__APPLE__)
#include <dlfcn.h>
#endif

static const char K_SENTINEL = 0;
static pthread_once_t process_once = PTHREAD_ONCE_INIT;

static void at_exit(void) { lt_wait_nondaemon(); }

static void process_setup(void) {
#if defined(RTLD_NODELETE)
  Dl_info info;
  if (dladdr((void *)luaopen_lthreading, &info) && info.dli_fname)
    (void)dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
#endif
  atexit(at_exit);
}

/* ------------------------------------------------------------------- error values */

static int err_tostring(lua_State *L) {
  lua_getfield(L, 1, "name");
  return 1;
}

static void make_error(lua_State *L, const char *name) {
  /* module table on top */
  if (lt_pushnamed_raw(L, name) == LUA_TNIL) {
    lua_pop(L, 1);
    lua_createtable(L, 0, 1);
    lua_pushstring(L, name);
    lua_setfield(L, -2, "name");
    lua_createtable(L, 0, 2);
    lua_pushcfunction(L, err_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushstring(L, "lthreading.Error");
    lua_setfield(L, -2, "__name");
    lua_setmetatable(L, -2);
    lt_setname(L, -1, name);
  }
  lua_setfield(L, -2, name);
}

/* --------------------------------------------------------------------- exit wait */

static int sentinel_gc(lua_State *L) {
  LT_UNUSED(L);
  lt_wait_nondaemon();
  return 0;
}

static void install_sentinel(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &K_SENTINEL) != LUA_TNIL) { lua_pop(L, 1); return; }
  lua_pop(L, 1);
  lua_newuserdatauv(L, 1, 0);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, sentinel_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &K_SENTINEL);
}

int luaopen_lthreading(lua_State *L) {
  pthread_once(&process_once, process_setup);
  lt_state_init(L);
  lua_newtable(L);
  lua_pushstring(L, LT_VERSION);
  lua_setfield(L, -2, "_VERSION");
  make_error(L, "BrokenBarrierError");
  make_error(L, "TimeoutError");
  make_error(L, "CancelledError");
  make_error(L, "BrokenThreadPool");
  lt_open_thread(L);
  lt_open_lock(L);
  lt_open_sync(L);
  lt_open_local(L);
  lt_open_queue(L);
  lt_open_shared(L);
  lt_open_pool(L);
  if (lt_is_main_thread()) install_sentinel(L);
  lt_install_print(L);
  return 1;
}
