-- The misuse catalogue (issue 6): every misuse gets a clear Lua error -- never a crash, a
-- hang or a leak -- and the process and every other thread carry on.  A "bystander" thread
-- runs through each test; after each misuse it must still answer.

local threading = require "lthreading"
-- error() / error(nil): Lua 5.5 gives the message "<no error object>", 5.4 the nil itself
local NO_ERROR_OBJECT = nil
if _VERSION ~= "Lua 5.4" then NO_ERROR_OBJECT = "<no error object>" end
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
      raises("bad option 'args' to 'Thread' %(table expected",
             function() threading.Thread{target = print, args = 5} end)
      raises("bad option 'daemon' to 'Thread' %(boolean expected", function()
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

  ---------------------------------------------------------------- the hostile search
  -- Issue 10: for every call, wrong types, odd numbers, nil holes, re-entrancy (an object
  -- used from its own callback, __gc, __close, excepthook or barrier action), objects
  -- dropped while others wait on them.  (NaN/huge *timeouts* are covered elsewhere.)

  describe("Shared, hostile", function()
    it("takes every Lua key that Lua tables take, except tables, functions, coroutines, userdata", function()
      local s = threading.Shared()
      local lock = threading.Lock()
      local keys = {1.5, 2^53, 2^63, math.huge, -math.huge, math.maxinteger,
                    math.mininteger, "", "a\0b", "a\0c", string.rep("\0\255", 500), true,
                    false, lock, s}
      for i, k in ipairs(keys) do s[k] = i end
      for i, k in ipairs(keys) do assert.equal(i, s[k]) end
      assert.is_nil(s["a"])                          -- "a\0b" is not "a"
      assert.equal(s[math.mininteger], s[-2^63])     -- a float with an integer value is it
      s[-0.0] = "zero"                               -- -0.0 and 0.0 are the integer key 0
      assert.equal("zero", s[0]); assert.equal("zero", s[0.0])
      assert.equal("integer", math.type((next(threading.Shared({[-0.0] = 1}):snapshot()))))
      assert.equal(0, #s)                            -- huge keys never move the border
      for _, bad in ipairs{0 / 0, -(0 / 0)} do
        raises("Shared index is NaN", function() s[bad] = 1 end)
        raises("Shared index is NaN", function() return s[bad] end)
      end
      raises("Shared index is nil", function() s[nil] = 1 end)
      raises("Shared index is nil", function() return s:get(nil) end)
      for _, bad in ipairs{{}, print, function() end, coroutine.create(print), io.stdout} do
        raises("Shared keys are strings, numbers, booleans or lthreading objects %(got",
               function() s[bad] = 1 end)
        raises("Shared keys are", function() return s[bad] end)
      end
      raises("got a table key", function() threading.Shared({[{}] = 1}) end)
      raises("got a function key", function() threading.Shared({[print] = 1}) end)
      raises("table expected, got string", function() threading.Shared("x") end)
      still_fine()
    end)

    it("uses itself as a key and value, and a nested Shared, across threads", function()
      local s = threading.Shared()
      s[s] = 1; s.me = s
      assert.equal(2, s:incr(s))
      assert.equal(3, s:update(s, function(v) return v + 1 end))
      assert.is_true(rawequal(s, s.me))
      assert.equal(3, s:snapshot()[s])
      local inner = threading.Shared({n = 0})
      s.inner = inner
      local got = H.run(function(sh)
        sh[sh] = "from thread"
        sh.inner:incr("n")
        return sh[sh], rawequal(sh.me, sh), sh.inner.n
      end, s)
      assert.equal("from thread", got)
      assert.equal(1, inner.n)
      s[s] = nil; s.me = nil
      assert.is_nil(s[s])
      still_fine()
    end)

    it("keeps values exactly: NaN, -0.0, integer limits, NULs, 14/15-byte strings", function()
      local s = threading.Shared()
      s.nan, s.nz, s.min, s.max = 0 / 0, -0.0, math.mininteger, math.maxinteger
      s.inf, s.nul, s.s14, s.s15 = -math.huge, "a\0b\0", ("y"):rep(14), ("y"):rep(15)
      assert.is_true(s.nan ~= s.nan)
      assert.equal(-math.huge, 1 / s.nz); assert.equal("float", math.type(s.nz))
      assert.equal(math.mininteger, s.min); assert.equal(math.maxinteger, s.max)
      assert.equal(-math.huge, s.inf)
      assert.equal("a\0b\0", s.nul)
      assert.equal(("y"):rep(14), s.s14); assert.equal(("y"):rep(15), s.s15)
      local r = H.runp(function(sh) return sh.nan ~= sh.nan, 1 / sh.nz, sh.min, sh.nul end, s)
      assert.same({n = 4, true, -math.huge, math.mininteger, "a\0b\0"}, r)
      still_fine()
    end)

    it("stores tables with hostile metatables without calling them", function()
      local s = threading.Shared()
      local function boom() error("metamethod called") end
      s.t = setmetatable({a = 1}, {__index = boom, __newindex = boom, __pairs = boom,
                                   __len = boom, __gc = function() end, __metatable = "locked"})
      local t = s.t
      assert.equal(1, rawget(t, "a"))
      assert.equal("locked", getmetatable(t))
      raises("metamethod called", function() return t.missing end)
      local c = {}; c.self = c
      s.c = c
      local back = s.c
      assert.is_true(rawequal(back, back.self))
      local deep = {}
      local cur = deep
      for _ = 1, 1100 do cur[1] = {}; cur = cur[1] end
      raises("nested too deeply", function() s.deep = deep end)
      assert.is_nil(s.deep)
      s.f, s.cf = function(x) return x * 2 end, string.upper
      assert.equal(42, s.f(21)); assert.equal("AB", s.cf("ab"))
      still_fine()
    end)

    it("incr: non-number values and deltas are errors that change nothing", function()
      local s = threading.Shared({str = "5", b = true, t = {1}})
      raises("arithmetic on a string value %(Shared key str%)", function() s:incr("str") end)
      raises("arithmetic on a boolean value %(Shared key b%)", function() s:incr("b") end)
      raises("arithmetic on a non%-number value %(Shared key t%)", function() s:incr("t") end)
      assert.equal("5", s.str); assert.is_true(s.b); assert.same({1}, s.t)
      raises("number expected, got string", function() s:incr("n", "x") end)
      raises("number expected, got table", function() s:incr("n", {}) end)
      raises("Shared index is NaN", function() s:incr(0 / 0) end)
      raises("Shared index is nil", function() s:incr() end)
      assert.is_nil(s.n)
      assert.equal(2, s:incr("n", "2"))               -- as Lua's arithmetic: "2" is 2
      assert.equal("integer", math.type(s.n))
      assert.equal(2.5, s:incr("n", "0.5"))
      s.big = math.maxinteger
      assert.equal(math.mininteger, s:incr("big"))   -- wraps, as Lua's integers do
      assert.equal(math.huge, s:incr("inf", math.huge))
      local nan = s:incr("inf", -math.huge)
      assert.is_true(nan ~= nan)
      still_fine()
    end)

    it("update: f using the same Shared in any way raises; the table stays usable", function()
      local s = threading.Shared({k = 1, j = 0})
      local uses = {
        function() return s.j end, function() s.x = 1 end, function() return #s end,
        function() return s:incr("j") end, function() return s:get("j") end,
        function() s:set("j", 1) end, function() return s:snapshot() end,
        function() for _ in pairs(s) do end end, function() return s:append(1) end,
        function() return s:pop() end,
        function() return s:update("j", function() return 1 end) end,
      }
      for i, use in ipairs(uses) do
        local ok, err = pcall(s.update, s, "k", function(v) use(); return v + 1 end)
        assert.is_false(ok, "use " .. i)
        assert.matches("inside its own update", tostring(err))
      end
      assert.same({k = 1, j = 0}, s:snapshot())
      -- tostring does not lock; another Shared is fine; a yield cannot cross the C call
      assert.matches("^Shared: ", s:update("k", function() return tostring(s) end))
      local other = threading.Shared({v = 41})
      assert.equal(42, s:update("k", function() return other.v + 1 end))
      local co = coroutine.wrap(function()
        return pcall(s.update, s, "k", function() coroutine.yield("yielded") end)
      end)
      local ok, err = co()
      assert.is_false(ok); assert.matches("yield across", err)
      -- any error value propagates as it is, and nothing changes
      local errval = {code = 7}
      ok, err = pcall(s.update, s, "k", function() error(errval) end)
      assert.is_false(ok); assert.is_true(rawequal(errval, err))
      ok, err = pcall(s.update, s, "k", function() error() end)
      assert.is_false(ok); assert.equal(NO_ERROR_OBJECT, err)
      raises("cannot transfer value: coroutine", function()
        s:update("k", function() return coroutine.create(print) end)
      end)
      raises("attempt to call a number value", function() s:update("k", 5) end)
      assert.equal(9, s:update("k", setmetatable({}, {__call = function() return 9 end})))
      assert.equal(9, s.k)
      s.k = 1                                        -- and the lock is free
      assert.equal(1, H.run(function(sh) return sh.k end, s))
      still_fine()
    end)

    it("an update holding the table blocks other threads only while f runs", function()
      local s, started = threading.Shared({k = 0}), threading.Event()
      local t = H.spawn(function(sh, ev)
        return sh:update("k", function(v)
          ev:set()
          require("lthreading").sleep(0.1)            -- others wait meanwhile
          return v + 1
        end)
      end, s, started)
      assert.is_true(started:wait(10))
      assert.equal(1, s.k)                            -- waited for the update, saw its result
      H.join(t)
      assert.equal(1, t:result())
      still_fine()
    end)

    it("#, holes, ipairs and pairs on a table with holes", function()
      local s = threading.Shared({1, 2, nil, 4})
      local n = #s
      assert.is_true(n == 2 or n == 4)               -- a border, as Lua's #
      local count = 0
      for _ in ipairs(s) do count = count + 1 end
      assert.equal(2, count)
      s[3] = 3
      assert.equal(4, #s)
      s[2] = nil
      n = #s
      assert.is_true(n == 1 or n == 4)
      count = 0
      for _ in pairs(s) do count = count + 1 end
      assert.equal(3, count)
      raises("table or string expected", function() return rawlen(s) end)
      still_fine()
    end)

    it("pairs sees a whole snapshot while other threads append and pop", function()
      local s, stop = threading.Shared(), threading.Event()
      local writers = {}
      for i = 1, 2 do
        writers[i] = H.spawn(function(sh, ev)
          local n = 0
          while not ev:is_set() and n < 10000 do
            sh:append(n); n = n + 1
            if n % 3 == 0 then sh:pop() end
          end
        end, s, stop)
      end
      local bad = 0
      for _ = 1, 50 do
        local keys, max = 0, 0
        for k in pairs(s) do keys = keys + 1; if k > max then max = k end end
        if keys ~= max then bad = bad + 1 end        -- always exactly 1..max
      end
      stop:set()
      for i = 1, 2 do H.join(writers[i], 30) end
      assert.equal(0, bad)
      still_fine()
    end)

    it("a value another thread cannot rebuild: reads raise there, pop keeps the item", function()
      package.loaded["lt_ghost_module"] = {answer = 42}   -- crosses by name; no thread can require it
      finally(function() package.loaded["lt_ghost_module"] = nil end)
      local s = threading.Shared()
      s:append(package.loaded.lt_ghost_module)
      s.g = package.loaded.lt_ghost_module
      assert.equal(42, s.g.answer)
      local r = H.runp(function(sh)
        local ok1, e1 = pcall(function() return sh.g end)
        local ok2 = pcall(function() for _ in pairs(sh) do end end)
        local ok3, e3 = pcall(sh.pop, sh)
        return ok1, e1:match("module 'lt_ghost_module' not found") ~= nil, ok2, ok3,
               e3:match("module 'lt_ghost_module' not found") ~= nil, #sh
      end, s)
      assert.same({n = 6, false, true, false, false, true, 1}, r)
      assert.equal(42, s:pop().answer)                  -- still there, and whole
      still_fine()
    end)

    it("methods with a wrong self, missing or extra arguments", function()
      local s = threading.Shared()
      for _, m in ipairs{"get", "set", "update", "incr", "append", "pop", "snapshot"} do
        raises("Shared expected, got table", function() return s[m]({}, 1, 2) end)
        raises("Shared expected, got lthreading.Lock", function() return s[m](threading.Lock(), 1) end)
      end
      raises("bad argument #1 to 'get' %(value expected%)", function() return s:get() end)
      raises("bad argument #1 to 'append' %(value expected%)", function() return s:append() end)
      raises("bad argument #1 to 'append' %(cannot append nil%)", function() return s:append(nil) end)
      raises("no index expected", function() return s:pop(1) end)
      assert.is_nil(s:pop(nil))
      s:set("gone")                                  -- set(k) with no value removes k
      assert.is_nil(s:get("gone"))
      s.append = "data"                              -- method names shadow keys for s.k
      assert.equal("function", type(s.append))
      assert.equal("data", s:get("append"))
      still_fine()
    end)
  end)

  describe("Local, hostile", function()
    it("keys and values as a plain table takes them, per thread", function()
      local loc = threading.Local({x = 1})
      raises("index is nil", function() loc[nil] = 1 end)
      raises("index is NaN", function() loc[0 / 0] = 1 end)
      assert.is_nil(loc[nil]); assert.is_nil(loc[0 / 0])
      local k = {}
      loc[k] = coroutine.create(print)                -- any value: it never crosses
      assert.equal("thread", type(loc[k]))
      loc.me = loc
      assert.is_true(rawequal(loc, loc.me))
      assert.same({n = 3, 101, false, true}, H.runp(function(l)
        l.x = l.x + 100
        return l.x, l.me == l, l.me == nil
      end, loc))
      assert.equal(1, loc.x)
      raises("table or nil expected, got number", function() threading.Local(5) end)
      raises("cannot transfer defaults%.f: userdata", function() threading.Local({f = io.stdout}) end)
      local mt = getmetatable(loc)
      raises("Local expected, got table", function() return mt.__index({}, "x") end)
      raises("Local expected, got number", function() mt.__newindex(5, "x", 1) end)
      raises("Local expected, got lthreading.Lock", function() return mt.__len(threading.Lock()) end)
      still_fine()
    end)

    it("defaults with metamethods: __index/__newindex run, and may raise", function()
      local l = threading.Local(setmetatable({}, {__index = function(_, k) return "dflt:" .. k end}))
      assert.equal("dflt:any", l.any)
      assert.equal("dflt:t", H.run(function(loc) return loc.t end, l))
      local ro = threading.Local(setmetatable({}, {__newindex = function(_, k) error("read-only " .. k) end}))
      raises("read%-only x", function() ro.x = 1 end)
      local bad = threading.Local(setmetatable({}, {__index = function(_, k) error("no " .. k) end}))
      raises("no y", function() return bad.y end)
      still_fine()
    end)

    it("a Local dropped by its creator while a thread still uses it", function()
      local l, ev = threading.Local({a = 1}), threading.Event()
      local t = H.spawn(function(loc, e)
        loc.a = 5
        e:wait(10)
        collectgarbage()
        return loc.a
      end, l, ev)
      l = nil -- luacheck: ignore (dropped while the thread uses it)
      collectgarbage(); collectgarbage()
      ev:set()
      H.join(t)
      assert.equal(5, t:result())
      for i = 1, 2000 do local x = threading.Local(); x.v = i end   -- churn: views swept
      collectgarbage()
      still_fine()
    end)
  end)

  describe("marshaler, hostile", function()
    local function echo(...) return H.run(function(...) return ... end, ...) end

    it("numbers keep their exact value and subtype", function()
      local vals = {math.mininteger, math.maxinteger, 127, 128, -128, -129, 32767, 32768,
                    -32768, -32769, 2147483647, 2147483648, -2147483648, -2147483649,
                    0.0, -0.0, 5e-324, math.huge, -math.huge, 2^53 + 0.0, 0.1}
      local back = table.pack(echo(table.unpack(vals)))
      for i, v in ipairs(vals) do
        assert.equal(math.type(v), math.type(back[i]), "value " .. i)
        assert.equal(v, back[i], "value " .. i)
      end
      assert.equal(-math.huge, 1 / back[16])         -- -0.0 keeps its sign
      local nan = echo(0 / 0)
      assert.is_true(nan ~= nan)
      still_fine()
    end)

    it("strings, nil holes, odd keys", function()
      assert.equal("\0a\0\0b\0", echo("\0a\0\0b\0"))
      assert.equal("", echo(""))
      assert.equal(3, select("#", echo(nil, nil, nil)))
      local t = echo({1, nil, 3, nil, 5})
      assert.equal(1, t[1]); assert.is_nil(t[2]); assert.equal(5, t[5])
      assert.same({n = 3, 1, nil, 3}, echo(table.pack(1, nil, 3)))
      local odd = echo({[1e15] = "a", [math.mininteger] = "b", [0.5] = "c", [-0.0] = "d",
                        [true] = "e", [false] = "f", [print] = "g"})
      assert.equal("a", odd[1e15]); assert.equal("b", odd[math.mininteger])
      assert.equal("c", odd[0.5]); assert.equal("d", odd[0])
      assert.equal("e", odd[true]); assert.equal("f", odd[false]); assert.equal("g", odd[print])
      local k = {}
      local tk = echo({[k] = k})
      local kk = next(tk)
      assert.is_true(rawequal(tk[kk], kk))           -- one table, as key and value
      still_fine()
    end)

    it("metatables cross without their metamethods being called on the way", function()
      local function boom() error("metamethod called while copying") end
      local t = echo(setmetatable({a = 1, 2}, {__index = boom, __newindex = boom,
        __pairs = boom, __len = boom, __eq = boom, __close = function() end,
        __gc = function() error("gc error: a warning, never fatal") end, __name = "Thing"}))
      assert.equal(1, rawget(t, "a")); assert.equal(1, rawlen(t))
      assert.matches("^Thing", tostring(t))
      t = nil -- luacheck: ignore (dropped for the collector)
      collectgarbage()
      assert.is_false(echo(setmetatable({}, {__metatable = false})) == nil)
      still_fine()
    end)

    it("deep, wide and long values transfer or fail cleanly", function()
      local deep = {}
      local cur = deep
      for _ = 1, 990 do cur[1] = {}; cur = cur[1] end
      assert.is_table(echo(deep))
      for _ = 1, 100 do cur[1] = {}; cur = cur[1] end
      raises("nested too deeply", function() echo(deep) end)
      local meta = {}
      cur = meta
      for _ = 1, 1100 do local m = {}; setmetatable(cur, m); cur = m end
      raises("<metatable>.*nested too deeply", function() echo(meta) end)
      local f = function() return 0 end
      for _ = 1, 1100 do local g = f; f = function() return g() + 1 end end
      raises("<upvalue g>.*nested too deeply", function() echo(f) end)
      local wide = {}
      for i = 1, 50000 do wide["k" .. i] = i end
      assert.equal(50000, echo(wide).k50000)
      assert.equal(4 * 1024 * 1024, #echo(("z"):rep(4 * 1024 * 1024)))
      local many = {}
      for i = 1, 10000 do many[i] = i end
      assert.equal(10000, select("#", echo(table.unpack(many))))
      still_fine()
    end)

    it("what cannot cross names its path", function()
      raises("cannot transfer args%[1%]: userdata %(FILE%*%)", function() echo(io.stdout) end)
      raises("cannot transfer args%[1%]%.<upvalue %?>: coroutine", function()
        echo(coroutine.wrap(function() end))
      end)
      raises("cannot transfer args%[1%]%.<upvalue %?>: userdata", function()
        echo(string.gmatch("a", "a"))
      end)
      -- (the registry's first value that cannot cross: [1] on 5.4, [3] on 5.5)
      raises("cannot transfer args%[1%]%[%d%]: coroutine", function() echo(debug.getregistry()) end)
      assert.is_true(rawequal(_G, echo(_G)))
      assert.is_true(rawequal(string, echo(string)))
      still_fine()
    end)
  end)

  describe("error values and the excepthook, hostile", function()
    local function failing(f)
      local t = threading.Thread(f)
      t:start()
      H.join(t)
      return select(2, pcall(t.result, t))
    end

    it("a thread's error value of any type reaches result()", function()
      assert.equal(NO_ERROR_OBJECT, failing(function() error(nil) end))
      assert.same({code = 1}, failing(function() error({code = 1}) end))
      local tsbad = failing(function()
        error(setmetatable({}, {__tostring = function() error("tostring fails") end}))
      end)
      assert.equal("table", type(tsbad))
      assert.equal("function", type(failing(function() error(function() return 1 end) end)))
      assert.is_true(threading.BrokenBarrierError ==
                     failing(function() error(require("lthreading").BrokenBarrierError) end))
      -- values that cannot cross arrive as their tostring()
      assert.matches("^file %(", failing(function() error(io.stdout) end))
      assert.matches("^thread: ", failing(function() error(coroutine.create(print)) end))
      assert.equal(1000000, #failing(function() error(("e"):rep(1000000), 0) end))
      assert.matches("closing", failing(function()
        local _ <close> = setmetatable({}, {__close = function() error("closing", 0) end})
        error("first", 0)
      end))
      still_fine()
    end)

    it("an excepthook may start threads, replace itself, raise anything, or misuse its thread", function()
      local r = H.lua([[
        local th = require "lthreading"
        local out = th.Queue()
        local function fail(msg)
          local t = th.Thread(function() error(msg, 0) end); t:start(); t:join(10)
          return out:get(true, 10)
        end
        th.excepthook = function(a)
          local t = th.Thread(function(q, v) q:put("thread from hook: " .. v) end, out, a.exc_value)
          t:start(); t:join(10)
        end
        print(fail("E1"))
        th.excepthook = function(a)
          th.excepthook = function(b) out:put("second hook: " .. b.exc_value) end
          out:put("first hook: " .. a.exc_value)
        end
        print(fail("E2")); print(fail("E3"))
        th.excepthook = setmetatable({}, {__call = function(_, a) out:put("callable: " .. a.exc_value) end})
        print(fail("E4"))
        th.excepthook = function(a)
          local ok1, e1 = pcall(a.thread.join, a.thread)
          local ok2, e2 = pcall(a.thread.result, a.thread)
          out:put(table.concat({tostring(ok1), e1, tostring(ok2), e2, tostring(a.thread:is_alive())}, " "))
        end
        print(fail("E5"))
        th.excepthook = function(a)
          if a.exc_value == "E6" then
            local t = th.Thread(function() error("E6b", 0) end); t:start(); t:join(10)
          else out:put("nested: " .. a.exc_value) end
        end
        print(fail("E6"))
        th.excepthook = function() error({"a table"}) end
        local t = th.Thread(function() error("E7", 0) end); t:start(); t:join(10)
        th.excepthook = function() error() end
        t = th.Thread(function() error("E8", 0) end); t:start(); t:join(10)
        th.excepthook = nil
        print(th.excepthook == th.__excepthook__, pcall(th.__excepthook__, {}))
        print("end")
      ]], 30)
      assert.equal(0, r.code, H.show(r))
      assert.same({"thread from hook: E1", "first hook: E2", "second hook: E3", "callable: E4",
                   "false cannot join current thread false cannot join current thread true",
                   "nested: E6b", "true\ttrue", "end"}, H.lines(r.out), H.show(r))
      assert.matches("Exception in threading.excepthook:\ntable: ", r.err)
      assert.matches("Exception in threading.excepthook:\nnil", r.err)
      still_fine()
    end)
  end)

  describe("re-entrancy from callbacks", function()
    it("Barrier: the action calling wait() on its own barrier is an error, not a hang", function()
      local h = threading.Shared()
      local b = threading.Barrier(2, function()
        local ok, err = pcall(function() return h.b:wait(1) end)
        h.inner = tostring(ok) .. " " .. tostring(err)
      end)
      h.b = b
      local ts = {H.spawn(function(bb) return bb:wait(10) end, b),
                  H.spawn(function(bb) return bb:wait(10) end, b)}
      H.join(ts[1], 15); H.join(ts[2], 15)
      assert.matches("^false .*own action", h.inner)
      local idx = {ts[1]:result(), ts[2]:result()}
      table.sort(idx)
      assert.same({0, 1}, idx)                       -- the round itself went through
      assert.is_false(b.broken)
      h.b = nil                                      -- b's action holds h: no cycle left behind
      still_fine()
    end)

    it("Barrier: the action resetting, aborting or starting a waiting thread", function()
      local h = threading.Shared()
      local function round(b)
        local ts = {H.spawn(function(bb) return pcall(bb.wait, bb, 10) end, b),
                    H.spawn(function(bb) return pcall(bb.wait, bb, 10) end, b)}
        local r = {}
        for i = 1, 2 do H.join(ts[i], 15); r[i] = select(2, ts[i]:result()) end
        return r
      end
      local b = threading.Barrier(2, function() h.b:abort() end); h.b = b
      local r = round(b)
      assert.equal(threading.BrokenBarrierError, r[1]); assert.equal(threading.BrokenBarrierError, r[2])
      assert.is_true(b.broken)
      b = threading.Barrier(2, function() h.b:reset() end); h.b = b
      r = round(b)
      assert.equal(threading.BrokenBarrierError, r[1])
      assert.is_false(b.broken)
      b = threading.Barrier(2, function()           -- the new thread waits for the next round
        local t = require("lthreading").Thread(function(bb) return pcall(bb.wait, bb, 0.2) end, h.b)
        t:start(); h.t = t
      end); h.b = b
      r = round(b)
      assert.is_number(r[1]); assert.is_number(r[2])
      H.join(h.t)
      local ok, err = h.t:result()
      assert.is_false(ok); assert.equal(threading.BrokenBarrierError, err)
      h.b, h.t = nil, nil                            -- the actions hold h: no cycle left behind
      still_fine()
    end)

    it("Timer: its function cancelling or joining its own timer", function()
      local h = threading.Shared()
      local tm = threading.Timer(0.01, function() h.t:cancel(); return "ran" end)
      h.t = tm; tm:start()
      H.join(tm)
      assert.equal("ran", tm:result())
      tm = threading.Timer(0.01, function() return h.t:join(0.1) end)
      h.t = tm; tm:start()
      H.join(tm)
      local ok, err = pcall(tm.result, tm)
      assert.is_false(ok); assert.matches("cannot join current thread", err)
      h.t = nil                                      -- the timers' functions hold h
      still_fine()
    end)

    it("Condition: a wait_for predicate that notifies, waits, raises or releases", function()
      local c = threading.Condition()
      c:acquire()
      assert.is_false(c:wait_for(function() c:notify_all(); return false end, 0.05))
      assert.is_false(c:wait_for(function() return c:wait(0.01) end, 0.05))
      raises("pred!", function() c:wait_for(function() error("pred!") end, 0.05) end)
      raises("attempt to call a number value", function() c:wait_for(5, 0.05) end)
      c:notify()                                     -- still held after all of that
      c:release()
      raises("un%-acquired lock", function() c:notify() end)
      still_fine()
    end)
  end)

  describe("objects dropped while others wait on them", function()
    it("Event, Semaphore, Queue, Condition, Lock, Barrier: the waiter times out normally", function()
      local kinds = {"Event", "Semaphore", "Queue", "Condition", "Lock", "Barrier"}
      local waiters = {}
      for i, kind in ipairs(kinds) do
        local o = kind == "Semaphore" and threading.Semaphore(0)
                  or kind == "Barrier" and threading.Barrier(2) or threading[kind]()
        if kind == "Lock" then o:acquire() end
        waiters[i] = H.spawn(function(obj, k)
          local th = require "lthreading"
          if k == "Event" then return obj:wait(0.3)
          elseif k == "Semaphore" then return obj:acquire(true, 0.3)
          elseif k == "Queue" then return select(2, obj:get(true, 0.3))
          elseif k == "Condition" then obj:acquire(); local r = obj:wait(0.3); obj:release(); return r
          elseif k == "Barrier" then return select(2, pcall(obj.wait, obj, 0.3)) == th.BrokenBarrierError
          else return obj:acquire(true, 0.3) end
        end, o, kind)
      end
      collectgarbage(); collectgarbage()             -- this thread's proxies are gone
      local got = {}
      for i = 1, #kinds do H.join(waiters[i]); got[i] = waiters[i]:result() end
      assert.same({false, false, "empty", false, false, true}, got)
      still_fine()
    end)

    it("a Thread dropped while another thread joins it", function()
      local victim = H.spawn(function() require("lthreading").sleep(0.1); return "v" end)
      local joiner = H.spawn(function(v) return v:join(10), v:result() end, victim)
      victim = nil -- luacheck: ignore (dropped while another thread joins it)
      collectgarbage(); collectgarbage()
      H.join(joiner)
      assert.same({n = 2, true, "v"}, table.pack(joiner:result()))
      still_fine()
    end)
  end)

  describe("finalizers calling into lthreading", function()
    it("a __gc at the main state's close may use objects that are still alive", function()
      local r = H.lua([[
        local th = require "lthreading"
        local lock, ev, q, s = th.Lock(), th.Event(), th.Queue(), th.Shared()
        local t = th.Thread(function(e) return e:wait(10) end, ev); t:start()
        G = setmetatable({}, {__gc = function()
          lock:acquire(); lock:release()
          ev:set(); q:put(1); s.x = 1; s:append(2)
          print("gc", t:join(10), q:get(), s.x, s:pop())
        end})
      ]])
      assert.equal(0, r.code, H.show(r))
      assert.equal("gc\ttrue\t1\t1\t2\n", r.out, H.show(r))
    end)

    it("an object used after its own finalizer ran is an error, never a crash", function()
      local r = H.lua([[
        local th = require "lthreading"
        local holder = {}
        G = setmetatable({}, {__gc = function()        -- created first: finalized last
          for _, name in ipairs{"lock", "s", "l", "ev"} do
            local ok, err = pcall(function()
              local o = holder[name]
              if name == "lock" then o:acquire() elseif name == "s" then o.x = 1
              elseif name == "l" then return o.x else o:set() end
            end)
            print(name, ok, err:match("used after it was garbage%-collected") ~= nil)
          end
        end})
        holder.lock, holder.s, holder.l, holder.ev = th.Lock(), th.Shared(), th.Local(), th.Event()
      ]])
      assert.equal(0, r.code, H.show(r))
      assert.same({"lock\tfalse\ttrue", "s\tfalse\ttrue", "l\tfalse\ttrue", "ev\tfalse\ttrue"},
                  H.lines(r.out), H.show(r))
    end)

    it("a __gc in a thread's state, run when the thread ends, may use lthreading", function()
      local t = H.spawn(function()
        local th = require "lthreading"
        local q = th.Queue()
        G = setmetatable({}, {__gc = function()         -- luacheck: ignore (q was made first: alive)
          q:put("from the thread's finalizer")
        end})
        return q
      end)
      H.join(t)
      local q = t:result()
      assert.same({n = 1, "from the thread's finalizer"}, table.pack(q:get(true, 10)))
      still_fine()
    end)

    it("a __gc run by an idle pool worker's collection may use lthreading, its own pool too",
       function()
      -- a worker that took references collects before it sleeps: the finalizers of what
      -- its tasks dropped run there, outside any task
      local pool = threading.ThreadPoolExecutor(1)
      local q, lock = threading.Queue(), threading.Lock()
      pool:submit(function(p, q_, l)
        setmetatable({}, {__gc = function()
          q_:put("gc ran")
          p:submit(function(q2) q2:put("its task ran") end, q_)
        end})
        return l ~= nil
      end, pool, q, lock):result(H.JOIN)
      assert.same({ "gc ran", "its task ran" }, { q:get(true, H.JOIN), q:get(true, H.JOIN) })
      pool:submit(function(l)                              -- a finalizer that raises: a warning
        setmetatable({}, {__gc = function() error("boom") end})
        return l ~= nil
      end, lock):result(H.JOIN)
      threading.sleep(0.05)
      assert.equal("still works", pool:submit(function() return "still works" end):result(H.JOIN))
      pool:submit(function(p, l)                           -- one that shuts its pool down
        setmetatable({}, {__gc = function() p:shutdown(true) end})
        return l ~= nil
      end, pool, lock):result(H.JOIN)
      assert.is_true(H.wait_until(function()
        return not pcall(pool.submit, pool, function() end)
      end))
      still_fine()
    end)
  end)
end)
