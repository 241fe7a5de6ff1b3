-- Mirrors: seed 001 (SuperFastPython "Python Threading: The Complete Guide") "Thread-Local Data"; also seed 000 "Thread-Local Data Storage with threading.local" and seed 003 "Local Storage".
-- Shows: a threading.Local() object keeps a separate set of fields for each thread.
local threading = require "lthreading"

local function say(...) io.write(string.format(...) .. "\n") end   -- one write per line

-- custom target function (Python sleeps 1 s and 2 s; scaled down to 0.1 s and 0.2 s)
local function task(value)
  -- create a local storage
  local loc = threading.Local()     -- Python: threading.local() ("local" is a Lua keyword)
  -- store data
  loc.value = value
  -- block for a moment
  threading.sleep(value / 10)
  -- retrieve value
  say('Stored value: %d', loc.value)
end

-- create and start a thread
threading.Thread{target = task, args = {1}}:start()
-- create and start another thread
threading.Thread{target = task, args = {2}}:start()

-- the same idea with ONE Local shared by two threads: each still sees its own value
local shared_local = threading["local"]()
local function task2(loc, value)
  loc.value = value
  threading.sleep(0.05)
  say('Shared Local, thread %s sees value: %d', threading.current_thread().name, loc.value)
end
local a = threading.Thread{name = 'A', target = task2, args = {shared_local, 10}}
local b = threading.Thread{name = 'B', target = task2, args = {shared_local, 20}}
a:start(); b:start(); a:join(); b:join()
-- (the lua script's end waits for the first two threads, as Python's interpreter does)
