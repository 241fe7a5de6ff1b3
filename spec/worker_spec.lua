-- OS threads are reused (src/worker.c): a Thread that ends leaves its OS thread idle for
-- a while, and the next Thread runs on it.  What each Thread sees must not change: a fresh
-- state, its own identity, its stack size and memory limit; and exit must still end
-- cleanly.  Thread bodies return what they saw; the main thread checks it.

local threading = require "lthreading"
if not package.searchpath("helpers", package.path) then     -- run without the Makefile
  package.path = "spec/?.lua;" .. package.path
end
local H = require "helpers"

-- Run f in a Thread, join it, then give its OS thread time to become idle.
local function run_then_idle(f, ...)
  local t = H.spawn(f, ...)
  H.join(t)
  threading.sleep(0.02)
  return t
end

describe("OS thread reuse", function()
  it("runs a new Thread on the OS thread of one that ended", function()
    local ids, distinct = {}, 0
    for _ = 1, 10 do
      local t = run_then_idle(function() return require("lthreading").get_native_id() end)
      local id = t:result()
      if not ids[id] then distinct = distinct + 1 end
      ids[id] = true
    end
    assert.is_true(distinct < 10, "10 threads had 10 different OS threads: none was reused")
  end)

  it("gives each Thread a fresh state and its own identity", function()
    local loc = threading["local"]()
    local function dirty(l)
      -- luacheck: ignore 111 142 (dirties its state on purpose)
      LEAKED = "global"
      string.leaked = "library field"
      package.loaded.leaked = "module"
      setmetatable(_G, {__index = function() return "from a metatable" end})
      l.x = "a's local"
      local th = require "lthreading"
      return th.get_native_id(), th.current_thread().name
    end
    local function look(l)
      local th = require "lthreading"
      local me = th.current_thread()
      return th.get_native_id(), me.name, me.ident == th.get_ident(),
             rawget(_G, "LEAKED"), string.leaked, package.loaded.leaked, getmetatable(_G),   -- luacheck: ignore 143
             l.x, #th.enumerate()
    end
    -- Each round: one Thread dirties its state, the next looks.  Another thread of the
    -- process may become idle in between and take the second Thread, so the rounds go on
    -- until one second Thread ran on the first's OS thread (at most 5).
    local reused = false
    for round = 1, 5 do
      local a = run_then_idle(dirty, loc)
      local b = threading.Thread{name = "second-" .. round, target = look, args = {loc}}
      b:start()
      H.join(b)
      local r = table.pack(b:result())
      local a_native, a_name = a:result()
      assert.are_not.equal(b.name, a_name)
      assert.equal(b.name, r[2])
      assert.is_true(r[3], "current_thread().ident ~= get_ident()")
      assert.is_nil(r[4]); assert.is_nil(r[5]); assert.is_nil(r[6]); assert.is_nil(r[7])
      assert.is_nil(r[8], "a Local's value carried over to the next thread")
      assert.is_true(r[9] >= 2, "enumerate() in the thread lists main and itself")
      if r[1] == a_native then reused = true break end
    end
    assert.is_true(reused, "no second thread ran on the first's OS thread")
  end)

  it("keeps each Thread's stack size: a small-stack Thread never runs on a big idle one",
     function()
    local first = threading.stack_size()
    finally(function() threading.stack_size(first) end)
    -- A 700-deep table crosses from a default thread; a 64 KiB request gets the smallest
    -- stack (1 MiB), whose marshal depth limit (stack / 2048 = 512) refuses it with an error
    -- instead of risking its stack.
    local function deep()
      local t = {}
      for _ = 1, 700 do t = {t} end
      return t
    end
    finally(H.quiet_hook())
    run_then_idle(function() end)                       -- leaves a default-stack thread idle
    local ok1 = pcall(H.run, deep)
    threading.stack_size(64 * 1024)
    local t = H.spawn(deep)
    H.join(t)
    local ok2, err = pcall(t.result, t)
    threading.stack_size(0)
    local ok3 = pcall(H.run, deep)
    assert.is_true(ok1, "default stack")
    assert.is_false(ok2, "64 KiB stack: the deep table should not cross")
    assert.matches("deep", tostring(err))
    assert.is_true(ok3, "default stack again")
  end)

  it("applies memory_limit on a reused OS thread and its ready-made state", function()
    run_then_idle(function() end)
    local function grow(n)
      local t = {}
      for i = 1, n do t[i] = ("x"):rep(64) .. i end
      return #t
    end
    local restore = H.quiet_hook()
    finally(restore)
    local small = threading.Thread{memory_limit = 8 * 1024 * 1024, target = grow, args = {1000}}
    small:start()
    H.join(small)
    local big = threading.Thread{memory_limit = 8 * 1024 * 1024, target = grow, args = {1e7}}
    big:start()
    H.join(big, 30)
    assert.equal(1000, small:result())
    local ok, err = pcall(big.result, big)
    assert.is_false(ok)
    assert.matches("not enough memory", tostring(err))
    assert.equal(7, H.run(function() return 7 end))     -- the next thread is unlimited again
  end)

  it("lets a pool's OS threads run Threads after shutdown, as those Threads", function()
    local pool = threading.ThreadPoolExecutor(2)
    local futs = {}
    for i = 1, 4 do futs[i] = pool:submit(function(x) return x * 2 end, i) end
    for i = 1, 4 do assert.equal(i * 2, futs[i]:result(10)) end
    pool:shutdown(true)
    threading.sleep(0.02)
    local names = {}
    for i = 1, 4 do
      local t = threading.Thread{name = "after-pool-" .. i, target = function()
        local th = require "lthreading"
        local seen = {}
        for _, x in ipairs(th.enumerate()) do seen[#seen + 1] = x.name end
        return th.current_thread().name, table.concat(seen, ",")
      end}
      t:start()
      H.join(t)
      local me, all = t:result()
      names[i] = me
      assert.is_nil(all:find("ThreadPoolExecutor", 1, true), all)
    end
    assert.same({"after-pool-1", "after-pool-2", "after-pool-3", "after-pool-4"}, names)
  end)

  it("handles more threads at once than it keeps idle", function()
    for round = 1, 3 do
      local ts = {}
      for i = 1, 24 do ts[i] = H.spawn(function(x) return x + 1 end, i) end
      for i = 1, 24 do
        H.join(ts[i])
        assert.equal(i + 1, ts[i]:result(), "round " .. round)
      end
    end
  end)

  it("serves several threads starting and joining threads at once", function()
    local starters = {}
    for k = 1, 4 do
      starters[k] = H.spawn(function(id)
        local th = require "lthreading"
        local sum = 0
        for i = 1, 150 do
          local t = th.Thread(function(a, b) return a * 1000 + b end, id, i)
          t:start()
          if not t:join(10) then return "join timed out" end
          sum = sum + t:result()
        end
        return sum
      end, k)
    end
    for k = 1, 4 do
      H.join(starters[k], 60)
      assert.equal(k * 1000 * 150 + 150 * 151 // 2, starters[k]:result())
    end
  end)

  it("ends the process promptly with idle OS threads, from main or from a thread", function()
    local r = H.lua([[
      local th = require "lthreading"
      local ts = {}
      for i = 1, 12 do ts[i] = th.Thread(function() return 1 end); ts[i]:start() end
      for i = 1, 12 do ts[i]:join() end
      th.sleep(0.05)                           -- they are idle now
      print("main done")
    ]], 20)
    assert.equal(0, r.code, H.show(r))
    assert.equal("main done\n", r.out)
    local secs, r2 = H.timed(H.lua, [[
      local th = require "lthreading"
      for i = 1, 4 do local t = th.Thread(function() end); t:start(); t:join() end
      th.sleep(0.05)
      th.Thread(function() io.stdout:write("bye\n"); os.exit(5) end):start()
      th.sleep(5)
    ]], 20)
    assert.equal(5, r2.code, H.show(r2))
    assert.equal("bye\n", r2.out)
    assert.is_true(secs < 4, "exit took " .. secs .. " s")
  end)

  it("starts Threads in the child of a fork() (the parent's idle threads are not there)",
     function()
    local host, why = H.foreign_host()                -- a C host with fork()
    if not host then pending(why) return end
    local chunk = [[
      local th = require "lthreading"
      for i = 1, 3 do local t = th.Thread(function() end); t:start(); t:join(5) end
      th.sleep(0.05)                           -- the parent now has idle OS threads
      local pid = fork()
      if pid == 0 then
        local t = th.Thread(function(x) return x * 3 end, 14)
        t:start()
        local ok = t:join(5)
        io.stdout:write("child ", tostring(ok), " ", tostring(ok and t:result()), "\n")
        io.stdout:flush()
        os.exit(ok and 0 or 3)
      end
      local t = th.Thread(function() return "parent fine" end)
      t:start()
      print(t:join(5) and t:result(), "child exit", wait(pid))
    ]]
    -- (under make tsan: TSan refuses threads after a multi-threaded fork unless told)
    local out = H.foreign(host, chunk, { main = true, fork = true })
    assert.matches("child true 42", out, 1, true)
    assert.matches("parent fine\tchild exit\t0", out, 1, true)
    assert.matches("EXIT:0", out, 1, true)
  end)
end)
