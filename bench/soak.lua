-- bench/soak.lua -- long-running leak and stability checks for lthreading (make soak; not CI).
--
--   lua5.4 bench/soak.lua [threads] [queue] [mix]      (default: all three phases)
--
-- Phases:
--   threads  10 000 threads created and joined, in batches of 100 (some joined, some left to
--            end on their own, some failing with a silenced excepthook)
--   queue    1 000 000 messages between 4 threads (2 producers -> bounded Queue -> 2
--            consumers), in 10 rounds
--   mix      every primitive under contention by 4 threads, in 10 rounds, for a bounded time
-- Each phase prints its duration and counts, and the resident memory (/proc/self/statm) after
-- its first and its last tenth; it fails (exit 1) if memory grew by more than the tolerance.
--
-- Environment: SOAK_MIX_SECONDS (default 30), SOAK_TOLERANCE_MB (default 4),
--              SOAK_TOLERANCE_PCT (default 10: a percentage of the first reading, added).

local threading = require "lthreading"
local mono = threading.monotonic

local MIX_SECONDS = tonumber(os.getenv("SOAK_MIX_SECONDS")) or 30
local TOL_MB = tonumber(os.getenv("SOAK_TOLERANCE_MB")) or 4
local TOL_PCT = tonumber(os.getenv("SOAK_TOLERANCE_PCT")) or 10

local PAGE = 4096
do
  local p = io.popen("getconf PAGESIZE 2>/dev/null")
  if p then PAGE = tonumber(p:read("l") or "") or PAGE; p:close() end
end

local function rss_kb()
  collectgarbage("collect")
  collectgarbage("collect")
  local f = assert(io.open("/proc/self/statm", "r"))
  local line = f:read("l")
  f:close()
  local resident = tonumber(line:match("^%d+%s+(%d+)"))
  return resident * PAGE // 1024
end

local function printf(...) io.stdout:write(string.format(...)) io.stdout:flush() end

-- Wait until only the main thread (and pool workers / stragglers we expect) remain.
local function settle(expected, limit)
  local deadline = mono() + (limit or 10)
  while threading.active_count() > expected and mono() < deadline do threading.sleep(0.005) end
  return threading.active_count()
end

