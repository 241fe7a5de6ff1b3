-- The queues' wake-up protocol with its race windows held open: build/race/lthreading.so
-- (make test builds it with -DLT_TEST_WINDOWS, see LT_TEST_WINDOW in src/lthreading.h)
-- waits a few dozen microseconds at the points where a waker and a waiter can cross, and
-- its waiters spin one poll only, so that they register and park at once.  An interleaving
-- that the real build meets once in millions of round trips (a ping-pong through two
-- Queues hung for good, both threads parked beside an item: a wake-up lost to a late
-- `sig`, see signal1 in src/queue.c) then comes within a few hundred.
-- Every wait in the child is bounded (4 s).  A lost wake-up shows as a wait that ends only
-- at its timeout (then finding its item there, or not): any wait over 2 s fails the spec,
-- where a hand-off with the windows takes well under a millisecond.

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
-- finish(code) (join t, print its result, exit) and expect(q, i, what): q:get(4) here must
-- return i within 2 s, where a hand-off with the windows takes well under a millisecond.
-- Passes when the child printed "done" (the thread's result) and exited 0.
local function check(body)
  if sanitized then pending("a plain build; the sanitizer runs skip it") return end
  if not built() then pending(SO .. " not built (run through make test)") return end
  local r = H.lua([[           -- (the child runs in our directory, as SO is relative)
    package.cpath = './build/race/?.so;' .. package.cpath
    local th = require 'lthreading'
    local t
    local function finish(code) t:join(10) print(t:result()) os.exit(code) end
    local function expect(q, i, what)
      local t0 = th.monotonic()
      local v = q:get(4)
      if v ~= i or th.monotonic() - t0 > 2 then
        print(what .. " " .. i .. ": got " .. tostring(v) .. " after " .. (th.monotonic() - t0) .. " s")
        finish(1)
      end
    end
  ]] .. body, 60)
  assert.equal(0, r.code, r.out .. r.err)
  assert.equal("done\n", r.out)
end

describe("Queue wake-ups with the race windows held open (build/race)", function()
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
end)
