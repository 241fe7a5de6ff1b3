-- Mirrors: seed 001 (SuperFastPython "Python Threading: The Complete Guide") "Race Condition With Variables"; also seed 002 (course notes "Part 5: The Threading Module") "Race Conditions" (read / increase / write back table).
-- Shows: an adder and a subtractor thread updating one shared balance: unprotected read-modify-write can lose updates; a Lock (or Shared:incr) fixes it.
local threading = require "lthreading"

local function say(...) io.write(string.format(...) .. "\n") end   -- one write per line

-- Python shares a global variable between threads. lthreading threads have separate globals
-- (values are copied), so the shared variable is a field of a threading.Shared table. Each
-- single read or write of a Shared field is atomic, but `v = v + 10` is a read AND a write:
-- another thread can write in between, exactly the race of the tutorial.
local N = 20000

local function adder(s, n, lock)
  for _ = 1, n do
    if lock then lock:acquire() end
    s.variable = s.variable + 10      -- read, calculate, write back
    if lock then lock:release() end
  end
end

local function subtractor(s, n, lock)
  for _ = 1, n do
    if lock then lock:acquire() end
    s.variable = s.variable - 10
    if lock then lock:release() end
  end
end

local function run(label, lock)
  local s = threading.Shared{variable = 0}
  local a = threading.Thread{target = adder, args = {s, N, lock}}
  local b = threading.Thread{target = subtractor, args = {s, N, lock}}
  a:start(); b:start(); a:join(); b:join()
  say('%s: final value %d (expected 0)', label, s.variable)
  return s.variable
end

-- 1. no protection: the two threads really run in parallel, so updates are usually lost
local v = run('unprotected', nil)
say('unprotected run lost updates: %s', tostring(v ~= 0))
-- 2. the critical section protected by a mutex lock (Python's `with lock: variable += 10`)
run('with a Lock', threading.Lock())

-- 3. lthreading's atomic read-modify-write on a Shared field
local s = threading.Shared{variable = 0}
local a = threading.Thread(function() for _ = 1, N do s:incr('variable', 10) end end)
local b = threading.Thread(function() for _ = 1, N do s:incr('variable', -10) end end)
a:start(); b:start(); a:join(); b:join()
say('with Shared:incr: final value %d (expected 0)', s.variable)
