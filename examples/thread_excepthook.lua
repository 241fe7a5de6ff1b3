-- Mirrors: seed 001 (SuperFastPython "Python Threading: The Complete Guide") "Exception Hook"; also seed 003 "Exception Handling" (In[20], custom_hook).
-- Shows: replacing threading.excepthook with a custom function that gets {exc_type, exc_value, exc_traceback, thread}.
local threading = require "lthreading"
io.stdout:setvbuf("line")

-- target function that raises an exception
local function work()
  print('Working...')
  threading.sleep(0.1)      -- Python: sleep(1), scaled down
  -- raise an exception (level 0: no "file:line:" prefix, like Python's message)
  error('Something bad happened', 0)
end

-- custom exception hook: runs in the failing thread
local function custom_hook(args)
  -- report the failure
  print(string.format('Thread failed: %s', tostring(args.exc_value)))
  print(string.format('(hook: exc_type=%s, thread=%s)', args.exc_type, args.thread.name))
end

-- set the exception hook (it crosses to every thread as a value)
threading.excepthook = custom_hook
-- create a thread
local thread = threading.Thread{target = work}
-- run the thread
thread:start()
-- wait for the thread to finish: the hook has run once join() returns
thread:join()
-- continue on
print('Continuing on...')
-- the original hook stays available
threading.excepthook = threading.__excepthook__
