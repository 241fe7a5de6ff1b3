-- Mirrors: seed 001 (SuperFastPython "Python Threading: The Complete Guide") "How Do You Create a Thread-Safe Counter?" (ThreadSafeCounter); also seed 000 "Initialize a Lock Object", "Use Context Manager for Lock Protection".
-- Shows: a counter class whose increment() and value() hold a Lock, used by ten threads at once; the total is exact.
local threading = require "lthreading"

-- thread safe counter class. Python's self._counter is one integer in one shared object. A
-- Lua table is copied into each thread, so the number is kept in a threading.Shared table
-- and every copy of the counter works on it, under the same Lock.
local ThreadSafeCounter = {}
ThreadSafeCounter.__index = ThreadSafeCounter

-- constructor
function ThreadSafeCounter.new()
  -- initialize counter and lock
  return setmetatable({_counter = threading.Shared{value = 0}, _lock = threading.Lock()}, ThreadSafeCounter)
end

-- increment the counter
function ThreadSafeCounter:increment()
  local _ <close> = self._lock()
  self._counter.value = self._counter.value + 1
end

-- get the counter value
function ThreadSafeCounter:value()
  local _ <close> = self._lock()
  return self._counter.value
end

local counter = ThreadSafeCounter.new()
local THREADS, TIMES = 10, 1000

local function work(c, n)
  for _ = 1, n do c:increment() end
end

local threads = {}
for i = 1, THREADS do
  threads[i] = threading.Thread{target = work, args = {counter, TIMES}}
  threads[i]:start()
end
for _, t in ipairs(threads) do t:join() end
print(string.format('counter value: %d (expected %d)', counter:value(), THREADS * TIMES))

-- the same without a Lock: Shared:incr() is one atomic read-modify-write
local s = threading.Shared{count = 0}
threads = {}
for i = 1, THREADS do
  threads[i] = threading.Thread(function() for _ = 1, TIMES do s:incr('count') end end)
  threads[i]:start()
end
for _, t in ipairs(threads) do t:join() end
print(string.format('Shared:incr count: %d (expected %d)', s.count, THREADS * TIMES))
