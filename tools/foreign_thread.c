/*
** foreign_thread.c -- a host program that runs Lua on an OS thread lthreading did not start
** (spec/thread_spec.lua builds and runs it): current_thread() there must be a Dummy-N
** Thread, listed by enumerate() while that OS thread lives.
** Usage: foreign_thread 'lua chunk'   -- runs the chunk in a fresh state on a new pthread,
** after the main thread's own state has loaded lthreading.
**        foreign_thread --main 'chunk'  -- runs it in the main thread's state, with two
** extra globals for spec/worker_spec.lua: fork() -> pid (0 in the child) and wait(pid) ->
** the child's exit status.
*/
#include <pthread.h>
#include <stdio.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"

static const char *chunk;
static int status;

static void *run(void *arg) {
  lua_State *L = luaL_newstate();
  (void)arg;
  luaL_openlibs(L);
  if (luaL_dostring(L, chunk) != LUA_OK) {
    fprintf(stderr, "foreign thread: %s\n", lua_tostring(L, -1));
    status = 1;
  }
  lua_close(L);
  return NULL;
}

static int l_fork(lua_State *L) {
  fflush(NULL);
  lua_pushinteger(L, (lua_Integer)fork());
  return 1;
}

static int l_wait(lua_State *L) {
  int st = 0;
  if (waitpid((pid_t)luaL_checkinteger(L, 1), &st, 0) < 0) return 0;
  lua_pushinteger(L, WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
  return 1;
}

int main(int argc, char **argv) {
  pthread_t t;
  lua_State *L;
  if (argc == 3 && argv[1][0] == '-') {          /* --main chunk */
    L = luaL_newstate();
    luaL_openlibs(L);
    lua_register(L, "fork", l_fork);
    lua_register(L, "wait", l_wait);
    if (luaL_dostring(L, argv[2]) != LUA_OK) {
      fprintf(stderr, "%s\n", lua_tostring(L, -1));
      status = 1;
    }
    lua_close(L);
    return status;
  }
  if (argc < 2) { fprintf(stderr, "usage: %s [--main] chunk\n", argv[0]); return 2; }
  chunk = argv[1];
  L = luaL_newstate();
  luaL_openlibs(L);
  if (luaL_dostring(L, "require 'lthreading'") != LUA_OK) {
    fprintf(stderr, "%s\n", lua_tostring(L, -1));
    return 1;
  }
  pthread_create(&t, NULL, run, NULL);
  pthread_join(t, NULL);
  if (luaL_dostring(L, "local th = require 'lthreading' print('main after:', th.active_count())") != LUA_OK) {
    fprintf(stderr, "%s\n", lua_tostring(L, -1));
    status = 1;
  }
  lua_close(L);
  return status;
}
