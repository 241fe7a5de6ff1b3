-- Mirrors: seed 001 (SuperFastPython "Python Threading: The Complete Guide") "How to Sleep a Thread?" and "Blocking Calls to Sleep".
-- Shows: threading.sleep(seconds) (Lua has no sleep of its own) blocks only the calling thread, for at least the time asked, with fractions of a second.
local threading = require "lthreading"

local function say(...) io.write(string.format(...) .. "\n") end   -- one write per line

-- sleep for 100 milliseconds (Python's examples: 5 s and 0.1 s; 5 s scaled down to 0.2 s)
local start = threading.monotonic()
threading.sleep(0.1)
local slept = threading.monotonic() - start
say('main slept at least 0.1 s: %s', tostring(slept >= 0.099))

-- sleeping in threads: three threads sleep 0.2 s each at the same time, in about 0.2 s total
start = threading.monotonic()
local threads = {}
for i = 1, 3 do
  threads[i] = threading.Thread(function() threading.sleep(0.2) end)
  threads[i]:start()
end
for _, t in ipairs(threads) do t:join() end
local elapsed = threading.monotonic() - start
say('three threads slept 0.2 s each; elapsed %.2f s', elapsed)
