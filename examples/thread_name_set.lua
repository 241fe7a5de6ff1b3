-- Mirrors: seed 001 (SuperFastPython "Python Threading: The Complete Guide") "How to Configure Thread Name" and "How to Change a Thread's Name?"; also seed 000 "Set Thread Name via Constructor", "Set Thread Name via Property".
-- Shows: setting a thread's name in the constructor (name = ...) or afterwards through the name field; the thread itself sees it.
local threading = require "lthreading"

-- create a thread with a custom name
local thread = threading.Thread{name = 'MyThread'}
-- report thread name
print(thread.name)

-- create a thread, then set the name via the property
thread = threading.Thread{target = function()
  print('inside the thread, current_thread().name = ' .. threading.current_thread().name)
end}
thread.name = 'MyOtherThread'
print(thread.name)
thread:start()
thread:join()
