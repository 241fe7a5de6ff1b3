-- Mirrors: seed 004 (notebook) "2 Determining the Current Thread".
-- Shows: threads named at creation ('worker', 'my_service') or by default, each printing current_thread():getName().
local threading = require "lthreading"

local function say(...) io.write(string.format(...) .. "\n") end   -- one write per line

-- Python sleeps 0.2 s and 0.3 s; kept as they are (already short)
local function worker()
  say('%s Starting', threading.current_thread():getName())
  threading.sleep(0.2)
  say('%s Exiting', threading.current_thread():getName())
end

local function my_service()
  say('%s Starting', threading.current_thread():getName())
  threading.sleep(0.3)
  say('%s Exiting', threading.current_thread():getName())
end

local t = threading.Thread{name = 'my_service', target = my_service}
local w = threading.Thread{name = 'worker', target = worker}
local w2 = threading.Thread{target = worker}
w:start()
w2:start()
t:start()
