-- The blocking protocols with their race windows held open: build/race/lthreading.so (make
-- test builds it with -DLT_TEST_WINDOWS, see LT_TEST_WINDOW in src/lthreading.h) waits a
-- random few dozen microseconds at the points where a waker and a waiter cross (a queue's
-- getters and putters, a Future's waiters, join(), Semaphore, Event and Condition; a
-- Lock's hand-off is a single atomic exchange, checked as it is), and its waiters
-- spin only a few polls, so that they register and park at once.  An interleaving that the real
-- build meets once in millions of hand-offs then comes within a few hundred: a ping-pong
-- through two Queues hung for good, both threads parked beside an item (a wake-up lost to
-- a late `sig`, see signal1 in src/queue.c), in 1 of 20 runs of the benchmark's ping-pong.
-- Every wait in the child is bounded (4 s).  A lost wake-up shows as a wait that ends only
-- at its timeout (then finding its item there, or not): any wait over 2 s fails the spec,
-- where a hand-off with the windows takes well under a millisecond.  `make mutants` runs
-- this spec against broken variants of each protocol (tools/mutants/): each must fail it.

if not package.searchpath("helpers", package.path) then     -- run without the Makefile
  package.path = "spec/?.lua;" .. package.path
end
local H = require "helpers"

local SO = "build/race/lthreading.so"

local function built()
  local f = io.open(SO, "rb")
  if f then f:close() return true end
end

-- The sanitizer runs load their own instrumented module: this one is a plain build, and
-- what it checks (the protocol's logic) is the same in every build.
local sanitized = os.getenv("ASAN_OPTIONS") or os.getenv("TSAN_OPTIONS")

-- Run `body` in a child on build/race, with `th` (the module), `t` (to be set to the Thread),
-- finish(code) (join t, print its result, exit), within(what, i, want, fn): fn() must return
-- want within 2 s, and expect(q, i, what): q:get(4) must return i so.
-- Passes when the child printed "done" (the thread's result) and exited 0.
local function check(body)
  if sanitized then pending("a plain build; the sanitizer runs skip it") return end
  if not built() then pending(SO .. " not built (run through make test)") return end
  local r = H.lua([[           -- (the child runs in our directory, as SO is relative)
    package.cpath = './build/race/?.so;' .. package.cpath
    local th = require 'lthreading'
    local t
    local function finish(code) t:join(10) print(t:result()) os.exit(code) end
    -- fn() (a bounded wait) must return want within 2 s
    local function within(what, i, want, fn)
      local t0 = th.monotonic()
      local v = fn()
      if v ~= want or th.monotonic() - t0 > 2 then
        print(what .. " " .. i .. ": got " .. tostring(v) .. " after " .. (th.monotonic() - t0) .. " s")
        finish(1)
      end
    end
    local function expect(q, i, what) within(what, i, i, function() return q:get(4) end) end
  ]] .. body, 60)
  assert.equal(0, r.code, r.out .. r.err)
  assert.equal("done\n", r.out)
end

describe("wake-ups with the race windows held open (build/race)", function()
  it("a ping-pong through two Queues loses no wake-up", function()
    check([[
      local q1, q2 = th.Queue(), th.Queue()
      t = th.Thread(function(a, b, n)
        local mono = require("lthreading").monotonic
        for i = 1, n do
          local t0 = mono()
          local v = a:get(4)
          if v ~= i or mono() - t0 > 2 then
            return "the thread's get " .. i .. " took " .. (mono() - t0) .. " s: " .. tostring(v)
          end
          b:put(v)
        end
        return "done"
      end, q1, q2, 2000)
      t:start()
      for i = 1, 2000 do q1:put(i); expect(q2, i, "round trip") end
      finish(0)
    ]])
  end)

  it("a putter waiting for room in a bounded Queue is always woken", function()
    check([[
      local q = th.Queue(1)
      t = th.Thread(function(q_, n)
        local mono = require("lthreading").monotonic
        for i = 1, n do
          local t0 = mono()
          if not q_:put(i, true, 4) or mono() - t0 > 2 then
            return "put " .. i .. " took " .. (mono() - t0) .. " s"
          end
        end
        return "done"
      end, q, 3000)
      t:start()
      for i = 1, 3000 do expect(q, i, "get") end
      finish(0)
    ]])
  end)

  it("an Event ping-pong (set, wait, clear) loses no wake-up", function()
    check([[
      local e1, e2 = th.Event(), th.Event()
      t = th.Thread(function(a, b, n)
        for i = 1, n do
          if not a:wait(4) then return "the thread's wait " .. i .. " timed out" end
          a:clear()
          b:set()
        end
        return "done"
      end, e1, e2, 2000)
      t:start()
      for i = 1, 2000 do
        e1:set()
        within("round trip", i, true, function() return e2:wait(4) end)
        e2:clear()
      end
      finish(0)
    ]])
  end)

  it("a Semaphore ping-pong loses no wake-up", function()
    check([[
      local s1, s2 = th.Semaphore(0), th.Semaphore(0)
      t = th.Thread(function(a, b, n)
        for i = 1, n do
          if not a:acquire(true, 4) then return "the thread's acquire " .. i .. " timed out" end
          b:release()
        end
        return "done"
      end, s1, s2, 2000)
      t:start()
      for i = 1, 2000 do
        s1:release()
        within("round trip", i, true, function() return s2:acquire(true, 4) end)
      end
      finish(0)
    ]])
  end)

  it("a contended Lock loses no wake-up", function()
    check([[
      local function rounds(l, n, who)     -- acquire, hold a varying while, release
        local mono = require("lthreading").monotonic
        for i = 1, n do
          local t0 = mono()
          if not l:acquire(true, 4) or mono() - t0 > 2 then
            return who .. "'s acquire " .. i .. " took " .. (mono() - t0) .. " s"
          end
          for _ = 1, i % 50 do end
          l:release()
        end
        return "done"
      end
      local lock = th.Lock()
      t = th.Thread(rounds, lock, 3000, "the thread")
      t:start()
      local r = rounds(lock, 3000, "main")
      if r ~= "done" then print(r) finish(1) end
      finish(0)
    ]])
  end)

  it("a Condition ping-pong (wait, notify) loses no wake-up", function()
    check([[
      local cv, s = th.Condition(th.Lock()), th.Shared({turn = 0})
      t = th.Thread(function(c, sh, n)
        local mono = require("lthreading").monotonic
        for i = 1, n do
          c:acquire()
          local t0 = mono()
          while sh.turn ~= 1 do
            if not c:wait(4) or mono() - t0 > 2 then
              c:release()
              return "the thread's wait " .. i .. " took " .. (mono() - t0) .. " s"
            end
          end
          sh.turn = 0
          c:notify()
          c:release()
        end
        return "done"
      end, cv, s, 2000)
      t:start()
      for i = 1, 2000 do
        cv:acquire()
        s.turn = 1
        cv:notify()
        within("round trip", i, true, function()
          while s.turn ~= 0 do
            if not cv:wait(4) then return false end
          end
          return true
        end)
        cv:release()
      end
      finish(0)
    ]])
  end)

  it("join() and Future:result() see every end", function()
    check([[
      local pool = th.ThreadPoolExecutor(2)
      -- wait 0-300 us (a Thread's whole life here), so that the waits begin at every
      -- point of the other side's end, its publishing of the end included
      local function pause(i)
        local d, t0 = (i * 37 % 100) * 3e-6, th.monotonic()
        while th.monotonic() - t0 < d do end
      end
      for i = 1, 300 do
        local u = th.Thread(function(x) return x end, i)
        u:start()
        pause(i)
        within("join", i, true, function() u:join(4) return not u:is_alive() end)
        local f = pool:submit(function(x) return x end, i)
        pause(i + 50)
        within("result", i, i, function() return f:result(4) end)
      end
      pool:shutdown()
      t = th.Thread(function() return "done" end)
      t:start()
      finish(0)
    ]])
  end)
end)
