-- Mirrors: seed 002 (course notes "Part 5: The Threading Module") "Nonblocking Locking"; also seed 001 (SuperFastPython "Python Threading: The Complete Guide") "How to Use a Mutex Lock" (acquire(blocking=False), locked()).
-- Shows: acquire(false) returns false at once when the lock is held, true when it is free; locked() reports the state.
local threading = require "lthreading"

local lock = threading.Lock()
lock:acquire()
if not lock:acquire(false) then
  print("couldn't get lock")
end
print("locked(): " .. tostring(lock:locked()))
lock:release()
if lock:acquire(false) then
  print("got lock")
end
lock:release()
print("locked() after release: " .. tostring(lock:locked()))

-- the same from another thread while main holds the lock
lock:acquire()
local t = threading.Thread(function(l)
  print("other thread, acquire(false) while main holds it: " .. tostring(l:acquire(false)))
end, lock)
t:start(); t:join()
lock:release()
