-- Mirrors: seed 001 (SuperFastPython "Python Threading: The Complete Guide") "Are Random Numbers Thread-Safe?" (random(), gauss() protected by a Lock).
-- Shows: each lthreading thread has its own math.random generator (nothing shared, so nothing to race on); generator state shared on purpose needs a Lock.
local threading = require "lthreading"

local function say(...) io.write(string.format(...) .. "\n") end   -- one write per line

-- 1. math.random in threads: every thread is its own Lua state with its own generator
local results = threading.Queue()
local threads = {}
for i = 1, 4 do
  threads[i] = threading.Thread(function(q)
    local sum = 0
    for _ = 1, 1000 do sum = sum + math.random() end
    q:put(sum / 1000)
  end, results)
  threads[i]:start()
end
for _, t in ipairs(threads) do t:join() end
for _ = 1, 4 do say('thread average of 1000 random(): %.2f', results:get()) end

-- 2. Python's gauss() is unsafe because it caches the second of the two numbers it makes.
--    The same generator written in Lua, with its cache shared between threads in a Shared
--    table, must hold a Lock around each call, as the tutorial does around random.gauss().
local state = threading.Shared()
local lock = threading.Lock()
local function gauss(mu, sigma)
  local _ <close> = lock()
  local z = state.spare
  if z then
    state.spare = nil
  else
    local u1, u2 = 1 - math.random(), math.random()
    local r = math.sqrt(-2 * math.log(u1))
    z = r * math.cos(2 * math.pi * u2)
    state.spare = r * math.sin(2 * math.pi * u2)
  end
  return mu + sigma * z
end

local count = threading.Shared{n = 0}
threads = {}
for i = 1, 4 do
  threads[i] = threading.Thread(function()
    for _ = 1, 250 do
      local v = gauss(0.0, 1.0)
      if v == v then count:incr('n') end     -- count the (non-NaN) values produced
    end
  end)
  threads[i]:start()
end
for _, t in ipairs(threads) do t:join() end
say('gauss values drawn under the lock: %d', count.n)
