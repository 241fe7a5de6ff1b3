-- Mirrors: seed 001 (SuperFastPython "Python Threading: The Complete Guide") "Race Condition With Timing"; also seed 000 "Handling delays before condition.wait() in Python".
-- Shows: a notify() sent before the other thread waits is lost; the fix: the waiter sets an Event while holding the Condition, and the notifier waits for that Event.
local threading = require "lthreading"

local function say(...) io.write(string.format(...) .. "\n") end   -- one write per line

-- 1. the race: main notifies at once, the thread only starts waiting a bit later. Python's
--    version waits forever; here the wait has a timeout (0.2 s), so the script can go on.
local condition = threading.Condition()
local function late_waiter(cond)
  threading.sleep(0.1)                   -- the thread is slow to get going
  local _ <close> = cond()
  local notified = cond:wait(0.2)
  say('race: waiter notified: %s (the notification was sent before it waited)', tostring(notified))
end
local t = threading.Thread{target = late_waiter, args = {condition}}
t:start()
do
  local _ <close> = condition()
  condition:notify()                     -- nobody waits yet: the notification is lost
end
t:join()

-- 2. the fix
local function task(cond, event)
  -- wait to be notified
  local _ <close> = cond()
  -- indicate we are ready to be notified
  event:set()
  -- add an artificial delay (Python: 5 s; scaled down to 0.2 s): harmless, because the
  -- notifier cannot take the condition until this thread releases it inside wait()
  threading.sleep(0.2)
  -- wait to be notified (the timeout is only a safety net; it is never reached)
  local notified = cond:wait(5)
  say('fixed: waiter notified: %s', tostring(notified))
end

condition = threading.Condition()
local event = threading.Event()
t = threading.Thread{target = task, args = {condition, event}}
t:start()
-- busy wait for the new thread to get ready (Python: sleep(0.1) per check; here 0.01 s)
while not event:is_set() do
  threading.sleep(0.01)
end
-- notify the new thread
do
  local _ <close> = condition()
  condition:notify()
  say('main: notification sent')
end
t:join()
