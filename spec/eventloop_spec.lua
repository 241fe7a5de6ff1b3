-- API.md §5 "Event loops": q:fileno(), fut:fileno(), ev:fileno().
--
-- An fd polls readable while the queue holds items (or is shut down), once the future is
-- done, while the event is set; level-triggered, and a get_nowait that finds the queue
-- empty (or a clear()) makes it stop.  Readability is checked with luv (libuv) polling at
-- once (uv.run "nowait"), and the real loops (luv, cqueues) run below.  Both come from
-- Debian (lua-luv, lua-cqueues), installed by `make deps`.  Every wait is bounded.

local threading = require "lthreading"
if not package.searchpath("helpers", package.path) then     -- run without the Makefile
  package.path = "spec/?.lua;" .. package.path
end
local H = require "helpers"
-- Debian packages luv and cqueues for Lua 5.4 only: under another Lua (5.5 built from
-- source) these specs are skipped when the modules cannot load; under 5.4 they must load.
local have_uv, uv = pcall(require, "luv")
local have_cq, cqueues = pcall(require, "cqueues")
if not (have_uv and have_cq) then
  assert(_VERSION ~= "Lua 5.4", "luv and cqueues are needed (make deps installs them): "
    .. tostring(have_uv and cqueues or uv))
  describe("fileno() and event loops", function()
    pending("skipped: luv/cqueues are not installed for " .. _VERSION)
  end)
  return
end

local T = H.JOIN

-- One luv poll handle per fd, kept: readable(fd) polls once, without waiting.
local handles = {}
local function readable(fd)
  local h = handles[fd]
  if not h then h = uv.new_poll(fd); handles[fd] = h end
  local seen = false
  h:start("r", function() seen = true end)
  uv.run("nowait")
  h:stop()
  return seen
end
-- Forget the handles (before their fds are closed by a collected object).
local function close_handles()
  for fd, h in pairs(handles) do h:close(); handles[fd] = nil end
  uv.run("nowait")
end

-- Wait (bounded) until fd is readable, in a luv loop; true if it became so.
local function wait_readable(fd, timeout)
  local h, timer, seen = uv.new_poll(fd), uv.new_timer(), false
  h:start("r", function() seen = true; h:stop(); timer:stop() end)
  timer:start(math.floor((timeout or T) * 1000), 0, function() h:stop() end)
  uv.run()
  h:close(); timer:close()
  uv.run("nowait")
  return seen
end

local function is_open(fd)
  local f = io.open("/proc/self/fdinfo/" .. fd)
  if f then f:close() return true end
  return false
end

