-- Mirrors: seed 001 (SuperFastPython "Python Threading: The Complete Guide") "Example of Running a Function in a Thread With Arguments"; also seed 003 cells In[3]-In[8] (task(3, 'HELLO')).
-- Shows: passing arguments to the target: Thread{target = f, args = {...}} and the shorthand Thread(f, ...).
local threading = require "lthreading"

-- a custom function that blocks for a moment
local function task(sleep_time, message)
  -- block for a moment
  threading.sleep(sleep_time)
  -- display a message
  print(message)
end

-- create a thread (Python passes 1.5 s; scaled down to 0.15 s)
local thread = threading.Thread{target = task, args = {0.15, 'New message from another thread'}}
-- run the thread
thread:start()
-- wait for the thread to finish
print('Waiting for the thread...')
thread:join()

-- seed 003's variant, written with the shorthand Thread(target, args...) (Python's 3 s -> 0.3 s)
thread = threading.Thread(task, 0.3, 'HELLO')
thread:start()
print('Waiting for the thread...')
print('TEST')
thread:join()
