-- Mirrors: seed 001 (SuperFastPython "Python Threading: The Complete Guide") "Thread Deadlocks" (first example: a thread acquiring the same Lock twice).
-- Shows: a thread that waits on itself deadlocks; with an acquire timeout the demo ends and reports it; an RLock avoids it.
local threading = require "lthreading"

local function say(...) io.write(string.format(...) .. "\n") end   -- one write per line

-- task to be executed in a new thread
local function task(lock, kind)
  say('%s: Thread acquiring lock...', kind)
  local _ <close> = lock()
  say('%s: Thread acquiring lock again...', kind)
  -- Python's `with lock:` blocks forever here; a 0.3 s timeout keeps the demo bounded
  if lock:acquire(0.3) then
    say('%s: acquired the lock a second time', kind)
    lock:release()
  else
    say('%s: deadlock! the second acquire timed out (the thread waits on itself)', kind)
  end
end

-- create the mutex lock
local lock = threading.Lock()
-- create and configure the new thread
local thread = threading.Thread{target = task, args = {lock, 'Lock'}}
-- start the new thread
thread:start()
-- wait for threads to exit...
thread:join()

-- the fix: a reentrant lock can be taken again by its owner
thread = threading.Thread{target = task, args = {threading.RLock(), 'RLock'}}
thread:start()
thread:join()
