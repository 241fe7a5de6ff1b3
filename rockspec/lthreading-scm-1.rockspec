rockspec_format = "3.0"
package = "lthreading"
version = "scm-1"
source = {
   url = "git+https://github.com/lthreading/lthreading",
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
            "src/lthreading.c", "src/object.c", "src/marshal.c", "src/park.c",
            "src/thread.c", "src/process.c", "src/excepthook.c", "src/interrupt.c",
            "src/lock.c", "src/sync.c", "src/local.c",
            "src/queue.c", "src/queue_item.c", "src/shared.c", "src/pool.c", "src/future.c",
            "src/worker.c", "src/notify.c", "src/cref.c",
         },
         defines = { "_GNU_SOURCE" },
         libraries = { "pthread", "dl" },
         incdirs = { "src" },
      },
   },
}
test = {
   type = "command",
   command = "make test",
}
