-- Mirrors: seed 001 (SuperFastPython "Python Threading: The Complete Guide") "How to Configure Thread Daemon"; also seed 000 "Create Daemon Thread via Constructor", "Configure Daemon Thread via Property".
-- Shows: making a thread a daemon in the constructor (daemon = true) or through the daemon field before start().
local threading = require "lthreading"

-- create a daemon thread
local thread = threading.Thread{daemon = true}
-- report if the thread is a daemon
print(thread.daemon)

-- create a thread, then configure it to be a daemon via the property
thread = threading.Thread{}
thread.daemon = true
print(thread.daemon)

-- a thread started by a daemon thread inherits its daemon flag
local inherited = threading.Thread{daemon = true, target = function()
  local child = threading.Thread{}
  print('child of a daemon thread is a daemon: ' .. tostring(child.daemon))
end}
inherited:start()
inherited:join()
