-- Mirrors: seed 001 (SuperFastPython "Python Threading: The Complete Guide") "Number of Active Threads"; also seed 000 "Get Number of Active Threads using active_count()".
-- Shows: active_count() counts the live threads, the main thread included.
local threading = require "lthreading"

-- get the number of active threads
local count = threading.active_count()
-- report the number of active threads
print(count)

-- with two more threads alive (they wait on an event), the count goes up by two
local release = threading.Event()
local t1 = threading.Thread(function() release:wait() end)
local t2 = threading.Thread(function() release:wait() end)
t1:start(); t2:start()
print('while two threads run: ' .. threading.active_count())
release:set()
t1:join(); t2:join()
print('after they ended: ' .. threading.active_count())
