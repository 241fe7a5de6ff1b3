-- API.md §3: Event().
--
-- Thread bodies run in another lua_State with plain globals: they never call busted's
-- assert; they return what they saw and the main thread checks it.  Every wait is bounded.

local threading = require "lthreading"
local H = require "helpers"

-- Start n threads that each return ev:wait(timeout) and the seconds it took; `started`
-- (a Semaphore) is released by each just before it waits.
local function waiters(ev, n, timeout, started)
  local ts = {}
  for i = 1, n do
    ts[i] = H.spawn(function(e, tmo, st)
      local t0 = threading.monotonic()
      st:release()
      local r = e:wait(tmo)
      return r, threading.monotonic() - t0
    end, ev, timeout, started)
  end
  for _ = 1, n do assert.is_true(started:acquire(5)) end
  return ts
end

describe("Event (API.md §3)", function()
  it("starts unset", function()
    local e = threading.Event()
    assert.is_false(e:is_set())
    assert.matches("unset", tostring(e))
  end)

  it("set() sets the flag, clear() clears it, is_set() reports it", function()
    local e = threading.Event()
    e:set()
    assert.is_true(e:is_set())
    e:set()                                   -- setting twice is harmless
    assert.is_true(e:is_set())
    e:clear()
    assert.is_false(e:is_set())
    e:clear()
    assert.is_false(e:is_set())
    assert.is_false(e:isSet())                -- Python's old alias
  end)

  it("wait() returns true at once when the flag is set", function()
    local e = threading.Event()
    e:set()
    local dt, r = H.timed(e.wait, e)
    assert.is_true(r)
    assert.is_true(dt < 1)
    assert.is_true(e:wait(0))
    assert.is_true(e:wait(5))
  end)

  it("wait(timeout) returns false once the timeout passes", function()
    local e = threading.Event()
    local dt, r = H.timed(e.wait, e, 0.1)
    assert.is_false(r)
    assert.is_true(dt >= 0.09 and dt < 5, "waited " .. dt)
    dt, r = H.timed(e.wait, e, 0)
    assert.is_false(r)
    assert.is_true(dt < 1)
  end)

  it("wait() with nil or a negative timeout waits until set", function()
    local e = threading.Event()
    local started = threading.Semaphore(0)
    local ts = waiters(e, 2, nil, started)
    local tn = waiters(e, 1, -1, started)[1]
    threading.sleep(0.1)
    assert.is_true(ts[1]:is_alive() and ts[2]:is_alive() and tn:is_alive())
    e:set()
    for _, t in ipairs{ts[1], ts[2], tn} do
      H.join(t)
      local r, waited = t:result()
      assert.is_true(r)
      assert.is_true(waited >= 0.05, "waited " .. waited)
    end
  end)

  it("set() wakes every waiter", function()
    local e = threading.Event()
    local started = threading.Semaphore(0)
    local ts = waiters(e, 6, 10, started)
    threading.sleep(0.05)
    e:set()
    for _, t in ipairs(ts) do
      H.join(t)
      assert.is_true((t:result()))
    end
  end)

  it("wait() returns true when the flag was set, even if cleared again before the waiter ran", function()
    for _ = 1, 5 do
      local e = threading.Event()
      local started = threading.Semaphore(0)
      local ts = waiters(e, 4, 10, started)
      threading.sleep(0.02)
      e:set()
      e:clear()
      for _, t in ipairs(ts) do
        H.join(t)
        local r, waited = t:result()
        assert.is_true(r)
        assert.is_true(waited < 9, "woke only at the timeout")
      end
      assert.is_false(e:is_set())
    end
  end)

  it("a set() from one thread releases a waiter in another", function()
    local e = threading.Event()
    local started = threading.Semaphore(0)
    local w = waiters(e, 1, 10, started)[1]
    local setter = H.spawn(function(ev) threading.sleep(0.05); ev:set() end, e)
    H.join(setter)
    H.join(w)
    assert.is_true((w:result()))
    assert.is_true(e:is_set())
  end)

  it("works as a stop signal for a worker", function()
    local stop = threading.Event()
    local t = H.spawn(function(s)
      local n = 0
      while not s:is_set() do n = n + 1; threading.sleep(0.001) end
      return n
    end, stop)
    threading.sleep(0.05)
    stop:set()
    H.join(t)
    assert.is_true(t:result() >= 1)
  end)

  it("hands off back and forth between two threads (ping-pong) without losing a wake-up", function()
    local e1, e2 = threading.Event(), threading.Event()
    local n = 3000
    local t = H.spawn(function(a, b, rounds)
      for i = 1, rounds do
        if not a:wait(10) then return i end
        a:clear()
        b:set()
      end
      return rounds
    end, e1, e2, n)
    local done = 0
    for _ = 1, n do
      e1:set()
      if not e2:wait(10) then break end
      e2:clear()
      done = done + 1
    end
    H.join(t, 30)
    assert.equal(n, done)
    assert.equal(n, t:result())
  end)

  it("is shared by reference between threads", function()
    local e = threading.Event()
    local back = H.run(function(ev) ev:set(); return ev end, e)
    assert.equal(e, back)
    assert.is_true(e:is_set())
  end)

  it("Event() takes no arguments", function()
    local ok, err = pcall(function() return threading.Event(true) end)
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'Event' %(no arguments expected%)", err)
  end)

  it("rejects bad arguments", function()
    local e = threading.Event()
    assert.has_error(function() e:wait("later") end)
    assert.has_error(function() e.set(threading.Lock()) end)
    assert.has_error(function() e.wait({}) end)
  end)

  it("survives a long set/wait/clear ping-pong (no wake-up without a set)", function()
    -- a set() preempted between its flag and its generation once woke a later wait()
    -- that no set() answered: the two sides then waited for each other for ever
    local e1, e2 = threading.Event(), threading.Event()
    local n = 5000
    local t = threading.Thread(function(a, b, k)
      for i = 1, k do
        if not a:wait(10) then return i end
        a:clear(); b:set()
      end
      return "done"
    end, e1, e2, n)
    t:start()
    local stuck
    for i = 1, n do
      e1:set()
      if not e2:wait(10) then stuck = i break end
      e2:clear()
    end
    if stuck then e1:set() end
    assert.is_true(t:join(20))
    assert.is_nil(stuck)
    assert.equal("done", t:result())
  end)
end)
