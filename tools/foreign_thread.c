/*
** foreign_thread.c -- a host program that runs Lua on an OS thread lthreading did not start
** (spec/thread_spec.lua builds and runs it): current_thread() there must be a Dummy-N
** Thread, listed by enumerate() while that OS thread lives.
** Usage: foreign_thread 'lua chunk'   -- runs the chunk in a fresh state on a new pthread,
** after the main thread's own state has loaded lthreading.
*/
#include <pthread.h>
#include <stdio.h>

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

int main(int argc, char **argv) {
  pthread_t t;
  lua_State *L;
  if (argc < 2) { fprintf(stderr, "usage: %s chunk\n", argv[0]); return 2; }
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
