-- API.md §3: Lock and RLock, and the lock-like surface they share.
--
-- Thread bodies run in another lua_State with plain globals: they never call busted's
-- assert; they return what they saw and the main thread checks it.  Every wait is bounded.

local threading = require "lthreading"
if not package.searchpath("helpers", package.path) then     -- run without the Makefile
  package.path = "spec/?.lua;" .. package.path
end
local H = require "helpers"

-- The "bad argument" pattern, tolerant of the function name Lua reports.
local function badarg(n, expected, got)
  return "bad argument #" .. n .. " to '[^']*' %(" .. expected .. " expected, got " .. got .. "%)"
end

-- Release l if it is held (cleanup after a failed spec).
local function free(l) return function() if l:locked() then pcall(l.release, l) end end end

-- Mutual exclusion under contention: n threads, each entering the critical section `rounds`
-- times.  Inside, a thread claims `inside` with acquire(false): if another thread were in the
-- critical section at the same time, the claim would fail and count as a violation.
local function contend(lock, n, rounds, reentrant)
  local inside = threading.Lock()
  local ts = {}
  for i = 1, n do
    ts[i] = threading.Thread(function(lk, flag, rounds_, reent)
      local entered, violations, timeouts = 0, 0, 0
      for _ = 1, rounds_ do
        if lk:acquire(10) then
          if reent then lk:acquire() end
          if flag:acquire(false) then
            entered = entered + 1
            local x = 0
            for k = 1, 20 do x = x + k end      -- stay inside a little
            flag:release()
          else
            violations = violations + 1
          end
          if reent then lk:release() end
          lk:release()
        else
          timeouts = timeouts + 1
        end
      end
      return entered, violations, timeouts
    end, lock, inside, rounds, reentrant or false)
  end
  for i = 1, n do ts[i]:start() end
  local entered, violations, timeouts, unjoined = 0, 0, 0, 0
  for i = 1, n do
    if ts[i]:join(30) then
      local e, v, t = ts[i]:result()
      entered, violations, timeouts = entered + e, violations + v, timeouts + t
    else
      unjoined = unjoined + 1
    end
  end
  return entered, violations, timeouts, unjoined
end

