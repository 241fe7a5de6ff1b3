-- Mirrors: seed 001 (SuperFastPython "Python Threading: The Complete Guide") "Enumerate Active Threads"; also seed 000 "Enumerate Active Threads using threading.enumerate()".
-- Shows: enumerate() lists the live threads (always including the main thread).
local threading = require "lthreading"

-- get a list of all active threads
local threads = threading.enumerate()
-- report the name of all active threads
for _, thread in ipairs(threads) do
  print(thread.name)
end

-- with a named worker alive, it is listed too
local stop = threading.Event()
local worker = threading.Thread{name = 'Worker', target = function() stop:wait() end}
worker:start()
local names = {}
for _, thread in ipairs(threading.enumerate()) do names[#names + 1] = thread.name end
table.sort(names)
print('while the worker runs: ' .. table.concat(names, ', '))
stop:set()
worker:join()
