-- The misuse catalogue (issue 6): every misuse gets a clear Lua error -- never a crash, a
-- hang or a leak -- and the process and every other thread carry on.  A "bystander" thread
-- runs through each test; after each misuse it must still answer.

local threading = require "lthreading"
if not package.searchpath("helpers", package.path) then
  package.path = "spec/?.lua;" .. package.path
end
local H = require "helpers"

-- A bystander thread: echoes what it gets on `inbox` to `outbox` until it gets false.
local bystander, inbox, outbox

local function still_fine()
  local token = math.random(1, 1 << 30)
  assert.is_true(inbox:put(token, true, 5))
  assert.equal(token, (outbox:get(true, 5)))
  assert.is_true(bystander:is_alive())
  -- and a fresh thread still starts, runs and returns
  assert.equal(42, H.run(function() return 6 * 7 end))
end

-- Assert that f raises an error whose message matches pattern (plain Lua pattern).
local function raises(pattern, f, ...)
  local ok, err = pcall(f, ...)
  assert.is_false(ok, "expected an error matching " .. pattern)
  assert.matches(pattern, tostring(err))
  return err
end

describe("misuse", function()
  local restore_hook
  setup(function()
    restore_hook = H.quiet_hook()
    inbox, outbox = threading.Queue(), threading.Queue()
    bystander = threading.Thread(function(i, o)
      while true do
        local v = i:get(true, 30)
        if v == false or v == nil then return end
        o:put(v)
      end
    end, inbox, outbox)
    bystander:start()
  end)
  teardown(function()
    inbox:put(false)
    H.join(bystander)
    restore_hook()
  end)

  describe("wrong argument types", function()
    it("Lock/RLock acquire", function()
      raises("bad argument #1 to 'acquire' %(number expected, got table%)", function()
        threading.Lock():acquire({})
      end)
      raises("bad argument #2 to 'acquire' %(number expected, got string%)", function()
        threading.RLock():acquire(true, "soon")
      end)
      raises("bad argument #1 to 'acquire' %(Lock expected, got table%)", function()
        threading.Lock().acquire({})
      end)
      still_fine()
    end)

    it("Thread constructor, start, join", function()
      raises("table as args expected", function() threading.Thread{target = print, args = 5} end)
      raises("boolean as daemon expected", function()
        threading.Thread{target = print, daemon = "yes"}
      end)
      raises("number expected, got string", function()
        local t = threading.Thread(function() end); t:start(); t:join("x")
      end)
      raises("Thread expected", function() threading.Thread.start({}) end)
      still_fine()
    end)

    it("module functions", function()
      raises("number expected, got string", function() threading.sleep("x") end)
      raises("sleep length must be non%-negative", function() threading.sleep(-1) end)
      raises("number expected, got string", function() threading.stack_size("big") end)
      raises("minimum is 32 KiB", function() threading.stack_size(1024) end)
      assert.equal(0, threading.stack_size())          -- the failed call changed nothing
      still_fine()
    end)

    it("Semaphore, Event, Condition, Barrier, Timer", function()
      raises("number expected", function() threading.Semaphore("x") end)
      raises("must be >= 0", function() threading.Semaphore(-1) end)
      raises("number expected, got string", function() threading.Event():wait("x") end)
      raises("Lock or RLock expected", function() threading.Condition(5) end)
      raises("parties", function() threading.Barrier(0) end)
      raises("number expected", function() threading.Barrier("x") end)
      raises("number expected", function() threading.Timer("x", print) end)
      still_fine()
    end)

    it("Queue, Shared, ThreadPoolExecutor", function()
      raises("number expected", function() threading.Queue("x") end)
      raises("nil", function() threading.Queue():put(nil) end)
      raises("table expected", function() threading.Shared(5) end)
      local pool = threading.ThreadPoolExecutor(1)
      local fut = pool:submit(5)             -- as in Python: the call fails in the worker
      raises("attempt to call a number value", function() fut:result(10) end)
      pool:shutdown()
      still_fine()
    end)
  end)

  describe("releasing what is not held", function()
    it("Lock, RLock, BoundedSemaphore, Condition", function()
      raises("release unlocked lock", function() threading.Lock():release() end)
      raises("un%-acquired lock", function() threading.RLock():release() end)
      local r = threading.RLock()
      r:acquire()
      local err = H.run(function(l)
        local ok, e = pcall(l.release, l)
        return ok, e
      end, r)
      assert.is_false(err)
      r:release()
      raises("released too many times", function() threading.BoundedSemaphore(1):release() end)
      raises("un%-acquired lock", function() threading.Condition():notify() end)
      raises("un%-acquired lock", function() threading.Condition():wait(0.01) end)
      still_fine()
    end)
  end)

  describe("thread life cycle", function()
    it("joining self or an unstarted thread, starting twice, daemon after start", function()
      raises("cannot join thread before it is started", function()
        threading.Thread(function() end):join()
      end)
      local ok, msg = H.run(function()
        local th = require "lthreading"
        return pcall(function() th.current_thread():join() end)
      end)
      assert.is_false(ok)
      assert.matches("cannot join current thread", msg)
      local t = threading.Thread(function() end)
      t:start()
      raises("threads can only be started once", function() t:start() end)
      raises("cannot set daemon status of active thread", function() t.daemon = true end)
      H.join(t)
      raises("threads can only be started once", function() t:start() end)
      still_fine()
    end)

    it("negative values: timeouts mean forever, counts are errors", function()
      local l = threading.Lock()
      assert.is_true(l:acquire(true, -1))               -- negative timeout: wait forever
      assert.is_false(l:acquire(false))
      l:release()
      raises("must be >= 0", function() threading.Semaphore(-5) end)
      raises("n must be one or more", function() threading.Semaphore(1):release(0) end)
      raises("can't specify a timeout for a non%-blocking call", function()
        threading.Lock():acquire(false, 1)
      end)
      still_fine()
    end)
  end)

  describe("values that cannot cross", function()
    local co = coroutine.create(function() end)

    it("as thread args and results", function()
      raises("cannot transfer args%[2%]: coroutine", function()
        threading.Thread(print, 1, co):start()
      end)
      raises("cannot transfer args%[1%]%.f: userdata %(FILE%*%)", function()
        threading.Thread(print, {f = io.stdout}):start()
      end)
      local t = threading.Thread(function() return 1, coroutine.create(print) end)
      t:start()
      H.join(t)
      raises("cannot transfer result%[2%]: coroutine", function() t:result() end)
      still_fine()
    end)

    it("as queue items, Shared entries, Local defaults", function()
      local q = threading.Queue()
      raises("cannot transfer item.*coroutine", function() q:put({co}) end)
      assert.equal(0, q:qsize())
      local s = threading.Shared({a = 1})
      raises("cannot transfer", function() s.b = io.stdout end)
      assert.is_nil(s.b)
      assert.equal(1, s.a)
      raises("cannot transfer", function() threading.Local({f = io.stdout}) end)
      still_fine()
    end)

    it("as an excepthook, a barrier action, a pool task", function()
      raises("cannot transfer", function() threading.excepthook = function() return co end end)
      raises("cannot transfer", function() threading.Barrier(2, function() return co end) end)
      local pool = threading.ThreadPoolExecutor(1)
      raises("cannot transfer", function() pool:submit(function() return co end) end)
      local fut = pool:submit(function() return coroutine.create(print) end)
      raises("cannot transfer", function() fut:result(10) end)
      pool:shutdown()
      still_fine()
    end)
  end)

  describe("errors inside threads", function()
    it("an error inside an excepthook is reported and the process goes on", function()
      local r = H.lua([[
        local th = require "lthreading"
        th.excepthook = function() error("the hook itself fails") end
        local t = th.Thread(function() error("first") end)
        t:start(); t:join(10)
        print("still here")
      ]])
      assert.equal(0, r.code, H.show(r))
      assert.matches("still here", r.out)
      assert.matches("the hook itself fails", r.err)
      still_fine()
    end)

    it("a thread that errors with a non-string value", function()
      local t = threading.Thread(function() error({code = 7}) end)
      t:start()
      H.join(t)
      local ok, err = pcall(t.result, t)
      assert.is_false(ok)
      assert.same({code = 7}, err)
      local t2 = threading.Thread(function() error(setmetatable({}, {__tostring = function() return "custom" end})) end)
      t2:start()
      H.join(t2)
      still_fine()
    end)

    it("running out of memory in a thread (memory_limit) reaches its excepthook", function()
      local r = H.lua([[
        local th = require "lthreading"
        th.excepthook = function(a) io.stderr:write("HOOK ", tostring(a.exc_value), "\n") end
        local t = th.Thread{memory_limit = 4 * 1024 * 1024, target = function()
          local t = {}
          for i = 1, 1e9 do t[i] = ("x"):rep(64) .. i end
        end}
        t:start()
        print(t:join(20), pcall(t.result, t))
        local t2 = th.Thread(function() return "next thread fine" end)
        t2:start()
        print(t2:result())
      ]], 30)
      assert.equal(0, r.code, H.show(r))
      assert.matches("HOOK not enough memory", r.err, 1, true)
      assert.matches("true\tfalse\tnot enough memory", r.out, 1, true)
      assert.matches("next thread fine", r.out, 1, true)
      still_fine()
    end)
  end)

  describe("garbage collection", function()
    it("collects an object while another thread waits on it", function()
      local lock = threading.Lock()
      lock:acquire()
      local ev = threading.Event()
      local t = threading.Thread(function(l, e)
        local got = l:acquire(true, 0.3)     -- nobody will release it
        local set = e:wait(0.3)
        return got, set
      end, lock, ev)
      t:start()
      lock, ev = nil, nil   -- luacheck: ignore 311 (dropped for the collector)
      collectgarbage(); collectgarbage()
      H.join(t)
      local got, set = t:result()
      assert.is_false(got)
      assert.is_false(set)
      still_fine()
    end)

    it("frees an object dropped by every thread while a thread sleeps holding none", function()
      local q = threading.Queue()
      local t = threading.Thread(function(qq) return qq:get(true, 5) end, q)
      t:start()
      q:put("hello")
      q = nil   -- luacheck: ignore 311 (dropped for the collector)
      collectgarbage(); collectgarbage()
      H.join(t)
      assert.equal("hello", t:result())
      still_fine()
    end)
  end)
end)
