-- Mirrors: seed 004 (notebook) "8 Timer Thread"; also seed 000 "Schedule Function Execution with threading.Timer" (cancel()).
-- Shows: two Timers named with setName(); the second is cancelled before its delay passes, so only t1 runs.
local threading = require "lthreading"

local function log(fmt, ...)
  io.write(string.format('(%-10s) ' .. fmt, threading.current_thread().name, ...) .. '\n')
end

local function delayed()
  log('worker running')
end

local t1 = threading.Timer(0.3, delayed)
t1:setName('t1')
local t2 = threading.Timer(0.3, delayed)
t2:setName('t2')

log('starting timers')
t1:start()
t2:start()

log('waiting before canceling %s', t2:getName())
threading.sleep(0.1)        -- Python: 0.2 s; shorter here, to stay well before the 0.3 s delay
log('canceling %s', t2:getName())
t2:cancel()
log('done')
