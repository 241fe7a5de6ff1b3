-- Mirrors: seed 001 (SuperFastPython "Python Threading: The Complete Guide") "Example of Extending the Thread Class"; also seed 000 "Complete Example: Extending Thread Class" and seed 003 "Thread Class".
-- Shows: extending the Thread class (Thread:extend()) and overriding run(), which start() calls in the new thread.
local threading = require "lthreading"

-- custom thread class
local CustomThread = threading.Thread:extend()

-- override the run function
function CustomThread:run()
  -- block for a moment (Python: 1 s, scaled down to 0.1 s)
  threading.sleep(0.1)
  -- display a message
  print('This is coming from another thread')
end

-- create the thread
local thread = CustomThread()
-- start the thread
thread:start()
-- wait for the thread to finish
print('Waiting for the thread to finish')
thread:join()
print('Thread finished')
