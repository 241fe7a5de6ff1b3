-- Mirrors: no seed (lthreading beyond Python: API.md section 5, "Event loops").
-- Shows: a cqueues event loop whose coroutines wait on q:fileno(), fut:fileno() and
-- ev:fileno() with cqueues.poll, then use only the non-blocking calls (get_nowait,
-- result(0), is_set): items from producer threads, a pool result, and a "producers done"
-- Event, without ever blocking the loop's thread.
local threading = require "lthreading"
local cqueues = require "cqueues"

local function say(...) io.write(string.format(...) .. "\n") end   -- one write per line

-- cqueues polls any object with pollfd() and events() methods
local function readable(fd)
  return { pollfd = function() return fd end, events = function() return "r" end,
           timeout = function() return nil end }
end

local PRODUCERS, PER_PRODUCER = 2, 25
local q = threading.Queue()
local finished = threading.Event()

-- producers, and a thread that sets `finished` once they all ended
local producers = {}
for p = 1, PRODUCERS do
  producers[p] = threading.Thread(function(queue, id, n)
    for i = 1, n do queue:put({from = id, n = i}) require("lthreading").sleep(0.001) end
  end, q, p, PER_PRODUCER)
  producers[p]:start()
end
local watcher = threading.Thread(function(list, ev)
  for _, t in ipairs(list) do t:join() end
  ev:set()
end, producers, finished)
watcher:start()

local pool = threading.ThreadPoolExecutor(1)
local fut = pool:submit(function() require("lthreading").sleep(0.02) return "pool result" end)

local cq = cqueues.new()
local received, per = 0, {}
cq:wrap(function()                    -- the queue's items
  local src = readable(q:fileno())
  while received < PRODUCERS * PER_PRODUCER do
    cqueues.poll(src, 10)
    for item in function() return (q:get_nowait()) end do
      received = received + 1
      per[item.from] = (per[item.from] or 0) + 1
    end
  end
end)
cq:wrap(function()                    -- the future
  cqueues.poll(readable(fut:fileno()), 10)
  say("future: %s (done: %s)", fut:result(0), tostring(fut:done()))
end)
cq:wrap(function()                    -- the event
  cqueues.poll(readable(finished:fileno()), 10)
  say("producers finished: %s", tostring(finished:is_set()))
end)
assert(cq:loop())

say("received %d (expected %d)", received, PRODUCERS * PER_PRODUCER)
for p = 1, PRODUCERS do say("from producer %d: %d (expected %d)", p, per[p] or 0, PER_PRODUCER) end
watcher:join()
pool:shutdown()