local failures = {}
local function fail(fmt, ...)
  local msg = string.format(fmt, ...)
  failures[#failures + 1] = msg
  printf("  FAIL: %s\n", msg)
end

-- A phase runs `rounds` rounds; memory is read after round ceil(rounds/10) and after the last.
local function phase(name, rounds, body)
  printf("== %s\n", name)
  local t0 = mono()
  local first_at = math.max(1, math.ceil(rounds / 10))
  local first, last
  local ok, err = pcall(function()
    for r = 1, rounds do
      body(r)
      if r == first_at then first = rss_kb() end
      if r == rounds then last = rss_kb() end
    end
  end)
  local dt = mono() - t0
  if not ok then
    fail("%s: %s", name, tostring(err))
    return
  end
  local grew = last - first
  local tol = TOL_MB * 1024 + first * TOL_PCT // 100
  printf("  %.1f s; resident memory after the first tenth %d KiB, at the end %d KiB: %+d KiB"
         .. " (tolerance %d KiB)\n", dt, first, last, grew, tol)
  if grew > tol then fail("%s: resident memory grew by %d KiB (> %d KiB)", name, grew, tol) end
end

local only = {}
for _, a in ipairs(arg or {}) do only[a] = true end
local function wanted(name) return next(only) == nil or only[name] end

local START = mono()
printf("lthreading soak (%s); active threads at start: %d; resident %d KiB\n",
       _VERSION, threading.active_count(), rss_kb())

-- ==================================================================== phase 1: threads
if wanted("threads") then
  local BATCH, ROUNDS = 100, 100        -- 10 000 threads
  local joined, dropped, failed, results_ok = 0, 0, 0, 0
  local quiet = function() end
  local old_hook = threading.excepthook
  local can_hook = pcall(function() threading.excepthook = quiet end)
  local function work(i, s)
    if i % 100 == 37 then error("soak failure " .. i) end
    local t = {}
    for k = 1, 20 do t[k] = s .. k end
    return i * 2, #table.concat(t)
  end
  phase("threads: 10000 created and joined, batches of " .. BATCH, ROUNDS, function(r)
    local ts = {}
    for b = 1, BATCH do
      local i = (r - 1) * BATCH + b
      local t
      if b % 2 == 0 then t = threading.Thread(work, i, "x")
      else t = threading.Thread{ target = work, args = { i, "x" }, name = "soak-" .. i } end
      t:start()
      ts[b] = { t = t, i = i }
    end
    for b = 1, BATCH do
      local e = ts[b]
      if e.i % 10 == 3 then
        dropped = dropped + 1                 -- never joined: it ends on its own
      else
        assert(e.t:join(), "join without timeout returned false")
        joined = joined + 1
        local ok, v = pcall(e.t.result, e.t)
        if e.i % 100 == 37 then
          if ok then error("thread " .. e.i .. " should have failed") end
          failed = failed + 1
        elseif ok and v == e.i * 2 then
          results_ok = results_ok + 1
        else
          error("thread " .. e.i .. ": bad result " .. tostring(v))
        end
      end
    end
    ts = nil   -- luacheck: ignore 311 (dropped: unjoined threads are collected)
    local left = settle(1, 10)
    if left > 1 then error(left - 1 .. " threads still alive after their batch") end
  end)
  if can_hook then threading.excepthook = old_hook end
  printf("  joined %d (results checked %d, failures raised %d), dropped unjoined %d;"
         .. " excepthook silenced: %s\n", joined, results_ok, failed, dropped, tostring(can_hook))
end

-- ====================================================================== phase 2: queue
if wanted("queue") then
  if not threading.Queue then
    printf("== queue: not available (no threading.Queue)\n")
  else
    local ROUNDS, PER_ROUND = 10, 100000          -- 1 000 000 messages
    local q = threading.Queue(1000)
    local total, sum_all = 0, 0
    local function producer(queue, from, to)
      for i = from, to do
        local m = i % 3
        if m == 0 then queue:put(i)
        elseif m == 1 then queue:put({ i, tostring(i) })
        else queue:put("m" .. i) end
      end
      queue:put(false)
    end
    local function consumer(queue)
      local n, sum = 0, 0
      while true do
        local v = queue:get()
        if v == false then break end
        local tv = type(v)
        if tv == "table" then
          assert(v[2] == tostring(v[1]), "corrupt table message")
          v = v[1]
        elseif tv == "string" then
          v = tonumber(v:sub(2))
        end
        n, sum = n + 1, sum + v
      end
      return n, sum
    end
    local t_start = mono()
    phase("queue: 1e6 messages, 2 producers -> Queue(1000) -> 2 consumers", ROUNDS, function(r)
      local base = (r - 1) * PER_ROUND
      local half = PER_ROUND // 2
      local c1, c2 = threading.Thread(consumer, q), threading.Thread(consumer, q)
      local p1 = threading.Thread(producer, q, base + 1, base + half)
      local p2 = threading.Thread(producer, q, base + half + 1, base + PER_ROUND)
      c1:start(); c2:start(); p1:start(); p2:start()
      p1:join(); p2:join()
      local n1, s1 = c1:result()
      local n2, s2 = c2:result()
      if n1 + n2 ~= PER_ROUND then error(("round %d: %d messages of %d"):format(r, n1 + n2, PER_ROUND)) end
      local want = (base + 1 + base + PER_ROUND) * PER_ROUND // 2
      if s1 + s2 ~= want then error(("round %d: checksum %d, want %d"):format(r, s1 + s2, want)) end
      total, sum_all = total + n1 + n2, sum_all + s1 + s2
      if q:qsize() ~= 0 then error("queue not empty after a round") end
    end)
    local dt = mono() - t_start
    printf("  %d messages checked (%.0f k msg/s)\n", total, total / dt / 1e3)
  end
end

-- ======================================================================== phase 3: mix
if wanted("mix") then
  local T = threading
  local have = {}
  for _, k in ipairs{ "Lock", "RLock", "Condition", "Semaphore", "BoundedSemaphore", "Event",
                      "Barrier", "Local", "Queue", "Shared", "ThreadPoolExecutor", "Timer" } do
    have[k] = T[k] ~= nil
  end
  local missing = {}
  for k, v in pairs(have) do if not v then missing[#missing + 1] = k end end
  table.sort(missing)
  if not have.Shared then
    printf("== mix: not available (needs Shared; missing: %s)\n", table.concat(missing, " "))
  else
    if #missing > 0 then printf("  (not available, left out: %s)\n", table.concat(missing, " ")) end
    local NW, ROUNDS = 4, 10
    local round_s = MIX_SECONDS / ROUNDS
    local objs = {
      lock = have.Lock and T.Lock() or nil,
      rlock = have.RLock and T.RLock() or nil,
      cond = have.Condition and T.Condition() or nil,
      sem = have.Semaphore and T.Semaphore(3) or nil,
      bsem = have.BoundedSemaphore and T.BoundedSemaphore(2) or nil,
      event = have.Event and T.Event() or nil,
      loc = have.Local and T.Local({ n = 0 }) or nil,
      q = have.Queue and T.Queue(64) or nil,
      pool = have.ThreadPoolExecutor and T.ThreadPoolExecutor(2) or nil,
      -- (keys apart from the method names: s.incr / s.update are the methods)
      stats = T.Shared({ locked = 0, rlocked = 0, box = 0, insem = 0, n_incr = 0, n_upd = 0 }),
      barrier = have.Barrier and T.Barrier(NW) or nil,
    }
    local totals = {}

    local function worker(o, id, seconds, seed)
      local th = require "lthreading"
      math.randomseed(seed)
      local counts = {}
      local function bump(k) counts[k] = (counts[k] or 0) + 1 end
      local ops = {}
      local s = o.stats
      if o.lock then ops[#ops + 1] = function()
        o.lock:acquire(); s.locked = s.locked + 1; o.lock:release(); bump("lock")
      end end
      if o.lock then ops[#ops + 1] = function()
        do local _ <close> = o.lock(); s.locked = s.locked + 1 end; bump("lock")
      end end
      if o.rlock then ops[#ops + 1] = function()
        o.rlock:acquire(); o.rlock:acquire(); s.rlocked = s.rlocked + 1
        o.rlock:release(); o.rlock:release(); bump("rlock")
      end end
      if o.cond then ops[#ops + 1] = function()
        o.cond:acquire(); s.box = s.box + 1; o.cond:notify(); o.cond:release(); bump("cond_put")
      end end
      if o.cond then ops[#ops + 1] = function()
        o.cond:acquire()
        if o.cond:wait_for(function() return s.box > 0 end, 0.002) then
          s.box = s.box - 1; bump("cond_take")
        else bump("cond_timeout") end
        o.cond:release()
      end end
      if o.sem then ops[#ops + 1] = function()
        if o.sem:acquire(true, 0.002) then o.sem:release(); bump("sem") end
      end end
      if o.bsem then ops[#ops + 1] = function()
        if o.bsem:acquire(true, 0.002) then
          local v = s:incr("insem")
          if v > 2 then error("BoundedSemaphore(2) let " .. v .. " in") end
          s:incr("insem", -1)
          o.bsem:release(); bump("bsem")
        end
      end end
      if o.event then ops[#ops + 1] = function()
        local r = math.random(3)
        if r == 1 then o.event:set() elseif r == 2 then o.event:clear()
        else o.event:wait(0.001) end
        bump("event")
      end end
      if o.loc then ops[#ops + 1] = function()
        o.loc.n = o.loc.n + 1
        if o.loc.n ~= (counts["local"] or 0) + 1 then error("Local value crossed threads") end
        bump("local")
      end end
      if o.q then ops[#ops + 1] = function()
        if math.random(2) == 1 then
          if o.q:put({ id, "item" }, true, 0.002) then bump("q_put") end
        else
          local v = o.q:get(true, 0.002)
          if v then
            if type(v) ~= "table" or v[2] ~= "item" then error("corrupt queue item") end
            bump("q_get")
          end
        end
      end end
      ops[#ops + 1] = function() s:incr("n_incr"); bump("incr") end
      ops[#ops + 1] = function()
        s:update("n_upd", function(v) return (v or 0) + 2 end); bump("update")
      end
      if o.pool then ops[#ops + 1] = function()
        local f = o.pool:submit(function(a, b) return a * b end, id, 7)
        if f:result() ~= id * 7 then error("wrong pool result") end
        bump("pool")
      end end
      ops[#ops + 1] = function()
        local t = th.Thread(function(x) return x + 1 end, id)
        t:start()
        if t:join() ~= true or t:result() ~= id + 1 then error("bad thread result") end
        bump("thread")
      end
      if th.Timer then ops[#ops + 1] = function()
        local t = th.Timer(0.0005, function() end)
        t:start()
        if math.random(2) == 1 then t:cancel() end
        t:join()
        bump("timer")
      end end

      local deadline = th.monotonic() + seconds
      while th.monotonic() < deadline do
        ops[math.random(#ops)]()
      end
      if o.barrier then
        local ok, idx = pcall(o.barrier.wait, o.barrier, 10)
        if not ok then error("barrier: " .. tostring(idx)) end
        bump("barrier")
      end
      return counts
    end

    local seed = 1
    phase(string.format("mix: every primitive, %d threads, %d rounds of %.1f s",
                        NW, ROUNDS, round_s), ROUNDS, function(r)
      local ts = {}
      for i = 1, NW do
        seed = seed + 1
        ts[i] = T.Thread(worker, objs, i, round_s, seed)
        ts[i]:start()
      end
      for i = 1, NW do
        local ok, counts = pcall(ts[i].result, ts[i])
        if not ok then error("round " .. r .. ", worker " .. i .. ": " .. tostring(counts)) end
        for k, v in pairs(counts) do totals[k] = (totals[k] or 0) + v end
      end
      -- drain what the queue holds between rounds, so rounds start alike
      if objs.q then while objs.q:get_nowait() do end end
    end)
    -- invariants
    local st = objs.stats
    if (totals.lock or 0) ~= st.locked then
      fail("mix: %d lock-protected increments, counter says %d", totals.lock or 0, st.locked)
    end
    if (totals.rlock or 0) ~= st.rlocked then
      fail("mix: %d RLock-protected increments, counter says %d", totals.rlock or 0, st.rlocked)
    end
    if (totals.incr or 0) ~= st.n_incr then
      fail("mix: %d incr, Shared says %s", totals.incr or 0, tostring(st.n_incr))
    end
    if 2 * (totals.update or 0) ~= st.n_upd then
      fail("mix: %d updates, Shared says %s", totals.update or 0, tostring(st.n_upd))
    end
    if (totals.cond_put or 0) - (totals.cond_take or 0) ~= st.box then
      fail("mix: Condition box %d, puts %d - takes %d", st.box, totals.cond_put or 0,
           totals.cond_take or 0)
    end
    if objs.pool then objs.pool:shutdown() end
    local keys, n = {}, 0
    for k, v in pairs(totals) do keys[#keys + 1] = k; n = n + v end
    table.sort(keys)
    local parts = {}
    for _, k in ipairs(keys) do parts[#parts + 1] = k .. "=" .. totals[k] end
    printf("  %d operations: %s\n", n, table.concat(parts, " "))
  end
end

printf("== done in %.1f s; active threads %d\n", mono() - START, settle(1, 5))
if #failures > 0 then
  printf("SOAK FAILED (%d):\n  %s\n", #failures, table.concat(failures, "\n  "))
  os.exit(1)
end
printf("SOAK OK\n")
