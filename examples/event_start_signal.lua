-- Mirrors: seed 001 (SuperFastPython "Python Threading: The Complete Guide") "Example of Using an Event Object"; also seed 000 "Create a threading.Event Object".
-- Shows: five threads wait on one Event; set() in the main thread releases them all.
local threading = require "lthreading"

local function say(...) io.write(string.format(...) .. "\n") end   -- one write per line

-- target task function
local function task(event, number)
  -- wait for the event to be set
  event:wait()
  -- begin processing (Python sleeps random() s; scaled down to random() * 0.1 s)
  local value = math.random()
  threading.sleep(value * 0.1)
  say('Thread %d got %.3f', number, value)
end

-- create a shared event object
local event = threading.Event()
-- create a suite of threads
for i = 0, 4 do
  local thread = threading.Thread{target = task, args = {event, i}}
  thread:start()
end
-- block for a moment (Python: 2 s; scaled down to 0.1 s)
say('Main thread blocking...')
threading.sleep(0.1)
-- start processing in all threads
event:set()
-- wait for all the threads to finish... (the end of the script waits for them)
