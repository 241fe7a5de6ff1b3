-- API.md §3: Timer(interval, f, ...) and Timer{interval =, target =, args =}.
--
-- Thread bodies run in another lua_State with plain globals: they never call busted's
-- assert; they return what they saw and the main thread checks it.  Every wait is bounded.
-- A timer's target reports that it ran by setting an Event (objects cross by reference).

local threading = require "lthreading"
local H = require "helpers"

describe("Timer (API.md §3)", function()
  it("calls f(...) after interval seconds, in its own thread, nils kept", function()
    local fired = threading.Event()
    local t0 = threading.monotonic()
    local t = threading.Timer(0.1, function(ev, a, b, c)
      ev:set()
      return threading.monotonic(), threading.get_ident(), a, b, c
    end, fired, 1, nil, 3)
    t:start()
    H.join(t)
    local at, ident, a, b, c = t:result()
    assert.is_true(fired:is_set())
    assert.is_true(at - t0 >= 0.09, "fired after " .. (at - t0))
    assert.are_not.equal(threading.get_ident(), ident)
    assert.equal(t.ident, ident)
    assert.same({1, nil, 3}, {a, b, c})
  end)

  it("Timer{interval =, target =, args =} also works, with name and daemon", function()
    local fired = threading.Event()
    local t = threading.Timer{interval = 0.05, target = function(ev, x) ev:set(); return x * 2 end,
                              args = {fired, 21}, name = "alarm", daemon = true}
    assert.equal("alarm", t.name)
    assert.is_true(t.daemon)
    assert.equal(0.05, t.interval)
    t:start()
    H.join(t)
    assert.is_true(fired:is_set())
    assert.equal(42, t:result())
  end)

  it("is a Thread: name, is_alive, join, daemon, start once", function()
    local t = threading.Timer(0.3, function() end)
    assert.matches("^Thread%-%d+$", t.name)
    t.name = "tick"
    assert.equal("tick", t:getName())
    assert.is_false(t.daemon)
    t.daemon = true
    assert.is_true(t:isDaemon())
    assert.is_false(t:is_alive())
    assert.has_error(function() t:join(0.01) end)  -- not started yet
    t:start()
    assert.is_true(t:is_alive())
    assert.is_false(t:join(0.05))                  -- still waiting out its interval
    assert.has_error(function() t.daemon = false end)
    local ok, err = pcall(t.start, t)
    assert.is_false(ok)
    assert.matches("threads can only be started once", err)
    H.join(t)
    assert.is_false(t:is_alive())
    assert.equal(threading.Thread, getmetatable(threading.Timer).__index)  -- Thread:extend()
    assert.is_truthy(tostring(t):match("tick"))
  end)

  it("cancel() before it fires prevents the call", function()
    local fired = threading.Event()
    local t = threading.Timer(0.5, function(ev) ev:set() end, fired)
    t:start()
    threading.sleep(0.05)
    t:cancel()
    H.join(t)
    assert.is_false(fired:is_set())
    assert.is_false(fired:wait(0.6))               -- past the interval: still not called
    assert.equal(0, select("#", t:result()))
  end)

  it("cancel() before start() prevents the call", function()
    local fired = threading.Event()
    local t = threading.Timer(0.05, function(ev) ev:set() end, fired)
    t:cancel()
    t:start()
    H.join(t)
    assert.is_false(fired:wait(0.1))
  end)

  it("cancel() after it fired is harmless", function()
    local t = threading.Timer(0.01, function() return "done" end)
    t:start()
    H.join(t)
    t:cancel()
    t:cancel()
    assert.equal("done", t:result())
    assert.is_true(t.finished:is_set())
  end)

  it("a zero or negative interval fires at once", function()
    for _, interval in ipairs{0, -1} do
      local t = threading.Timer(interval, function() return "now" end)
      t:start()
      H.join(t, 5)
      assert.equal("now", t:result())
    end
  end)

  it("an error in f goes to the excepthook and is raised by result()", function()
    local restore = H.quiet_hook()
    local t = threading.Timer(0.01, function() error("timer failed") end)
    t:start()
    local ok = t:join(10)
    restore()
    assert.is_true(ok)
    local rok, err = pcall(t.result, t)
    assert.is_false(rok)
    assert.matches("timer failed", err)
  end)

  it("needs a number as interval", function()
    local ok, err = pcall(threading.Timer, "soon", function() end)
    assert.is_false(ok)
    assert.matches("number expected", err)
    assert.has_error(function() threading.Timer{target = function() end} end)
  end)

  it("can be subclassed with extend()", function()
    local Alarm = threading.Timer:extend()
    function Alarm:run()
      threading.Timer.run(self)
      self.rang = true
    end
    local a = Alarm(0.01, function() end)
    a:start()
    H.join(a)
    assert.is_true(a.rang)
  end)

  it("crosses threads by name: a thread can make and cancel its own Timers", function()
    local r = H.runp(function(Timer)
      local fired = 0
      local t1 = Timer(0.01, function() return "one" end)
      t1:start(); t1:join(10)
      local t2 = Timer(0.5, function() return "two" end)
      t2:start(); t2:cancel(); t2:join(10)
      if select("#", t2:result()) == 0 then fired = fired + 1 end
      return t1:result(), fired, Timer == require("lthreading").Timer
    end, threading.Timer)
    assert.same({n = 3, "one", 1, true}, r)
  end)
end)