describe("Lock (API.md §3)", function()
  it("starts unlocked", function()
    local lock = threading.Lock()
    assert.is_false(lock:locked())
  end)

  it("acquire() takes it and returns true; release() frees it", function()
    local lock = threading.Lock()
    assert.is_true(lock:acquire())
    assert.is_true(lock:locked())
    lock:release()
    assert.is_false(lock:locked())
    assert.is_true(lock:acquire(true))
    lock:release()
    assert.is_true(lock:acquire(nil))
    lock:release()
    assert.is_true(lock:acquire(true, -1))
    lock:release()
  end)

  it("is not reentrant: acquire(false) on a held Lock returns false at once", function()
    local lock = threading.Lock()
    lock:acquire()
    local dt, got = H.timed(lock.acquire, lock, false)
    lock:release()
    assert.is_false(got)
    assert.is_true(dt < 5)
  end)

  it("acquire(true, timeout) returns false once the timeout passes", function()
    local lock = threading.Lock()
    lock:acquire()
    local dt, got = H.timed(lock.acquire, lock, true, 0.2)
    lock:release()
    assert.is_false(got)
    assert.is_true(dt >= 0.15, "returned after " .. dt .. " s")
    assert.is_true(dt < 5, "returned after " .. dt .. " s")
  end)

  it("acquire(2.5) is acquire(true, 2.5)", function()
    local lock = threading.Lock()
    assert.is_true(lock:acquire(2.5))
    local dt, got = H.timed(lock.acquire, lock, 0.2)
    lock:release()
    assert.is_false(got)
    assert.is_true(dt >= 0.15, "returned after " .. dt .. " s")
    assert.is_true(dt < 5, "returned after " .. dt .. " s")
  end)

  it("acquire with a timeout succeeds when another thread releases in time", function()
    local lock = threading.Lock()
    lock:acquire()
    finally(free(lock))
    local t = H.spawn(function(l)
      require("lthreading").sleep(0.1)
      l:release()
    end, lock)
    local dt, got = H.timed(lock.acquire, lock, 5)
    H.join(t)
    assert.is_true(got)
    assert.is_true(dt < 5)
    lock:release()
  end)

  it("a held Lock blocks acquire(false) and acquire(timeout) in another thread", function()
    local lock = threading.Lock()
    lock:acquire()
    finally(free(lock))
    local r = H.runp(function(l)
      local lt = require "lthreading"
      local t0 = lt.monotonic()
      local timed = l:acquire(true, 0.2)
      return l:acquire(false), timed, lt.monotonic() - t0, l:locked()
    end, lock)
    lock:release()
    assert.is_false(r[1])
    assert.is_false(r[2])
    assert.is_true(r[3] >= 0.15, "waited " .. r[3] .. " s")
    assert.is_true(r[4])
  end)

  it("release() of an unlocked Lock is an error", function()
    local lock = threading.Lock()
    assert.has_error(function() lock:release() end)
    lock:acquire()
    lock:release()
    assert.has_error(function() lock:release() end)
    assert.is_false(lock:locked())
  end)

  it("may be released by any thread", function()
    local lock = threading.Lock()
    lock:acquire()
    finally(free(lock))
    H.run(function(l) l:release() end, lock)
    assert.is_false(lock:locked())
    -- and the other way round: a thread takes it, this thread releases it
    local got = H.run(function(l) return l:acquire(false) end, lock)
    assert.is_true(got)
    assert.is_true(lock:locked())
    lock:release()
    assert.is_false(lock:locked())
  end)

  it("locked() shows the state set by another thread", function()
    local lock = threading.Lock()
    finally(free(lock))
    H.run(function(l) l:acquire() end, lock)
    assert.is_true(lock:locked())
    H.run(function(l) l:release() end, lock)
    assert.is_false(lock:locked())
  end)

  describe("__call and <close>", function()
    it("lock() acquires and returns the lock", function()
      local lock = threading.Lock()
      local r = lock()
      assert.is_true(rawequal(lock, r))
      assert.is_true(lock:locked())
      lock:release()
    end)

    it("scopes with local _ <close> = lock()", function()
      local lock = threading.Lock()
      local inside
      do
        local _ <close> = lock()
        inside = lock:locked()
      end
      assert.is_true(inside)
      assert.is_false(lock:locked())
    end)

    it("<close> releases when the scope is left by an error", function()
      local lock = threading.Lock()
      local ok, err = pcall(function()
        local _ <close> = lock()
        error("leaving by error")
      end)
      assert.is_false(ok)
      assert.matches("leaving by error", err)
      assert.is_false(lock:locked())
    end)

    it("lock(...) takes acquire's arguments and returns nil when not acquired", function()
      local lock = threading.Lock()
      lock:acquire()
      finally(free(lock))
      assert.is_nil(lock(false))
      local dt, r = H.timed(lock, 0.2)
      assert.is_nil(r)
      assert.is_true(dt >= 0.15, "returned after " .. dt .. " s")
      assert.is_nil(lock(true, 0.05))
      -- a nil <close> does nothing: the lock stays held by its owner
      do
        local g <close> = lock(false)
        assert.is_nil(g)
      end
      assert.is_true(lock:locked())
      lock:release()
    end)

    it("lock(...) used in another thread returns nil while this one holds it", function()
      local lock = threading.Lock()
      lock:acquire()
      finally(free(lock))
      local r = H.runp(function(l) return l(false) == nil, l(0.05) == nil end, lock)
      lock:release()
      assert.same({n = 2, true, true}, r)
    end)
  end)

  describe("with(f, ...)", function()
    it("calls f(...) holding the lock and returns f's values", function()
      local lock = threading.Lock()
      local r = table.pack(lock:with(function(a, b)
        return lock:locked(), a + b, nil, "end"
      end, 2, 3))
      assert.same({n = 4, true, 5, nil, "end"}, r)
      assert.is_false(lock:locked())
    end)

    it("releases the lock when f raises, and passes the error on", function()
      local lock = threading.Lock()
      local ok, err = pcall(lock.with, lock, function() error("inside with") end)
      assert.is_false(ok)
      assert.matches("inside with", err)
      assert.is_false(lock:locked())
      local e = {code = 3}
      local ok2, err2 = pcall(lock.with, lock, function() error(e) end)
      assert.is_false(ok2)
      assert.same({code = 3}, err2)
      assert.is_false(lock:locked())
    end)

    it("excludes other threads while f runs", function()
      local lock = threading.Lock()
      local r = table.pack(lock:with(function()
        return H.run(function(l) return l:acquire(false) end, lock)
      end))
      assert.same({n = 1, false}, r)
      assert.is_false(lock:locked())
    end)

    it("works inside threads", function()
      local lock = threading.Lock()
      local r = H.runp(function(l)
        local held
        local v = l:with(function(x) held = l:locked(); return x * 2 end, 21)
        return v, held, l:locked()
      end, lock)
      assert.same({n = 3, 42, true, false}, r)
    end)
  end)

  it("gives mutual exclusion under contention", function()
    local lock = threading.Lock()
    local entered, violations, timeouts, unjoined = contend(lock, 8, 2000)
    assert.equal(0, unjoined, "threads still running")
    assert.equal(0, violations, "two threads were inside at once")
    assert.equal(0, timeouts, "acquire(10) timed out")
    assert.equal(8 * 2000, entered)
    assert.is_false(lock:locked())
  end)

  describe("bad arguments", function()
    it("Lock() and RLock() take no arguments", function()
    local ok, err = pcall(function() return threading.Lock(1) end)
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'Lock' %(no arguments expected%)", err)
    ok, err = pcall(function() return threading.RLock({}) end)
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'RLock' %(no arguments expected%)", err)
  end)

  it("acquire with a table is a 'bad argument #1' error", function()
      local lock = threading.Lock()
      assert.has_error(function() lock:acquire({}) end)
      local ok, err = pcall(function() return lock:acquire({}) end)
      assert.is_false(ok)
      assert.matches(badarg(1, "%a+", "table"), err)
      assert.is_false(lock:locked())
    end)

    it("acquire's timeout must be a number: 'bad argument #2 ... (number expected, got string)'", function()
      local lock = threading.Lock()
      local ok, err = pcall(function() return lock:acquire(true, "soon") end)
      assert.is_false(ok)
      assert.matches(badarg(2, "number", "string"), err)
      assert.is_false(lock:locked())
    end)

    it("methods called on something that is not a Lock raise an error", function()
      local lock = threading.Lock()
      assert.has_error(function() lock.acquire({}) end)
      assert.has_error(function() lock.release(42) end)
      assert.has_error(function() lock.locked("x") end)
      local ok, err = pcall(lock.acquire, nil)
      assert.is_false(ok)
      assert.matches("bad argument #1", err)
    end)

    it("with() whose f is not callable raises and leaves the lock free", function()
      local lock = threading.Lock()
      assert.has_error(function() lock:with(42) end)
      assert.is_false(lock:locked())
    end)
  end)
end)

