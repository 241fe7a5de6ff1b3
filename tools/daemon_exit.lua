-- A process that exits while daemon threads run lthreading code (make valgrind runs it
-- under memcheck: no definite or indirect leak; the daemons' own states are abandoned).
local th = require "lthreading"
local lock = th.Lock(); lock:acquire()
for i = 1, 3 do
  th.Thread{daemon = true, target = function(l) local lt = require "lthreading"
    local q = lt.Queue(); while true do q:put({i}); q:get(); l:acquire(0.001) end end, args = {lock}}:start()
end
th.Thread{daemon = true, target = function(l) l:acquire() end, args = {lock}}:start()
local nd = th.Thread(function() th.sleep(0.05); return "non-daemon done" end); nd:start()
th.sleep(0.2)
print("exiting with daemons running")
