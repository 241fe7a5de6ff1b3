rockspec_format = "3.0"
package = "lthreading"
version = "0.2.0-1"
source = {
   url = "git+https://github.com/lthreading/lthreading",
   tag = "v0.2.0",
}
description = {
   summary = "Python's threading module for Lua 5.4 and 5.5, with real parallel threads",
   detailed = [[
      Thread, Lock, RLock, Condition, Semaphore, BoundedSemaphore, Event, Timer, Barrier,
      thread-local data, Queue family, a Shared table and a ThreadPoolExecutor. Every thread
      runs in its own lua_State on its own pthread; values are copied between threads and
      lthreading's own objects are shared by reference.
   ]],
   homepage = "https://github.com/lthreading/lthreading",
   license = "MIT",
}
dependencies = {
   "lua >= 5.4, < 5.6",
}
build = {
   type = "builtin",
   modules = {
      lthreading = {
         sources = {
            "src/cref.c", "src/excepthook.c", "src/future.c", "src/interrupt.c", "src/local.c",
            "src/lock.c", "src/lthreading.c", "src/marshal.c", "src/marshal_array.c",
            "src/marshal_decode.c", "src/notify.c", "src/object.c", "src/park.c", "src/pool.c",
            "src/pool_map.c", "src/process.c", "src/queue.c", "src/queue_item.c", "src/shared.c",
            "src/shared_hash.c", "src/sync.c", "src/thread.c", "src/thread_run.c",
            "src/worker.c",
         },
         defines = { "_GNU_SOURCE" },
         libraries = { "pthread", "dl" },
         incdirs = { "src" },
      },
   },
   -- installed beside the rock (luarocks show lthreading: the rock's directory):
   -- docs/*.md, the user reference; types/lthreading.lua, LuaLS annotations
   copy_directories = { "docs", "types" },
}
test = {
   type = "command",
   command = "make test",
}
