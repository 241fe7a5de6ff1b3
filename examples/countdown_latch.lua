-- Mirrors: seed 001 (SuperFastPython "Python Threading: The Complete Guide") "How to Use a Countdown Latch in Python?"; also seed 000 "Implement Countdown Latch in Python", "Using Countdown Latch in Python".
-- Shows: a CountDownLatch class built on a Condition: waiters block until count_down() has been called `count` times.
local threading = require "lthreading"

local function say(...) io.write(string.format(...) .. "\n") end   -- one write per line

-- simple countdown latch, starts closed then opens once count is reached
local CountDownLatch = {}
CountDownLatch.__index = CountDownLatch

-- constructor. Python keeps the count in an attribute of the one shared object; a Lua table
-- is copied into each thread that gets it, so the count lives in a threading.Shared table
-- (the copies all refer to the same Shared and the same Condition).
function CountDownLatch.new(count)
  return setmetatable({state = threading.Shared{count = count},
                       -- control access to the count and notify when latch is open
                       condition = threading.Condition()}, CountDownLatch)
end

-- count down the latch by one increment
function CountDownLatch:count_down()
  -- acquire the lock on the condition
  local _ <close> = self.condition()
  -- check if the latch is already open
  if self.state.count == 0 then return end
  -- decrement the counter
  self.state.count = self.state.count - 1
  -- check if the latch is now open
  if self.state.count == 0 then
    -- notify all waiting threads that the latch is open
    self.condition:notify_all()
  end
end

-- wait for the latch to open
function CountDownLatch:wait()
  -- acquire the lock on the condition
  local _ <close> = self.condition()
  -- wait to be notified when the latch is open (a loop, which also covers "already open")
  while self.state.count > 0 do
    self.condition:wait()
  end
end

-- create the countdown latch
local latch = CountDownLatch.new(5)

local function worker(l, i)
  threading.sleep(math.random() * 0.1)
  say('worker %d counting down', i)
  -- as each party arrives at the latch, call count_down()
  l:count_down()
end

local function waiter(l, name)
  -- any threads interested in when the latch is open can call wait()
  l:wait()
  say('%s: latch is open', name)
end

local waiters = {}
for i = 1, 2 do
  waiters[i] = threading.Thread{target = waiter, args = {latch, 'waiter ' .. i}}
  waiters[i]:start()
end
for i = 1, 5 do threading.Thread{target = worker, args = {latch, i}}:start() end
latch:wait()
say('main: latch is open')
for _, w in ipairs(waiters) do w:join() end
