-- Mirrors: seed 001 (SuperFastPython "Python Threading: The Complete Guide") "Current Thread"; also seed 000 "Get Current Thread Instance using current_thread()".
-- Shows: current_thread() inside a thread returns that thread's own Thread object.
local threading = require "lthreading"

-- function to get the current thread
local function task()
  -- get the current thread
  local thread = threading.current_thread()
  -- report the name
  print(thread.name)
end

-- create a thread
local thread = threading.Thread{target = task}
-- start the thread
thread:start()
-- wait for the thread to exit
thread:join()
print('reported by the starter: ' .. thread.name)
