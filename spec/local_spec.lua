-- API.md §3: Local([defaults]), also threading["local"].
--
-- Thread bodies run in another lua_State with plain globals: they never call busted's
-- assert; they return what they saw and the main thread checks it.  Every wait is bounded.

local threading = require "lthreading"
local H = require "helpers"

-- Resident memory of this process in bytes, or nil where /proc is missing or a sanitizer's
-- allocator holds on to freed memory (ASan's quarantine), so that RSS says nothing.
local function rss()
  local preload = os.getenv("LD_PRELOAD") or ""
  if os.getenv("ASAN_OPTIONS") or preload:match("asan") or preload:match("tsan")
     or preload:match("valgrind") then
    return nil
  end
  local f = io.open("/proc/self/statm", "r")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  local pages = tonumber(s:match("^%d+%s+(%d+)"))
  return pages and pages * 4096
end

describe("Local (API.md §3)", function()
  it("gives each thread its own fields", function()
    local loc = threading.Local()
    loc.x = "main"
    local r = H.runp(function(l)
      local before = l.x
      l.x = "thread"
      return before, l.x
    end, loc)
    assert.same({n = 2, nil, "thread"}, r)
    assert.equal("main", loc.x)
  end)

  it("keeps the fields of concurrent threads apart", function()
    local loc = threading.Local()
    local go = threading.Event()
    local ts = {}
    for i = 1, 6 do
      ts[i] = H.spawn(function(l, g, me)
        l.me = me
        g:wait(10)
        local sum = 0
        for _ = 1, 1000 do
          l.count = (l.count or 0) + 1
          sum = sum + l.me
        end
        return l.me, l.count, sum
      end, loc, go, i)
    end
    go:set()
    for i = 1, 6 do
      H.join(ts[i])
      local me, count, sum = ts[i]:result()
      assert.equal(i, me)
      assert.equal(1000, count)
      assert.equal(1000 * i, sum)
    end
    assert.is_nil(loc.me)
  end)

  it("starts each thread's view as a copy of the defaults", function()
    local defaults = {n = 1, t = {1, 2, 3}}
    local loc = threading.Local(defaults)
    defaults.n = 99                                 -- later changes to the table do not count
    assert.equal(1, loc.n)
    loc.t[1] = "main"
    loc.n = 2
    local function probe(l)
      local first = l.t[1]
      l.t[1] = "thread"
      return l.n, first, l.t[1], #l.t
    end
    assert.same({n = 4, 1, 1, "thread", 3}, H.runp(probe, loc))
    assert.same({n = 4, 1, 1, "thread", 3}, H.runp(probe, loc))  -- a fresh copy each thread
    assert.equal("main", loc.t[1])
    assert.equal(2, loc.n)
  end)

  it("without defaults starts empty", function()
    local loc = threading.Local()
    assert.is_nil(loc.anything)
    assert.equal(0, H.run(function(l)
      local n = 0
      for _ in pairs(l) do n = n + 1 end
      return n
    end, loc))
  end)

  it("defaults may hold functions and lthreading objects", function()
    local lock = threading.Lock()
    local loc = threading.Local{lock = lock, twice = function(x) return 2 * x end}
    local same, v = H.run(function(l, lk) return l.lock == lk, l.twice(21) end, loc, lock)
    assert.is_true(same)
    assert.equal(42, v)
  end)

  it("is also threading['local']", function()
    local loc = threading["local"]{a = 1}
    assert.equal(1, loc.a)
    assert.equal(threading.Local, threading["local"])
  end)

  it("passing it to another thread passes the object, not the values", function()
    local loc = threading.Local()
    loc.mine = true
    local back, saw = H.run(function(l) l.theirs = true; return l, l.mine end, loc)
    assert.equal(loc, back)
    assert.is_nil(saw)
    assert.is_nil(loc.theirs)
    assert.is_true(loc.mine)
  end)

  it("keeps a thread's view for as long as the thread holds the object", function()
    local loc = threading.Local()
    local r = H.runp(function(l)
      local function set() l.v = "kept" end
      local function get() return l.v end
      set()
      collectgarbage()
      local a = get()
      local lt = require("lthreading")
      local t = lt.Thread(function(x) return x.v end, l)   -- a grandchild has its own view
      t:start()
      t:join(10)
      return a, t:result(), l.v
    end, loc)
    assert.same({n = 3, "kept", nil, "kept"}, r)
  end)

  it("keeps a thread's view while the object lives, also when the thread drops it and gets it back", function()
    local loc = threading.Local()
    -- two carriers hand loc to the thread by reference, without the thread's arguments
    -- holding loc itself
    local c1, c2 = threading.Local{inner = loc}, threading.Local{inner = loc}
    local r = H.runp(function(a, b)
      a.inner.v = "kept"
      local weak = setmetatable({a.inner}, {__mode = "v"})
      a.inner = nil                                  -- the thread's only reference: gone
      collectgarbage(); collectgarbage()
      local collected = weak[1] == nil               -- its proxy really was collected
      return collected, b.inner.v                    -- a fresh proxy, the same view
    end, c1, c2)
    assert.same({n = 2, true, "kept"}, r)
    assert.is_nil(loc.v)
  end)

  it("drops the views of Locals that died: no growth over many Locals in one thread", function()
    local function churn(n)
      for i = 1, n do
        local l = threading.Local()
        l.big = string.rep("y", 10000) .. i
      end
      collectgarbage(); collectgarbage()
    end
    churn(200)
    local before = collectgarbage("count")
    churn(5000)                                     -- 50 MB if the views were kept
    local grown = collectgarbage("count") - before
    -- kept views would be ~50 MB; dead ones wait for the GC to free their Locals, then a
    -- sweep: allow that slack (it varies with GC timing), far below the failure mode
    assert.is_true(grown < 25600, string.format("Lua heap grew by %.0f KB", grown))
  end)

  it("pairs and # see this thread's view", function()
    local loc = threading.Local{10, 20}
    loc[3] = 30
    loc.name = "x"
    assert.equal(3, #loc)
    local keys = 0
    for k, v in pairs(loc) do
      keys = keys + 1
      assert.equal(v, loc[k])
    end
    assert.equal(4, keys)
    assert.equal(2, H.run(function(l) return #l end, loc))
  end)

  it("rejects defaults that are not a table, or cannot cross", function()
    assert.has_error(function() threading.Local(42) end)
    local ok, err = pcall(threading.Local, {co = coroutine.create(print)})
    assert.is_false(ok)
    assert.matches("cannot transfer defaults%.co", err)
  end)

  it("frees a thread's view when the thread ends: no growth over 2000 short threads", function()
    local loc = threading.Local{small = 1}
    local function touch(l, i)
      l.big = string.rep("x", 100000) .. i         -- 100 KB per thread view
      return #l.big
    end
    local function batch(from, to)
      local ts = {}
      for i = from, to do ts[#ts + 1] = H.spawn(touch, loc, i) end
      for _, t in ipairs(ts) do H.join(t) end
    end
    for i = 1, 200, 20 do batch(i, i + 19) end       -- warm up the allocator
    collectgarbage()
    local before = rss()
    for i = 1, 2000, 20 do batch(i, i + 19) end
    collectgarbage()
    local after = rss()
    assert.is_nil(loc.big)
    assert.equal(1, loc.small)
    if before and after then
      -- 2000 views of 100 KB kept would be 200 MB
      assert.is_true(after - before < 48 * 1024 * 1024,
                     string.format("RSS grew by %.1f MB", (after - before) / 2^20))
    end
  end)
end)
