-- Mirrors: seed 002 (course notes "Part 5: The Threading Module") "Subclassing Thread"; also seed 004 (notebook) "7 Subclass of Threading.Thread".
-- Shows: a Thread subclass whose run() reports the name of the thread it runs in (current_thread().name).
local threading = require "lthreading"

-- one io.write per line: print() writes the text and the newline separately, so lines of
-- threads that print at the same moment could mix
local function say(...) io.write(string.format(...) .. "\n") end

local MyThread = threading.Thread:extend()

function MyThread:run()
  say("hello from %s", threading.current_thread().name)
end

-- seed 002: one thread
local thread = MyThread()
thread:start()
thread:join()

-- seed 004: five threads, logging '(threadName) running'
local threads = {}
for i = 1, 5 do
  local t = MyThread()
  t:start()
  threads[i] = t
end
for _, t in ipairs(threads) do t:join() end
say("started %d subclass threads", #threads)
