-- Mirrors: seed 002 (course notes "Part 5: The Threading Module") "Locks" (f() acquires, prints "%s got lock", sleeps, releases; 3 threads).
-- Shows: explicit lock:acquire() / lock:release() around a critical section shared by three threads.
local threading = require "lthreading"

local function say(...) io.write(string.format(...) .. "\n") end   -- one write per line

local lock = threading.Lock()

local function f()
  lock:acquire()
  say("%s got lock", threading.current_thread().name)
  threading.sleep(0.1)      -- Python: time.sleep(1), scaled down
  say("%s releases lock", threading.current_thread().name)
  lock:release()
end

-- f's upvalue `lock` is an lthreading object: every thread gets the same lock
threading.Thread{target = f}:start()
threading.Thread{target = f}:start()
threading.Thread{target = f}:start()
