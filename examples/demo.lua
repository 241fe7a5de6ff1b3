-- lthreading demo (run by `make demo`): Python's threading module for Lua 5.4, with real parallelism.
-- Shows: CPU-bound threads beating the sequential run, a Lock around a shared counter, a producer/consumer Queue, and a ThreadPoolExecutor.
local threading = require "lthreading"

local function say(...) io.write(string.format(...) .. "\n") end   -- one write per line
io.stdout:setvbuf("line")

local function cores()
  local p = io.popen("nproc 2>/dev/null")
  local n = p and tonumber(p:read("a"):match("%d+"))
  if p then p:close() end
  return n or 4
end

-- CPU-bound work: count the primes in [lo, hi] by trial division (pure Lua, no I/O)
local function count_primes(lo, hi)
  local count = 0
  for n = math.max(lo, 2), hi do
    local prime = true
    if n > 2 and n % 2 == 0 then
      prime = false
    else
      local d = 3
      while d * d <= n do
        if n % d == 0 then prime = false; break end
        d = d + 2
      end
    end
    if prime then count = count + 1 end
  end
  return count
end

say("lthreading demo: every thread is its own Lua state on its own OS thread")
say("")

------------------------------------------------------------------ 1. parallel CPU work
-- The range is cut into blocks dealt out round-robin, so every thread gets a fair share of
-- the (costlier) large numbers.
local workers = math.max(2, math.min(cores(), 8))
local LIMIT, BLOCK = 2000000, 10000

local function count_blocks(first, step)
  local total = 0
  for lo = (first - 1) * BLOCK + 1, LIMIT, step * BLOCK do
    total = total + count_primes(lo, math.min(lo + BLOCK - 1, LIMIT))
  end
  return total
end

say("1. Counting the primes below %d (pure Lua, CPU-bound)", LIMIT)
local t0 = threading.monotonic()
local seq_total = count_blocks(1, 1)
local seq_time = threading.monotonic() - t0
say("   sequential, 1 thread : %d primes in %.2f s", seq_total, seq_time)

t0 = threading.monotonic()
local threads = {}
for i = 1, workers do
  -- count_blocks crosses to the thread as bytecode, with its upvalues (count_primes, LIMIT,
  -- BLOCK) copied along; which blocks to count are its arguments
  threads[i] = threading.Thread{target = count_blocks, args = {i, workers}, name = "primes-" .. i}
  threads[i]:start()
end
local par_total = 0
for _, t in ipairs(threads) do par_total = par_total + t:result() end
local par_time = threading.monotonic() - t0
say("   parallel, %d threads  : %d primes in %.2f s", workers, par_total, par_time)
say("   speedup: %.1fx on %d cores (same answer: %s)", seq_time / par_time, cores(), tostring(seq_total == par_total))
say("")

------------------------------------------------------------------ 2. a lock
-- Globals are per thread and tables are copied, so shared state is a threading.Shared table;
-- `balance = balance + 1` is a read then a write, so it needs the lock.
local account = threading.Shared{balance = 0}
local lock = threading.Lock()
local function deposit(times)
  for _ = 1, times do
    local _ <close> = lock()                 -- Python's `with lock:`
    account.balance = account.balance + 1
  end
end
threads = {}
for i = 1, 4 do threads[i] = threading.Thread(deposit, 5000); threads[i]:start() end
for _, t in ipairs(threads) do t:join() end
say("2. Lock: 4 threads x 5000 deposits -> balance %d (expected 20000)", account.balance)
say("")

------------------------------------------------------------------ 3. a queue
local jobs, results = threading.Queue(10), threading.Queue()
local function consumer(id)
  while true do
    local item = jobs:get()
    if item == false then break end          -- false is the stop sentinel (nil is not an item)
    results:put({id, item, count_primes(1, item)})
  end
end
local consumers = {}
for i = 1, 3 do consumers[i] = threading.Thread(consumer, i); consumers[i]:start() end
local sizes = {1000, 2000, 5000, 10000, 20000, 50000}
for _, n in ipairs(sizes) do jobs:put(n) end
for _ = 1, #consumers do jobs:put(false) end
for _, c in ipairs(consumers) do c:join() end
local rows = {}
while not results:empty() do rows[#rows + 1] = results:get() end
table.sort(rows, function(a, b) return a[2] < b[2] end)
say("3. Queue: a producer and 3 consumers")
for _, r in ipairs(rows) do say("   consumer %d: pi(%d) = %d", r[1], r[2], r[3]) end
say("")

------------------------------------------------------------------ 4. a thread pool
local pool = threading.ThreadPoolExecutor(workers)
local squares = pool:map(function(x) return x * x end, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
local future = pool:submit(count_primes, 1, 100000)
say("4. ThreadPoolExecutor(%d)", workers)
say("   map(x -> x*x, 1..10) = %s", table.concat(squares, " "))
say("   submit(count_primes, 1, 100000):result() = %d", future:result())
pool:shutdown()
say("")
say("done")