describe("fileno()", function()
  after_each(close_handles)

  it("is an integer fd, the same on every call and in every thread", function()
    local q, ev = threading.Queue(), threading.Event()
    local pool <close> = threading.ThreadPoolExecutor(1)
    local fut = pool:submit(function() return 1 end)
    for _, obj in ipairs{q, ev, fut} do
      local fd = obj:fileno()
      assert.is_true(math.type(fd) == "integer" and fd >= 0)
      assert.equal(fd, obj:fileno())
      assert.equal(fd, H.run(function(o) return o:fileno() end, obj))
    end
    assert.are_not.equal(q:fileno(), ev:fileno())
    fut:result(T)
  end)

  it("made by several threads at once: they all get the same fd", function()
    for _ = 1, 20 do
      local q = threading.Queue()
      local go = threading.Event()
      local ts = {}
      for i = 1, 4 do
        ts[i] = H.spawn(function(queue, e) e:wait(10) return queue:fileno() end, q, go)
      end
      go:set()
      local fds = {}
      for i = 1, 4 do fds[i] = select(1, H.join(ts[i]):result()) end
      for i = 2, 4 do assert.equal(fds[1], fds[i]) end
      assert.equal(fds[1], q:fileno())
    end
  end)

  it("Queue: readable while it holds items; a get_nowait that finds it empty clears it", function()
    local q = threading.Queue()
    local fd = q:fileno()
    assert.is_false(readable(fd))
    q:put(1)
    assert.is_true(readable(fd))
    q:put(2)
    assert.equal(1, q:get_nowait())
    assert.is_true(readable(fd), "one item left")
    assert.equal(2, q:get_nowait())
    assert.is_false(readable(fd), "the get that took the last item")
    q:put(3)
    assert.is_true(readable(fd))
    assert.same({3}, q:get_many())
    assert.is_false(readable(fd))
    assert.same({nil, "empty"}, {q:get_nowait()})
    assert.is_false(readable(fd))
    assert.is_true(q:put_many{4, 5, 6})
    assert.is_true(readable(fd))
    for _ = 1, 3 do q:get(T) end
    assert.is_false(readable(fd))
  end)

  it("Queue: asked for after items were put, it is readable at once", function()
    for _, make in ipairs{threading.Queue, threading.LifoQueue, threading.PriorityQueue,
                          threading.SimpleQueue} do
      local q = make()
      q:put({1, "x"})
      assert.is_true(readable(q:fileno()))
      q:get_nowait()
      assert.is_false(readable(q:fileno()))
    end
  end)

  it("Queue: readable once shut down (get_nowait then says so)", function()
    local q = threading.Queue()
    local fd = q:fileno()
    assert.is_false(readable(fd))
    q:shutdown()
    assert.is_true(readable(fd))
    assert.same({nil, "shutdown"}, {q:get_nowait()})
  end)

  it("Queue: an item put by another thread wakes a waiting loop", function()
    local q = threading.Queue()
    local fd = q:fileno()
    local t = H.spawn(function(queue) require("lthreading").sleep(0.05) queue:put("hi") end, q)
    assert.is_true(wait_readable(fd))
    assert.equal("hi", q:get_nowait())
    H.join(t)
  end)

  it("Future: readable once done, finished or cancelled", function()
    local pool <close> = threading.ThreadPoolExecutor(1)
    local gate = threading.Event()
    local blocker = pool:submit(function(e) return e:wait(10) end, gate)
    local queued = pool:submit(function() return "never" end)
    local bfd, qfd = blocker:fileno(), queued:fileno()
    assert.is_false(readable(bfd))
    assert.is_false(readable(qfd))
    assert.is_true(queued:cancel())
    assert.is_true(readable(qfd))
    gate:set()
    assert.is_true(wait_readable(bfd))
    assert.is_true(blocker:result(0))
    local done = pool:submit(function() return 1 end)
    done:result(T)
    assert.is_true(readable(done:fileno()), "asked for after it finished")
  end)

  it("Event: readable while set; clear() clears it", function()
    local ev = threading.Event()
    local fd = ev:fileno()
    assert.is_false(readable(fd))
    ev:set()
    assert.is_true(readable(fd))
    ev:set()
    assert.is_true(readable(fd))
    ev:clear()
    assert.is_false(readable(fd))
    local t = H.spawn(function(e) require("lthreading").sleep(0.05) e:set() end, ev)
    assert.is_true(wait_readable(fd))
    assert.is_true(ev:is_set())
    H.join(t)
  end)

  it("is closed when its object is freed", function()
    if not is_open(0) then return end          -- no /proc: nothing to look at
    local fds = {}
    do
      local q, ev = threading.Queue(), threading.Event()
      fds[1], fds[2] = q:fileno(), ev:fileno()
      assert.is_true(is_open(fds[1]) and is_open(fds[2]))
    end
    collectgarbage(); collectgarbage()
    assert.is_false(is_open(fds[1]))
    assert.is_false(is_open(fds[2]))
  end)
end)

