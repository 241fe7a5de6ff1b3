-- Mirrors: seed 001 (SuperFastPython "Python Threading: The Complete Guide") "Example of Using a Timer Thread"; also seed 000 "Schedule Function Execution with threading.Timer".
-- Shows: a Timer runs a function with arguments after a delay, in its own thread.
local threading = require "lthreading"

-- target task function
local function task(message)
  -- report the custom message
  print(message)
end

-- create a thread timer object (Python: 3 s; scaled down to 0.3 s)
local timer = threading.Timer(0.3, task, 'Hello world')
-- start the timer object
timer:start()
-- wait for the timer to finish
print('Waiting for the timer...')
-- (the end of the script waits for the timer thread, as Python does)
