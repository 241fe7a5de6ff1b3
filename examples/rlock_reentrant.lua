-- Mirrors: seed 001 (SuperFastPython "Python Threading: The Complete Guide") "Example of Using a Reentrant Lock"; also seed 000 "Complete Reentrant Lock Example" and seed 003 "RLOCK".
-- Shows: an RLock can be acquired again by the thread that holds it: task() holds it and calls report(), which takes it again.
local threading = require "lthreading"

local function say(...) io.write(string.format(...) .. "\n") end   -- one write per line

-- reporting function
local function report(lock, identifier)
  -- acquire the lock (again: this thread already holds it)
  local _ <close> = lock()
  say('>thread %d done', identifier)
end

-- work function
local function task(lock, identifier, value)
  -- acquire the lock
  local _ <close> = lock()
  say('>thread %d sleeping for %.3f', identifier, value)
  threading.sleep(value)
  -- report
  report(lock, identifier)
end

-- create a shared reentrant lock
local lock = threading.RLock()
-- start a few threads that attempt to execute the same critical section
for i = 0, 9 do
  -- start a thread (Python sleeps random() s; scaled down to random() * 0.05 s)
  threading.Thread{target = task, args = {lock, i, math.random() * 0.05}}:start()
end
-- wait for all threads to finish... (the end of the script waits for them)
