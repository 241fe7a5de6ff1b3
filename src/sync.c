/* sync.c -- placeholder until implemented (see lthreading.h). */
#include "lthreading.h"

void lt_open_sync(lua_State *L) { LT_UNUSED(L); }
