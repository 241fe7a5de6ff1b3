-- API.md §4 "Waiting on many futures, callbacks, pool options": threading.wait,
-- Future:add_done_callback, ThreadPoolExecutor{initializer, initargs, thread_name_prefix},
-- threading.BrokenThreadPool.
--
-- Lua twins of CPython's Lib/test/test_concurrent_futures: test_wait.py (WaitTests and
-- ThreadPoolWaitTests), the done-callback tests of test_future.py, test_init.py's
-- initializer tests, and test_shutdown.py's thread-name tests.  Where the twin differs, a
-- comment says why.  Two differences run through the file:
--   - A Python Future can be made in any state (create_future); an lthreading Future only
--     comes from a pool, so the fixtures below are real tasks driven into each state.
--   - Python has CANCELLED (cancelled, waiters not yet told) besides CANCELLED_AND_NOTIFIED;
--     lthreading's cancel() notifies at once, so every cancelled future is the latter, and
--     wait() counts it as done.
--   - Python callbacks mutate `nonlocal` variables; a callback that crosses to the thread
--     finishing the future carries copies of its upvalues, so the twins report through a
--     Queue (or, when the callback runs here, at once, through a plain upvalue).
-- Task bodies never call busted's assert.  Every wait is bounded.

local threading = require "lthreading"
if not package.searchpath("helpers", package.path) then     -- run without the Makefile
  package.path = "spec/?.lua;" .. package.path
end
local H = require "helpers"

local T = H.JOIN

local function mul(x, y) return x * y end
local function divmod_by_zero(x) return x // 0 end          -- raises, as divmod(21, 0)
local function wait_on(e) return e:wait(10) end
local function wait_and_raise(e)
  e:wait(10)
  error("this is an exception", 0)
end

-- Futures in each final state (test_concurrent_futures/util.py), made by a real pool.
local function fixtures()
  local pool <close> = threading.ThreadPoolExecutor(1)
  local fx = {}
  fx.SUCCESSFUL = pool:submit(function() return 42 end)
  fx.EXCEPTION = pool:submit(function() error("OSError", 0) end)
  local gate = threading.Event()
  local blocker = pool:submit(wait_on, gate)
  fx.CANCELLED_AND_NOTIFIED = pool:submit(function() end)
  assert(fx.CANCELLED_AND_NOTIFIED:cancel())
  gate:set()
  blocker:result(T)
  fx.SUCCESSFUL:result(T)
  fx.EXCEPTION:exception(T)
  return fx
end

