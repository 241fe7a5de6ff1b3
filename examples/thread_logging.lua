-- Mirrors: seed 004 (notebook) "3 Using logging"; also seed 001 (SuperFastPython "Python Threading: The Complete Guide") "Is Logging Thread-Safe?".
-- Shows: thread-safe logging with the thread name in every record; each record is written by one call, so records never mix.
local threading = require "lthreading"

-- Lua has no logging module: a tiny logger with Python's format
-- '[%(levelname)s] (%(threadName)-10s) %(message)s'. Every record is ONE io.write, and the C
-- stdio stream locks itself for each write, so records from parallel threads never interleave.
local function debug(fmt, ...)
  io.write(string.format('[DEBUG] (%-10s) ' .. fmt, threading.current_thread().name, ...) .. '\n')
end

local function worker1()
  debug('Starting')
  threading.sleep(0.2)
  debug('Exiting')
end

local function my_service1()
  debug('Starting')
  threading.sleep(0.3)
  debug('Exiting')
end

local t = threading.Thread{name = 'my_service', target = my_service1}
local w = threading.Thread{name = 'worker', target = worker1}
local w2 = threading.Thread{target = worker1}  -- use default name

w:start()
w2:start()
t:start()

-- seed 001 logs to a file; a file written from many threads is shared the same way: the
-- Lock makes each thread's open-append-close one atomic step
local path = os.tmpname()
local file_lock = threading.Lock()
local function log_to_file(p, lock, msg)
  local _ <close> = lock()
  local f = assert(io.open(p, 'a'))
  f:write(string.format('(%s) %s\n', threading.current_thread().name, msg))
  f:close()
end
local writers = {}
for i = 1, 4 do
  writers[i] = threading.Thread{target = log_to_file, args = {path, file_lock, 'record ' .. i}}
  writers[i]:start()
end
for _, wr in ipairs(writers) do wr:join() end
local n = 0
for _ in io.lines(path) do n = n + 1 end
os.remove(path)
debug('application.log got %d records', n)
