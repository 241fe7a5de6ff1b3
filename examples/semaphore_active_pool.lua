-- Mirrors: seed 004 (notebook) "13 Limiting Concurrent Access to Resources" (ActivePool + Semaphore(2)).
-- Shows: a Semaphore(2) limits the workers in the pool to two; a lock-protected shared list shows who is running.
local threading = require "lthreading"

local function log(fmt, ...)
  io.write(string.format('(%-2s) ' .. fmt, threading.current_thread().name, ...) .. '\n')
end

-- Python's ActivePool holds a plain list and a lock. The list must be the same for every
-- thread, so it is a threading.Shared table (a Lua table would be copied into each thread).
local ActivePool = {}
ActivePool.__index = ActivePool

function ActivePool.new()
  return setmetatable({active = threading.Shared(), lock = threading.Lock()}, ActivePool)
end

local function running(active)
  local names = {}
  for _, n in ipairs(active) do names[#names + 1] = "'" .. n .. "'" end
  return '[' .. table.concat(names, ', ') .. ']'
end

function ActivePool:makeActive(name)
  local _ <close> = self.lock()
  self.active:append(name)
  log('Running: %s', running(self.active))
end

function ActivePool:makeInactive(name)
  local _ <close> = self.lock()
  for i, n in ipairs(self.active) do
    if n == name then table.remove(self.active, i); break end
  end
  log('Running: %s', running(self.active))
end

-- the pool table (and its metatable of methods) is copied into each thread, but its fields
-- are lthreading objects, so every copy works on the same list and lock
local function worker(s, pool)
  log('Waiting to join the pool')
  local _ <close> = s()
  local name = threading.current_thread():getName()
  pool:makeActive(name)
  threading.sleep(0.1)
  pool:makeInactive(name)
end

local pool = ActivePool.new()
local s = threading.Semaphore(2)
for i = 0, 3 do
  local t = threading.Thread{target = worker, name = tostring(i), args = {s, pool}}
  t:start()
end
