-- Mirrors: no seed (lthreading beyond Python: API.md section 5, "Event loops").
-- Shows: a libuv event loop (luv) that receives items from several producer threads and the
-- results of pool tasks without ever blocking: it polls q:fileno() and fut:fileno(), and
-- then uses only the non-blocking calls (get_nowait, result(0)).
local threading = require "lthreading"
local uv = require "luv"

local function say(...) io.write(string.format(...) .. "\n") end   -- one write per line

local PRODUCERS, PER_PRODUCER, TASKS = 3, 20, 5
local q = threading.Queue()

-- producer threads: each puts its items, a little apart
local producers = {}
for p = 1, PRODUCERS do
  producers[p] = threading.Thread(function(queue, id, n)
    local th = require "lthreading"
    for i = 1, n do
      queue:put(id * 1000 + i)
      th.sleep(0.001)
    end
  end, q, p, PER_PRODUCER)
  producers[p]:start()
end

-- pool tasks, finishing at different times
local pool = threading.ThreadPoolExecutor(2)
local futures = {}
for i = 1, TASKS do
  futures[i] = pool:submit(function(n) require("lthreading").sleep(0.005 * n) return n * n end, i)
end

-- the loop: one poll handle on the queue's fd, one per future
local received, sum, wakeups, idle_wakeups = 0, 0, 0, 0
local qpoll = uv.new_poll(q:fileno())
qpoll:start("r", function()
  wakeups = wakeups + 1
  local got = 0
  while true do                       -- drain: readable means "items are there"
    local item = q:get_nowait()
    if item == nil then break end     -- nil, "empty": the fd stops polling readable
    got, received, sum = got + 1, received + 1, sum + item % 1000
  end
  if got == 0 then idle_wakeups = idle_wakeups + 1 end
  if received == PRODUCERS * PER_PRODUCER then qpoll:stop() qpoll:close() end
end)

local results, nresults = {}, 0
for i, fut in ipairs(futures) do
  local p = uv.new_poll(fut:fileno())
  p:start("r", function()             -- readable once the future is done
    results[i] = fut:result(0)        -- done: never waits
    nresults = nresults + 1
    p:stop() p:close()
  end)
end

uv.run()                              -- returns once every handle is closed

say("received %d (expected %d)", received, PRODUCERS * PER_PRODUCER)
say("sum of item numbers %d (expected %d)", sum, PRODUCERS * PER_PRODUCER * (PER_PRODUCER + 1) // 2)
say("results: %s", table.concat(results, " "))
say("wake-ups that found nothing: %d of %d", idle_wakeups, wakeups)
for _, t in ipairs(producers) do t:join() end
pool:shutdown()
