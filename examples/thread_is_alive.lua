-- Mirrors: seed 001 (SuperFastPython "Python Threading: The Complete Guide") "Query Thread Alive" (both listings); also seed 000 "Check if a Thread is Alive" and seed 003 (In[20], In[17]).
-- Shows: is_alive() is false before start(), true while the target runs, false after join().
local threading = require "lthreading"

-- create the thread
local thread = threading.Thread{}
-- report the thread is alive
print(thread:is_alive())

-- create the thread (Python: lambda: sleep(1); scaled down to 0.2 s)
thread = threading.Thread{target = function() threading.sleep(0.2) end}
-- report the thread is alive
print(thread:is_alive())
-- start the thread
thread:start()
-- report the thread is alive
print(thread:is_alive())
-- wait for the thread to finish
thread:join()
-- report the thread is alive
print(thread:is_alive())
