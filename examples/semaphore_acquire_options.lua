-- Mirrors: seed 001 (SuperFastPython "Python Threading: The Complete Guide") "How to Use a Semaphore" (acquire(blocking=False), acquire(timeout=...), release beyond the start value).
-- Shows: non-blocking and timed acquire on a Semaphore, and that extra release() calls raise its capacity (BoundedSemaphore refuses them).
local threading = require "lthreading"

-- create a semaphore with a limit of 2 (Python: 100)
local semaphore = threading.Semaphore(2)
print('acquire: ' .. tostring(semaphore:acquire()))
print('acquire: ' .. tostring(semaphore:acquire()))
-- acquire the semaphore without blocking
print('acquire(false) when none is left: ' .. tostring(semaphore:acquire(false)))
-- acquire the semaphore with a timeout (Python: 10 s; scaled down to 0.05 s)
print('acquire(0.05) when none is left: ' .. tostring(semaphore:acquire(0.05)))
-- a release from another thread lets a waiting acquire through
local t = threading.Thread(function() threading.sleep(0.05); semaphore:release() end)
t:start()
print('acquire(2) while another thread releases: ' .. tostring(semaphore:acquire(2)))
t:join()
semaphore:release(); semaphore:release()
-- releasing more often than acquiring increases the capacity
semaphore:release()
local n = 0
while semaphore:acquire(false) do n = n + 1 end
print('positions after one extra release: ' .. n)

-- a BoundedSemaphore treats that extra release as an error
local bounded = threading.BoundedSemaphore(2)
local ok = pcall(bounded.release, bounded)
print('BoundedSemaphore extra release raised an error: ' .. tostring(not ok))
