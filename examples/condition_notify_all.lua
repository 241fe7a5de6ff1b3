-- Mirrors: seed 004 (notebook) "12 Condition Synchroning"; also seed 001 (SuperFastPython "Python Threading: The Complete Guide") "How to Use a Condition Object" (notify_all).
-- Shows: two consumers wait on a Condition; the producer wakes them all with notifyAll() (alias of notify_all()).
local threading = require "lthreading"

local function log(msg)
  io.write(string.format('(%-2s) %s', threading.current_thread().name, msg) .. '\n')
end

-- wait for the condition and use the resource
local function consumer(cond, ready)
  log('Starting consumer thread')
  local _ <close> = cond()
  ready:release()            -- (added) tell main this consumer holds the condition
  cond:wait()
  log('Resource is available to consumer')
end

-- set up the resource to be used by the consumer
local function producer(cond)
  log('Starting producer thread')
  local _ <close> = cond()
  log('Making resource available')
  cond:notifyAll()
end

local condition = threading.Condition()
-- Python relies on sleep(0.2) so both consumers wait before the producer runs. The added
-- semaphore makes that certain: a consumer releases it while holding the condition, and it
-- only lets go of the condition inside wait(), so the producer cannot notify too early.
local ready = threading.Semaphore(0)
local c1 = threading.Thread{name = 'c1', target = consumer, args = {condition, ready}}
local c2 = threading.Thread{name = 'c2', target = consumer, args = {condition, ready}}
local p = threading.Thread{name = 'p', target = producer, args = {condition}}

c1:start()
threading.sleep(0.05)        -- Python: 0.2 s
c2:start()
threading.sleep(0.05)
ready:acquire(); ready:acquire()
p:start()
