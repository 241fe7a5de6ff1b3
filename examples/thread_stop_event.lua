-- Mirrors: seed 001 (SuperFastPython "Python Threading: The Complete Guide") "How to Stop a Thread?"; also seed 000 "Complete Example: Stopping a Thread Gracefully in Python".
-- Shows: stopping a thread cooperatively: the worker checks an Event each iteration and leaves its loop once it is set.
local threading = require "lthreading"

local function say(...) io.write(string.format(...) .. "\n") end   -- one write per line

-- custom task function (Python sleeps 1 s per iteration; scaled down to 0.1 s)
local function task(event)
  -- execute a task in a loop
  for _ = 1, 5 do
    -- block for a moment
    threading.sleep(0.1)
    -- check for stop
    if event:is_set() then break end
    -- report a message
    say('Worker thread running...')
  end
  say('Worker closing down')
end

-- create the event
local event = threading.Event()
-- create and configure a new thread
local thread = threading.Thread{target = task, args = {event}}
-- start the new thread
thread:start()
-- block for a while (Python: 3 s -> 0.25 s, between the worker's 2nd and 3rd iteration)
threading.sleep(0.25)
-- stop the worker thread
say('Main stopping thread')
event:set()
-- wait for the new thread to finish
thread:join()
say('Worker stopped: is_alive() = %s', tostring(thread:is_alive()))
