-- API.md §3: "Timeouts are seconds (float); nil or a negative timeout means wait forever.
-- A NaN timeout, or one above threading.TIMEOUT_MAX (math.huge included), is an error, as
-- in Python; so is sleep(NaN) or sleep(-1)."
--
-- Every blocking call is checked with the bad values (an argument error naming the call,
-- raised before it acquired, took or parked anything) and with the good edge values
-- (TIMEOUT_MAX itself, nil, -1), in a state where the call returns at once.

local threading = require "lthreading"
if not package.searchpath("helpers", package.path) then     -- run without the Makefile
  package.path = "spec/?.lua;" .. package.path
end
local H = require "helpers"

local MAX = threading.TIMEOUT_MAX
local BAD = {
  {0 / 0, "timeout is NaN"},
  {-(0 / 0), "timeout is NaN"},
  {math.huge, "timeout too large: above TIMEOUT_MAX"},
  {MAX * 2, "timeout too large: above TIMEOUT_MAX"},
  {1e300, "timeout too large: above TIMEOUT_MAX"},
}

-- f(timeout) must raise "bad argument #<arg> to '<name>' (<reason>)" for every BAD value;
-- after each, check() (if given) confirms that nothing was done.  f runs in a daemon
-- thread (it crosses like a Thread target: lthreading objects in its upvalues are shared),
-- so that a call that waits forever instead of raising fails the spec instead of hanging it.
local function rejects(name, arg, f, check)
  for _, bad in ipairs(BAD) do
    local t = threading.Thread{target = function(fn, v) return pcall(fn, v) end,
                               args = {f, bad[1]}, daemon = true}
    t:start()
    assert.is_true(t:join(5), name .. " waited on the timeout " .. tostring(bad[1]))
    local ok, err = t:result()
    assert.is_false(ok, name .. " accepted the timeout " .. tostring(bad[1]))
    local want = "bad argument #" .. arg .. " to '" .. name .. "' %(" .. bad[2]:gsub("%p", "%%%0") .. "%)"
    assert.matches(want, tostring(err))
    if check then check() end
  end
end

