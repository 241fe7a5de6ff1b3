-- Mirrors: seed 004 (notebook) "1 Thread Objects" (both cells: worker() and worker(num)).
-- Shows: starting several threads in a loop, without and with an argument.
local threading = require "lthreading"

local function say(...) io.write(string.format(...) .. "\n") end   -- one write per line

local function worker()
  say('worker')
end

local threads = {}
for _ = 1, 5 do
  local t = threading.Thread{target = worker}
  threads[#threads + 1] = t
  t:start()
end
for _, t in ipairs(threads) do t:join() end

local function worker_num(num)
  say('Worker: %s', num)
end

threads = {}
for i = 0, 4 do
  local t = threading.Thread{target = worker_num, args = {i}}
  threads[#threads + 1] = t
  t:start()
end
for _, t in ipairs(threads) do t:join() end
