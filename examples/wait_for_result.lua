-- Mirrors: seed 001 (SuperFastPython "Python Threading: The Complete Guide") "How to Wait for a Result from a Thread?" (five approaches: sleep loop, join, Event, wait/notify, Queue).
-- Shows: the five ways to wait for a result another thread prepares, each one run in turn.
local threading = require "lthreading"

local function say(...) io.write(string.format(...) .. "\n") end   -- one write per line

-- the "work": Python's tutorial does blocking I/O; here a short sleep (0.05 s) and a number
local function compute(x) threading.sleep(0.05); return x * x end

-- The result is handed over through lthreading objects: a plain Lua table given to the
-- worker would be the worker's own copy, so the main thread would never see the result.

-- 1. Use a sleep: busy-wait with a sleep until the result appears in a Shared table
do
  local box = threading.Shared()
  threading.Thread(function() box.result = compute(2) end):start()
  while box.result == nil do threading.sleep(0.01) end
  say('1. sleep loop: result %d', box.result)
end

-- 2. Join the thread: wait for the worker to end (here its return value via result())
do
  local t = threading.Thread(compute, 3)
  t:start()
  t:join()
  say('2. join: result %d', t:result())
end

-- 3. Use an Event: the worker stores the result, then sets the event
do
  local box, done = threading.Shared(), threading.Event()
  threading.Thread(function() box.result = compute(4); done:set() end):start()
  done:wait()
  say('3. event: result %d', box.result)
end

-- 4. Use wait/notify: wait on a Condition until the result is there
do
  local box, cond = threading.Shared(), threading.Condition()
  threading.Thread(function()
    local r = compute(5)
    local _ <close> = cond()
    box.result = r
    cond:notify()
  end):start()
  local _ <close> = cond()
  cond:wait_for(function() return box.result ~= nil end)
  say('4. condition: result %d', box.result)
end

-- 5. Use a Queue: get() blocks until the worker puts the result
do
  local q = threading.Queue()
  threading.Thread(function() q:put(compute(6)) end):start()
  say('5. queue: result %d', q:get())
end
