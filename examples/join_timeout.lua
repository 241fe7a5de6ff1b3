-- Mirrors: seed 004 (notebook) "5 Join Waiting timeout".
-- Shows: join(timeout) returns after the timeout even if the thread still runs (here false); isAlive() then reports true.
local threading = require "lthreading"

local function log(fmt, ...)
  io.write(string.format('(%-10s) ' .. fmt, threading.current_thread().name, ...) .. '\n')
end

local function daemon()
  log('Starting')
  threading.sleep(0.3)     -- Python: 0.2 s against a 0.1 s join timeout; widened a little
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

local joined = d:join(0.1)
log('d:join(0.1) returned %s', tostring(joined))
print('d.isAlive()', d:isAlive())   -- Python's old camelCase alias, kept for porting
t:join()
