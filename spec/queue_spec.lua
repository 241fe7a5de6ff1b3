-- API.md §4: Queue, LifoQueue, PriorityQueue, SimpleQueue.
--
-- Thread bodies run in another lua_State with plain globals: they never call busted's
-- assert; they return what they saw and the main thread checks it.  Every wait is bounded.

local threading = require "lthreading"
if not package.searchpath("helpers", package.path) then     -- run without the Makefile
  package.path = "spec/?.lua;" .. package.path
end
local H = require "helpers"

local T = H.JOIN       -- the bound on any wait that should succeed

-- Drain q without blocking into an array.
local function drain(q)
  local out = {}
  while true do
    local v = q:get(false)
    if v == nil then return out end
    out[#out + 1] = v
  end
end

describe("Queue", function()
  it("delivers items first in, first out; put returns true", function()
    local q = threading.Queue()
    for i = 1, 600 do assert.is_true(q:put(i)) end           -- spans several segments
    local got = {}
    for i = 1, 600 do got[i] = q:get(true, T) end
    for i = 1, 600 do assert.equal(i, got[i]) end
    assert.is_true(q:empty())
  end)

  it("copies items: scalars keep their type, tables are deep copies", function()
    local q = threading.Queue()
    local long = string.rep("\0xy", 1000)
    local t = {1, 2, {3, k = "v"}}
    q:put(42); q:put(4.0); q:put(true); q:put(false); q:put("short\0bin"); q:put(long)
    q:put(t)
    assert.equal("integer", math.type(q:get()))
    local f = q:get()
    assert.equal("float", math.type(f)); assert.equal(4.0, f)
    assert.is_true(q:get()); assert.is_false(q:get())
    assert.equal("short\0bin", q:get())
    assert.equal(long, q:get())
    local back = q:get()
    assert.same(t, back)
    assert.is_false(rawequal(t, back))
  end)

  it("keeps lthreading objects inside items as references", function()
    local q = threading.Queue()
    local lock, inner = threading.Lock(), threading.Queue()
    q:put({lock = lock, inner = inner})
    q:put(q)
    local item = q:get()
    assert.is_true(rawequal(lock, item.lock))
    assert.is_true(rawequal(inner, item.inner))
    assert.is_true(rawequal(q, q:get()))
    -- and across threads: the thread sees the same lock
    lock:acquire()
    q:put(lock)
    local locked = H.run(function(qq) return qq:get(5):locked() end, q)
    lock:release()
    assert.is_true(locked)
  end)

  it("raises on a nil item and on an item that cannot cross, storing nothing", function()
    local q = threading.Queue()
    assert.has_error(function() q:put(nil) end)
    assert.has_error(function() q:put() end)
    local ok, err = pcall(q.put, q, {1, coroutine.create(function() end)})
    assert.is_false(ok)
    assert.matches("item%[2%]", err)
    assert.matches("coroutine", err)
    assert.equal(0, q:qsize())
    assert.is_true(q:put_nowait(1))
  end)

  it("get(false) / get_nowait() on an empty queue return nil, \"empty\"", function()
    local q = threading.Queue()
    assert.same({nil, "empty"}, {q:get(false)})
    assert.same({nil, "empty"}, {q:get_nowait()})
    q:put_nowait("x")
    assert.equal("x", q:get_nowait())
  end)

  it("get with a timeout returns nil, \"empty\" once the timeout passed", function()
    local q = threading.Queue()
    local dt, v, why = H.timed(q.get, q, true, 0.1)
    assert.is_nil(v); assert.equal("empty", why)
    assert.is_true(dt >= 0.09 and dt < 5, "waited " .. dt)
    dt, v, why = H.timed(q.get, q, 0.05)                    -- get(timeout) shorthand
    assert.is_nil(v); assert.equal("empty", why)
    assert.is_true(dt >= 0.04 and dt < 5, "waited " .. dt)
  end)

  it("a blocked get wakes up when another thread puts", function()
    local q = threading.Queue()
    local t = H.spawn(function(qq) require("lthreading").sleep(0.1); qq:put("hello") end, q)
    local dt, v = H.timed(q.get, q, true, T)
    H.join(t)
    assert.equal("hello", v)
    assert.is_true(dt < T)
  end)

  it("maxsize bounds it: qsize, empty, full, maxsize; put(false)/put_nowait fail with \"full\"", function()
    local q = threading.Queue(2)
    assert.equal(2, q.maxsize)
    assert.equal(0, threading.Queue().maxsize)
    assert.equal(3, threading.Queue{maxsize = 3}.maxsize)
    assert.is_true(q:empty()); assert.is_false(q:full())
    assert.is_true(q:put(1)); assert.is_true(q:put(2))
    assert.equal(2, q:qsize()); assert.is_true(q:full()); assert.is_false(q:empty())
    assert.same({nil, "full"}, {q:put(3, false)})
    assert.same({nil, "full"}, {q:put_nowait(3)})
    local dt, ok, why = H.timed(q.put, q, 3, true, 0.1)
    assert.is_nil(ok); assert.equal("full", why)
    assert.is_true(dt >= 0.09 and dt < 5, "waited " .. dt)
    assert.same({1, 2}, drain(q))
  end)

  it("a put blocked on a full queue goes in when another thread gets", function()
    local q = threading.Queue(1)
    q:put("first")
    local t = H.spawn(function(qq) return qq:put("second", true, 10) end, q)
    threading.sleep(0.05)
    assert.equal("first", q:get(true, T))
    assert.equal("second", q:get(true, T))
    H.join(t)
    assert.is_true(t:result())
  end)

  it("delivers every item exactly once with many producers and consumers", function()
    local q = threading.Queue(64)
    local P, C, N = 3, 3, 3000
    local producers, consumers = {}, {}
    for p = 1, P do
      producers[p] = H.spawn(function(qq, base, n)
        for i = 1, n do assert(qq:put(base + i, true, 10)) end
      end, q, p * 1000000, N)
    end
    for c = 1, C do
      consumers[c] = H.spawn(function(qq)
        local seen = {}
        while true do
          local v = qq:get(true, 10)
          if v == false or v == nil then return seen end
          seen[#seen + 1] = v
        end
      end, q)
    end
    for p = 1, P do H.join(producers[p], 30) end
    for _ = 1, C do q:put(false) end
    local all, count = {}, 0
    for c = 1, C do
      H.join(consumers[c], 30)
      local last = {}
      for _, v in ipairs(consumers[c]:result()) do
        assert.is_nil(all[v], "delivered twice: " .. v)
        all[v] = true
        count = count + 1
        local p = v // 1000000                        -- FIFO per producer, seen by one consumer
        assert.is_true((last[p] or 0) < v)
        last[p] = v
      end
    end
    assert.equal(P * N, count)
  end)

  it("task_done() and join(): join returns once every item was marked done", function()
    local q = threading.Queue()
    for i = 1, 5 do q:put(i) end
    assert.is_false(q:join(0.05))                           -- join(timeout) -> false
    local worker = H.spawn(function(qq)
      for _ = 1, 5 do qq:get(10); require("lthreading").sleep(0.01); qq:task_done() end
    end, q)
    assert.is_true(q:join(T))
    H.join(worker)
    assert.is_true(q:join())                                -- nothing unfinished: at once
  end)

  it("task_done() called too many times is an error", function()
    local q = threading.Queue()
    assert.has_error(function() q:task_done() end, "task_done() called too many times")
    q:put(1); q:get()
    q:task_done()
    assert.has_error(function() q:task_done() end)
  end)

  it("shutdown(): puts fail, gets drain what is left, then return nil, \"shutdown\"", function()
    local q = threading.Queue()
    q:put(1); q:put(2)
    q:shutdown()
    assert.same({nil, "shutdown"}, {q:put(3)})
    assert.same({nil, "shutdown"}, {q:put_nowait(3)})
    assert.equal(1, q:get()); assert.equal(2, q:get(false))
    local dt, v, why = H.timed(q.get, q)                    -- blocking: at once
    assert.is_nil(v); assert.equal("shutdown", why)
    assert.is_true(dt < 1)
    assert.same({nil, "shutdown"}, {q:get_nowait()})
  end)

  it("shutdown() releases blocked getters and putters with \"shutdown\"", function()
    local empty, full = threading.Queue(), threading.Queue(1)
    full:put(0)
    local g = H.spawn(function(qq) return qq:get(true, 10) end, empty)
    local p = H.spawn(function(qq) return qq:put(1, true, 10) end, full)
    threading.sleep(0.1)
    empty:shutdown(); full:shutdown()
    H.join(g, 5); H.join(p, 5)
    assert.same({nil, "shutdown"}, {g:result()})
    assert.same({nil, "shutdown"}, {p:result()})
  end)

  it("shutdown(true) drops the queued items, which count as done; join() returns", function()
    local q = threading.Queue()
    for i = 1, 300 do q:put({i}) end
    assert.equal(1, q:get()[1]); q:task_done()             -- one taken and done
    local j = H.spawn(function(qq) return qq:join(10) end, q)
    threading.sleep(0.05)
    q:shutdown(true)
    H.join(j, 5)
    assert.is_true(j:result())
    assert.equal(0, q:qsize())
    assert.same({nil, "shutdown"}, {q:get()})
    assert.has_error(function() q:task_done() end, "task_done() called too many times")
    assert.is_true(q:join(0))
  end)

  -- Python 3.13: shutdown(immediate=True) drops only what is still queued.  An item a
  -- worker already took still needs its task_done(), which is no error, and join() returns
  -- once it had it.
  for _, kind in ipairs({"Queue", "LifoQueue", "PriorityQueue"}) do
    it(kind .. ":shutdown(true) keeps the items in hand unfinished until their task_done()", function()
      local q = threading[kind]()
      for i = 1, 300 do q:put({i}) end
      local taken = H.spawn(function(qq) return qq:get(10)[1] end, q)   -- a worker's item
      H.join(taken)
      assert.equal(kind == "LifoQueue" and 300 or 1, taken:result())
      assert.is_table(q:get())                                          -- and one here
      local j = H.spawn(function(qq) return qq:join(10) end, q)
      threading.sleep(0.05)
      q:shutdown(true)
      assert.equal(0, q:qsize())
      assert.same({nil, "shutdown"}, {q:get()})
      assert.is_false(q:join(0.05))                    -- two items still in hand
      assert.is_true(j:is_alive())
      local ok, err = H.run(function(qq) return pcall(qq.task_done, qq) end, q)  -- the worker's
      assert.is_true(ok, err)
      assert.is_false(q:join(0.05))                    -- one left
      assert.is_true(j:is_alive())
      q:task_done()                                    -- ours: no error either
      H.join(j, 5)
      assert.is_true(j:result())                       -- join() returned once both were done
      assert.is_true(q:join(0))
      assert.has_error(function() q:task_done() end, "task_done() called too many times")
    end)
  end

  it("shutdown(true) never counts more done than was put (task_done() ahead of get)", function()
    local q = threading.Queue()
    q:put(1); q:put(2); q:put(3)
    q:task_done()                                      -- allowed, as in Python
    q:shutdown(true)                                   -- drops 3, but only 2 were unfinished
    assert.is_true(q:join(0))
    assert.has_error(function() q:task_done() end, "task_done() called too many times")
  end)

  it("put_many / get_many move batches in order", function()
    local q = threading.Queue()
    local batch = {}
    for i = 1, 1500 do batch[i] = i end
    assert.is_true(q:put_many(batch))
    assert.is_true(q:put_many({}))
    assert.equal(1500, q:qsize())
    local a = q:get_many(1000)
    assert.equal(1000, #a)
    local b = q:get_many()                                  -- default: all there is
    assert.equal(500, #b)
    for i = 1, 1000 do assert.equal(i, a[i]) end
    for i = 1, 500 do assert.equal(1000 + i, b[i]) end
    assert.same({nil, "empty"}, {q:get_many(10, false)})
    local dt, v, why = H.timed(q.get_many, q, 10, true, 0.05)
    assert.is_nil(v); assert.equal("empty", why); assert.is_true(dt >= 0.04)
    q:put_many({{1}, "two", 3.5})
    assert.same({{1}, "two", 3.5}, q:get_many(10))
    assert.has_error(function() q:put_many({1, 2, coroutine.create(print)}) end)
    assert.equal(0, q:qsize())                              -- nothing of the failed batch
    assert.has_error(function() q:get_many(0) end)
  end)

  it("put_many names the bad item (argument #1, item [i]) and puts nothing", function()
    local function fails(q, pattern, items)
      local ok, err = pcall(function() return q:put_many(items) end)
      assert.is_false(ok)
      assert.matches(pattern, err)
      assert.equal(0, q:qsize())
    end
    for _, q in ipairs({threading.Queue(), threading.Queue(5), threading.LifoQueue(),
                        threading.PriorityQueue()}) do
      local item = function(i) return {i} end
      fails(q, "bad argument #1 to 'put_many' %(item %[2%]: nil is not a valid queue item",
            setmetatable({item(1), nil, item(3)}, {__len = function() return 3 end}))  -- (# of a
                                                            -- table with a hole: 1 or 3)
      fails(q, "cannot transfer items%[3%]%.x: coroutine",
            {item(1), item(2), {1, x = coroutine.create(print)}})
    end
    local pq = threading.PriorityQueue()
    fails(pq, "bad argument #1 to 'put_many' %(item %[2%]: PriorityQueue items are tables "
              .. "{priority, ...}, got number%)", {{3}, 5})
    fails(pq, "bad argument #1 to 'put_many' %(item %[3%]: priority is NaN%)", {{1}, {2}, {0 / 0}})
    fails(pq, "bad argument #1 to 'put_many' %(item %[1%]: priority %(item%[1%]%) must be a "
              .. "number or a string, got boolean%)", {{true}})
    fails(pq, "bad argument #1 to 'put_many' %(table expected, got number%)", 5)
    -- put's own item is argument #1 too
    local ok, err = pcall(function() return pq:put(5) end)
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'put' %(PriorityQueue items are tables", err)
  end)

  it("put/get reject a block argument that is neither a boolean nor a number", function()
    local q = threading.Queue()
    q:put("there")                                 -- (a get that ignored the check returns)
    local ok, err = pcall(function() return q:get("yes") end)
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'get' %(boolean or number expected, got string%)", err)
    ok, err = pcall(function() return q:put(1, {}) end)
    assert.is_false(ok)
    assert.matches("bad argument #2 to 'put' %(boolean or number expected, got table%)", err)
    assert.equal(1, q:qsize())
  end)

  it("put_many on a bounded queue puts what fits, then reports \"full\" and the count", function()
    local q = threading.Queue(3)
    assert.same({nil, "full", 3}, {q:put_many({1, 2, 3, 4, 5}, false)})
    assert.same({1, 2, 3}, q:get_many(10))
    local c = H.spawn(function(qq)                          -- a consumer makes room
      local got = {}
      while #got < 6 do
        local items = qq:get_many(2, true, 10)
        if not items then break end
        for _, v in ipairs(items) do got[#got + 1] = v end
      end
      return got
    end, q)
    assert.is_true(q:put_many({1, 2, 3, 4, 5, 6}, true, T))
    H.join(c)
    assert.same({1, 2, 3, 4, 5, 6}, c:result())
  end)

  it("is the same object in every thread it is passed to", function()
    local q = threading.Queue()
    local same = H.run(function(qq, box) return rawequal(qq, box[1]) end, q, {q})
    assert.is_true(same)
    H.run(function(qq) qq:put("from thread") end, q)
    assert.equal("from thread", q:get(false))
  end)
end)

describe("LifoQueue", function()
  it("delivers the last item put first", function()
    local q = threading.LifoQueue()
    for i = 1, 5 do q:put(i) end
    assert.same({5, 4, 3, 2, 1}, drain(q))
  end)

  it("shares Queue's interface: maxsize, full, timeouts, batches, task_done, shutdown", function()
    local q = threading.LifoQueue(2)
    assert.equal(2, q.maxsize)
    q:put("a"); q:put("b")
    assert.is_true(q:full())
    assert.same({nil, "full"}, {q:put("c", false)})
    assert.same({"b", "a"}, q:get_many(5))
    assert.same({nil, "empty"}, {q:get(true, 0.01)})
    q:put_many({1, 2})
    assert.same({2, 1}, q:get_many())
    for _ = 1, 4 do q:task_done() end
    assert.is_true(q:join(0))
    q:put(1)
    q:shutdown()
    assert.same({nil, "shutdown"}, {q:put(2)})
    assert.equal(1, q:get())
    assert.same({nil, "shutdown"}, {q:get()})
    assert.equal(0, threading.LifoQueue().maxsize)
  end)
end)

describe("PriorityQueue", function()
  it("delivers the lowest priority first, FIFO among equal priorities", function()
    local q = threading.PriorityQueue()
    q:put({5, "e"}); q:put({1, "a1"}); q:put({3, "c"}); q:put({1, "a2"})
    q:put({2.5, "b"}); q:put({1, "a3"}); q:put({-1, "z"})
    local order = {}
    for _, item in ipairs(drain(q)) do order[#order + 1] = item[2] end
    assert.same({"z", "a1", "a2", "a3", "b", "c", "e"}, order)
  end)

  it("orders strings bytewise, integers and floats exactly, numbers before strings", function()
    local q = threading.PriorityQueue()
    q:put({"pear"}); q:put({"apple"}); q:put({"app"}); q:put({math.maxinteger})
    q:put({2 ^ 63}); q:put({math.mininteger}); q:put({-2 ^ 63 - 4096}); q:put({0.5}); q:put({0})
    local got = {}
    for _, item in ipairs(drain(q)) do got[#got + 1] = item[1] end
    assert.same({-2 ^ 63 - 4096, math.mininteger, 0, 0.5, math.maxinteger, 2 ^ 63,
                 "app", "apple", "pear"}, got)
  end)

  it("keeps FIFO order among equals across many items", function()
    local q = threading.PriorityQueue()
    local batch = {}
    for i = 1, 1000 do batch[i] = {i % 3, i} end
    q:put_many(batch)
    local last = {}
    local prev = -1
    for _, item in ipairs(q:get_many()) do
      local p, i = item[1], item[2]
      assert.is_true(p >= prev)
      prev = p
      assert.is_true((last[p] or 0) < i)
      last[p] = i
    end
  end)

  it("rejects items that are not tables with a number or string priority", function()
    local q = threading.PriorityQueue()
    assert.has_error(function() q:put(5) end)
    assert.has_error(function() q:put({}) end)
    assert.has_error(function() q:put({true}) end)
    assert.has_error(function() q:put({0 / 0}) end)
    assert.has_error(function() q:put({1, coroutine.create(print)}) end)
    assert.equal(0, q:qsize())
  end)

  it("is bounded like a Queue and works across threads", function()
    local q = threading.PriorityQueue(3)
    assert.equal(3, q.maxsize)
    local t = H.spawn(function(qq)
      for i = 10, 1, -1 do assert(qq:put({i, "x" .. i}, true, 10)) end
    end, q)
    local got = {}
    for i = 1, 10 do got[i] = q:get(true, T)[1] end
    H.join(t)
    table.sort(got)
    for i = 1, 10 do assert.equal(i, got[i]) end
  end)
end)

-- A producer thread races the getter through a small bounded queue: every item must come
-- out exactly once (a heap or stack sized wrongly delivers one twice).
local function race_once(q, prio)
  local t = H.spawn(function(qq, p)
    for i = 20, 1, -1 do assert(qq:put(p and {i % 4, "x" .. i} or {"x" .. i}, true, 10)) end
  end, q, prio)
  local seen, dup = {}, nil
  for _ = 1, 20 do
    local it = q:get(true, T)
    local key = it[#it]
    if seen[key] then dup = key end
    seen[key] = true
  end
  H.join(t)
  return dup
end

describe("LifoQueue and PriorityQueue under a racing producer", function()
  it("deliver each item exactly once", function()
    for _ = 1, 30 do
      assert.is_nil(race_once(threading.LifoQueue(3), false))
      assert.is_nil(race_once(threading.PriorityQueue(3), true))
    end
  end)
end)

describe("Queue constructors", function()
  local function fails(pattern, f)
    local ok, err = pcall(f)
    assert.is_false(ok, "expected an error matching " .. pattern)
    assert.matches(pattern, err)
  end

  it("name a bad maxsize: not a number, not an integer (NaN, 1.5, huge)", function()
    local ctors = {   -- called by name, so that the error names the function
      Queue = function(...) return threading.Queue(...) end,
      LifoQueue = function(...) return threading.LifoQueue(...) end,
      PriorityQueue = function(...) return threading.PriorityQueue(...) end,
    }
    for _, kind in ipairs({"Queue", "LifoQueue", "PriorityQueue"}) do
      local new = ctors[kind]
      local pre = "bad argument #1 to '" .. kind .. "' %(maxsize: "
      fails(pre .. "integer expected, got NaN%)", function() return new(0 / 0) end)
      fails(pre .. "integer expected, got 1%.5%)", function() return new(1.5) end)
      fails(pre .. "integer expected, got inf%)", function() return new(math.huge) end)
      fails(pre .. "integer expected, got 1e%+300%)", function() return new(1e300) end)
      fails(pre .. "number expected, got string%)", function() return new("x") end)
      fails(pre .. "number expected, got string%)", function() return new("5") end)
      fails(pre .. "number expected, got boolean%)", function() return new(true) end)
      fails(pre .. "integer expected, got 2%.5%)", function() return new{maxsize = 2.5} end)
      fails(pre .. "number expected, got lthreading%.Lock%)",
            function() return new{maxsize = threading.Lock()} end)
      fails("bad argument #1 to '" .. kind .. "' %(unknown option 'max_size'%)",
            function() return new{max_size = 3} end)
      fails("bad argument #1 to '" .. kind .. "' %(unknown option %(a number key%)%)",
            function() return new{3} end)
      -- accepted: as Python, maxsize <= 0 is unbounded; 2.0 is the integer 2
      assert.equal(2, new(2.0).maxsize)
      assert.equal(0, new().maxsize)
      assert.equal(0, new{}.maxsize)
      local q = new(-1)
      for i = 1, 50 do assert.is_true(q:put(kind == "PriorityQueue" and {i} or i, false)) end
      assert.is_false(q:full())
    end
  end)

  it("SimpleQueue takes no arguments", function()
    fails("bad argument #1 to 'SimpleQueue' %(no arguments expected%)",
          function() return threading.SimpleQueue(5) end)
  end)
end)

describe("SimpleQueue", function()
  it("is an unbounded FIFO queue with put/get/put_nowait/get_nowait/empty/qsize", function()
    local q = threading.SimpleQueue()
    assert.equal(0, q.maxsize)
    for i = 1, 100 do q:put(i) end
    assert.equal(100, q:qsize())
    assert.is_false(q:full())
    assert.equal(1, q:get()); assert.equal(2, q:get_nowait())
    q:put_nowait(101)
    local rest = drain(q)
    assert.equal(99, #rest); assert.equal(101, rest[99])
    assert.is_true(q:empty())
    assert.same({nil, "empty"}, {q:get(0.01)})
  end)

  it("passes items between threads", function()
    local q = threading.SimpleQueue()
    local t = H.spawn(function(qq) for i = 1, 1000 do qq:put(i) end end, q)
    local sum = 0
    for _ = 1, 1000 do sum = sum + q:get(true, T) end
    H.join(t)
    assert.equal(500500, sum)
  end)
end)
