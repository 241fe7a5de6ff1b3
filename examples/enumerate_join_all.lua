-- Mirrors: seed 004 (notebook) "6 Enumerating All Threads".
-- Shows: joining every thread from enumerate() except the main thread (compared with ==, Python's "is").
local threading = require "lthreading"

local function log(fmt, ...)
  io.write(string.format('(%-10s) ' .. fmt, threading.current_thread().name, ...) .. '\n')
end

-- Python pauses randint(1, 5) / 10 s; scaled down to randint(1, 5) / 50 s
local function worker()
  local pause = math.random(1, 5) / 50
  log('sleep %0.2f', pause)
  threading.sleep(pause)
  log('ending')
end

for _ = 1, 3 do
  local t = threading.Thread{target = worker, daemon = true}
  t:start()
end

local main_thread = threading.main_thread()
for _, t in ipairs(threading.enumerate()) do
  if t ~= main_thread then
    log('joining %s', t:getName())
    t:join()
  end
end
log('all joined, active_count() = %d', threading.active_count())
