/*
** luahost.c -- a minimal stand-alone Lua 5.4 interpreter: `luahost script [args...]` or
** `luahost -e chunk`.  Built with -fsanitize=thread it makes ThreadSanitizer work (its
** runtime cannot be preloaded into an uninstrumented lua5.4).  Like lua.c it exports the
** Lua API to C modules (-Wl,-E), sets `arg`, and closes the state at the end, so that
** lthreading's exit rules (wait for non-daemon threads) are exercised; and it handles
** Ctrl-C as lua.c does (SIGINT, without SA_RESTART, sets a hook that raises
** "interrupted!"; SIG_DFL again once the chunk ended), for the specs of interrupted waits.
*/
#define _POSIX_C_SOURCE 200809L    /* sigaction under -std=c11 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"

static lua_State *globalL;

static void setsignal(int sig, void (*handler)(int)) {   /* as lua.c */
  struct sigaction sa;
  sa.sa_handler = handler;
  sa.sa_flags = 0;
  sigemptyset(&sa.sa_mask);
  sigaction(sig, &sa, NULL);
}

static void lstop(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  luaL_error(L, "interrupted!");
}

static void laction(int i) {
  setsignal(i, SIG_DFL);
  lua_sethook(globalL, lstop, LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT, 1);
}

static int msgh(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  luaL_traceback(L, L, msg, 1);
  return 1;
}

int main(int argc, char **argv) {
  lua_State *L;
  int i, status, script = 1;
  if (argc < 2) { fprintf(stderr, "usage: %s script [args] | -e chunk\n", argv[0]); return 2; }
  L = luaL_newstate();
  if (L == NULL) return 1;
  luaL_openlibs(L);
  if (strcmp(argv[1], "-e") == 0) script = 2;
  lua_createtable(L, argc, 1);
  for (i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
  lua_pushcfunction(L, msgh);
  if (script == 2) status = luaL_loadstring(L, argc > 2 ? argv[2] : "");
  else status = luaL_loadfile(L, argv[1]);
  if (status == LUA_OK) {
    int n = 0;
    for (i = script + 1; i < argc; i++, n++) lua_pushstring(L, argv[i]);
    globalL = L;
    setsignal(SIGINT, laction);
    status = lua_pcall(L, n, 0, 1);
    setsignal(SIGINT, SIG_DFL);
  }
  if (status != LUA_OK) fprintf(stderr, "%s: %s\n", argv[0], lua_tostring(L, -1));
  lua_close(L);
  return status == LUA_OK ? 0 : 1;
}
