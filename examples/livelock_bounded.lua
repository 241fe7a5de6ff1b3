-- Mirrors: seed 001 (SuperFastPython "Python Threading: The Complete Guide") "Thread Livelocks"; also seed 000 "Python Livelock Demonstration with Threads and Locks" and "Task Function for Livelock Example".
-- Shows: two threads taking two locks in opposite orders keep backing off and retrying (a livelock); the demo is bounded to a few attempts.
local threading = require "lthreading"

local function say(...) io.write(string.format(...) .. "\n") end   -- one write per line

local MAX_ATTEMPTS = 5     -- Python loops forever ("you will have to manually kill the process")

-- task for worker threads
local function task(number, lock1, lock2)
  -- loop until the task is completed (or, here, until MAX_ATTEMPTS)
  for _ = 1, MAX_ATTEMPTS do
    -- acquire the first lock
    do
      local _ <close> = lock1()
      -- wait a moment (Python: 0.1 s; scaled down to 0.05 s)
      threading.sleep(0.05)
      -- check if the second lock is available
      if lock2:locked() then
        say('Task %d cannot get the second lock, giving up...', number)
      else
        -- acquire lock2
        local _ <close> = lock2()
        say('Task %d made it, all done.', number)
        return
      end
    end
  end
  say('Task %d stopped after %d attempts (livelock)', number, MAX_ATTEMPTS)
end

-- create locks
local lock1 = threading.Lock()
local lock2 = threading.Lock()
-- create threads
local thread1 = threading.Thread{target = task, args = {0, lock1, lock2}}
local thread2 = threading.Thread{target = task, args = {1, lock2, lock1}}
-- start threads
thread1:start()
thread2:start()
-- wait for threads to finish
thread1:join()
thread2:join()
