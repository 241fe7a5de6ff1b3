-- Mirrors: seed 001 (SuperFastPython "Python Threading: The Complete Guide") "Thread Identifier" and "Native Thread Identifier"; also seed 000 "Get Python Thread Identifier using threading.get_ident()" and "...get_native_id()".
-- Shows: get_ident() and get_native_id() for the calling thread; a thread's values match its ident / native_id fields.
local threading = require "lthreading"

-- get the id for the current thread
local identifier = threading.get_ident()
-- report the thread id
print(identifier)
-- get the native id for the current thread
print(threading.get_native_id())

-- inside a thread the functions report that thread's ids, the same as its fields
local ids = threading.Queue()    -- the thread sends its ids back through a queue (values are copied)
local thread = threading.Thread(function(q) q:put({threading.get_ident(), threading.get_native_id()}) end, ids)
thread:start()
thread:join()
local got = ids:get()
print(string.format('thread: get_ident() == ident: %s, get_native_id() == native_id: %s',
  tostring(got[1] == thread.ident), tostring(got[2] == thread.native_id)))
print(string.format('thread ids differ from main: %s', tostring(got[1] ~= identifier)))
