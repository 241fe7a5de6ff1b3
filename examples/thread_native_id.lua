-- Mirrors: seed 001 (SuperFastPython "Python Threading: The Complete Guide") "Query Thread Native Identifier"; also seed 000 "Get Thread Native Identifier in Python".
-- Shows: the native_id field (the OS thread id) is nil until the thread is started, then an integer.
local threading = require "lthreading"

-- create the thread
local thread = threading.Thread{}
-- report the native thread identifier
print(thread.native_id)
-- start the thread
thread:start()
-- report the native thread identifier
print(thread.native_id)
thread:join()
