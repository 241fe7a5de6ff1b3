-- Mirrors: seed 001 (SuperFastPython "Python Threading: The Complete Guide") "Example of Wait and Notify With a Condition"; also seed 000 "Complete Python Example: Wait and Notify with Condition" and seed 003 "Condition".
-- Shows: the main thread waits on a Condition (holding it while it starts the worker) until the worker notifies that the data is ready.
local threading = require "lthreading"

local function say(...) io.write(string.format(...) .. "\n") end   -- one write per line

-- target function to prepare some work
local function task(condition, work_list)
  -- block for a moment (Python: 1 s, scaled down to 0.1 s)
  threading.sleep(0.1)
  -- add data to the work list
  work_list:append(33)
  -- notify a waiting thread that the work is done
  say('Thread sending notification...')
  local _ <close> = condition()
  condition:notify()
end

-- create a condition
local condition = threading.Condition()
-- prepare the work list: Python shares one list object between the threads; a Lua table
-- would be copied into the worker, so the list is a threading.Shared table
local work_list = threading.Shared()
-- wait to be notified that the data is ready
say('Main thread waiting for data...')
do
  local _ <close> = condition()
  -- start a new thread to perform some work
  local worker = threading.Thread{target = task, args = {condition, work_list}}
  worker:start()
  -- wait to be notified
  condition:wait()
end
-- we know the data is ready
local items = {}
for _, v in ipairs(work_list) do items[#items + 1] = tostring(v) end
say('Got data: {%s}', table.concat(items, ', '))