describe("timeouts", function()
  it("TIMEOUT_MAX is Python's value on Linux", function()
    assert.equal(4294967.0, MAX)
  end)

  describe("Lock and RLock acquire", function()
    for _, kind in ipairs({"Lock", "RLock"}) do
      it(kind .. ": NaN or above TIMEOUT_MAX is an error and acquires nothing", function()
        local l = threading[kind]()
        local function free() assert.is_false(l:locked()) end
        rejects("acquire", 2, function(t) return l:acquire(true, t) end, free)
        rejects("acquire", 1, function(t) return l:acquire(t) end, free)
        rejects("acquire", 2, function(t) return l:acquire(false, t) end, free)
        rejects("acquire", 2, function(t) return l(true, t) end, free)     -- __call
      end)

      it(kind .. ": TIMEOUT_MAX, nil and negative timeouts are accepted", function()
        local l = threading[kind]()
        for _, args in ipairs({{true, MAX}, {MAX}, {true, nil}, {true, -1}, {-1}, {false, -1},
                               {true, -math.huge}, {nil, MAX}}) do
          assert.is_true(l:acquire(args[1], args[2]))
          l:release()
        end
      end)
    end
  end)

  describe("Semaphore and BoundedSemaphore acquire", function()
    for _, kind in ipairs({"Semaphore", "BoundedSemaphore"}) do
      it(kind .. ": bad timeouts raise and take nothing; good ones are accepted", function()
        local s = threading[kind](1)
        local function untouched()                    -- the one unit is still there
          assert.is_true(s:acquire(false)); s:release()
        end
        rejects("acquire", 2, function(t) return s:acquire(true, t) end, untouched)
        rejects("acquire", 1, function(t) return s:acquire(t) end, untouched)
        rejects("acquire", 2, function(t) return s:acquire(false, t) end, untouched)
        for _, args in ipairs({{true, MAX}, {MAX}, {true, nil}, {-1}, {false, -1}}) do
          assert.is_true(s:acquire(args[1], args[2]))
          s:release()
        end
      end)
    end
  end)

  describe("Event wait", function()
    it("bad timeouts raise, also on a set event; good ones are accepted", function()
      local e = threading.Event()
      rejects("wait", 1, function(t) return e:wait(t) end)
      e:set()
      rejects("wait", 1, function(t) return e:wait(t) end)
      assert.is_true(e:wait(MAX))
      assert.is_true(e:wait(-1))
      assert.is_true(e:wait(nil))
      assert.is_true(e:wait())
    end)
  end)

  describe("Condition", function()
    -- (over a Lock, which any thread may hold: rejects() calls from another thread)
    it("wait: bad timeouts raise while the lock stays held, nothing queued", function()
      local c = threading.Condition(threading.Lock())
      c:acquire()
      rejects("wait", 1, function(t) return c:wait(t) end, function()
        c:notify()                                    -- still held: notify is allowed
      end)
      assert.matches("<Condition%(.*, 0%)>", tostring(c))    -- no waiter left queued
      c:release()
    end)

    it("wait_for: bad timeouts raise before the predicate is called", function()
      local c = threading.Condition(threading.Lock())
      local calls = threading.Shared({n = 0})
      c:acquire()
      rejects("wait_for", 2, function(t)
        return c:wait_for(function() calls:incr("n"); return true end, t)
      end)
      assert.equal(0, calls.n)
      c:release()
    end)

    it("acquire: bad timeouts raise; good ones are accepted", function()
      local c = threading.Condition(threading.Lock())
      rejects("acquire", 2, function(t) return c:acquire(true, t) end)
      assert.is_true(c:acquire(true, MAX)); c:release()
      assert.is_true(c:acquire(-1)); c:release()
    end)

    it("wait and wait_for accept TIMEOUT_MAX, nil and -1", function()
      local c = threading.Condition()
      c:acquire()
      for _, t in ipairs({MAX, -1, false}) do
        if t == false then t = nil end
        assert.equal("yes", c:wait_for(function() return "yes" end, t))
        -- a notifier can only take the lock once wait() released it: no lost wake-up
        local n = H.spawn(function(cc) cc:acquire(); cc:notify(); cc:release() end, c)
        assert.is_true(c:wait(t))
        H.join(n)
      end
      c:release()
    end)
  end)

  describe("Queue family", function()
    local kinds = {"Queue", "LifoQueue", "PriorityQueue", "SimpleQueue"}
    for _, kind in ipairs(kinds) do
      it(kind .. ": get/put/put_many/get_many/join reject bad timeouts, doing nothing", function()
        local q = threading[kind]()
        local item = {1}
        assert.is_true(q:put(item))
        local function one() assert.equal(1, q:qsize()) end
        rejects("get", 2, function(t) return q:get(true, t) end, one)
        rejects("get", 1, function(t) return q:get(t) end, one)
        rejects("get", 2, function(t) return q:get(false, t) end, one)
        rejects("put", 3, function(t) return q:put(item, true, t) end, one)
        rejects("put", 2, function(t) return q:put(item, t) end, one)
        rejects("put_many", 3, function(t) return q:put_many({item, item}, true, t) end, one)
        rejects("put_many", 2, function(t) return q:put_many({item}, t) end, one)
        rejects("get_many", 3, function(t) return q:get_many(5, true, t) end, one)
        rejects("join", 1, function(t) return q:join(t) end, one)    -- one unfinished
      end)

      it(kind .. ": TIMEOUT_MAX, nil and -1 are accepted", function()
        local q = threading[kind]()
        local item, puts = {1}, 0
        for _, t in ipairs({MAX, -1, false}) do
          if t == false then t = nil end
          assert.is_true(q:put(item, true, t))
          assert.same(item, q:get(true, t))
          if t then
            assert.is_true(q:put(item, t))
            assert.same(item, q:get(t))
            puts = puts + 1
          end
          assert.is_true(q:put_many({item, item}, true, t))
          assert.same({item, item}, q:get_many(5, true, t))
          puts = puts + 3
        end
        if kind ~= "SimpleQueue" then
          for _ = 1, puts do q:task_done() end
          assert.is_true(q:join(MAX))
          assert.is_true(q:join(-1))
          assert.is_true(q:join())
        end
      end)
    end

    it("a bounded Queue: a full queue's put rejects bad timeouts before waiting", function()
      local q = threading.Queue(1)
      q:put(1)
      rejects("put", 3, function(t) return q:put(2, true, t) end)
      assert.equal(1, q:qsize())
      assert.same({nil, "full"}, {q:put(2, true, 0)})
    end)
  end)

  describe("Thread join and sleep", function()
    it("join rejects bad timeouts; the thread is still joinable", function()
      local gate = threading.Event()
      local t = H.spawn(function(g) return g:wait(10) end, gate)
      rejects("join", 1, function(tm) return t:join(tm) end)
      gate:set()
      assert.is_true(t:join(MAX))
      assert.is_true(t:join(-1))
      assert.is_true(t:join(nil))
      assert.is_true(t:result())
    end)

    it("sleep(NaN), sleep(-1) and sleep above TIMEOUT_MAX are errors; sleep(0) returns", function()
      local cases = {
        {0 / 0, "sleep length is NaN"},
        {-1, "sleep length must be non%-negative"},
        {-math.huge, "sleep length must be non%-negative"},
        {math.huge, "sleep length too large: above TIMEOUT_MAX"},
        {MAX * 2, "sleep length too large: above TIMEOUT_MAX"},
      }
      for _, c in ipairs(cases) do
        local dt, ok, err = H.timed(pcall, function() return threading.sleep(c[1]) end)
        assert.is_false(ok)
        assert.matches("bad argument #1 to 'sleep' %(" .. c[2] .. "%)", err)
        assert.is_true(dt < 1)
      end
      threading.sleep(0)
      threading.sleep(0.001)
    end)
  end)

  describe("Barrier", function()
    it("wait rejects bad timeouts without joining the round", function()
      local b = threading.Barrier(2)
      rejects("wait", 1, function(t) return b:wait(t) end, function()
        assert.equal(0, b.n_waiting)
        assert.is_false(b.broken)
      end)
      local b1 = threading.Barrier(1)
      assert.equal(0, b1:wait(MAX))
      assert.equal(0, b1:wait(-1))
      assert.equal(0, b1:wait(nil))
    end)

    it("the constructor's default timeout is checked too", function()
      rejects("Barrier", 3, function(t) return threading.Barrier(2, nil, t) end)
      assert.equal(0, threading.Barrier(1, nil, MAX):wait())
      assert.equal(0, threading.Barrier(1, nil, -1):wait())
    end)
  end)

  describe("Timer", function()
    it("rejects a NaN interval or one above TIMEOUT_MAX", function()
      local ok, err = pcall(function() return threading.Timer(0 / 0, print) end)
      assert.is_false(ok)
      assert.matches("bad argument #1 to 'Timer' %(number up to TIMEOUT_MAX expected, got nan%)", err)
      ok, err = pcall(function() return threading.Timer{interval = math.huge, target = print} end)
      assert.is_false(ok)
      assert.matches("bad option 'interval' to 'Timer' %(number up to TIMEOUT_MAX expected, got inf%)", err)
      local t = threading.Timer(MAX, print)          -- accepted; cancelled before it fires
      t:cancel(); t:start(); H.join(t)
    end)
  end)

  describe("ThreadPoolExecutor and Future", function()
    local pool
    setup(function() pool = threading.ThreadPoolExecutor(2) end)
    teardown(function() pool:shutdown() end)

    it("result and exception reject bad timeouts, also on a done future", function()
      local gate = threading.Event()
      local f = pool:submit(function(g) return g:wait(10) end, gate)
      rejects("result", 1, function(t) return f:result(t) end)
      rejects("exception", 1, function(t) return f:exception(t) end)
      gate:set()
      assert.is_true(f:result(MAX))
      assert.is_true(f:result(-1))
      assert.is_nil(f:exception(MAX))
      rejects("result", 1, function(t) return f:result(t) end)
    end)

    it("map rejects bad timeouts before submitting anything", function()
      local ran = threading.Shared({n = 0})
      rejects("map", 3, function(t)
        return pool:map(function(x) ran:incr("n"); return x end, {1, 2, 3}, t)
      end)
      assert.same({1, 2, 3}, pool:map(function(x) return x end, {1, 2, 3}, MAX))
      assert.same({1, 2, 3}, pool:map(function(x) return x end, {1, 2, 3}, -1))
      assert.equal(0, ran.n)                          -- none of the rejected maps' items ran
    end)

    it("as_completed rejects bad timeouts", function()
      local f = pool:submit(function() return 1 end)
      rejects("as_completed", 2, function(t) return threading.as_completed({f}, t) end)
      for _, t in ipairs({MAX, -1}) do
        local n = 0
        for done in threading.as_completed({f}, t) do
          assert.equal(f, done); n = n + 1
        end
        assert.equal(1, n)
      end
    end)
  end)
end)
