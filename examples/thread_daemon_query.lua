-- Mirrors: seed 001 (SuperFastPython "Python Threading: The Complete Guide") "Query Thread Daemon"; also seed 003 "Thread Instance Attributes" (In[15]).
-- Shows: the daemon field; new threads created by the (non-daemon) main thread are not daemons.
local threading = require "lthreading"

-- create the thread
local thread = threading.Thread{}
-- report the daemon attribute
print(thread.daemon)
