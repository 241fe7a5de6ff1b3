-- Mirrors: seed 001 (SuperFastPython "Python Threading: The Complete Guide") "Tip 2: Use Timeouts When Waiting"; also seed 000 "Acquiring Lock with Timeout in Python".
-- Shows: acquire with a timeout returns false when the lock stays held, so the waiter can handle the failure instead of hanging.
local threading = require "lthreading"

local lock = threading.Lock()
local holding = threading.Event()

-- another thread holds the lock for 0.3 s
local holder = threading.Thread(function()
  local _ <close> = lock()
  holding:set()
  threading.sleep(0.3)
end)
holder:start()
holding:wait()

-- acquire the lock with a timeout (Python: 2 * 60 s; scaled down to 0.05 s)
if not lock:acquire(0.05) then
  -- handle failure case, e.g., report error, force termination
  print('could not acquire the lock within 0.05 s: handling the failure')
end
-- a timeout longer than the holder's work succeeds (acquire(true, 5) is the long form)
if lock:acquire(true, 5) then
  print('acquired the lock with a 5 s timeout')
  lock:release()
end
holder:join()
