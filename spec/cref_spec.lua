-- API.md §5 "C objects shared by reference": include/lthreading_ref.h.
--
-- examples/cref/counter.c is a C module (built by make as build/cref/counter.so, never
-- linked against lthreading) whose Counter objects cross threads by reference: an atomic
-- counter that every thread it reaches updates in place.  counter.live() and
-- counter.frees() count the module's objects alive and freed, process-wide, so the specs
-- see each object freed exactly once, when its last reference (a Lua userdata in any state,
-- or an lthreading message holding it) is dropped.  Every wait is bounded.

local threading = require "lthreading"
if not package.searchpath("helpers", package.path) then     -- run without the Makefile
  package.path = "spec/?.lua;" .. package.path
end
local H = require "helpers"

-- make test (and asan/tsan) build the module; LT_CREF_DIR: the sanitizer runs' own build
local DIR = os.getenv("LT_CREF_DIR") or "build/cref"
package.cpath = DIR .. "/?.so;" .. package.cpath
local counter = require "counter"

local T = H.JOIN

-- Collect garbage here until the module's free count reaches n (bounded); returns it.
local function frees_reach(n)
  return H.wait_until(function()
    collectgarbage(); collectgarbage()
    return counter.frees() >= n
  end) and counter.frees()
end

describe("C objects by reference (lthreading_ref.h)", function()
  it("one C object is shared by every thread it is passed to", function()
    local c = counter.new(0)
    local ts = {}
    for i = 1, 4 do
      ts[i] = H.spawn(function(obj, n)
        for _ = 1, n do obj:add(1) end
        return obj:get() >= n
      end, c, 1000)
    end
    for i = 1, 4 do assert.is_true(H.join(ts[i]):result()) end
    assert.equal(4000, c:get())
  end)

  it("the receiving thread needs no require: the module's push makes its userdata there", function()
    local c = counter.new(41)
    local r = H.runp(function(obj)
      return package.loaded.counter == nil, obj:add(1), tostring(obj):match("^Counter%(42%)") ~= nil
    end, c)
    assert.same({n = 3, true, 42, true}, r)
  end)

  it("crosses through queues, Shareds, pool tasks and results, by reference each time", function()
    local c = counter.new(0)
    local q = threading.Queue()
    q:put({c = c})
    assert.equal(1, H.run(function(queue) return queue:get(10).c:add(1) end, q))
    local s = threading.Shared()
    s.c = c
    s.c:add(10)
    local pool <close> = threading.ThreadPoolExecutor(2)
    local back = pool:submit(function(obj) obj:add(100) return obj end, c):result(T)
    assert.equal(111, c:get())
    assert.equal(111, back:get(), "a result: the same object")
    back:add(1)
    assert.equal(112, c:get())
    s.c = nil
  end)

  it("keeps identity within one transfer; a new transfer makes a new userdata", function()
    local c = counter.new(0)
    local same = H.run(function(t) return rawequal(t[1], t[2]) and rawequal(t[1], t.x.y) end,
                       {c, c, x = {y = c}})
    assert.is_true(same)
    local back = H.run(function(obj) return obj end, c)
    assert.is_false(rawequal(c, back))      -- push made a new userdata for the same object
    back:add(5)
    assert.equal(5, c:get())
  end)

  it("drops every reference: the object is freed exactly once", function()
    -- the earlier specs' objects first: those an idle pool worker dropped go at its next
    -- idle collection, a moment after the worker runs out of work (bounded wait)
    H.wait_until(function() collectgarbage(); collectgarbage(); return counter.live() == 0 end)
    local frees0, live0 = counter.frees(), counter.live()
    do
      local c = counter.new(7)
      assert.equal(live0 + 1, counter.live())
      local q = threading.Queue()
      local s = threading.Shared()
      local pool = threading.ThreadPoolExecutor(2)
      s.keep = c                           -- a message holds a reference
      q:put(c)                             -- another one
      local ts = {}
      for i = 1, 3 do
        ts[i] = H.spawn(function(obj, queue)
          obj:add(1)
          queue:put({obj, obj})            -- a copy of the message in every thread
          return true
        end, c, q)
      end
      for i = 1, 3 do H.join(ts[i]) end
      local fs = {}
      for i = 1, 4 do fs[i] = pool:submit(function(obj) return obj:add(1) end, c) end
      for i = 1, 4 do fs[i]:result(T) end
      for _ = 1, 4 do assert.is_truthy(q:get(T)) end
      assert.equal(14, c:get())
      s.keep = nil
      pool:shutdown()                      -- closes the workers' states
      assert.equal(frees0, counter.frees(), "alive while the main state holds it")
    end
    local n = frees_reach(frees0 + 1)
    assert.equal(frees0 + 1, n)
    assert.equal(live0, counter.live())
    threading.sleep(0.05)
    collectgarbage()
    assert.equal(frees0 + 1, counter.frees(), "and never again")
  end)

  it("an object freed by another thread's last reference: the release runs there", function()
    collectgarbage(); collectgarbage()
    local frees0 = counter.frees()
    local q = threading.Queue()
    do
      local c = counter.new(1)
      q:put(c)                             -- the queue's message holds one reference
    end
    collectgarbage(); collectgarbage()     -- the main state's userdata is gone
    assert.equal(frees0, counter.frees())
    local t = H.spawn(function(queue)
      local obj = queue:get(10)            -- the message is freed: the thread's box is last
      local v = obj:get()
      obj = nil -- luacheck: ignore (dropped for the collector: the point of the spec)
      collectgarbage(); collectgarbage()
      return v
    end, q)
    assert.equal(1, H.join(t):result())
    assert.equal(frees0 + 1, frees_reach(frees0 + 1))
  end)

  it("a userdata whose object is gone, or whose __lthreading_ref is wrong, cannot cross", function()
    local c = counter.new(0)
    getmetatable(c).__close(c)             -- the box lets go of its object
    local q = threading.Queue()
    local ok, err = pcall(q.put, q, {c})
    assert.is_false(ok)
    assert.matches("cannot transfer item[1]: userdata (counter.Counter): it has no object", err, 1, true)
    local mt = getmetatable(counter.new(0))
    local saved = mt.__lthreading_ref
    mt.__lthreading_ref = 42
    ok, err = pcall(q.put, q, counter.new(0))
    mt.__lthreading_ref = saved
    assert.is_false(ok)
    assert.matches("__lthreading_ref is not a light userdata", err, 1, true)
    assert.equal(0, q:qsize())
  end)
  -- Once join() returned the thread holds nothing: no wait, two collections here suffice.
  -- A pool worker that runs out of work collects its state (and drops its cached functions)
  -- before it sleeps; before, an idle pool held what its tasks had dropped until shutdown.
  describe("references are released", function()
    local function freed_at_once(body)
      H.wait_until(function() collectgarbage(); collectgarbage(); return counter.live() == 0 end)
      local frees0 = counter.frees()
      body()
      collectgarbage(); collectgarbage()
      return counter.frees() - frees0
    end

    it("by a Thread, by the time join() returns: args, results and self's fields", function()
      assert.equal(1, freed_at_once(function()
        local t = threading.Thread{ target = function(o) o:add(1) end, args = { counter.new(1) } }
        t:start(); H.join(t)
      end), "an argument")
      assert.equal(1, freed_at_once(function()
        local t = threading.Thread{ target = function() return require("counter").new(1) end }
        t:start(); H.join(t)
        assert.equal(1, t:result():get())   -- (held by the Thread's results till here)
      end), "a result")
      assert.equal(1, freed_at_once(function()
        local t = threading.Thread{ target = function() end }
        t.keep = counter.new(1)
        t:start(); H.join(t)
      end), "a field of self")
      for _ = 1, 20 do                         -- the ended thread's end races the joiner's
        assert.equal(1, freed_at_once(function()
          local t = threading.Thread{ target = function(o) return o end, args = { counter.new(1) } }
          t:start(); H.join(t)
        end), "in a loop")
      end
    end)

    it("by an idle pool: what its tasks dropped goes while it idles", function()
      local pool = threading.ThreadPoolExecutor(2)
      H.wait_until(function() collectgarbage(); collectgarbage(); return counter.live() == 0 end)
      local frees0 = counter.frees()
      do
        local c = counter.new(1)
        local fs = {}
        for i = 1, 4 do fs[i] = pool:submit(function(o) o:add(1); return o end, c) end
        for i = 1, 4 do fs[i]:result(T) end
        assert.same({ 5, 5 }, pool:map(function(o) return o:get() end, { c, c }, T))
        local upv = c                          -- an upvalue of a function the workers cache
        pool:submit(function() return upv:get() end):result(T)
      end
      local n = frees_reach(frees0 + 1)        -- the pool is still up, idle
      assert.equal(frees0 + 1, n)
      assert.equal(0, counter.live())
      -- the pool works on: its cached functions were dropped, not broken
      local c2 = counter.new(5)
      local function get(o) return o:get() end
      assert.equal(5, pool:submit(get, c2):result(T))
      assert.same({ 5 }, pool:map(get, { c2 }, T))
      pool:shutdown()
    end)
  end)
end)
