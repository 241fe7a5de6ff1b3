-- Mirrors: seed 004 (notebook) "4 Daemon" (first cell).
-- Shows: the process does not wait for a daemon thread: it is abandoned at exit, so its 'Exiting' never prints.
local threading = require "lthreading"

local function log(msg)
  io.write(string.format('(%-10s) %s', threading.current_thread().name, msg) .. '\n')
end

local function daemon()
  log('Starting')
  threading.sleep(5)   -- Python's is 1 s; longer here so that even a slow exit (a loaded
                       -- machine, a sanitizer build) never lets it finish: it costs nothing
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
-- the script ends here: lthreading waits for 'non-daemon' only
