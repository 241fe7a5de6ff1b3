-- Mirrors: seed 001 (SuperFastPython "Python Threading: The Complete Guide") "Main Thread" (current_thread() and main_thread() listings); also seed 000 "Get Main Thread Instance using current_thread()/main_thread()" and seed 003 "Main Thread".
-- Shows: the main thread's Thread object (name "MainThread", not a daemon) from current_thread() in main and from main_thread() anywhere.
local threading = require "lthreading"

-- get the main thread
local thread = threading.current_thread()
-- report properties for the main thread
print(string.format('name=%s, daemon=%s, id=%s', thread.name, thread.daemon, thread.ident))

-- get the main thread with main_thread()
thread = threading.main_thread()
print(string.format('name=%s, daemon=%s, id=%s', thread.name, thread.daemon, thread.ident))
print('current_thread() == main_thread(): ' .. tostring(threading.current_thread() == threading.main_thread()))

-- main_thread() works from any thread
local worker = threading.Thread{target = function()
  local m = threading.main_thread()
  print(string.format('from a worker: main_thread().name=%s, its ident differs from mine: %s',
    m.name, tostring(m.ident ~= threading.get_ident())))
end}
worker:start()
worker:join()
