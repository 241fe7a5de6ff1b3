-- Mirrors: seed 001 (SuperFastPython "Python Threading: The Complete Guide") "Query Thread Identifier"; also seed 000 "Get Thread Identifier in Python" and seed 003 (In[19]).
-- Shows: the ident field is nil until the thread is started, then an integer (Python prints None, Lua prints nil).
local threading = require "lthreading"

-- create the thread
local thread = threading.Thread{}
-- report the thread identifier
print(thread.ident)
-- start the thread
thread:start()
-- report the thread identifier
print(thread.ident)
thread:join()
