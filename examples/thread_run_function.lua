-- Mirrors: seed 001 (SuperFastPython "Python Threading: The Complete Guide") "Example of Running a Function in a Thread"; also seed 000 "Run a Function in a New Thread in Python" and seed 003 "Example of Running a Function in a Thread".
-- Shows: running a function in a new thread: Thread{target = f}, start(), then join() to wait for it.
local threading = require "lthreading"

-- a custom function that blocks for a moment
local function task()
  -- block for a moment (Python sleeps 1 s; scaled down to 0.1 s to keep the example fast)
  threading.sleep(0.1)
  -- display a message
  print('This is from another thread')
end

-- create a thread
local thread = threading.Thread{target = task}
-- run the thread
thread:start()
-- wait for the thread to finish
print('Waiting for the thread...')
print('Hello')          -- seed 003's notebook adds this print before join() ...
thread:join()
print('TEST')           -- ... and this one after it: it always comes after the thread's message
