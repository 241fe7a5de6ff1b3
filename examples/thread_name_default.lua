-- Mirrors: seed 001 (SuperFastPython "Python Threading: The Complete Guide") "Query Thread Name"; also seed 000 "Query Default Thread Name in Python" and seed 003 "Thread Instance Attributes" (In[14]).
-- Shows: every thread gets a default name "Thread-N", N counting up in the process.
local threading = require "lthreading"

-- create the thread
local thread = threading.Thread{}
-- report the thread name
print(thread.name)
-- a second thread gets the next number
local another = threading.Thread{}
print(another.name)
