-- Mirrors: seed 001 (SuperFastPython "Python Threading: The Complete Guide") "What is a Thread Spinlock?"; also seed 000 "Python Spinlock with Timeout", "Python Blocking Lock Acquisition".
-- Shows: spinlocks (a busy wait on lock:acquire(false)), with a sleep, with acquire(timeout), with an attempt limit, and the plain blocking acquire.
local threading = require "lthreading"

local function say(...) io.write(string.format(...) .. "\n") end   -- one write per line

local lock = threading.Lock()

-- another thread holds the lock for a moment each time
local function hold(l, seconds, held)
  local _ <close> = l()
  held:set()
  threading.sleep(seconds)
end
local function hold_in_thread(seconds)
  local held = threading.Event()
  local t = threading.Thread(hold, lock, seconds, held)
  t:start()
  held:wait()
  return t
end

-- 1. example of a busy wait loop for a spinlock
local t = hold_in_thread(0.05)
local spins = 0
while true do
  -- try and get the lock
  local acquired = lock:acquire(false)
  -- check if we got the lock
  if acquired then break end   -- stop waiting
  spins = spins + 1
end
say('1. spin: got the lock after spinning (%s)', spins > 0 and 'spun' or 'no spin')
lock:release(); t:join()

-- 2. example of a busy wait loop for a spinlock with a sleep (Python: 0.1 s; here 0.01 s)
t = hold_in_thread(0.05)
while true do
  if lock:acquire(false) then break end
  -- sleep for a moment: the thread could do other work here
  threading.sleep(0.01)
end
say('2. spin with sleep: got the lock')
lock:release(); t:join()

-- 3. example of a busy wait loop for a spinlock with a wait (acquire with a timeout)
t = hold_in_thread(0.05)
while true do
  -- try and get the lock with a timeout
  local acquired = lock:acquire(0.01)
  if acquired then break end
end
say('3. spin with acquire(timeout): got the lock')
lock:release(); t:join()

-- 4. give up after a fixed number of attempts
t = hold_in_thread(0.3)
local got = false
for _ = 1, 5 do
  if lock:acquire(0.01) then got = true; break end
end
say('4. spin with a limit: %s', got and 'got the lock' or 'gave up after 5 attempts')
if got then lock:release() end
t:join()

-- the alternative: block until the lock can be acquired
t = hold_in_thread(0.05)
lock:acquire()
say('blocking acquire: got the lock')
lock:release(); t:join()
