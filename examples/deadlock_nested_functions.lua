-- Mirrors: seed 001 (SuperFastPython "Python Threading: The Complete Guide") "Thread Deadlocks" (second example: task1() holds the lock and calls task2(), which acquires it again).
-- Shows: the same self-deadlock hidden behind a function call, bounded with an acquire timeout, then avoided with an RLock.
local threading = require "lthreading"

local function say(...) io.write(string.format(...) .. "\n") end   -- one write per line

-- task2 to be executed in a new thread
local function task2(lock)
  say('Thread acquiring lock again...')
  -- Python blocks forever here (`with lock:`); the timeout keeps the demo bounded
  if not lock:acquire(0.3) then
    say('deadlock: task2 could not get the lock held by its own thread (timed out)')
    return
  end
  say('task2 got the lock')
  lock:release()
end

-- task1 to be executed in a new thread
local function task1(lock)
  say('Thread acquiring lock...')
  local _ <close> = lock()
  task2(lock)
end

-- create the mutex lock
local lock = threading.Lock()
-- create and configure the new thread
local thread = threading.Thread{target = task1, args = {lock}}
-- start the new thread
thread:start()
-- wait for threads to exit...
thread:join()

-- "This specific deadlock with a mutex lock can be avoided by using a reentrant mutex lock"
say('-- again with an RLock --')
thread = threading.Thread{target = task1, args = {threading.RLock()}}
thread:start()
thread:join()
