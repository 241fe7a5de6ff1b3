-- Mirrors: seed 002 (course notes "Part 5: The Threading Module") "Starting threads doesn't take much" (func() in 3 threads).
-- Shows: three threads running the same function at once, each reporting its own name; the script's end waits for them.
local threading = require "lthreading"

local function say(...) io.write(string.format(...) .. "\n") end   -- one write per line

local function func()
  for _ = 1, 5 do
    say("hello from thread %s", threading.current_thread().name)
    threading.sleep(0.05)    -- Python: time.sleep(1), scaled down
  end
end

for _ = 1, 3 do
  local thread = threading.Thread{target = func, args = {}}
  thread:start()
end
-- no join: like Python, the process waits for its non-daemon threads before it exits