describe("RLock (API.md §3)", function()
  it("starts unlocked", function()
    assert.is_false(threading.RLock():locked())
  end)

  it("may be re-acquired by its owner; released as many times as acquired", function()
    local rl = threading.RLock()
    assert.is_true(rl:acquire())
    assert.is_true(rl:acquire())
    assert.is_true(rl:acquire(false))
    assert.is_true(rl:acquire(true, 0.1))
    assert.is_true(rl:locked())
    rl:release(); rl:release(); rl:release()
    assert.is_true(rl:locked())
    rl:release()
    assert.is_false(rl:locked())
    assert.has_error(function() rl:release() end)
  end)

  it("blocks other threads while held at any depth", function()
    local rl = threading.RLock()
    rl:acquire(); rl:acquire()
    finally(function() while rl:locked() do if not pcall(rl.release, rl) then break end end end)
    local r1 = H.runp(function(l)
      local lt = require "lthreading"
      local t0 = lt.monotonic()
      local timed = l:acquire(0.2)
      return l:acquire(false), timed, lt.monotonic() - t0, l:locked()
    end, rl)
    rl:release()
    local r2 = H.runp(function(l) return l:acquire(false) end, rl)
    rl:release()
    local r3 = H.runp(function(l) local got = l:acquire(false); if got then l:release() end; return got end, rl)
    assert.is_false(r1[1])
    assert.is_false(r1[2])
    assert.is_true(r1[3] >= 0.15, "waited " .. r1[3] .. " s")
    assert.is_true(r1[4])                -- locked() is true for a non-owner too
    assert.same({n = 1, false}, r2)
    assert.same({n = 1, true}, r3)
  end)

  it("release() by a thread that does not own it is an error", function()
    local rl = threading.RLock()
    rl:acquire()
    finally(function() pcall(rl.release, rl) end)
    local ok, still = H.run(function(l)
      local ok = pcall(l.release, l)
      return ok, l:locked()
    end, rl)
    assert.is_false(ok)
    assert.is_true(still)
    assert.is_true(rl:locked())
    rl:release()                         -- the owner still can
    assert.is_false(rl:locked())
  end)

  it("release() of an unheld RLock is an error", function()
    local rl = threading.RLock()
    assert.has_error(function() rl:release() end)
    local ok = H.run(function(l) return pcall(l.release, l) end, rl)
    assert.is_false(ok)
  end)

  it("an RLock held in a thread is owned by that thread", function()
    local rl = threading.RLock()
    local got = H.run(function(l) return l:acquire() end, rl)  -- the thread ends holding it
    assert.is_true(got)
    assert.is_true(rl:locked())
    assert.has_error(function() rl:release() end)  -- main is not the owner
    assert.is_false(rl:acquire(false))
  end)

  it("scopes with <close>, nested", function()
    local rl = threading.RLock()
    local depth2
    do
      local a <close> = rl()
      do
        local b <close> = rl()
        assert.is_true(rawequal(a, rl))
        assert.is_true(rawequal(b, rl))
        depth2 = rl:locked()
      end
      assert.is_true(rl:locked())
    end
    assert.is_true(depth2)
    assert.is_false(rl:locked())
  end)

  it("rl(...) returns nil when not acquired", function()
    local rl = threading.RLock()
    rl:acquire()
    finally(function() pcall(rl.release, rl) end)
    local r = H.runp(function(l) return l(false) == nil, l(0.05) == nil end, rl)
    rl:release()
    assert.same({n = 2, true, true}, r)
  end)

  it("with(f, ...) is reentrant, returns f's values and releases on error", function()
    local rl = threading.RLock()
    local r = table.pack(rl:with(function(x)
      return rl:with(function(y) return y + 1, rl:locked() end, x)
    end, 41))
    assert.same({n = 2, 42, true}, r)
    assert.is_false(rl:locked())
    local ok, err = pcall(rl.with, rl, function()
      rl:acquire()
      rl:release()
      error("rlock with error")
    end)
    assert.is_false(ok)
    assert.matches("rlock with error", err)
    assert.is_false(rl:locked())
    assert.is_true(H.run(function(l) local g = l:acquire(false); if g then l:release() end; return g end, rl))
  end)

  it("gives mutual exclusion under contention, with reentrant acquires", function()
    local rl = threading.RLock()
    local entered, violations, timeouts, unjoined = contend(rl, 8, 1000, true)
    assert.equal(0, unjoined, "threads still running")
    assert.equal(0, violations, "two threads were inside at once")
    assert.equal(0, timeouts, "acquire(10) timed out")
    assert.equal(8 * 1000, entered)
    assert.is_false(rl:locked())
  end)

  it("acquire with a table is a 'bad argument #1' error", function()
    local rl = threading.RLock()
    local ok, err = pcall(function() return rl:acquire({}) end)
    assert.is_false(ok)
    assert.matches(badarg(1, "%a+", "table"), err)
    local ok2, err2 = pcall(function() return rl:acquire(true, {}) end)
    assert.is_false(ok2)
    assert.matches(badarg(2, "number", "table"), err2)
    assert.is_false(rl:locked())
  end)
end)
