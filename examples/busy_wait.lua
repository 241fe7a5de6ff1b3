-- Mirrors: seed 001 (SuperFastPython "Python Threading: The Complete Guide") "What is Thread Busy Waiting?" (plain spin, spin with a sleep, spin with condition.wait(timeout)).
-- Shows: three busy-wait loops for a goal state set by another thread: tight, with a sleep, and with a timed Condition wait.
local threading = require "lthreading"

local function say(...) io.write(string.format(...) .. "\n") end   -- one write per line

-- the goal state is a flag in a Shared table (a plain table would be copied into the thread)
local function setter(state, cond, delay)
  threading.sleep(delay)
  local _ <close> = cond()
  state.goal = true
  cond:notify_all()
end

local function goal_state(state) return state.goal == true end

-- 1. busy wait: check the goal in a tight loop
local state, cond = threading.Shared{goal = false}, threading.Condition()
threading.Thread(setter, state, cond, 0.05):start()
local checks = 0
while true do
  checks = checks + 1
  -- check for the goal state
  if goal_state(state) then break end
end
say('1. tight loop: goal reached (checked many times: %s)', tostring(checks > 10))

-- 2. busy wait with a sleep in each iteration (Python: sleep(0.1); here 0.01 s)
state = threading.Shared{goal = false}
threading.Thread(setter, state, cond, 0.05):start()
checks = 0
while true do
  checks = checks + 1
  if goal_state(state) then break end
  threading.sleep(0.01)
end
say('2. loop with sleep: goal reached after %s checks', checks < 100 and 'a few' or 'many')

-- 3. busy wait with a blocking wait on a Condition, with a timeout
state = threading.Shared{goal = false}
threading.Thread(setter, state, cond, 0.05):start()
while true do
  -- acquire the condition
  local _ <close> = cond()
  -- check condition
  if goal_state(state) then break end
  -- block with a timeout
  cond:wait(0.1)
end
say('3. loop with condition wait: goal reached')
