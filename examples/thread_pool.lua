-- Mirrors: seed 001 (SuperFastPython "Python Threading: The Complete Guide") "How Do You Use Thread Pools?" (ThreadPoolExecutor: submit() returning a Future, map()).
-- Shows: a ThreadPoolExecutor running tasks on reused worker threads: submit() + Future:result(), map() in order, as_completed(), shutdown().
local threading = require "lthreading"

local function say(...) io.write(string.format(...) .. "\n") end   -- one write per line

local function task(n)
  threading.sleep(0.01 * (n % 3))     -- a little simulated blocking work
  return n * n, threading.current_thread().name
end

local pool = threading.ThreadPoolExecutor(4)

-- submit(): one task, a Future for its result
local future = pool:submit(task, 7)
local value, worker = future:result()
say('submit: result %d (ran in a pool thread: %s)', value, tostring(worker ~= 'MainThread'))
say('future done: %s', tostring(future:done()))

-- map(): apply a function to every item, results in the items' order
local squares = pool:map(function(x) return x * x end, {1, 2, 3, 4, 5, 6, 7, 8})
say('map: %s', table.concat(squares, ' '))

-- as_completed(): futures in the order they finish
local futures = {}
for i = 1, 6 do futures[i] = pool:submit(task, i) end
local total, count = 0, 0
for f in threading.as_completed(futures) do
  total = total + f:result()
  count = count + 1
end
say('as_completed: %d results, sum %d', count, total)

-- errors raised by a task come back from result()
local bad = pool:submit(function() error('task failed', 0) end)
local _, err = pcall(bad.result, bad)
say('failed task: result() raised "%s"', tostring(err))

pool:shutdown()
local ok = pcall(pool.submit, pool, task, 1)
say('submit after shutdown is an error: %s', tostring(not ok))
