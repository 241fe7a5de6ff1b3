-- Mirrors: seed 001 (SuperFastPython "Python Threading: The Complete Guide") "Example of Using a Mutex Lock"; also seed 000 "Python Mutex Lock Example" and seed 003 "MUTEX LOCK".
-- Shows: a Lock shared by ten threads lets only one at a time run the critical section (`local _ <close> = lock()` is Python's `with lock:`).
local threading = require "lthreading"

local function say(...) io.write(string.format(...) .. "\n") end   -- one write per line

-- To make mutual exclusion visible, each holder counts itself in a Shared table (a plain
-- Lua table would be copied into each thread; Shared is one table seen by all of them).
local inside = threading.Shared{n = 0}

-- work function
local function task(lock, identifier, value)
  -- acquire the lock
  local _ <close> = lock()
  local n = inside:incr('n')
  say('>thread %d got the lock, sleeping for %.3f (threads holding it: %d)', identifier, value, n)
  threading.sleep(value)
  inside:incr('n', -1)
end   -- the lock is released here, when `_` goes out of scope

-- create a shared lock
local lock = threading.Lock()
-- start a few threads that attempt to execute the same critical section
for i = 0, 9 do
  -- start a thread (Python sleeps random() s; scaled down to random() * 0.05 s)
  threading.Thread{target = task, args = {lock, i, math.random() * 0.05}}:start()
end
-- wait for all threads to finish... (the end of the script waits for them)
