-- Mirrors: seed 000 "Waiting for Thread Results in Python" (Method 1: instance variables, Method 2: a queue, Method 3: a global variable); also seed 001 (SuperFastPython "Python Threading: The Complete Guide") "How to Wait for a Result from a Thread?".
-- Shows: the three ways of getting a result out of a thread, plus lthreading's direct Thread:result().
local threading = require "lthreading"

local function say(...) io.write(string.format(...) .. "\n") end   -- one write per line

-- Method 1: use instance variables on an extended Thread
local Worker = threading.Thread:extend()
function Worker:run() self.value = 'from an instance variable' end
local w = Worker()
w:start(); w:join()
say('method 1: %s', w.value)

-- Method 2: use a Queue to share a result between threads
local q = threading.Queue()
threading.Thread(function(queue) queue:put('from a queue') end, q):start()
say('method 2: %s', q:get())

-- Method 3: use a global variable. Python's threads share globals; lthreading threads have
-- separate globals (values are copied), so the "global" is a threading.Shared table.
local globals = threading.Shared()
local t = threading.Thread(function() globals.result = 'from a shared "global"' end)
t:start(); t:join()
say('method 3: %s', globals.result)

-- and what a plain Lua table would do: the thread changes its own copy only
local plain = {result = 'unchanged'}
t = threading.Thread(function() plain.result = 'changed in the thread' end)
t:start(); t:join()
say('a plain table upvalue is copied: %s', plain.result)

-- lthreading extra: the target's return values, straight from the Thread
t = threading.Thread(function(a, b) return a + b, 'returned' end, 40, 2)
t:start()
local sum, word = t:result()
say('Thread:result(): %d %s', sum, word)
