-- API.md §2: threads.
--
-- Thread bodies run in another lua_State with plain globals: they never call busted's
-- assert; they return what they saw and the main thread checks it.  Every wait is bounded.

local threading = require "lthreading"
if not package.searchpath("helpers", package.path) then     -- run without the Makefile
  package.path = "spec/?.lua;" .. package.path
end
local H = require "helpers"

-- A thread held at a gate: it waits (at most 10 s) on a Lock the caller holds.
-- Returns the started thread and the gate; call open() to let it finish.
local function gated(ret)
  local gate = threading.Lock()
  gate:acquire()
  local t = threading.Thread(function(g, r)
    local got = g:acquire(10)
    if got then g:release() end
    return got, r
  end, gate, ret)
  local function open() if gate:locked() then gate:release() end end
  return t, gate, open
end

-- Set the excepthook for the duration of one spec (restored by finally).
local function with_hook(fn)
  local saved = threading.excepthook
  threading.excepthook = fn
  finally(function() threading.excepthook = saved end)
end

describe("Thread (API.md §2)", function()
  local restore_hook
  setup(function() restore_hook = H.quiet_hook() end)
  teardown(function() restore_hook() end)

  ----------------------------------------------------------------------- construction
  describe("constructors", function()
    it("Thread{target =, args =, name =, daemon =}", function()
      local t = threading.Thread{target = function(a, b) return a + 1, b .. "!" end,
                                 args = {1, "x"}, name = "worker", daemon = false}
      assert.equal("worker", t.name)
      assert.is_false(t.daemon)
      t:start()
      H.join(t)
      assert.same({n = 2, 2, "x!"}, table.pack(t:result()))
    end)

    it("Thread(f, ...) takes the target, then its args", function()
      local t = threading.Thread(function(a, b) return a * 10, b end, 4, "y")
      t:start()
      H.join(t)
      assert.same({n = 2, 40, "y"}, table.pack(t:result()))
    end)

    it("Thread{daemon = true} makes a daemon thread", function()
      local t = threading.Thread{target = function() return 1 end, daemon = true}
      assert.is_true(t.daemon)
      t:start()
      H.join(t)
      assert.equal(1, t:result())
    end)
  end)

  --------------------------------------------------------------------------- start
  describe("start()", function()
    it("runs the target in another OS thread", function()
      local ident = H.run(function() return require("lthreading").get_ident() end)
      assert.are_not.equal(threading.get_ident(), ident)
    end)

    it("can be called only once", function()
      local t = threading.Thread(function() end)
      t:start()
      assert.has_error(function() t:start() end)
      local ok, err = pcall(t.start, t)
      assert.is_false(ok)
      assert.matches("threads can only be started once", tostring(err))
      H.join(t)
    end)

    it("works from inside a thread (threads start and join threads)", function()
      local r = H.runp(function()
        local lt = require "lthreading"
        local inner = lt.Thread(function(x) return x * 2 end, 21)
        inner:start()
        return inner:join(10), inner:result()
      end)
      assert.same({n = 2, true, 42}, r)
    end)
  end)

  ---------------------------------------------------------------------------- join
  describe("join([timeout])", function()
    it("returns true once the thread has ended", function()
      local t = threading.Thread(function() return 1 end)
      t:start()
      assert.is_true(t:join(H.JOIN))
      assert.is_true(t:join(H.JOIN))   -- and again
      assert.is_true(t:join())         -- ended already: no wait
      assert.is_true(t:join(0))
    end)

    it("returns false when the timeout passes first", function()
      local t, _, open = gated()
      finally(open)
      t:start()
      local dt, r = H.timed(t.join, t, 0.2)
      local dt0, r0 = H.timed(t.join, t, 0)
      open()
      assert.is_false(r)
      assert.is_true(dt >= 0.15, "returned after " .. dt .. " s")
      assert.is_true(dt < 5, "returned after " .. dt .. " s")
      assert.is_false(r0)
      assert.is_true(dt0 < 5)
      H.join(t)
      assert.same({n = 2, true, nil}, table.pack(t:result()))
    end)

    it("waits for a thread that is still running", function()
      local t = threading.Thread(function()
        require("lthreading").sleep(0.2)
        return "slept"
      end)
      t:start()
      local dt, r = H.timed(t.join, t, H.JOIN)
      assert.is_true(r)
      assert.is_true(dt >= 0.1, "returned after " .. dt .. " s")
      assert.equal("slept", t:result())
    end)

    it("of the current thread is an error", function()
      assert.has_error(function() threading.main_thread():join(1) end)
      assert.has_error(function() threading.current_thread():join(1) end)
      local r = H.runp(function()
        local ok = pcall(function()
          local lt = require "lthreading"
          return lt.current_thread():join(1)
        end)
        return ok
      end)
      assert.same({n = 1, false}, r)
    end)

    it("of a thread not started is an error", function()
      local t = threading.Thread(function() end)
      assert.has_error(function() t:join(1) end)
      assert.has_error(function() t:join() end)
    end)
  end)

  ------------------------------------------------------------------------ is_alive
  describe("is_alive()", function()
    it("is true from start() until the thread ends", function()
      local t, _, open = gated()
      finally(open)
      local before = t:is_alive()
      t:start()
      local during = t:is_alive()
      open()
      H.join(t)
      local after = t:is_alive()
      assert.is_false(before)
      assert.is_true(during)
      assert.is_false(after)
    end)

    it("is false after the thread failed", function()
      local t = threading.Thread(function() error("fails") end)
      t:start()
      H.join(t)
      assert.is_false(t:is_alive())
    end)
  end)

  -------------------------------------------------------------------------- result
  describe("result()", function()
    it("returns the target's return values, nils kept", function()
      local t = threading.Thread(function() return 1, nil, "three", nil end)
      t:start()
      H.join(t)
      assert.same({n = 4, 1, nil, "three", nil}, table.pack(t:result()))
    end)

    it("returns nothing for a target that returns nothing", function()
      local t = threading.Thread(function() end)
      t:start()
      H.join(t)
      assert.equal(0, select("#", t:result()))
    end)

    it("waits for the thread to end", function()
      local t = threading.Thread(function()
        require("lthreading").sleep(0.2)
        return "late"
      end)
      t:start()
      local dt, r = H.timed(t.result, t)
      assert.equal("late", r)
      assert.is_true(dt >= 0.1, "returned after " .. dt .. " s")
    end)

    it("raises the target's error value", function()
      local t = threading.Thread(function() error({code = 7}) end)
      t:start()
      H.join(t)
      local ok, err = pcall(t.result, t)
      assert.is_false(ok)
      assert.same({code = 7}, err)
      local t2 = threading.Thread(function() error("plain message", 0) end)
      t2:start()
      H.join(t2)
      local ok2, err2 = pcall(t2.result, t2)
      assert.is_false(ok2)
      assert.equal("plain message", err2)
    end)

    it("can be called many times", function()
      local t = threading.Thread(function() return "v", 2 end)
      t:start()
      H.join(t)
      for _ = 1, 3 do
        assert.same({n = 2, "v", 2}, table.pack(t:result()))
      end
      local bad = threading.Thread(function() error("again", 0) end)
      bad:start()
      H.join(bad)
      for _ = 1, 3 do
        local ok, err = pcall(bad.result, bad)
        assert.is_false(ok)
        assert.equal("again", err)
      end
    end)

    it("can be called from another thread, and waits there", function()
      local t1, _, open = gated("from t1")
      finally(open)
      t1:start()
      local t2 = threading.Thread(function(other)
        local got, msg = other:result()
        return got, msg, "seen by t2"
      end, t1)
      t2:start()
      local early = t2:join(0.2)   -- t2 waits in result() while t1 is held
      open()
      H.join(t1)
      H.join(t2)
      assert.is_false(early)
      assert.same({n = 3, true, "from t1", "seen by t2"}, table.pack(t2:result()))
    end)
  end)

  ---------------------------------------------------------------------------- name
  describe("name", function()
    it("defaults to Thread-N, N counting up process-wide", function()
      local a = threading.Thread(function() end)
      local inner_name = H.run(function()
        return require("lthreading").Thread(function() end).name
      end)
      local c = threading.Thread(function() end)
      local na = tonumber(a.name:match("^Thread%-(%d+)$"))
      local nb = tonumber(inner_name:match("^Thread%-(%d+)$"))
      local nc = tonumber(c.name:match("^Thread%-(%d+)$"))
      assert.is_not_nil(na, a.name)
      assert.is_not_nil(nb, inner_name)
      assert.is_not_nil(nc, c.name)
      assert.is_true(na >= 1)
      assert.is_true(nb > na)
      assert.is_true(nc > nb)
    end)

    it("gives consecutive threads consecutive numbers", function()
      local a = threading.Thread(function() end)
      local b = threading.Thread(function() end)
      local na = tonumber(a.name:match("^Thread%-(%d+)$"))
      local nb = tonumber(b.name:match("^Thread%-(%d+)$"))
      assert.equal(na + 1, nb)
    end)

    it("is writable, and the thread sees its name", function()
      local t = threading.Thread(function()
        return require("lthreading").current_thread().name
      end)
      t.name = "renamed"
      assert.equal("renamed", t.name)
      t:start()
      H.join(t)
      assert.equal("renamed", t:result())
    end)
  end)

  -------------------------------------------------------------------- ident, native_id
  describe("ident and native_id", function()
    it("are nil until started", function()
      local t = threading.Thread(function() end)
      assert.is_nil(t.ident)
      assert.is_nil(t.native_id)
    end)

    it("are integers after start(), matching get_ident/get_native_id in the thread", function()
      local t = threading.Thread(function()
        local lt = require "lthreading"
        return lt.get_ident(), lt.get_native_id()
      end)
      t:start()
      local ident, native = t.ident, t.native_id
      H.join(t)
      local in_ident, in_native = t:result()
      assert.equal("integer", math.type(ident))
      assert.equal("integer", math.type(native))
      assert.equal(in_ident, ident)
      assert.equal(in_native, native)
      assert.equal(ident, t.ident)          -- still there after the end
      assert.equal(native, t.native_id)
      assert.are_not.equal(threading.get_ident(), ident)
      assert.are_not.equal(threading.get_native_id(), native)
    end)
  end)

  -------------------------------------------------------------------------- daemon
  describe("daemon", function()
    it("defaults to the creator's daemon flag", function()
      local t = threading.Thread(function() end)
      assert.is_false(t.daemon)            -- the main thread is not a daemon
      local r = H.runp(function()
        local lt = require "lthreading"
        local inner = lt.Thread(function() end)
        return lt.current_thread().daemon, inner.daemon
      end)
      local t2 = threading.Thread{daemon = true, target = function()
        local lt = require "lthreading"
        local inner = lt.Thread(function() end)
        return lt.current_thread().daemon, inner.daemon
      end}
      t2:start()
      H.join(t2)
      assert.same({n = 2, false, false}, r)
      assert.same({n = 2, true, true}, table.pack(t2:result()))
    end)

    it("is writable until start", function()
      local t = threading.Thread(function()
        return require("lthreading").current_thread().daemon
      end)
      t.daemon = true
      assert.is_true(t.daemon)
      t.daemon = false
      t.daemon = true
      t:start()
      H.join(t)
      assert.is_true(t:result())
    end)

    it("is an error to set after start", function()
      local t, _, open = gated()
      finally(open)
      t:start()
      local ok_running = pcall(function() t.daemon = true end)
      open()
      H.join(t)
      local ok_ended = pcall(function() t.daemon = true end)
      assert.is_false(ok_running)
      assert.is_false(ok_ended)
      assert.is_false(t.daemon)
    end)
  end)

  ------------------------------------------------------------------------ subclasses
  describe("Thread:extend()", function()
    it("makes a class whose init/run run as documented (the API.md example)", function()
      local Worker = threading.Thread:extend()
      function Worker:init(opts) threading.Thread.init(self, opts); self.n = opts.n end
      function Worker:run() self.value = self.n * 2 end
      local w = Worker{n = 21}
      assert.equal(21, w.n)
      w:start()
      assert.is_true(w:join(H.JOIN))
      assert.equal(42, w.value)
    end)

    it("passes Thread options through Thread.init (name, daemon)", function()
      local Worker = threading.Thread:extend()
      function Worker:init(opts) threading.Thread.init(self, opts); self.n = opts.n end
      function Worker:run() self.seen = require("lthreading").current_thread().name end
      local w = Worker{n = 1, name = "sub-worker", daemon = true}
      assert.equal("sub-worker", w.name)
      assert.is_true(w.daemon)
      w:start()
      H.join(w)
      assert.equal("sub-worker", w.seen)
    end)

    it("sends the instance's fields and the class's methods to the thread", function()
      local Worker = threading.Thread:extend()
      function Worker:init(opts) threading.Thread.init(self, opts); self.items = opts.items end
      function Worker:total()
        local s = 0
        for _, v in ipairs(self.items) do s = s + v end
        return s
      end
      function Worker:run() self.sum = self:total() end
      local w = Worker{items = {1, 2, 3, 4}}
      w:start()
      H.join(w)
      assert.equal(10, w.sum)
    end)

    it("copies self's fields back once is_alive() is false", function()
      local Worker = threading.Thread:extend()
      function Worker:run()
        self.list = {1, 2, 3}
        self.tmp = nil
        self.count = (self.count or 0) + 1
      end
      local w = Worker()
      w.tmp = "set before start"
      w.count = 10
      w:start()
      assert.is_true(H.wait_until(function() return not w:is_alive() end))
      assert.same({1, 2, 3}, w.list)
      assert.is_nil(w.tmp)
      assert.equal(11, w.count)
    end)

    it("chains: Worker:extend() inherits init and run", function()
      local Worker = threading.Thread:extend()
      function Worker:init(opts) threading.Thread.init(self, opts); self.n = opts.n end
      function Worker:run() self.value = self.n * 2 end
      local Same = Worker:extend()
      local More = Worker:extend()
      function More:run() self.value = self.n * 2 + 1 end
      local a, b = Same{n = 21}, More{n = 21}
      a:start(); b:start()
      H.join(a); H.join(b)
      assert.equal(42, a.value)
      assert.equal(43, b.value)
    end)

    it("keeps the default run: target(table.unpack(args))", function()
      local Plain = threading.Thread:extend()
      local p = Plain{target = function(x, y) return x * y end, args = {6, 7}}
      p:start()
      H.join(p)
      assert.equal(42, p:result())
    end)

    it("an instance sent to another thread keeps its class's methods and its fields there", function()
      local Greeter = threading.Thread:extend()
      function Greeter:hello() return "hello from " .. self.tag end
      local g = Greeter{tag = "g1"}
      assert.same({"hello from g1", "g1"}, {H.run(function(x) return x:hello(), x.tag end, g)})
    end)

    it("a Timer can be cancelled from another thread", function()
      local fired = threading.Event()
      local tm = threading.Timer(0.5, function(ev) ev:set() end, fired)
      tm:start()
      assert.equal("cancelled", H.run(function(x) x:cancel(); return "cancelled" end, tm))
      assert.is_true(tm:join(H.JOIN))
      assert.is_false(fired:is_set())
    end)
  end)

  ---------------------------------------------------------------------- excepthook
  describe("excepthook", function()
    it("by default prints 'Exception in thread NAME:', the error and a traceback to stderr", function()
      local r = H.lua([[
        local th = require "lthreading"
        local t = th.Thread{name = "bad-worker", target = function() error("kaboom") end}
        t:start()
        print("joined", t:join(10))
      ]])
      assert.equal(0, r.code, H.show(r))
      assert.matches("Exception in thread bad%-worker:", r.err, 1, false, H.show(r))
      assert.matches("kaboom", r.err, 1, false, H.show(r))
      assert.is_truthy(r.err:lower():find("traceback"), H.show(r))
      assert.matches("joined\ttrue", r.out, 1, false, H.show(r))
      assert.is_falsy(r.out:find("Exception in thread"), H.show(r))
    end)

    it("__excepthook__ is the default", function()
      local r = H.lua([[
        local th = require "lthreading"
        print(type(th.__excepthook__), th.excepthook == th.__excepthook__)
        th.excepthook = function() end
        th.excepthook = th.__excepthook__
        local t = th.Thread{name = "after-restore", target = function() error("again") end}
        t:start()
        t:join(10)
      ]])
      assert.equal(0, r.code, H.show(r))
      assert.matches("function\ttrue", r.out, 1, false, H.show(r))
      assert.matches("Exception in thread after%-restore:", r.err, 1, false, H.show(r))
      assert.equal("function", type(threading.__excepthook__))
    end)

    it("a custom hook gets {exc_type, exc_value, exc_traceback, thread} in the failing thread", function()
      local q = threading.Queue()
      with_hook(function(args)
        local lt = require "lthreading"
        q:put({exc_type = args.exc_type, exc_value = args.exc_value,
               exc_traceback = args.exc_traceback, thread = args.thread,
               is_current = args.thread == lt.current_thread(),
               ident = lt.get_ident()})
      end)
      local t = threading.Thread{name = "hooked", target = function() error("custom boom") end}
      t:start()
      H.join(t)
      local item = q:get(true, H.JOIN)
      assert.is_table(item)
      assert.equal("string", item.exc_type)
      assert.matches("thread_spec%.lua:%d+: custom boom", item.exc_value)
      assert.equal("string", type(item.exc_traceback))
      assert.matches("thread_spec%.lua", item.exc_traceback)
      assert.is_true(rawequal(t, item.thread))
      assert.is_true(item.is_current)
      assert.equal(t.ident, item.ident)
    end)

    it("a custom hook sees non-string error values as they are", function()
      local q = threading.Queue()
      with_hook(function(args) q:put({args.exc_type, args.exc_value}) end)
      local t = threading.Thread(function() error({code = 5}) end)
      t:start()
      H.join(t)
      local item = q:get(true, H.JOIN)
      assert.same({"table", {code = 5}}, item)
    end)

    it("runs before join() returns true", function()
      local signal = threading.Lock()
      signal:acquire()
      finally(function() if signal:locked() then signal:release() end end)
      with_hook(function()
        require("lthreading").sleep(0.2)
        signal:release()
      end)
      local t = threading.Thread(function() error("late hook") end)
      t:start()
      H.join(t)
      assert.is_false(signal:locked())
    end)

    it("an error inside a hook is reported and never stops the process", function()
      local r = H.lua([[
        local th = require "lthreading"
        th.excepthook = function(args) error("hook broke") end
        local t = th.Thread(function() error("thread broke") end)
        t:start()
        print("joined", t:join(10))
        local t2 = th.Thread(function() return 5 end)
        t2:start()
        t2:join(10)
        print("after", t2:result())
      ]])
      assert.equal(0, r.code, H.show(r))
      assert.matches("joined\ttrue", r.out, 1, false, H.show(r))
      assert.matches("after\t5", r.out, 1, false, H.show(r))
      assert.matches("hook broke", r.err, 1, false, H.show(r))
    end)

    it("failing threads still let the script exit 0", function()
      local r = H.lua([[
        local th = require "lthreading"
        for i = 1, 3 do
          th.Thread(function() error("failure " .. i) end):start()
        end
        print("end of script")
      ]])
      assert.equal(0, r.code, H.show(r))
      assert.matches("end of script", r.out, 1, false, H.show(r))
      local n = 0
      for _ in r.err:gmatch("Exception in thread Thread%-%d+:") do n = n + 1 end
      assert.equal(3, n, H.show(r))
    end)

    it("threading.excepthook = fn in a thread installs fn for every thread", function()
      local q = threading.Queue()
      local saved = threading.excepthook
      finally(function() threading.excepthook = saved end)
      H.run(function(qq)
        local lt = require "lthreading"
        lt.excepthook = function(args) qq:put("hook: " .. tostring(args.exc_value)) end
      end, q)
      -- another thread's failure goes through it
      local t = threading.Thread(function() error("second thread fails", 0) end)
      t:start()
      H.join(t)
      assert.equal("hook: second thread fails", q:get(true, H.JOIN))
      -- and the main thread reads the same hook
      assert.equal("function", type(threading.excepthook))
      threading.excepthook{exc_type = "string", exc_value = "direct call", exc_traceback = "",
                           thread = threading.current_thread()}
      assert.equal("hook: direct call", q:get(true, H.JOIN))
    end)
  end)
end)

