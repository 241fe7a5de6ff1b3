-- Mirrors: seed 001 (SuperFastPython "Python Threading: The Complete Guide") "Example of Using a Thread Barrier"; also seed 000 "Python Thread Barrier Example", "Create a Barrier", "Wait on Barrier".
-- Shows: five workers and the main thread meet at a Barrier(5 + 1); all are released once the last one arrives.
local threading = require "lthreading"

local function say(...) io.write(string.format(...) .. "\n") end   -- one write per line

-- target function to prepare some work
local function task(barrier, number)
  -- generate a unique value (Python: random() * 10 s; scaled down to random() * 0.3 s)
  local value = math.random() * 0.3
  -- block for a moment
  threading.sleep(value)
  -- report result
  say('Thread %d done, got: %.3f', number, value)
  -- wait on all other threads to complete
  barrier:wait()
end

-- create a barrier
local barrier = threading.Barrier(5 + 1)
-- create the worker threads
for i = 0, 4 do
  -- start a new thread to perform some work
  local worker = threading.Thread{target = task, args = {barrier, i}}
  worker:start()
end
-- wait for all threads to finish
say('Main thread waiting on all results...')
barrier:wait()
-- report once all threads are done
say('All threads have their result')
