-- API.md §4: ThreadPoolExecutor, Future, threading.as_completed.
--
-- Task bodies run in a worker's lua_State with plain globals: they never call busted's
-- assert; they return what they saw and the main thread checks it.  Every wait is bounded.

local threading = require "lthreading"
if not package.searchpath("helpers", package.path) then     -- run without the Makefile
  package.path = "spec/?.lua;" .. package.path
end
local H = require "helpers"

local T = H.JOIN

local function worker_name() return require("lthreading").current_thread().name end

describe("ThreadPoolExecutor", function()
  it("submit(f, ...) returns a Future whose result() is f's values, nils kept", function()
    local pool <close> = threading.ThreadPoolExecutor(2)
    local fut = pool:submit(function(a, b, c) return a + b, nil, c end, 1, 2, "x")
    local r = table.pack(fut:result(T))
    assert.same({n = 3, 3, nil, "x"}, r)
    assert.equal(0, select("#", pool:submit(function() end):result(T)))
  end)

  it("runs tasks on at most max_workers reused worker threads named ThreadPoolExecutor-N_M", function()
    local pool <close> = threading.ThreadPoolExecutor(2)
    local futs, names, distinct = {}, {}, 0
    for i = 1, 40 do
      futs[i] = pool:submit(function(n)
        require("lthreading").sleep(0.002)
        return require("lthreading").current_thread().name, n
      end, i)
    end
    for i = 1, 40 do
      local name, n = futs[i]:result(T)
      assert.equal(i, n)
      assert.matches("^ThreadPoolExecutor%-%d+_%d+$", name)
      if not names[name] then names[name] = true; distinct = distinct + 1 end
    end
    assert.is_true(distinct >= 1 and distinct <= 2, "workers used: " .. distinct)
  end)

  it("starts workers lazily, when tasks are submitted", function()
    local before = threading.active_count()
    local pool <close> = threading.ThreadPoolExecutor(3)
    assert.equal(before, threading.active_count())
    pool:submit(function() end):result(T)
    assert.is_true(threading.active_count() > before)
  end)

  it("defaults max_workers to the number of cores, and rejects max_workers < 1", function()
    local pool <close> = threading.ThreadPoolExecutor()
    assert.equal(42, pool:submit(function() return 42 end):result(T))
    assert.has_error(function() threading.ThreadPoolExecutor(0) end)
    assert.has_error(function() threading.ThreadPoolExecutor(-3) end)
  end)

  it("names a bad max_workers, in both forms, and an unknown option", function()
    local function fails(pattern, ...)
      local args = table.pack(...)
      local ok, err = pcall(function() return threading.ThreadPoolExecutor(table.unpack(args, 1, args.n)) end)
      assert.is_false(ok, "expected an error matching " .. pattern)
      assert.matches("bad argument #1 to 'ThreadPoolExecutor' %(" .. pattern .. "%)", err)
    end
    for _, form in ipairs({function(v) return v end, function(v) return {max_workers = v} end}) do
      fails("max_workers must be greater than 0", form(0))
      fails("max_workers must be greater than 0", form(-1))
      fails("max_workers: integer expected, got NaN", form(0 / 0))
      fails("max_workers: integer expected, got 1%.5", form(1.5))
      fails("max_workers: integer expected, got inf", form(math.huge))
      fails("max_workers: number expected, got string", form("4"))
      fails("max_workers too large: above 100000", form(1e6))
    end
    fails("unknown option 'max_worker'", {max_worker = 2})
    local pool <close> = threading.ThreadPoolExecutor{max_workers = 2.0}
    assert.equal(1, pool:submit(function() return 1 end):result(T))
    local pool2 <close> = threading.ThreadPoolExecutor{}                -- the default
    assert.equal(2, pool2:submit(function() return 2 end):result(T))
  end)

  it("keeps a worker's state between tasks: globals set by a task stay on that worker", function()
    -- luacheck: globals counter (a task's global, on purpose)
    local pool <close> = threading.ThreadPoolExecutor(1)
    pool:submit(function() counter = (counter or 0) + 1 end):result(T)
    assert.equal(2, pool:submit(function() counter = counter + 1; return counter end):result(T))
  end)

  it("gives tasks fresh globals: the submitter's globals are not there", function()
    local pool <close> = threading.ThreadPoolExecutor(1)
    _G.lt_pool_spec_marker = true
    local seen = pool:submit(function() return lt_pool_spec_marker end):result(T)   -- luacheck: ignore 113
    _G.lt_pool_spec_marker = nil
    assert.is_nil(seen)
    assert.equal("table", pool:submit(function() return type(string) end):result(T))
  end)

  it("copies a task's upvalues at each submit", function()
    local pool <close> = threading.ThreadPoolExecutor(1)
    local x = 1
    local function get() return x end
    assert.equal(1, pool:submit(get):result(T))
    x = 2
    assert.equal(2, pool:submit(get):result(T))
    local same = function(v) return v * 2 end   -- submitted many times: same answers
    for i = 1, 20 do assert.equal(i * 2, pool:submit(same, i):result(T)) end
  end)

  it("survives task errors: the worker that raised runs the next task", function()
    local pool <close> = threading.ThreadPoolExecutor(1)
    local name = pool:submit(worker_name):result(T)
    local bad = pool:submit(function() error("task failed") end)
    assert.has_error(function() bad:result(T) end)
    assert.equal(name, pool:submit(worker_name):result(T))
  end)

  it("map(f, items) returns the results in the order of the items", function()
    local pool <close> = threading.ThreadPoolExecutor(3)
    local items = {}
    for i = 1, 30 do items[i] = i end
    local out = pool:map(function(x)
      require("lthreading").sleep(0.001 * (x % 4))
      return x * x
    end, items)
    assert.equal(30, #out)
    for i = 1, 30 do assert.equal(i * i, out[i]) end
    assert.same({}, pool:map(function(x) return x end, {}))
  end)

  it("map raises the first task error, and TimeoutError once its timeout passed", function()
    local pool <close> = threading.ThreadPoolExecutor(2)
    local ok, err = pcall(pool.map, pool, function(x)
      if x == 2 then error("bad item", 0) end
      return x
    end, {1, 2, 3})
    assert.is_false(ok); assert.equal("bad item", err)
    ok, err = pcall(pool.map, pool, function(x) require("lthreading").sleep(x) end,
                    {0.5, 0.5}, 0.05)
    assert.is_false(ok)
    assert.equal(threading.TimeoutError, err)
  end)

  -- Python's map cancels its futures not yet started when it raises.  The pool's only worker
  -- is first held by a blocker, so that none of map's items can start before map raised;
  -- once it is released, pool:shutdown() (waiting) lets whatever is still queued run.
  describe("map cancels its items not yet started when it raises", function()
    local function count_runs(fail, items, timeout)
      local pool = threading.ThreadPoolExecutor(1)
      local gate, ran = threading.Event(), threading.Shared({n = 0})
      local blocker = pool:submit(function(g) return g:wait(10) end, gate)
      local ok, err = pcall(pool.map, pool, function(x)
        ran:incr("n")
        if x == fail then error("bad item " .. x, 0) end
        require("lthreading").sleep(0.01)
        return x
      end, items, timeout)
      gate:set()
      assert.is_true(blocker:result(T))
      pool:shutdown()                                   -- waits for what is still queued
      return ok, err, ran.n
    end
    local items = {}
    for i = 1, 30 do items[i] = i end

    it("on TimeoutError: none of them ran, the one timed out included", function()
      local ok, err, n = count_runs(nil, items, 0.05)
      assert.is_false(ok)
      assert.equal(threading.TimeoutError, err)
      assert.equal(0, n)
    end)

    it("on an item that cannot cross: the items submitted before it never run", function()
      local bad = {}
      for i = 1, 30 do bad[i] = i end
      bad[20] = coroutine.create(print)
      local ok, err, n = count_runs(nil, bad)
      assert.is_false(ok)
      assert.matches("cannot transfer items%[20%]: coroutine", err)
      assert.equal(0, n)
    end)

    it("on an item's error: the slow items after it never run (one may have started)", function()
      -- the worker runs item 1, which fails; it may take item 2 before map cancels, but no
      -- other (item 2 takes long enough for map to cancel the rest, even on a loaded machine)
      local pool = threading.ThreadPoolExecutor(1)
      local ran = threading.Shared({n = 0})
      local ok, err = pcall(pool.map, pool, function(x)
        if x == 1 then error("bad item", 0) end
        ran:incr("n")
        require("lthreading").sleep(0.3)
        return x
      end, items)
      pool:shutdown()
      assert.is_false(ok)
      assert.equal("bad item", err)
      assert.is_true(ran.n <= 1, ran.n .. " items ran after the failing one")
    end)
  end)

  -- map runs its items in chunks (a task runs f over a slice of the items): results, errors
  -- and cancellation stay per item.
  describe("map in chunks", function()
    local function range(n) local t = {} for i = 1, n do t[i] = i end return t end

    it("keeps every item's own result in its place: every type, nils included", function()
      local pool <close> = threading.ThreadPoolExecutor(3)
      local out = pool:map(function(x)
        if x % 7 == 0 then return nil end
        if x % 5 == 0 then return {x, tostring(x)} end
        if x % 3 == 0 then return tostring(x) end
        if x % 11 == 0 then return x + 0.5 end
        if x % 13 == 0 then return x == 13 end
        return x, "only the first result is kept"
      end, range(3000))
      for x = 1, 3000 do
        if x % 7 == 0 then assert.is_nil(out[x])
        elseif x % 5 == 0 then assert.same({x, tostring(x)}, out[x])
        elseif x % 3 == 0 then assert.equal(tostring(x), out[x])
        elseif x % 11 == 0 then assert.equal("float", math.type(out[x])); assert.equal(x + 0.5, out[x])
        elseif x % 13 == 0 then assert.equal(x == 13, out[x])
        else assert.equal("integer", math.type(out[x])); assert.equal(x, out[x]) end
      end
    end)

    it("gives the same results whatever the chunksize (4th argument)", function()
      local pool <close> = threading.ThreadPoolExecutor(2)
      local items = range(500)
      items[250] = "s"; items[251] = 2.5; items[252] = {7}
      local f = function(x) return type(x) == "table" and x[1] or x end
      local want = pool:map(f, items)
      for _, cs in ipairs({1, 2, 3, 64, 499, 500, 501, 2^53, math.maxinteger}) do
        assert.same(want, pool:map(f, items, nil, cs))
      end
      assert.same({}, pool:map(f, {}, nil, 10))
    end)

    it("refuses a chunksize that is not a positive integer, naming it", function()
      local pool <close> = threading.ThreadPoolExecutor(1)
      local f = function(x) return x end
      for _, case in ipairs({
        {0, "chunksize must be at least 1"}, {-3, "chunksize must be at least 1"},
        {math.mininteger, "chunksize must be at least 1"},
        {0/0, "chunksize: integer expected, got NaN"}, {1.5, "chunksize: integer expected"},
        {math.huge, "chunksize: integer expected, got inf"},
        {"2", "chunksize: number expected, got string"}, {{}, "chunksize: number expected"},
      }) do
        local ok, err = pcall(function() return pool:map(f, {1, 2}, nil, case[1]) end)
        assert.is_false(ok)
        assert.matches("bad argument #4 to 'map' %(" .. case[2]:gsub("%p", "%%%0"), err)
      end
      assert.same({1, 2}, pool:map(f, {1, 2}, nil, 3.0))     -- an integral float is fine
    end)

    it("calls f for each index 1..#items, holes included (f(nil)), as one task per item did", function()
      local pool <close> = threading.ThreadPoolExecutor(2)
      local items = {1, nil, 3, nil, 5, x = "not an item"}
      local n = #items                                    -- the border Lua picks
      local out = pool:map(function(x) return x == nil and "hole" or x end, items, nil, 2)
      for i = 1, n do assert.equal(items[i] == nil and "hole" or items[i], out[i]) end
      assert.is_nil(out[n + 1]); assert.is_nil(out.x)
      -- items read through __len and __index, as before
      local proxy = setmetatable({}, {__len = function() return 4 end,
                                      __index = function(_, i) return i * 10 end})
      assert.same({10, 20, 30, 40}, pool:map(function(x) return x end, proxy))
    end)

    it("raises the error of the first failing item in order, and runs no item after it in its chunk", function()
      local pool <close> = threading.ThreadPoolExecutor(1)
      local ran = threading.Shared({n = 0})
      local ok, err = pcall(pool.map, pool, function(x)
        ran:incr("n")
        if x >= 3 then error({item = x}) end
        return x
      end, range(30), nil, 30)                            -- one chunk of 30
      assert.is_false(ok)
      assert.same({item = 3}, err)
      assert.equal(3, ran.n)
    end)

    it("raises a result that cannot cross before a later item's error (as one task per item did)", function()
      local pool <close> = threading.ThreadPoolExecutor(1)
      local ok, err = pcall(pool.map, pool, function(x)
        if x == 5 then return coroutine.create(print) end
        if x == 8 then error("item 8", 0) end
        return x
      end, range(20), nil, 20)
      assert.is_false(ok)
      assert.matches("cannot transfer results%[5%]: coroutine", err)
    end)

    it("stops a running chunk at its next item once map raised (timeout)", function()
      local pool = threading.ThreadPoolExecutor(1)
      local gate, ran = threading.Event(), threading.Shared({n = 0})
      local ok, err = pcall(pool.map, pool, function(x)
        if x == 1 then gate:wait(10) end
        ran:incr("n")
        return x
      end, range(10), 0.05, 10)                           -- one chunk; item 1 holds it
      assert.is_false(ok)
      assert.equal(threading.TimeoutError, err)
      gate:set()
      pool:shutdown()
      assert.equal(1, ran.n)                              -- item 1 only
    end)

    it("runs many cheap items in few tasks (items that follow each other share a worker)", function()
      local pool <close> = threading.ThreadPoolExecutor(2)
      local names = pool:map(function() return require("lthreading").current_thread().name end,
                             range(20000))
      local function switches(list)
        local n = 0
        for i = 2, #list do if list[i] ~= list[i - 1] then n = n + 1 end end
        return n
      end
      assert.equal(20000, #names)
      -- chunk sizes come from measured time: only a loose bound here (a sanitizer build or a
      -- busy machine makes chunks smaller; one task per item would switch about every item)
      assert.is_true(switches(names) < 10000, switches(names) .. " switches between workers")
      -- with a chunksize the chunks are exact: 20 chunks, at most 19 switches
      names = pool:map(function() return require("lthreading").current_thread().name end,
                       range(20000), nil, 1000)
      assert.equal(20000, #names)
      assert.is_true(switches(names) <= 19, switches(names) .. " switches between workers")
    end)
  end)

  it("shutdown() waits for the tasks; submit() afterwards is an error", function()
    local pool = threading.ThreadPoolExecutor(2)
    local futs = {}
    for i = 1, 4 do
      futs[i] = pool:submit(function(n) require("lthreading").sleep(0.05); return n end, i)
    end
    pool:shutdown()
    for i = 1, 4 do
      assert.is_true(futs[i]:done())
      assert.equal(i, futs[i]:result(0))
    end
    local ok, err = pcall(pool.submit, pool, function() end)
    assert.is_false(ok)
    assert.matches("after shutdown", err)
    pool:shutdown()                             -- twice is fine
  end)

  it("shutdown(false) returns at once; the queued tasks still run", function()
    local pool = threading.ThreadPoolExecutor(1)
    local fut = pool:submit(function() require("lthreading").sleep(0.2); return "ran" end)
    local dt = H.timed(pool.shutdown, pool, false)
    assert.is_true(dt < 0.15, "shutdown(false) took " .. dt)
    assert.equal("ran", fut:result(T))
  end)

  it("shutdown(true, true) cancels the tasks not yet started", function()
    local pool = threading.ThreadPoolExecutor(1)
    local ev = threading.Event()
    local running = pool:submit(function(e) e:wait(10); return "finished" end, ev)
    local queued = {}
    for i = 1, 5 do queued[i] = pool:submit(function() return "should not run" end) end
    H.wait_until(function() return running:running() end, 5)
    local t = H.spawn(function(e) require("lthreading").sleep(0.1); e:set() end, ev)
    pool:shutdown(true, true)
    H.join(t)
    assert.equal("finished", running:result(0))
    for i = 1, 5 do
      assert.is_true(queued[i]:cancelled())
      assert.has_error(function() queued[i]:result(0) end, threading.CancelledError)
    end
  end)

  it("a pool closed by <close> is shut down and waited for", function()
    local fut
    do
      local pool <close> = threading.ThreadPoolExecutor(1)
      fut = pool:submit(function() require("lthreading").sleep(0.05); return 1 end)
    end
    assert.is_true(fut:done())
  end)

  it("a pool dropped by every reference lets its workers finish the queue and exit", function()
    local before = threading.active_count()
    local fut
    do
      local pool = threading.ThreadPoolExecutor(2)
      fut = pool:submit(function() require("lthreading").sleep(0.1); return "done" end)
      pool:submit(function() end)
    end
    collectgarbage(); collectgarbage()
    assert.equal("done", fut:result(T))
    assert.is_true(H.wait_until(function() return threading.active_count() <= before end, T),
                   "workers still alive: " .. threading.active_count() .. " > " .. before)
  end)

  it("a pool still alive at exit is shut down and its workers joined", function()
    local r = H.lua([[
      local threading = require "lthreading"
      pool = threading.ThreadPoolExecutor(2)
      for i = 1, 3 do
        pool:submit(function(n)
          require("lthreading").sleep(0.1)
          io.write("task " .. n .. " done\n")
        end, i)
      end
      print("main ends")
    ]])
    assert.equal(0, r.code, H.show(r))
    for i = 1, 3 do assert.matches("task " .. i .. " done", r.out, 1, true) end
    assert.matches("main ends", r.out, 1, true)
  end)

  it("can be used from any thread, and tasks can submit to the same pool", function()
    local pool <close> = threading.ThreadPoolExecutor(2)
    local v = H.run(function(p) return p:submit(function(x) return x + 1 end, 1):result(10) end, pool)
    assert.equal(2, v)
    local nested = pool:submit(function(p)
      return p:submit(function() return "inner" end):result(10)
    end, pool)
    assert.equal("inner", nested:result(T))
  end)
end)

describe("Future", function()
  it("result(timeout) raises threading.TimeoutError when the task is not done in time", function()
    local pool <close> = threading.ThreadPoolExecutor(1)
    local fut = pool:submit(function() require("lthreading").sleep(0.3); return "late" end)
    local dt, ok, err = H.timed(pcall, fut.result, fut, 0.05)
    assert.is_false(ok)
    assert.equal(threading.TimeoutError, err)
    assert.equal("TimeoutError", tostring(err))
    assert.is_true(dt >= 0.04 and dt < 5, "waited " .. dt)
    assert.equal("late", fut:result(T))
  end)

  it("result() raises the task's error value as it is", function()
    local pool <close> = threading.ThreadPoolExecutor(1)
    local s = pool:submit(function() error("boom") end)
    local ok, err = pcall(s.result, s, T)
    assert.is_false(ok)
    assert.matches("pool_spec%.lua:%d+: boom", err)
    local t = pool:submit(function() error({code = 7}) end)
    ok, err = pcall(t.result, t, T)
    assert.is_false(ok)
    assert.same({code = 7}, err)
  end)

  it("exception() gives the error value and a traceback, or nil when it succeeded", function()
    local pool <close> = threading.ThreadPoolExecutor(1)
    local bad = pool:submit(function() error("why", 0) end)
    local e, tb = bad:exception(T)
    assert.equal("why", e)
    assert.matches("traceback", tb)
    assert.is_nil(pool:submit(function() return 1 end):exception(T))
  end)

  it("done(), running(), cancelled() follow the task", function()
    local pool <close> = threading.ThreadPoolExecutor(1)
    local ev = threading.Event()
    local fut = pool:submit(function(e) e:wait(10); return 1 end, ev)
    assert.is_true(H.wait_until(function() return fut:running() end, T))
    assert.is_false(fut:done()); assert.is_false(fut:cancelled())
    ev:set()
    assert.equal(1, fut:result(T))
    assert.is_true(fut:done()); assert.is_false(fut:running()); assert.is_false(fut:cancelled())
  end)

  it("cancel() is true only while pending; a cancelled future's result raises CancelledError", function()
    local pool <close> = threading.ThreadPoolExecutor(1)
    local ev = threading.Event()
    local running = pool:submit(function(e) e:wait(10) end, ev)
    local pending = pool:submit(function() return "never" end)
    assert.is_true(H.wait_until(function() return running:running() end, T))
    assert.is_false(running:cancel())
    assert.is_true(pending:cancel())
    assert.is_true(pending:cancel())            -- already cancelled: still true
    assert.is_true(pending:cancelled()); assert.is_true(pending:done())
    local ok, err = pcall(pending.result, pending, 1)
    assert.is_false(ok)
    assert.equal(threading.CancelledError, err)
    ev:set()
    running:result(T)
    assert.is_false(running:cancel())           -- finished: false
  end)

  it("result() can be called many times, from any thread", function()
    local pool <close> = threading.ThreadPoolExecutor(1)
    local fut = pool:submit(function() return {1, 2}, "x" end)
    assert.same({1, 2}, fut:result(T))
    assert.same({1, 2}, fut:result(T))
    local a, b = H.run(function(f) local t, s = f:result(10); return t[2], s end, fut)
    assert.equal(2, a); assert.equal("x", b)
  end)
end)

describe("as_completed", function()
  it("yields the futures as they finish", function()
    local pool <close> = threading.ThreadPoolExecutor(3)
    local futs = {}
    for i, d in ipairs{0.3, 0.02, 0.15} do
      futs[i] = pool:submit(function(s, n) require("lthreading").sleep(s); return n end, d, i)
    end
    local order = {}
    for f in threading.as_completed(futs, T) do order[#order + 1] = f:result() end
    assert.same({2, 3, 1}, order)
  end)

  it("yields futures already done first, each future once", function()
    local pool <close> = threading.ThreadPoolExecutor(1)
    local done = pool:submit(function() return "done" end)
    done:result(T)
    local slow = pool:submit(function() require("lthreading").sleep(0.05); return "slow" end)
    local got = {}
    for f in threading.as_completed({slow, done, done, slow}, T) do got[#got + 1] = f:result() end
    assert.same({"done", "slow"}, got)
  end)

  it("includes cancelled futures", function()
    local pool <close> = threading.ThreadPoolExecutor(1)
    local ev = threading.Event()
    local blocker = pool:submit(function(e) e:wait(10) end, ev)
    local victim = pool:submit(function() end)
    local n = 0
    local t = H.spawn(function(e, v)
      require("lthreading").sleep(0.05); v:cancel(); e:set()
    end, ev, victim)
    for f in threading.as_completed({victim, blocker}, T) do
      n = n + 1
      if n == 1 then assert.is_true(rawequal(f, victim)); assert.is_true(f:cancelled()) end
    end
    H.join(t)
    assert.equal(2, n)
  end)

  it("raises threading.TimeoutError when futures are left after the timeout", function()
    local pool <close> = threading.ThreadPoolExecutor(2)
    local fast = pool:submit(function() return 1 end)
    local slow = pool:submit(function() require("lthreading").sleep(0.5) end)
    local got = 0
    local ok, err = pcall(function()
      for _ in threading.as_completed({fast, slow}, 0.1) do got = got + 1 end
    end)
    assert.is_false(ok)
    assert.equal(threading.TimeoutError, err)
    assert.equal(1, got)
  end)

  it("can be left early with break", function()
    local pool <close> = threading.ThreadPoolExecutor(2)
    local futs = {}
    for i = 1, 6 do futs[i] = pool:submit(function(n) return n end, i) end
    for _ in threading.as_completed(futs, T) do break end   -- luacheck: ignore 512 (left early on purpose)
    for _, f in ipairs(futs) do f:result(T) end
    collectgarbage()
    assert.equal(6, #pool:map(function(x) return x end, {1, 2, 3, 4, 5, 6}))
  end)
end)
