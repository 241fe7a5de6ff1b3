-- Mirrors: seed 001 (SuperFastPython "Python Threading: The Complete Guide") "Tip 4: Acquire Locks in Order" and "Thread Deadlocks" (cause: threads that acquire locks in different orders).
-- Shows: two threads taking two locks in opposite orders deadlock (bounded here by acquire timeouts); taking them in one fixed order does not.
local threading = require "lthreading"

local function say(...) io.write(string.format(...) .. "\n") end   -- one write per line

local function task(name, first, second, barrier)
  local _ <close> = first()
  -- both threads hold their first lock before either tries its second one
  if barrier then barrier:wait() end
  if second:acquire(0.3) then               -- the timeout keeps the deadlock bounded
    say('%s: got both locks', name)
    second:release()
  else
    say('%s: gave up waiting for its second lock (deadlock)', name)
  end
end

local lock_a, lock_b = threading.Lock(), threading.Lock()

-- 1. opposite orders: A then B, and B then A
local meet = threading.Barrier(2)
local t1 = threading.Thread{target = task, args = {'thread 1 (A, B)', lock_a, lock_b, meet}}
local t2 = threading.Thread{target = task, args = {'thread 2 (B, A)', lock_b, lock_a, meet}}
t1:start(); t2:start(); t1:join(); t2:join()

-- 2. lock ordering: both take A first, then B
t1 = threading.Thread{target = task, args = {'ordered thread 1', lock_a, lock_b}}
t2 = threading.Thread{target = task, args = {'ordered thread 2', lock_a, lock_b}}
t1:start(); t2:start(); t1:join(); t2:join()
