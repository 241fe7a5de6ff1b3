-- Mirrors: seed 001 (SuperFastPython "Python Threading: The Complete Guide") "Unhandled Exception"; also seed 000 "Handle Unhandled Exceptions in Python Threads" and seed 003 "Exception Handling" (In[19]).
-- Shows: an error in a thread is reported on stderr ("Exception in thread NAME:" + traceback) and does not stop the main thread.
local threading = require "lthreading"
io.stdout:setvbuf("line")   -- so stdout and stderr lines appear in the order they were written

-- target function that raises an exception
local function work()
  print('Working...')
  threading.sleep(0.1)      -- Python: sleep(1), scaled down
  -- raise an exception
  error('Something bad happened')
end

-- create a thread
local thread = threading.Thread{target = work}
-- run the thread
thread:start()
-- wait for the thread to finish
thread:join()
-- continue on
print('Continuing on...')
