-- Mirrors: seed 001 (SuperFastPython "Python Threading: The Complete Guide") "Example of Using a Semaphore"; also seed 000 "Create and Use Semaphore with Threads" and seed 003 "SEMAPHORE" (the same with Semaphore(1)).
-- Shows: a Semaphore(2) lets at most two of ten threads into the guarded block at once.
local threading = require "lthreading"

local function say(...) io.write(string.format(...) .. "\n") end   -- one write per line

-- how many threads are inside right now: a Shared table, because a plain Lua table would be
-- copied into each thread instead of shared
local inside = threading.Shared{n = 0}

-- target function
local function task(semaphore, number)
  -- attempt to acquire the semaphore
  local _ <close> = semaphore()
  local n = inside:incr('n')
  -- process (Python sleeps random() s; scaled down to random() * 0.1 s)
  local value = math.random()
  threading.sleep(value * 0.1)
  -- report result
  say('Thread %d got %.3f (inside: %d)', number, value, n)
  inside:incr('n', -1)
end

-- create a semaphore
local semaphore = threading.Semaphore(2)
-- create a suite of threads
for i = 0, 9 do
  local worker = threading.Thread{target = task, args = {semaphore, i}}
  worker:start()
end
-- wait for all workers to complete... (the end of the script waits for them)
