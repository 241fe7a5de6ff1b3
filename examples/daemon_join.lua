-- Mirrors: seed 004 (notebook) "4 Daemon" (second cell: "To wait until a daemon thread has completed its work, use the join() method").
-- Shows: joining a daemon thread waits for it, so its work completes.
local threading = require "lthreading"

local function log(msg)
  io.write(string.format('(%-10s) %s', threading.current_thread().name, msg) .. '\n')
end

local function daemon()
  log('Starting')
  threading.sleep(0.2)
  log('Exiting')
end

local function non_daemon()
  log('Starting')
  log('Exiting')
end

local d = threading.Thread{name = 'daemon', target = daemon, daemon = true}
local t = threading.Thread{name = 'non-daemon', target = non_daemon}

d:start()
t:start()

d:join()
t:join()
log('both joined')