-- Sets of futures compare by identity; wait() returns arrays in the order given.
local function same_order(expected, got)
  assert.equal(#expected, #got)
  for i = 1, #expected do assert.equal(expected[i], got[i]) end
end

describe("threading.wait (test_wait.py)", function()
  local fx = fixtures()
  local executor
  before_each(function() executor = threading.ThreadPoolExecutor(5) end)
  after_each(function() executor:shutdown() end)

  it("test_20369: a future given twice is in done once", function()
    local future = executor:submit(mul, 1, 2)
    local done, not_done = threading.wait({future, future}, nil, threading.ALL_COMPLETED)
    same_order({future}, done)
    same_order({}, not_done)
  end)

  it("test_first_completed", function()
    -- Python also passes CANCELLED_FUTURE (cancelled, not notified), which stays in
    -- not_done there; lthreading has no such state (see the top of the file).
    local event = threading.Event()
    local future1 = executor:submit(mul, 21, 2)
    local future2 = executor:submit(wait_on, event)
    local done, not_done = threading.wait({future1, future2}, T, threading.FIRST_COMPLETED)
    event:set()
    same_order({future1}, done)
    same_order({future2}, not_done)
    future2:result(T)
  end)

  it("test_first_completed_some_already_completed", function()
    local event = threading.Event()
    local future1 = executor:submit(wait_on, event)
    local finished, pending = threading.wait(
      {fx.CANCELLED_AND_NOTIFIED, fx.SUCCESSFUL, future1}, T, threading.FIRST_COMPLETED)
    event:set()
    same_order({fx.CANCELLED_AND_NOTIFIED, fx.SUCCESSFUL}, finished)
    same_order({future1}, pending)
    future1:result(T)
  end)

  it("test_first_exception", function()
    local event1, event2 = threading.Event(), threading.Event()
    local future1 = executor:submit(mul, 2, 21)
    local future2 = executor:submit(wait_and_raise, event1)
    local future3 = executor:submit(wait_on, event2)
    -- ensure that future1 is completed before future2 finishes
    local t = H.spawn(function(f1, e1) f1:result(10) e1:set() end, future1, event1)
    local finished, pending = threading.wait({future1, future2, future3}, T,
                                             threading.FIRST_EXCEPTION)
    H.join(t)
    event1:set(); event2:set()
    same_order({future1, future2}, finished)
    same_order({future3}, pending)
    future3:result(T)
  end)

  it("test_first_exception_some_already_complete", function()
    -- Python's CANCELLED_FUTURE is in pending; here every cancelled future is done.
    local event = threading.Event()
    local future1 = executor:submit(divmod_by_zero, 21)
    local future2 = executor:submit(wait_on, event)
    local finished, pending = threading.wait(
      {fx.SUCCESSFUL, fx.CANCELLED_AND_NOTIFIED, future1, future2}, T,
      threading.FIRST_EXCEPTION)
    event:set()
    same_order({fx.SUCCESSFUL, fx.CANCELLED_AND_NOTIFIED, future1}, finished)
    same_order({future2}, pending)
    future2:result(T)
  end)

  it("test_first_exception_one_already_failed", function()
    local event = threading.Event()
    local future1 = executor:submit(wait_on, event)
    local finished, pending = threading.wait({fx.EXCEPTION, future1}, T,
                                             threading.FIRST_EXCEPTION)
    event:set()
    same_order({fx.EXCEPTION}, finished)
    same_order({future1}, pending)
    future1:result(T)
  end)

  it("test_all_completed", function()
    local future1 = executor:submit(divmod_by_zero, 2)
    local future2 = executor:submit(mul, 2, 21)
    local list = {fx.SUCCESSFUL, fx.CANCELLED_AND_NOTIFIED, fx.EXCEPTION, future1, future2}
    local finished, pending = threading.wait(list, T, threading.ALL_COMPLETED)
    same_order(list, finished)
    same_order({}, pending)
  end)

  it("test_timeout", function()
    local event = threading.Event()
    local future = executor:submit(wait_on, event)
    local t0 = threading.monotonic()
    local finished, pending = threading.wait(
      {fx.CANCELLED_AND_NOTIFIED, fx.EXCEPTION, fx.SUCCESSFUL, future}, 0.050,
      threading.ALL_COMPLETED)
    local took = threading.monotonic() - t0
    event:set()
    same_order({fx.CANCELLED_AND_NOTIFIED, fx.EXCEPTION, fx.SUCCESSFUL}, finished)
    same_order({future}, pending)
    assert.is_true(took >= 0.04 and took < 5, "waited " .. took .. " s")
    future:result(T)
  end)

  it("test_pending_calls_race: 100 futures released at once", function()
    local event = threading.Event()
    local fs = {}
    for i = 1, 100 do fs[i] = executor:submit(wait_on, event) end
    event:set()
    local done, not_done = threading.wait(fs, T, threading.ALL_COMPLETED)
    assert.equal(100, #done)
    assert.equal(0, #not_done)
  end)

  it("return_when defaults to ALL_COMPLETED; the constants are their names", function()
    assert.equal("FIRST_COMPLETED", threading.FIRST_COMPLETED)
    assert.equal("FIRST_EXCEPTION", threading.FIRST_EXCEPTION)
    assert.equal("ALL_COMPLETED", threading.ALL_COMPLETED)
    local a = executor:submit(function() require("lthreading").sleep(0.05) return 1 end)
    local b = executor:submit(function() return 2 end)
    local done, not_done = threading.wait({a, b}, T)
    same_order({a, b}, done)
    same_order({}, not_done)
  end)

  it("returns at once for no futures; timeout 0 does not wait", function()
    for _, mode in ipairs{"FIRST_COMPLETED", "FIRST_EXCEPTION", "ALL_COMPLETED"} do
      local done, not_done = threading.wait({}, nil, mode)
      same_order({}, done); same_order({}, not_done)
    end
    local event = threading.Event()
    local f = executor:submit(wait_on, event)
    local took, done, not_done = H.timed(threading.wait, {f, fx.SUCCESSFUL}, 0)
    event:set()
    same_order({fx.SUCCESSFUL}, done)
    same_order({f}, not_done)
    assert.is_true(took < 1)
    f:result(T)
  end)

  it("FIRST_EXCEPTION does not stop on a cancellation, only on an error", function()
    local pool <close> = threading.ThreadPoolExecutor(1)
    local event = threading.Event()
    local blocker = pool:submit(wait_on, event)
    local queued = pool:submit(function() end)
    local t = H.spawn(function(f, e)
      local th = require "lthreading"
      th.sleep(0.05); f:cancel()
      th.sleep(0.05); e:set()
    end, queued, event)
    local done, not_done = threading.wait({blocker, queued}, T, threading.FIRST_EXCEPTION)
    H.join(t)
    same_order({blocker, queued}, done)     -- it went on until all were done
    same_order({}, not_done)
  end)

  it("is woken from other threads while it waits", function()
    local event = threading.Event()
    local f = executor:submit(wait_on, event)
    local t = H.spawn(function(e) require("lthreading").sleep(0.05) e:set() end, event)
    local done = threading.wait({f}, T, threading.FIRST_COMPLETED)
    H.join(t)
    same_order({f}, done)
  end)

  it("rejects what is not a future, and an unknown return_when", function()
    assert.has_error(function() threading.wait({fx.SUCCESSFUL, 42}) end,
                     "wait: futures[2] is not a Future (got number)")
    assert.has_error(function() threading.wait("x") end)
    local ok, err = pcall(threading.wait, {fx.SUCCESSFUL}, nil, "SOMETIMES")
    assert.is_false(ok)
    assert.matches("invalid option 'SOMETIMES'", err)
    assert.has_error(function() threading.wait({}, 0 / 0) end)
  end)
end)

describe("Future:add_done_callback (test_future.py)", function()
  local fx = fixtures()

  -- A pool whose one worker is held until release() is called, so that futures submitted
  -- meanwhile stay PENDING and can be given callbacks before they run.
  local function held_pool()
    local pool = threading.ThreadPoolExecutor(1)
    local gate = threading.Event()
    local blocker = pool:submit(wait_on, gate)
    assert(H.wait_until(function() return blocker:running() end), "the worker took the blocker")
    return pool, function() gate:set(); blocker:result(T) end
  end

  it("test_done_callback_with_result", function()
    local pool, release = held_pool()
    local q = threading.Queue()
    local f = pool:submit(function() return 5 end)
    f:add_done_callback(function(callback_future) q:put(callback_future:result()) end)
    release()
    assert.equal(5, q:get(T))
    pool:shutdown()
  end)

  it("test_done_callback_with_exception", function()
    local pool, release = held_pool()
    local q = threading.Queue()
    local f = pool:submit(function() error("test", 0) end)
    f:add_done_callback(function(callback_future) q:put((callback_future:exception())) end)
    release()
    assert.equal("test", q:get(T))
    pool:shutdown()
  end)

  it("test_done_callback_with_cancel: runs in the cancelling thread, before cancel returns", function()
    local pool, release = held_pool()
    local q = threading.Queue()
    local f = pool:submit(function() end)
    f:add_done_callback(function(callback_future) q:put(callback_future:cancelled()) end)
    assert.is_true(f:cancel())
    assert.is_true(q:get_nowait())
    release()
    pool:shutdown()
  end)

  it("test_done_callback_raises: reported on stderr, the next callback still runs", function()
    local r = H.lua([[
      local threading = require "lthreading"
      local pool = threading.ThreadPoolExecutor(1)
      local gate = threading.Event()
      pool:submit(function(e) e:wait(10) end, gate)
      local q = threading.Queue()
      local f = pool:submit(function() return 5 end)
      f:add_done_callback(function() q:put("raising_was_called") error("doh!") end)
      f:add_done_callback(function() q:put("fn_was_called") end)
      gate:set()
      print(q:get(10), q:get(10))
      pool:shutdown()
    ]])
    assert.equal(0, r.code, H.show(r))
    assert.matches("raising_was_called%s+fn_was_called", r.out, 1, false, H.show(r))
    assert.matches("exception calling callback for", r.err, 1, true)
    assert.matches("doh!", r.err, 1, true)
  end)

  it("test_done_callback_already_successful: called at once, here", function()
    local callback_result
    fx.SUCCESSFUL:add_done_callback(function(f) callback_result = f:result() end)
    assert.equal(42, callback_result)
  end)

  it("test_done_callback_already_failed", function()
    local callback_exception
    fx.EXCEPTION:add_done_callback(function(f) callback_exception = f:exception() end)
    assert.equal("OSError", callback_exception)
  end)

  it("test_done_callback_already_cancelled", function()
    local was_cancelled
    fx.CANCELLED_AND_NOTIFIED:add_done_callback(function(f) was_cancelled = f:cancelled() end)
    assert.is_true(was_cancelled)
  end)

  it("test_done_callback_raises_already_succeeded: reported, not raised", function()
    local r = H.lua([[
      local threading = require "lthreading"
      local pool = threading.ThreadPoolExecutor(1)
      local f = pool:submit(function() return 5 end)
      f:result(10)
      f:add_done_callback(function() error("doh!") end)
      print("add_done_callback returned")
      pool:shutdown()
    ]])
    assert.equal(0, r.code, H.show(r))
    assert.matches("add_done_callback returned", r.out, 1, true)
    assert.matches("exception calling callback for", r.err, 1, true)
    assert.matches("doh!", r.err, 1, true)
  end)

  it("runs each callback once, in the order added, in the worker that finished the task", function()
    local pool, release = held_pool()
    local q = threading.Queue()
    local f = pool:submit(function() return require("lthreading").current_thread().name end)
    for i = 1, 5 do
      f:add_done_callback(function(fut)
        q:put({i, require("lthreading").current_thread().name, fut:result()})
      end)
    end
    release()
    for i = 1, 5 do
      local item = q:get(T)
      assert.equal(i, item[1])
      assert.equal(item[3], item[2], "ran in the worker that ran the task")
      assert.matches("^ThreadPoolExecutor%-%d+_0$", item[2])
    end
    assert.same({nil, "empty"}, {q:get(0.05)})
    pool:shutdown()
  end)

  it("callbacks of tasks cancelled by shutdown(cancel_futures = true) run in the caller", function()
    local pool, release = held_pool()
    local q = threading.Queue()
    local fs = {}
    for i = 1, 3 do
      fs[i] = pool:submit(function() end)
      fs[i]:add_done_callback(function(fut)
        q:put(fut:cancelled() and require("lthreading").current_thread().name)
      end)
    end
    local t = H.spawn(function(p) p:shutdown(true, true) end, pool)
    for _ = 1, 3 do assert.matches("^Thread%-%d+$", q:get(T)) end
    release()
    H.join(t)
  end)

  it("the callback crosses like a task: one that cannot raises at once", function()
    local pool, release = held_pool()
    local f = pool:submit(function() end)
    local co = coroutine.create(function() end)
    assert.has_error(function() f:add_done_callback(function() return co end) end,
                     "cannot transfer fn.<upvalue co>: coroutine")
    assert.has_error(function() f:add_done_callback() end)
    release()
    f:result(T)
    pool:shutdown()
  end)

  it("a callback that holds its own future is no reference cycle", function()
    local pool, release = held_pool()
    local q = threading.Queue()
    local f = pool:submit(function() return "x" end)
    f:add_done_callback(function() q:put(f:result()) end)
    release()
    assert.equal("x", q:get(T))
    pool:shutdown()
  end)
end)

describe("ThreadPoolExecutor options (test_init.py, test_shutdown.py)", function()
  it("InitializerMixin.test_initializer: initializer(initargs...) runs once in each worker", function()
    local worker_count = 2
    local executor <close> = threading.ThreadPoolExecutor{
      max_workers = worker_count,
      -- (a worker's own globals: what Python's test keeps in a module global)
      initializer = function(x) INITIALIZER_STATUS = x; INIT_RUNS = (INIT_RUNS or 0) + 1 end, -- luacheck: ignore
      initargs = {"initialized"},
    }
    -- a Barrier makes each of the two workers take one task (Python's test does not check
    -- that both workers ran; this one does)
    local barrier = threading.Barrier(worker_count)
    local futures = {}
    for i = 1, worker_count do
      futures[i] = executor:submit(function(b)
        b:wait(10)
        return INITIALIZER_STATUS, INIT_RUNS, require("lthreading").current_thread().name -- luacheck: ignore
      end, barrier)
    end
    local names = {}
    for i = 1, worker_count do
      local status, runs, name = futures[i]:result(T)
      assert.equal("initialized", status)
      assert.equal(1, runs)
      names[name] = true
    end
    assert.equal(worker_count, #(function() local l = {} for n in pairs(names) do l[#l + 1] = n end return l end)())
  end)

  it("FailingInitializerMixin.test_initializer: the pool breaks, submit raises BrokenThreadPool", function()
    local r = H.lua([[
      local threading = require "lthreading"
      local executor = threading.ThreadPoolExecutor{max_workers = 2, initializer = function()
        require("lthreading").sleep(0.1)        -- let some futures be scheduled
        error("ValueError: error in initializer", 0)
      end}
      local function get_init_status() return INITIALIZER_STATUS end
      local ok, future = pcall(executor.submit, executor, get_init_status)
      if not ok then
        assert(future == threading.BrokenThreadPool, tostring(future))   -- already broken
      else
        local ok2, err = pcall(future.result, future, 10)
        assert(not ok2 and err == threading.BrokenThreadPool, tostring(err))
        print("future failed with " .. tostring(err))
      end
      -- at some point the executor breaks, and from then on submit() raises
      local broken, deadline = false, threading.monotonic() + 10
      repeat
        local ok3, err = pcall(executor.submit, executor, get_init_status)
        broken = not ok3 and err == threading.BrokenThreadPool
        if not broken then threading.sleep(0.01) end
      until broken or threading.monotonic() > deadline
      print("broken: " .. tostring(broken))
      local ok4, err = pcall(executor.submit, executor, get_init_status)
      print("submit raises: " .. tostring(err))
      executor:shutdown()
    ]])
    assert.equal(0, r.code, H.show(r))
    assert.matches("broken: true", r.out, 1, true)
    assert.matches("submit raises: BrokenThreadPool", r.out, 1, true)
    -- as Python's logger.critical('Exception in initializer:', exc_info=True)
    assert.matches("Exception in initializer:", r.err, 1, true)
    assert.matches("ValueError: error in initializer", r.err, 1, true)
  end)

  it("a broken pool fails its pending futures with BrokenThreadPool, and runs their callbacks", function()
    local restore = H.quiet_hook()
    local gate = threading.Event()
    local r = H.lua([[
      local threading = require "lthreading"
      local gate = threading.Event()
      local pool = threading.ThreadPoolExecutor{max_workers = 1, initargs = {gate},
        initializer = function(e) e:wait(10) error("init failed", 0) end}
      local q = threading.Queue()
      local fs = {}
      for i = 1, 3 do
        fs[i] = pool:submit(function() return i end)
        fs[i]:add_done_callback(function(f) q:put(f:exception() == require("lthreading").BrokenThreadPool) end)
      end
      gate:set()
      local done = threading.wait(fs, 10, threading.FIRST_EXCEPTION)
      print("done: " .. #done)
      for i = 1, 3 do
        local ok, err = pcall(fs[i].result, fs[i], 10)
        print(i, ok, err == threading.BrokenThreadPool, fs[i]:exception() == threading.BrokenThreadPool)
      end
      for i = 1, 3 do print("callback", q:get(10)) end
      print(pcall(pool.submit, pool, print))
    ]])
    restore()
    gate:set()
    assert.equal(0, r.code, H.show(r))
    assert.matches("done: [1-3]", r.out)
    for i = 1, 3 do assert.matches(i .. "\tfalse\ttrue\ttrue", r.out, 1, true) end
    local _, n = r.out:gsub("callback\ttrue", "")
    assert.equal(3, n, H.show(r))
    assert.matches("false\tBrokenThreadPool", r.out, 1, true)
    assert.matches("init failed", r.err, 1, true)
  end)

  it("test_thread_names_assigned: thread_name_prefix .. '_' .. i", function()
    local executor = threading.ThreadPoolExecutor{max_workers = 5, thread_name_prefix = "SpecialPool"}
    local names = executor:map(function(_)
      require("lthreading").sleep(0.01)
      return require("lthreading").current_thread().name
    end, {-5, -4, -3, -2, -1, 0, 1, 2, 3, 4})
    executor:shutdown()
    assert.equal(10, #names)
    for _, name in ipairs(names) do assert.matches("^SpecialPool_[0-4]$", name) end
  end)

  it("test_thread_names_default: ThreadPoolExecutor-N_i", function()
    local executor = threading.ThreadPoolExecutor{max_workers = 5}
    local names = executor:map(function()
      return require("lthreading").current_thread().name
    end, {-5, -4, -3, -2, -1, 0, 1, 2, 3, 4})
    executor:shutdown()
    for _, name in ipairs(names) do assert.matches("^ThreadPoolExecutor%-%d+_[0-4]$", name) end
  end)

  it("checks the options when the pool is made", function()
    local function err(opts)
      local ok, e = pcall(threading.ThreadPoolExecutor, opts)
      assert.is_false(ok)
      return e
    end
    assert.matches("initializer must be a callable", err{initializer = 42})
    assert.matches("initargs: table expected, got string", err{initializer = print, initargs = "x"})
    assert.matches("thread_name_prefix: string expected, got number", err{thread_name_prefix = 1})
    assert.matches("unknown option 'initialiser'", err{initialiser = print})
    assert.matches("cannot transfer initargs%[2%]: coroutine",
                   err{initializer = print, initargs = {1, coroutine.create(print)}})
    -- a callable table is a callable
    local callable = setmetatable({}, {__call = function() end})
    local pool = threading.ThreadPoolExecutor{max_workers = 1, initializer = callable}
    assert.equal(7, pool:submit(function() return 7 end):result(T))
    pool:shutdown()
  end)

  it("BrokenThreadPool is an error value like TimeoutError", function()
    local e = threading.BrokenThreadPool
    assert.equal("BrokenThreadPool", tostring(e))
    assert.equal("BrokenThreadPool", e.name)
    assert.equal(e, H.run(function() return require("lthreading").BrokenThreadPool end))
  end)
end)