describe("module functions (API.md §2)", function()
  it("gives a state on an OS thread lthreading did not start a Dummy-N thread", function()
    -- build/foreign_thread (made by `make test`) runs a chunk on its own pthread
    local host, why = H.foreign_host()
    if not host then pending(why) return end
    local chunk = [[
      local th = require "lthreading"
      local c = th.current_thread()
      local listed = false
      for _, t in ipairs(th.enumerate()) do if t == c then listed = true end end
      print(c.name, c.daemon, c:is_alive(), c.ident == th.get_ident(), listed,
            th.current_thread() == c, th.main_thread() ~= c)
    ]]
    local out = H.foreign(host, chunk)
    assert.matches("EXIT:0", out)
    assert.matches("Dummy%-%d+\ttrue\ttrue\ttrue\ttrue\ttrue\ttrue", out)
    assert.matches("main after:\t1", out)            -- gone once its OS thread ended
  end)

  it("current_thread() and main_thread() are the MainThread in the main thread", function()
    local main = threading.main_thread()
    assert.equal("MainThread", main.name)
    assert.is_true(rawequal(main, threading.current_thread()))
    assert.is_true(main:is_alive())
    assert.is_false(main.daemon)
  end)

  it("current_thread() is the Thread, main_thread() the same main, inside a thread", function()
    local t = threading.Thread(function()
      local lt = require "lthreading"
      return lt.current_thread(), lt.main_thread(), lt.main_thread().name
    end)
    t:start()
    H.join(t)
    local cur, main, name = t:result()
    assert.is_true(rawequal(t, cur))
    assert.is_true(rawequal(threading.main_thread(), main))
    assert.equal("MainThread", name)
  end)

  it("active_count() and enumerate() list the live threads, main included", function()
    local before = threading.active_count()
    local t, _, open = gated()
    finally(open)
    t:start()
    local during = threading.active_count()
    local list = threading.enumerate()
    open()
    H.join(t)
    local after = threading.active_count()
    assert.is_true(before >= 1)
    assert.equal(before + 1, during)
    assert.equal(during, #list)
    local has_main, has_t = false, false
    for _, th in ipairs(list) do
      if rawequal(th, threading.main_thread()) then has_main = true end
      if rawequal(th, t) then has_t = true end
    end
    assert.is_true(has_main)
    assert.is_true(has_t)
    assert.equal(before, after)
    for _, th in ipairs(threading.enumerate()) do
      assert.is_false(rawequal(th, t))
    end
  end)

  it("get_ident() is an integer, the main thread's ident, distinct per thread", function()
    local id = threading.get_ident()
    assert.equal("integer", math.type(id))
    assert.equal(id, threading.main_thread().ident)
    assert.equal(id, threading.get_ident())
    local other = H.run(function() return require("lthreading").get_ident() end)
    assert.equal("integer", math.type(other))
    assert.are_not.equal(id, other)
  end)

  it("get_native_id() is an integer, the main thread's native_id, distinct per thread", function()
    local id = threading.get_native_id()
    assert.equal("integer", math.type(id))
    assert.equal(id, threading.main_thread().native_id)
    local other = H.run(function() return require("lthreading").get_native_id() end)
    assert.equal("integer", math.type(other))
    assert.are_not.equal(id, other)
  end)

  it("stack_size() returns the previous size, 0 = default; below 32 KiB is an error", function()
    local first = threading.stack_size()
    finally(function() threading.stack_size(first) end)
    assert.equal(0, first)
    assert.equal(0, threading.stack_size(2048 * 1024))
    assert.equal(2048 * 1024, threading.stack_size())
    assert.equal(7, H.run(function() return 7 end))   -- a thread with that stack runs
    assert.has_error(function() threading.stack_size(1024) end)
    assert.has_error(function() threading.stack_size(32 * 1024 - 1) end)
    assert.equal(2048 * 1024, threading.stack_size())   -- the failed calls changed nothing
    assert.equal(2048 * 1024, threading.stack_size(32 * 1024))
    local floor = threading.stack_size(0)              -- 32 KiB was raised to the floor
    assert.is_true(floor >= 512 * 1024 and floor <= 2048 * 1024, "floor " .. floor)
    assert.equal(0, threading.stack_size())
  end)

  it("TIMEOUT_MAX is a positive number usable as a timeout", function()
    assert.equal("number", type(threading.TIMEOUT_MAX))
    assert.is_true(threading.TIMEOUT_MAX > 1e6)
    local t = threading.Thread(function() end)
    t:start()
    assert.is_true(t:join(threading.TIMEOUT_MAX))
    local lock = threading.Lock()
    assert.is_true(lock:acquire(true, threading.TIMEOUT_MAX))
    lock:release()
  end)

  it("sleep(seconds) sleeps fractional seconds", function()
    local dt = H.timed(threading.sleep, 0.2)
    assert.is_true(dt >= 0.15, "slept " .. dt .. " s")
    assert.is_true(dt < 5, "slept " .. dt .. " s")
    local dt0 = H.timed(threading.sleep, 0)
    assert.is_true(dt0 < 5)
  end)

  it("monotonic() is float seconds that never go back", function()
    local a = threading.monotonic()
    assert.equal("float", math.type(a))
    local prev = a
    for _ = 1, 1000 do
      local now = threading.monotonic()
      assert.is_true(now >= prev)
      prev = now
    end
    threading.sleep(0.05)
    local b = threading.monotonic()
    assert.is_true(b - a >= 0.03, "advanced " .. (b - a) .. " s")
    assert.is_true(b - a < 5)
  end)

  it("lthreading threads block SIGINT; the main thread does not (Linux /proc)", function()
    -- SigBlk of one task of this process, as an integer mask (low 32 bits suffice: SIGINT = 2)
    local function sigblk(tid)
      local f = io.open("/proc/self/task/" .. tid .. "/status", "r")
      if not f then return nil end
      local s = f:read("a")
      f:close()
      local hex = s:match("SigBlk:%s*(%x+)")
      return hex and tonumber(hex:sub(-8), 16)
    end
    local main_mask = sigblk(threading.get_native_id())
    if not main_mask then pending("no /proc/self/task here") return end
    local r = H.runp(function()
      local lt = require "lthreading"
      local f = io.open("/proc/self/task/" .. lt.get_native_id() .. "/status", "r")
      if not f then return nil end
      local s = f:read("a")
      f:close()
      local hex = s:match("SigBlk:%s*(%x+)")
      return hex and tonumber(hex:sub(-8), 16)
    end)
    local SIGINT_BIT = 1 << (2 - 1)
    assert.is_not_nil(r[1])
    assert.equal(SIGINT_BIT, r[1] & SIGINT_BIT, "SIGINT not blocked in a thread")
    assert.equal(0, main_mask & SIGINT_BIT, "SIGINT blocked in the main thread")
  end)

  it("has Python's camelCase aliases", function()
    local t = threading.Thread(function() end)
    t:setName("camel")
    assert.equal("camel", t:getName())
    assert.equal("camel", t.name)
    t:setDaemon(true)
    assert.is_true(t:isDaemon())
    assert.is_true(t.daemon)
    assert.is_false(t:isAlive())
    t:start()
    H.join(t)
    assert.is_false(t:isAlive())
    assert.is_true(rawequal(threading.currentThread(), threading.current_thread()))
    assert.equal(threading.active_count(), threading.activeCount())
    local c = threading.Condition()
    assert.equal("function", type(c.notifyAll))
    c:acquire()
    c:notifyAll()
    c:release()
  end)
end)

describe("process exit (API.md §2)", function()
  it("waits for every non-daemon thread", function()
    local r = H.lua([[
      local th = require "lthreading"
      local t = th.Thread(function()
        require("lthreading").sleep(0.3)
        print("worker done")
      end)
      t:start()
      print("main end")
    ]])
    assert.equal(0, r.code, H.show(r))
    assert.equal("main end\nworker done\n", r.out, H.show(r))
  end)

  it("abandons daemon threads without a crash, even while they run lthreading code", function()
    for round = 1, 3 do
      local r = H.lua([[
        local th = require "lthreading"
        local lock = th.Lock()
        lock:acquire()
        for i = 1, 4 do
          th.Thread{daemon = true, target = function()
            local lt = require "lthreading"
            local mine = lt.Lock()
            while true do
              lock:acquire(0.001)
              mine:acquire(); mine:release()
              lt.sleep(0.001)
            end
          end}:start()
        end
        th.Thread{daemon = true, target = function() lock:acquire() end}:start()
        th.Thread{daemon = true, target = function() local x = 0 while true do x = x + 1 end end}:start()
        th.Thread{daemon = true, target = function()
          local lt = require "lthreading"
          while true do lt.Thread(function() end):start() ; lt.sleep(0.001) end
        end}:start()
        th.sleep(0.2)
        print("bye")
      ]])
      assert.equal(0, r.code, "round " .. round .. ": " .. H.show(r))
      assert.equal("bye\n", r.out, H.show(r))
    end
  end)

  it("keeps lines whole when many threads print at once", function()
    local N, M, W = 8, 300, 100
    local r = H.lua(string.format([[
      local th = require "lthreading"
      local N, M, W = %d, %d, %d
      local function body(id)
        for j = 1, M do
          print("T" .. id, "L" .. j, string.rep(string.char(96 + id), W))
        end
      end
      local ts = {}
      for i = 1, N do ts[i] = th.Thread(body, i); ts[i]:start() end
      body(N + 1)                      -- the main thread prints too
      for i = 1, N do ts[i]:join(10) end
    ]], N, M, W))
    assert.equal(0, r.code, H.show(r))
    local lines = H.lines(r.out)
    assert.equal((N + 1) * M, #lines, "line count")
    local seen, bad = {}, {}
    for _, line in ipairs(lines) do
      local id, j, xs = line:match("^T(%d+)\tL(%d+)\t(%l+)$")
      id, j = tonumber(id), tonumber(j)
      if not id or #xs ~= W or xs ~= string.rep(string.char(96 + id), W) then
        bad[#bad + 1] = line
      else
        seen[id * 100000 + j] = (seen[id * 100000 + j] or 0) + 1
      end
    end
    assert.equal(0, #bad, "mixed lines, e.g.: " .. tostring(bad[1]))
    for id = 1, N + 1 do
      for j = 1, M do
        assert.equal(1, seen[id * 100000 + j], "T" .. id .. " L" .. j)
      end
    end
  end)
end)
