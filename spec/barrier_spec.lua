-- API.md §3: Barrier(parties, [action], [timeout]).
--
-- Thread bodies run in another lua_State with plain globals: they never call busted's
-- assert; they return what they saw and the main thread checks it.  Every wait is bounded.
-- The action crosses by value, so it reports through objects (Semaphores, Events, a Local),
-- which cross by reference.

local threading = require "lthreading"
local H = require "helpers"

local Broken = threading.BrokenBarrierError

-- In a thread: b:wait(timeout), reporting "broken", the error message, or the index.
local function try_wait(b, timeout)
  local ok, err = pcall(b.wait, b, timeout)
  if ok then return err end
  if err == require("lthreading").BrokenBarrierError then return "broken" end
  return tostring(err)
end

-- Start n threads each running try_wait(b, timeout) once.
local function parties(b, n, timeout)
  local ts = {}
  for i = 1, n do ts[i] = H.spawn(try_wait, b, timeout or 10) end
  return ts
end

local function results(ts)
  local r = {}
  for i, t in ipairs(ts) do H.join(t); r[i] = t:result() end
  return r
end

describe("Barrier (API.md §3)", function()
  it("wait() returns indexes 0 .. parties-1, distinct in every round", function()
    local n, rounds = 4, 25
    local b = threading.Barrier(n)
    local ts = {}
    for i = 1, n do
      ts[i] = H.spawn(function(bar, k)
        local got = {}
        for r = 1, k do got[r] = bar:wait(10) end
        return got
      end, b, rounds)
    end
    local seen = {}
    for i = 1, n do H.join(ts[i]); seen[i] = ts[i]:result() end
    for r = 1, rounds do
      local idx = {}
      for i = 1, n do idx[#idx + 1] = seen[i][r] end
      table.sort(idx)
      assert.same({0, 1, 2, 3}, idx, "round " .. r)
    end
  end)

  it("the action runs exactly once per round, in one waiting thread, before any is released", function()
    local n, rounds = 3, 30
    local tokens = threading.Semaphore(0)           -- the action adds n per round
    local loc = threading.Local()                   -- per-thread count of actions run
    local action = function()
      loc.ran = (loc.ran or 0) + 1
      tokens:release(n)
    end
    local b = threading.Barrier(n, action)
    local ts = {}
    for i = 1, n do
      ts[i] = H.spawn(function(bar, tk, lc, k)
        local missing = 0
        for _ = 1, k do
          bar:wait(10)
          if not tk:acquire(false) then missing = missing + 1 end   -- action ran first?
        end
        return missing, lc.ran or 0
      end, b, tokens, loc, rounds)
    end
    local total = 0
    for i = 1, n do
      H.join(ts[i])
      local missing, ran = ts[i]:result()
      assert.equal(0, missing)
      total = total + ran
    end
    assert.equal(rounds, total)                     -- once per round, in the parties
    assert.is_nil(loc.ran)                          -- never in this (non-party) thread
    assert.is_false(tokens:acquire(false))          -- and exactly n tokens per round
  end)

  it("an error in the action breaks the barrier: its thread gets the error, the others BrokenBarrierError", function()
    local b = threading.Barrier(3, function() error("action failed") end)
    local r = results(parties(b, 3))
    table.sort(r)
    assert.equal("broken", r[1])
    assert.equal("broken", r[2])
    assert.matches("action failed", r[3])
    assert.is_true(b.broken)
  end)

  it("a wait that times out breaks the barrier and raises BrokenBarrierError", function()
    local b = threading.Barrier(2)
    local dt, ok, err = H.timed(pcall, b.wait, b, 0.1)
    assert.is_false(ok)
    assert.equal(Broken, err)
    assert.is_true(dt >= 0.09 and dt < 5, "waited " .. dt)
    assert.is_true(b.broken)
  end)

  it("the constructor's timeout is the default; wait(timeout) overrides it", function()
    local b = threading.Barrier(2, nil, 0.1)
    local dt, ok, err = H.timed(pcall, b.wait, b)
    assert.is_false(ok)
    assert.equal(Broken, err)
    assert.is_true(dt >= 0.09 and dt < 5, "waited " .. dt)
    b:reset()
    local t = H.spawn(function(bar) threading.sleep(0.3); return bar:wait(10) end, b)
    local idx = b:wait(10)                          -- longer than the default: no break
    H.join(t)
    local all = {idx, t:result()}
    table.sort(all)
    assert.same({0, 1}, all)
  end)

  it("the other waiters get BrokenBarrierError when one times out", function()
    local b = threading.Barrier(3)
    local ts = parties(b, 1, 10)
    assert.is_true(H.wait_until(function() return b.n_waiting == 1 end, 5))
    local ok, err = pcall(b.wait, b, 0.1)
    assert.is_false(ok)
    assert.equal(Broken, err)
    assert.same({"broken"}, results(ts))
  end)

  it("a wait on a broken barrier raises at once", function()
    local b = threading.Barrier(2)
    b:abort()
    local dt, ok, err = H.timed(pcall, b.wait, b, 5)
    assert.is_false(ok)
    assert.equal(Broken, err)
    assert.is_true(dt < 1)
  end)

  it("abort() breaks the barrier and releases the waiters with BrokenBarrierError", function()
    local b = threading.Barrier(4)
    local ts = parties(b, 3, 10)
    assert.is_true(H.wait_until(function() return b.n_waiting == 3 end, 5))
    b:abort()
    assert.same({"broken", "broken", "broken"}, results(ts))
    assert.is_true(b.broken)
    assert.equal(0, b.n_waiting)
  end)

  it("reset() makes a broken barrier usable again", function()
    local b = threading.Barrier(2)
    b:abort()
    assert.is_true(b.broken)
    b:reset()
    assert.is_false(b.broken)
    local ts = parties(b, 2, 10)
    local r = results(ts)
    table.sort(r)
    assert.same({0, 1}, r)
  end)

  it("reset() while threads wait makes them raise BrokenBarrierError; the barrier is then usable", function()
    local b = threading.Barrier(3)
    local ts = parties(b, 2, 10)
    assert.is_true(H.wait_until(function() return b.n_waiting == 2 end, 5))
    b:reset()
    assert.same({"broken", "broken"}, results(ts))
    assert.is_false(b.broken)
    local r = results(parties(b, 3, 10))
    table.sort(r)
    assert.same({0, 1, 2}, r)
  end)

  it("has the fields parties, n_waiting and broken", function()
    local b = threading.Barrier(3)
    assert.equal(3, b.parties)
    assert.equal(0, b.n_waiting)
    assert.is_false(b.broken)
    local ts = parties(b, 2, 10)
    assert.is_true(H.wait_until(function() return b.n_waiting == 2 end, 5))
    assert.matches("waiters=2/3", tostring(b))
    local idx = b:wait(10)
    assert.equal(2, idx)                            -- the last to arrive
    results(ts)
    assert.equal(0, b.n_waiting)
    assert.is_nil(b.no_such_field)
  end)

  it("is reusable across many rounds", function()
    local n, rounds = 3, 300
    local b = threading.Barrier(n, function() end)
    local ts = {}
    for i = 1, n do
      ts[i] = H.spawn(function(bar, k)
        local sum = 0
        for _ = 1, k do sum = sum + bar:wait(10) end
        return sum
      end, b, rounds)
    end
    local total = 0
    for i = 1, n do H.join(ts[i], 30); total = total + ts[i]:result() end
    assert.equal(rounds * (0 + 1 + 2), total)
    assert.is_false(b.broken)
  end)

  it("with one party, wait() returns 0 at once and runs the action", function()
    local hits = threading.Semaphore(0)
    local b = threading.Barrier(1, function() hits:release() end)
    assert.equal(0, b:wait(1))
    assert.equal(0, b:wait(1))
    assert.is_true(hits:acquire(false))
    assert.is_true(hits:acquire(false))
    assert.is_false(hits:acquire(false))
  end)

  it("BrokenBarrierError is the error value itself, and its tostring is its name", function()
    local b = threading.Barrier(2)
    b:abort()
    local ok, err = pcall(b.wait, b)
    assert.is_false(ok)
    assert.equal(threading.BrokenBarrierError, err)
    assert.equal("BrokenBarrierError", tostring(err))
    assert.equal("broken", H.run(try_wait, b, 1))   -- the same value in other threads
  end)

  it("rejects bad arguments", function()
    local ok, err = pcall(threading.Barrier, 0)
    assert.is_false(ok)
    assert.matches("parties must be > 0", err)
    assert.has_error(function() threading.Barrier() end)
    assert.has_error(function() threading.Barrier(2, 42) end)
    assert.has_error(function() threading.Barrier(2, nil, "soon") end)
    ok = pcall(threading.Barrier, 2, function() return coroutine.running() end)
    assert.is_true(ok)                               -- functions cross; their upvalues too
    local co = coroutine.create(print)
    ok, err = pcall(threading.Barrier, 2, function() return co end)
    assert.is_false(ok)
    assert.matches("cannot transfer action", err)
  end)

  it("names a bad parties, action or timeout", function()
    local function fails(pattern, ...)
      local args = table.pack(...)
      local ok, err = pcall(function() return threading.Barrier(table.unpack(args, 1, args.n)) end)
      assert.is_false(ok, "expected an error matching " .. pattern)
      assert.matches("bad argument " .. pattern, err)
    end
    fails("#1 to 'Barrier' %(parties: number expected, got no value%)")
    fails("#1 to 'Barrier' %(parties: number expected, got string%)", "3")
    fails("#1 to 'Barrier' %(parties: integer expected, got 1%.5%)", 1.5)
    fails("#1 to 'Barrier' %(parties: integer expected, got NaN%)", 0 / 0)
    fails("#1 to 'Barrier' %(parties: integer expected, got inf%)", math.huge)
    fails("#1 to 'Barrier' %(parties must be > 0%)", -2)
    fails("#1 to 'Barrier' %(too many parties%)", 2 ^ 40)
    fails("#2 to 'Barrier' %(action: callable expected, got number%)", 2, 42)
    fails("#3 to 'Barrier' %(number expected, got string%)", 2, nil, "soon")
    fails("#3 to 'Barrier' %(timeout is NaN%)", 2, nil, 0 / 0)
    assert.equal(2, threading.Barrier(2.0).parties)
  end)

  -- The actions reach their barrier through a Shared: a Barrier <-> Shared reference cycle,
  -- which `finally` breaks (a cycle through two objects is never freed).
  it("an action that waits on its own barrier gets an error instead of a deadlock", function()
    local box = threading.Shared()
    finally(function() box.b, box.b2 = nil, nil end)
    local b = threading.Barrier(1, function()
      local ok, err = pcall(function() return box.b:wait(1) end)
      box.ok, box.err = ok, err
    end)
    box.b = b
    -- (a daemon: before the fix this thread deadlocked, and exit would wait for it)
    local t = threading.Thread{target = function(bb) return bb:wait(5) end, args = {b},
                               daemon = true}
    t:start()
    H.join(t, 5)
    assert.equal(0, t:result())
    assert.is_false(box.ok)
    assert.matches("a Barrier's action cannot wait on its own Barrier", box.err)
    assert.is_false(b.broken)                         -- the action caught it: the round went on
    -- uncaught, it is the action's error: the waiter gets it and the barrier is broken
    local b2 = threading.Barrier(1, function() box.b2:wait() end)
    box.b2 = b2
    local t2 = H.spawn(function(bb) return pcall(bb.wait, bb, 5) end, b2)
    H.join(t2, 5)
    local ok, err = t2:result()
    assert.is_false(ok)
    assert.matches("cannot wait on its own Barrier", err)
    assert.is_true(b2.broken)
  end)

  it("an action may reset() or abort() its own barrier: the round's waiters get BrokenBarrierError", function()
    local box = threading.Shared()
    finally(function() box.b = nil end)
    local b = threading.Barrier(2, function() box.b:abort() end)
    box.b = b
    local r = results(parties(b, 2, 5))
    assert.same({"broken", "broken"}, r)
    assert.is_true(b.broken)
    b:reset()
    assert.is_false(b.broken)
  end)

  it("is shared by reference between threads", function()
    local b = threading.Barrier(2)
    assert.equal(b, H.run(function(bar) return bar end, b))
  end)
end)
