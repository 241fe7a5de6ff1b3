-- API.md §3: Semaphore([value = 1]) and BoundedSemaphore([value = 1]).
--
-- Thread bodies run in another lua_State with plain globals: they never call busted's
-- assert; they return what they saw and the main thread checks it.  Every wait is bounded.

local threading = require "lthreading"
local H = require "helpers"

-- How many acquire(false) succeed right now (and then give them back).
local function available(s)
  local n = 0
  while n < 1000 and s:acquire(false) do n = n + 1 end
  if n > 0 then s:release(n) end
  return n
end

-- n threads, each entering s `rounds` times.  Inside, a thread claims a slot of `probe`
-- (a Semaphore of the same size) with acquire(false): with more than `size` threads inside
-- at once, a claim fails and counts as a violation.
local function contend(s, size, n, rounds)
  local probe = threading.Semaphore(size)
  local ts = {}
  for i = 1, n do
    ts[i] = H.spawn(function(sem, pr, rnds)
      local entered, violations, timeouts = 0, 0, 0
      for _ = 1, rnds do
        if sem:acquire(10) then
          if pr:acquire(false) then
            entered = entered + 1
            local x = 0
            for k = 1, 50 do x = x + k end
            pr:release()
          else
            violations = violations + 1
          end
          sem:release()
        else
          timeouts = timeouts + 1
        end
      end
      return entered, violations, timeouts
    end, s, probe, rounds)
  end
  local entered, violations, timeouts = 0, 0, 0
  for i = 1, n do
    H.join(ts[i], 30)
    local e, v, t = ts[i]:result()
    entered, violations, timeouts = entered + e, violations + v, timeouts + t
  end
  return entered, violations, timeouts
end

-- The promises both classes keep.
local function common(name)
  local new = threading[name]

  it("defaults to a value of 1", function()
    local s = new()
    assert.is_true(s:acquire(false))
    assert.is_false(s:acquire(false))
    s:release()
    assert.is_true(s:acquire(false))
  end)

  it("acquire() decrements the value; at 0 acquire(false) fails at once", function()
    local s = new(3)
    assert.equal(3, available(s))
    assert.is_true(s:acquire())
    assert.is_true(s:acquire(true))
    assert.equal(1, available(s))
    assert.is_true(s:acquire(nil))
    local dt, got = H.timed(s.acquire, s, false)
    assert.is_false(got)
    assert.is_true(dt < 1)
    s:release()
    s:release()
    s:release()
    assert.equal(3, available(s))
  end)

  it("a value of 0 starts exhausted", function()
    local s = new(0)
    assert.is_false(s:acquire(false))
  end)

  it("acquire(timeout) returns false once the timeout passes; acquire(2.5) is acquire(true, 2.5)", function()
    local s = new(0)
    local dt, got = H.timed(s.acquire, s, 0.1)
    assert.is_false(got)
    assert.is_true(dt >= 0.09 and dt < 5, "waited " .. dt)
    dt, got = H.timed(s.acquire, s, true, 0.1)
    assert.is_false(got)
    assert.is_true(dt >= 0.09 and dt < 5, "waited " .. dt)
    assert.is_false(s:acquire(0))
  end)

  it("a timeout with blocking = false is an error", function()
    local s = new()
    local ok, err = pcall(s.acquire, s, false, 1)
    assert.is_false(ok)
    assert.matches("can't specify timeout for non%-blocking acquire", err)
    assert.equal(1, available(s))                  -- nothing taken
  end)

  it("a blocked acquire returns true once another thread releases", function()
    local s = new(1)
    assert.is_true(s:acquire())
    local t = H.spawn(function(sem)
      local t0 = threading.monotonic()
      local got = sem:acquire(10)
      return got, threading.monotonic() - t0
    end, s)
    threading.sleep(0.1)
    s:release()
    H.join(t)
    local got, waited = t:result()
    assert.is_true(got)
    assert.is_true(waited >= 0.05 and waited < 10, "waited " .. waited)
  end)

  it("release(n) wakes up to n waiters", function()
    local s = new(5)
    for _ = 1, 5 do assert.is_true(s:acquire(false)) end
    local got = threading.Semaphore(0)
    local ts = {}
    for i = 1, 5 do
      ts[i] = H.spawn(function(sem, g)
        local ok = sem:acquire(10)
        if ok then g:release() end
        return ok
      end, s, got)
    end
    threading.sleep(0.05)
    s:release(3)
    for _ = 1, 3 do assert.is_true(got:acquire(5)) end
    assert.is_false(got:acquire(0.2))              -- no fourth one
    s:release(2)
    for _ = 1, 2 do assert.is_true(got:acquire(5)) end
    for _, t in ipairs(ts) do H.join(t); assert.is_true(t:result()) end
    assert.equal(0, available(s))
  end)

  it("release(n) with n < 1 is an error", function()
    local s = new(2)
    s:acquire()
    local ok, err = pcall(s.release, s, 0)
    assert.is_false(ok)
    assert.matches("n must be one or more", err)
    ok, err = pcall(s.release, s, -1)
    assert.is_false(ok)
    assert.matches("n must be one or more", err)
    assert.equal(1, available(s))                  -- nothing released
  end)

  it("a negative initial value is an error", function()
    local ok, err = pcall(new, -1)
    assert.is_false(ok)
    assert.matches("initial value must be >= 0", err)
    assert.has_error(function() new("x") end)
  end)

  it("never lets more than value threads in at once", function()
    local s = new(3)
    local entered, violations, timeouts = contend(s, 3, 8, 200)
    assert.equal(0, violations)
    assert.equal(0, timeouts)
    assert.equal(8 * 200, entered)
    assert.equal(3, available(s))
  end)

  it("may be released by any thread", function()
    local s = new(1)
    assert.is_true(s:acquire())
    H.run(function(sem) sem:release() end, s)
    assert.is_true(s:acquire(false))
  end)

  it("scopes with __call and <close>; s(...) returns nil when not acquired", function()
    local s = new(1)
    do
      local held <close> = s()
      assert.equal(s, held)
      assert.equal(0, available(s))
      assert.is_nil(s(false))
      assert.is_nil(s(0.01))
    end
    assert.equal(1, available(s))
  end)

  it("with(f, ...) acquires, returns f's values and releases even on error", function()
    local s = new(2)
    local a, b = s:with(function(x) return available(s), x end, "y")
    assert.equal(1, a)
    assert.equal("y", b)
    assert.equal(2, available(s))
    assert.has_error(function() s:with(function() error("inside") end) end)
    assert.equal(2, available(s))
  end)

  it("is shared by reference between threads", function()
    local s = new(2)
    assert.equal(s, H.run(function(sem) sem:acquire(); return sem end, s))
    assert.equal(1, available(s))
  end)

  it("tostring shows the value", function()
    local s = new(2)
    assert.matches("value=2", tostring(s))
    assert.matches(name, tostring(s))
  end)
