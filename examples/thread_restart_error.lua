-- Mirrors: seed 001 (SuperFastPython "Python Threading: The Complete Guide") "How to Restart a Thread?"; also seed 000 "Attempt to Restart a Terminated Thread in Python".
-- Shows: a thread can only be started once: a second start() raises an error; make a new Thread instead.
local threading = require "lthreading"

-- custom target function
local function task()
  -- block for a moment (Python: 1 s, scaled down to 0.1 s)
  threading.sleep(0.1)
  -- report a message
  print('Hello from the new thread')
end

-- create a new thread
local thread = threading.Thread{target = task}
-- start the thread
thread:start()
-- wait for the thread to finish
thread:join()
-- try and start the thread again (Python lets the RuntimeError end the script; we catch it)
local ok, err = pcall(thread.start, thread)
print('second start() succeeded: ' .. tostring(ok))
print('error: ' .. tostring(err))

-- to "restart", create a new thread with the same configuration
thread = threading.Thread{target = task}
thread:start()
thread:join()
