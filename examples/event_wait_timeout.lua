-- Mirrors: seed 004 (notebook) "9 Signaling Between Threads"; also seed 001 (SuperFastPython "Python Threading: The Complete Guide") "How to Use an Event Object" (is_set, set, clear, wait(timeout)).
-- Shows: one thread blocks in wait() until the Event is set, another polls with wait(t) and does other work on each timeout.
local threading = require "lthreading"

local function log(fmt, ...)
  io.write(string.format('(%-10s) ' .. fmt, threading.current_thread().name, ...) .. '\n')
end

-- Wait for the event to be set before doing anything
local function wait_for_event(e)
  log('wait_for_event starting')
  local event_is_set = e:wait()
  log('event set: %s', tostring(event_is_set))
end

-- Wait t seconds and then timeout
local function wait_for_event_timeout(e, t)
  while not e:is_set() do
    log('wait_for_event_timeout starting')
    local event_is_set = e:wait(t)
    log('event set: %s', tostring(event_is_set))
    if event_is_set then
      log('processing event')
    else
      log('doing other work')
    end
  end
end

local e = threading.Event()
local t1 = threading.Thread{name = 'block', target = wait_for_event, args = {e}}
t1:start()

-- Python waits 2 s per round against a 0.3 s delay; here 0.1 s per round, so the polling
-- thread times out a few times before the event is set.  The set comes in the middle of a
-- round (0.35 s), not at a round's end, where the poller could time out and then find the
-- flag set without ever processing the event
local t2 = threading.Thread{name = 'nonblock', target = wait_for_event_timeout, args = {e, 0.1}}
t2:start()

log('Waiting before calling Event.set()')
threading.sleep(0.35)
e:set()
log('Event is set')
t1:join(); t2:join()

-- clear() makes the flag false again; wait with a timeout then returns false
e:clear()
log('after clear(): is_set() = %s, wait(0.01) = %s', tostring(e:is_set()), tostring(e:wait(0.01)))
