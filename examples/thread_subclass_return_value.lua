-- Mirrors: seed 001 (SuperFastPython "Python Threading: The Complete Guide") "Example of Extending the Thread Class and Returning Values".
-- Shows: returning a value from a Thread subclass through an instance field, read by the starter after join().
local threading = require "lthreading"

-- custom thread class
local CustomThread = threading.Thread:extend()

-- override the run function
function CustomThread:run()
  -- block for a moment (Python: 1 s, scaled down to 0.1 s)
  threading.sleep(0.1)
  -- display a message
  print('This is coming from another thread')
  -- store return value: run() works on the new thread's copy of self; lthreading copies
  -- the fields of self back to the starter when the thread ends
  self.value = 99
end

-- create the thread
local thread = CustomThread()
-- start the thread
thread:start()
-- wait for the thread to finish
print('Waiting for the thread to finish')
thread:join()
-- get the value returned from run
local value = thread.value
print(string.format('Got: %s', value))
