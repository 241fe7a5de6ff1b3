-- Mirrors: seed 004 (notebook) "14 Thread-specific Data".
-- Shows: one Local object passed to several threads: each thread starts without the main thread's value and sets its own.
local threading = require "lthreading"

-- Python's logging format '(%(threadName)-10s) %(message)s', one write per line
local function log(fmt, ...)
  io.write(string.format("(%-10s) " .. fmt, threading.current_thread().name, ...) .. "\n")
end

local function show_value(data)
  local val = data.value      -- Python catches AttributeError; a missing Lua field is nil
  if val == nil then
    log('No value yet')
  else
    log('value=%s', val)
  end
end

local function worker(data)
  show_value(data)
  data.value = math.random(1, 100)
  show_value(data)
end

local local_data = threading.Local()
show_value(local_data)
local_data.value = 1000
show_value(local_data)

local threads = {}
for i = 1, 2 do
  local t = threading.Thread{target = worker, args = {local_data}}
  t:start()
  threads[i] = t
end
for _, t in ipairs(threads) do t:join() end
-- the main thread's value is untouched by the workers
show_value(local_data)