describe("event loops", function()
  after_each(close_handles)

  it("luv: receives N items from several producers and the pool's results, never blocking", function()
    local PRODUCERS, PER, TASKS = 4, 200, 20
    local q = threading.Queue()
    local producers = {}
    for p = 1, PRODUCERS do
      producers[p] = H.spawn(function(queue, id, n)
        local th = require "lthreading"
        for i = 1, n do
          queue:put({id, i})
          if i % 16 == 0 then th.sleep(0.001) end
        end
      end, q, p, PER)
    end
    local pool <close> = threading.ThreadPoolExecutor(3)
    local futs = {}
    for i = 1, TASKS do
      futs[i] = pool:submit(function(n) require("lthreading").sleep(0.002 * (n % 5)) return n * 2 end, i)
    end
    local last, count, wakeups, idle, slowest = {}, 0, 0, 0, 0
    local results, nres = {}, 0
    local qpoll = uv.new_poll(q:fileno())
    local guard = uv.new_timer()
    local function finish()
      if count == PRODUCERS * PER and nres == TASKS then guard:stop() end
    end
    qpoll:start("r", function()
      local t0 = threading.monotonic()
      wakeups = wakeups + 1
      local got = 0
      while true do
        local item = q:get_nowait()
        if item == nil then break end
        local p, i = item[1], item[2]
        assert((last[p] or 0) + 1 == i, "items of one producer arrive in order")
        last[p] = i
        got, count = got + 1, count + 1
      end
      if got == 0 then idle = idle + 1 end
      slowest = math.max(slowest, threading.monotonic() - t0)
      if count == PRODUCERS * PER then qpoll:stop() end
      finish()
    end)
    for i, fut in ipairs(futs) do
      local h = uv.new_poll(fut:fileno())
      h:start("r", function()
        results[i] = fut:result(0)
        nres = nres + 1
        h:stop(); h:close()
        finish()
      end)
    end
    guard:start(T * 1000, 0, function() qpoll:stop() end)   -- bounded: a failure, not a hang
    uv.run()
    qpoll:close(); guard:close()
    uv.run("nowait")
    for _, t in ipairs(producers) do H.join(t) end
    assert.equal(PRODUCERS * PER, count)
    assert.equal(TASKS, nres)
    for i = 1, TASKS do assert.equal(i * 2, results[i]) end
    -- the fd is synced under the queue's locks, where the count is exact: with the loop as
    -- the only consumer, no wake-up finds the queue empty, so the loop never spins
    assert.equal(0, idle, string.format("%d of %d wake-ups found nothing", idle, wakeups))
    assert.is_true(slowest < 1, "a callback blocked for " .. slowest .. " s")
  end)

  it("cqueues: the same with coroutines polling the queue, the futures and an Event", function()
    local PRODUCERS, PER, TASKS = 3, 100, 10
    local q, finished = threading.Queue(), threading.Event()
    local producers = {}
    for p = 1, PRODUCERS do
      producers[p] = H.spawn(function(queue, id, n)
        for i = 1, n do queue:put(id * 10000 + i) end
      end, q, p, PER)
    end
    local watcher = H.spawn(function(list, ev)
      for _, t in ipairs(list) do t:join(10) end
      ev:set()
    end, producers, finished)
    local pool <close> = threading.ThreadPoolExecutor(2)
    local futs = {}
    for i = 1, TASKS do futs[i] = pool:submit(function(n) return -n end, i) end
    local function pollable(fd)
      return { pollfd = function() return fd end, events = function() return "r" end,
               timeout = function() return nil end }
    end
    local cq = cqueues.new()
    local count, results, event_seen = 0, {}, nil
    local deadline = threading.monotonic() + T
    cq:wrap(function()
      local src = pollable(q:fileno())
      while count < PRODUCERS * PER and threading.monotonic() < deadline do
        cqueues.poll(src, 1)
        for _ in function() return (q:get_nowait()) end do count = count + 1 end
      end
    end)
    for i, fut in ipairs(futs) do
      cq:wrap(function()
        cqueues.poll(pollable(fut:fileno()), T)
        results[i] = fut:done() and fut:result(0)
      end)
    end
    cq:wrap(function()
      cqueues.poll(pollable(finished:fileno()), T)
      event_seen = finished:is_set()
    end)
    assert(cq:loop())
    H.join(watcher)
    assert.equal(PRODUCERS * PER, count)
    for i = 1, TASKS do assert.equal(-i, results[i]) end
    assert.is_true(event_seen)
  end)
end)
