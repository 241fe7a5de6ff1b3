-- API.md §3: Condition([lock]).
--
-- Thread bodies run in another lua_State with plain globals: they never call busted's
-- assert; they return what they saw and the main thread checks it.  Every wait is bounded.
-- To know that a thread is inside wait(), the specs use the lock: a thread signals while
-- holding the condition's lock and then waits; once the main thread gets the lock, the
-- waiter has released it, which it only does inside wait(), after queueing itself.

local threading = require "lthreading"
local H = require "helpers"

-- Start `n` waiters on c, one after another, each queued before the next starts.  Waiter i
-- returns what wait(10) returned; it releases `woken` once it holds the lock again.
local function start_waiters(c, n, woken, wait_timeout)
  local ts = {}
  for i = 1, n do
    local ready = threading.Event()
    ts[i] = H.spawn(function(cond, rdy, wk, tmo)
      cond:acquire()
      rdy:set()
      local r = cond:wait(tmo)
      wk:release()
      cond:release()
      return r
    end, c, ready, woken, wait_timeout or 10)
    assert.is_true(ready:wait(5))
    assert.is_true(c:acquire(5))      -- the waiter released it: it is queued
    c:release()
  end
  return ts
end

describe("Condition (API.md §3)", function()
  it("defaults to a new RLock: its owner may acquire it again", function()
    local c = threading.Condition()
    assert.is_true(c:acquire())
    assert.is_true(c:acquire(false))
    assert.is_false(H.run(function(cond) return cond:acquire(false) end, c))
    c:release()
    c:release()
    assert.is_true(H.run(function(cond)
      local ok = cond:acquire(false)
      if ok then cond:release() end
      return ok
    end, c))
    assert.matches("^<Condition%(<unlocked RLock", tostring(c))
  end)

  it("accepts a Lock or an RLock, and rejects anything else", function()
    local lock = threading.Lock()
    local c = threading.Condition(lock)
    assert.is_true(c:acquire())
    assert.is_true(lock:locked())
    assert.is_false(c:acquire(false))              -- a Lock is not reentrant
    c:release()
    assert.is_false(lock:locked())
    assert.is_truthy(threading.Condition(threading.RLock()))
    assert.has_error(function() threading.Condition({}) end)
    assert.has_error(function() threading.Condition(threading.Event()) end)
    local ok, err = pcall(threading.Condition, 42)
    assert.is_false(ok)
    assert.matches("Lock or RLock expected", err)
  end)

  it("acquire takes the lock's arguments and release frees it", function()
    local lock = threading.Lock()
    local c = threading.Condition(lock)
    assert.is_true(c:acquire(true, 1))
    local dt, got = H.timed(c.acquire, c, 0.1)      -- acquire(timeout)
    assert.is_false(got)
    assert.is_true(dt >= 0.09 and dt < 5)
    assert.is_false(c:acquire(false))
    local ok, err = pcall(c.acquire, c, false, 1)
    assert.is_false(ok)
    assert.matches("can't specify a? ?timeout", err)
    c:release()
    local ok2, err2 = pcall(c.release, c)
    assert.is_false(ok2)
    assert.matches("release unlocked lock", err2)
    local rc = threading.Condition()
    local ok3, err3 = pcall(rc.release, rc)
    assert.is_false(ok3)
    assert.matches("cannot release un%-acquired lock", err3)
  end)

  it("has the lock-like surface: __call, <close> and with", function()
    local lock = threading.Lock()
    local c = threading.Condition(lock)
    do
      local held <close> = c()
      assert.equal(c, held)
      assert.is_true(lock:locked())
      assert.is_nil(H.run(function(cond) return cond(false) end, c))
    end
    assert.is_false(lock:locked())
    local a, b = c:with(function(x, y) return lock:locked(), x + y end, 1, 2)
    assert.is_true(a)
    assert.equal(3, b)
    assert.is_false(lock:locked())
    assert.has_error(function() c:with(function() error("inside") end) end)
    assert.is_false(lock:locked())
  end)

  it("wait() without holding the lock is an error", function()
    local c = threading.Condition()
    local ok, err = pcall(c.wait, c, 0.01)
    assert.is_false(ok)
    assert.matches("cannot wait on un%-acquired lock", err)
    ok, err = pcall(c.wait_for, c, function() return false end, 0.01)
    assert.is_false(ok)
    assert.matches("cannot wait on un%-acquired lock", err)
    -- held by another thread does not count for an RLock
    local holding, stop = threading.Event(), threading.Event()
    local t = H.spawn(function(cond, h, s) cond:acquire(); h:set(); s:wait(10); cond:release() end,
                      c, holding, stop)
    assert.is_true(holding:wait(5))
    ok, err = pcall(c.wait, c, 0.01)
    stop:set()
    H.join(t)
    assert.is_false(ok)
    assert.matches("cannot wait on un%-acquired lock", err)
  end)

  it("notify() and notify_all() without holding the lock are errors", function()
    local c = threading.Condition()
    local ok, err = pcall(c.notify, c)
    assert.is_false(ok)
    assert.matches("cannot notify on un%-acquired lock", err)
    ok, err = pcall(c.notify_all, c)
    assert.is_false(ok)
    assert.matches("cannot notify on un%-acquired lock", err)
  end)

  it("notify() with nobody waiting does nothing", function()
    local c = threading.Condition()
    c:acquire()
    c:notify()
    c:notify(5)
    c:notify_all()
    c:release()
  end)

  it("wait(timeout) returns false once the timeout passes, holding the lock again", function()
    local c = threading.Condition()
    c:acquire()
    local dt, r = H.timed(c.wait, c, 0.1)
    assert.is_false(r)
    assert.is_true(dt >= 0.09 and dt < 5, "waited " .. dt)
    assert.is_false(H.run(function(cond) return cond:acquire(false) end, c))  -- still ours
    c:release()
    c:acquire()
    assert.is_false(c:wait(0))
    c:release()
  end)

  it("wait() returns true when another thread notifies", function()
    local c = threading.Condition()
    local woken = threading.Semaphore(0)
    local ts = start_waiters(c, 1, woken)
    c:acquire()
    c:notify()
    c:release()
    assert.is_true(woken:acquire(5))
    H.join(ts[1])
    assert.is_true(ts[1]:result())
  end)

  it("wait() and notify() work with a plain Lock", function()
    local c = threading.Condition(threading.Lock())
    local woken = threading.Semaphore(0)
    local ts = start_waiters(c, 2, woken)
    c:acquire()
    c:notify_all()
    c:release()
    for _, t in ipairs(ts) do H.join(t); assert.is_true(t:result()) end
  end)

  it("wait() fully releases an RLock held at any depth and restores that depth", function()
    local c = threading.Condition()
    local ready = threading.Event()
    local t = H.spawn(function(cond, rdy)
      for _ = 1, 3 do cond:acquire() end
      rdy:set()
      local r = cond:wait(10)
      local released = 0
      while pcall(cond.release, cond) do released = released + 1 end
      return r, released
    end, c, ready)
    assert.is_true(ready:wait(5))
    assert.is_true(c:acquire(5))              -- free although its owner is 3 deep
    c:notify()
    c:release()
    H.join(t)
    local r, released = t:result()
    assert.is_true(r)
    assert.equal(3, released)                 -- depth 3 restored, then nothing more
  end)

  it("wakes waiters in FIFO order", function()
    local c = threading.Condition()
    local n = 5
    local woken = {}
    local ts = {}
    for i = 1, n do
      local ready = threading.Event()
      woken[i] = threading.Event()
      ts[i] = H.spawn(function(cond, rdy, wk)
        cond:acquire()
        rdy:set()
        local r = cond:wait(10)
        wk:set()
        cond:release()
        return r
      end, c, ready, woken[i])
      assert.is_true(ready:wait(5))
      assert.is_true(c:acquire(5))
      c:release()
    end
    for i = 1, n do
      c:acquire()
      c:notify()
      c:release()
      assert.is_true(woken[i]:wait(5), "waiter " .. i .. " was not woken")
      for j = i + 1, n do
        assert.is_false(woken[j]:is_set(), "waiter " .. j .. " woke before waiter " .. i)
      end
    end
    for i = 1, n do H.join(ts[i]); assert.is_true(ts[i]:result()) end
  end)

  it("notify(n) wakes exactly up to n waiters; notify_all() wakes the rest", function()
    local c = threading.Condition()
    local woken = threading.Semaphore(0)
    local ts = start_waiters(c, 5, woken)
    c:acquire()
    c:notify(2)
    c:release()
    assert.is_true(woken:acquire(5))
    assert.is_true(woken:acquire(5))
    assert.is_false(woken:acquire(0.2))       -- no third one
    c:acquire()
    c:notify_all()
    c:release()
    for _ = 1, 3 do assert.is_true(woken:acquire(5)) end
    for _, t in ipairs(ts) do H.join(t); assert.is_true(t:result()) end
  end)

  it("notifyAll is an alias of notify_all", function()
    local c = threading.Condition()
    local woken = threading.Semaphore(0)
    local ts = start_waiters(c, 3, woken)
    c:acquire()
    c:notifyAll()
    c:release()
    for _, t in ipairs(ts) do H.join(t); assert.is_true(t:result()) end
  end)

  it("a waiter whose timeout passed is no longer queued: notify wakes the next one", function()
    local c = threading.Condition()
    local woken = threading.Semaphore(0)
    local first = start_waiters(c, 1, woken, 0.05)[1]
    H.join(first)
    assert.is_false(first:result())
    local second = start_waiters(c, 1, woken)[1]
    c:acquire()
    c:notify(1)
    c:release()
    H.join(second)
    assert.is_true(second:result())
  end)

  it("wait_for returns the predicate's value at once when it is already true", function()
    local c = threading.Condition()
    c:acquire()
    local calls = 0
    local r = c:wait_for(function() calls = calls + 1; return "ready" end, 5)
    c:release()
    assert.equal("ready", r)
    assert.equal(1, calls)
  end)

  it("wait_for returns the predicate's last value once the timeout passes", function()
    local c = threading.Condition()
    c:acquire()
    local dt, r = H.timed(c.wait_for, c, function() return nil end, 0.1)
    c:release()
    assert.is_nil(r)
    assert.is_true(dt >= 0.09 and dt < 5, "waited " .. dt)
    c:acquire()
    assert.is_false(c:wait_for(function() return false end, 0))
    c:release()
  end)

  it("wait_for keeps one overall timeout across wake-ups that leave the predicate false", function()
    local c = threading.Condition()
    local stop = threading.Event()
    local t = H.spawn(function(cond, s)             -- notifies every 10 ms
      local n = 0
      while not s:wait(0.01) do
        cond:acquire(); cond:notify_all(); cond:release()
        n = n + 1
      end
      return n
    end, c, stop)
    c:acquire()
    local calls = 0
    local dt, r = H.timed(c.wait_for, c, function() calls = calls + 1; return false end, 0.3)
    c:release()
    stop:set()
    H.join(t)
    assert.is_false(r)
    assert.is_true(dt >= 0.29 and dt < 3, "waited " .. dt)
    assert.is_true(calls > 2, "predicate called " .. calls .. " times")
  end)

  it("wait_for returns once another thread makes the predicate true", function()
    local c = threading.Condition()
    local flag = threading.Event()                  -- the shared state the predicate reads
    c:acquire()
    local t = H.spawn(function(cond, f)
      threading.sleep(0.05)
      cond:acquire(); f:set(); cond:notify(); cond:release()
    end, c, flag)
    local r = c:wait_for(function() return flag:is_set() and "done" end, 10)
    c:release()
    H.join(t)
    assert.equal("done", r)
  end)

  it("wait_for passes the predicate's error on", function()
    local c = threading.Condition()
    c:acquire()
    local ok, err = pcall(c.wait_for, c, function() error("pred failed") end, 1)
    c:release()
    assert.is_false(ok)
    assert.matches("pred failed", err)
  end)

  it("is shared by reference between threads", function()
    local c = threading.Condition()
    local back = H.run(function(cond) return cond end, c)
    assert.equal(c, back)
  end)

  it("names a bad lock", function()
    for _, bad in ipairs({{5, "number"}, {{}, "table"}, {threading.Semaphore(), "lthreading%.Semaphore"},
                          {threading.Condition(), "lthreading%.Condition"}}) do
      local ok, err = pcall(function() return threading.Condition(bad[1]) end)
      assert.is_false(ok)
      assert.matches("bad argument #1 to 'Condition' %(lock: Lock or RLock expected, got "
                     .. bad[2] .. "%)", err)
    end
  end)

  it("a wait_for predicate may notify, and may wait itself", function()
    local c = threading.Condition()
    c:acquire()
    local calls = 0
    local v = c:wait_for(function()
      calls = calls + 1
      c:notify_all()                                   -- no waiter: harmless
      if calls == 1 then return c:wait(0.01) and "notified" or false end
      return "second"
    end, 0.2)                                          -- the outer wait times out, then "second"
    assert.equal("second", v)
    c:release()
  end)

  it("a wait_for predicate that releases the lock gets 'un-acquired lock', not a hang", function()
    local c = threading.Condition(threading.Lock())
    c:acquire()
    local ok, err = pcall(function()
      return c:wait_for(function() c:release(); return false end, 5)
    end)
    assert.is_false(ok)
    assert.matches("cannot wait on un%-acquired lock", err)
    assert.is_true(c:acquire(false))                   -- the lock is free again
    c:release()
  end)

  it("rejects bad arguments", function()
    local c = threading.Condition()
    assert.has_error(function() c:acquire({}) end)
    c:acquire()
    assert.has_error(function() c:wait("soon") end)
    assert.has_error(function() c:notify("all") end)
    c:release()
    assert.has_error(function() c.wait(threading.Lock()) end)
  end)
end)