end

describe("Semaphore and BoundedSemaphore constructors", function()
  it("name a bad value: not a number, not an integer, negative, too large", function()
    local ctors = {   -- called by name, so that the error names the function
      Semaphore = function(...) return threading.Semaphore(...) end,
      BoundedSemaphore = function(...) return threading.BoundedSemaphore(...) end,
    }
    for _, kind in ipairs({"Semaphore", "BoundedSemaphore"}) do
      local function fails(pattern, v)
        local ok, err = pcall(ctors[kind], v)
        assert.is_false(ok, "expected an error matching " .. pattern)
        assert.matches("bad argument #1 to '" .. kind .. "' %(value: " .. pattern .. "%)", err)
      end
      fails("integer expected, got NaN", 0 / 0)
      fails("integer expected, got 1%.5", 1.5)
      fails("integer expected, got inf", math.huge)
      fails("integer expected, got %-inf", -math.huge)
      fails("number expected, got string", "x")
      fails("number expected, got table", {})
      fails("semaphore initial value must be >= 0", -1)
      fails("semaphore initial value too large", 2 ^ 40)
      assert.equal(2, available(ctors[kind](2.0)))
      assert.equal(1, available(ctors[kind]()))
      assert.equal(0, available(ctors[kind](0)))
    end
  end)
end)

describe("Semaphore (API.md §3)", function()
  common("Semaphore")

  it("release() may raise the value above the initial one", function()
    local s = threading.Semaphore(1)
    s:release()
    s:release(3)
    assert.equal(5, available(s))
  end)
end)

describe("BoundedSemaphore (API.md §3)", function()
  common("BoundedSemaphore")

  it("a release above the initial value is an error and releases nothing", function()
    local s = threading.BoundedSemaphore(2)
    local ok, err = pcall(s.release, s)
    assert.is_false(ok)
    assert.matches("Semaphore released too many times", err)
    assert.equal(2, available(s))
    assert.is_true(s:acquire())
    ok, err = pcall(s.release, s, 2)               -- 1 + 2 > 2: nothing released
    assert.is_false(ok)
    assert.matches("Semaphore released too many times", err)
    assert.equal(1, available(s))
    s:release(1)
    assert.equal(2, available(s))
  end)

  it("release(n) up to the initial value is fine", function()
    local s = threading.BoundedSemaphore(3)
    for _ = 1, 3 do s:acquire() end
    s:release(3)
    assert.equal(3, available(s))
  end)

  it("an over-release from another thread is an error there too", function()
    local s = threading.BoundedSemaphore(1)
    local ok, err = H.run(function(sem) return pcall(sem.release, sem) end, s)
    assert.is_false(ok)
    assert.matches("released too many times", err)
  end)
end)
