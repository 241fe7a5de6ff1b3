-- Mirrors: seed 004 (notebook) "10 Controlling Access to Resources" (Counter with a Lock, two workers, join via enumerate()).
-- Shows: a Counter object whose increment() holds a Lock, updated by two threads after random pauses; the final value is 4.
local threading = require "lthreading"

local function log(fmt, ...)
  io.write(string.format('(%-10s) ' .. fmt, threading.current_thread().name, ...) .. '\n')
end

-- Python's Counter keeps self.value in one shared object; a Lua table is copied into each
-- thread, so the value lives in a threading.Shared table that all copies refer to.
local Counter = {}
Counter.__index = Counter

function Counter.new(start)
  return setmetatable({lock = threading.Lock(), data = threading.Shared{value = start or 0}}, Counter)
end

function Counter:increment()
  log('Waiting for lock')
  self.lock:acquire()
  local ok, err = pcall(function()      -- Python's try/finally
    log('Acquired lock')
    self.data.value = self.data.value + 1
  end)
  self.lock:release()
  if not ok then error(err, 0) end
end

-- Python pauses random() s; scaled down to random() * 0.1 s
local function worker(c)
  for _ = 1, 2 do
    local pause = math.random() * 0.1
    log('Sleeping %0.02f', pause)
    threading.sleep(pause)
    c:increment()
  end
  log('Done')
end

local counter = Counter.new()
for _ = 1, 2 do
  local t = threading.Thread{target = worker, args = {counter}}
  t:start()
end

log('Waiting for worker threads')
local main_thread = threading.main_thread()
for _, t in ipairs(threading.enumerate()) do
  if t ~= main_thread then t:join() end
end
log('Counter: %d', counter.data.value)
