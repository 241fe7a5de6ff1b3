-- Mirrors: seed 004 (notebook) "11 Locks as Context Managers"; also seed 001 (SuperFastPython "Python Threading: The Complete Guide") "Tip 1: Use Context Managers", "Tip 3: Use a Mutex to Protect Critical Sections", seed 000 "Manual Lock Acquisition", "Using Try-Finally", "Context Manager for Lock Acquisition", seed 002 (x_lock).
-- Shows: the ways to hold a lock: manual acquire/release, try/finally (pcall), `local _ <close> = lock()` (Python's with) and lock:with(f).
local threading = require "lthreading"

local function log(msg)
  io.write(string.format('(%-10s) %s', threading.current_thread().name, msg) .. '\n')
end

-- Python: with lock: ...
local function worker_with(lock)
  local _ <close> = lock()
  log('Lock acquired via with')
end

-- Python: lock.acquire(); try: ... finally: lock.release()
local function worker_no_with(lock)
  lock:acquire()
  local ok, err = pcall(function()
    log('Lock acquired directly')
  end)
  lock:release()
  if not ok then error(err, 0) end
end

-- lthreading's helper: acquire, call, release even on error, return the call's values
local function worker_lock_with(lock)
  local v = lock:with(function(x) log('Lock acquired via lock:with'); return x * 2 end, 21)
  log('lock:with returned ' .. v)
end

local lock = threading.Lock()
local w = threading.Thread{target = worker_with, args = {lock}}
local nw = threading.Thread{target = worker_no_with, args = {lock}}
local lw = threading.Thread{target = worker_lock_with, args = {lock}}

w:start()
nw:start()
lw:start()
w:join(); nw:join(); lw:join()

-- the point of the scoped forms: the lock is released even when the critical section fails
local _, err = pcall(function()
  local _ <close> = lock()
  error('failure inside the critical section', 0)
end)
log(string.format('error caught: %s; lock still held: %s', err, tostring(lock:locked())))
local ok = pcall(lock.with, lock, function() error('boom', 0) end)
log(string.format('lock:with raised: %s; lock still held: %s', tostring(not ok), tostring(lock:locked())))
