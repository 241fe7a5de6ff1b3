-- Mirrors: seed 001 (SuperFastPython "Python Threading: The Complete Guide") "How to Use a Barrier" (action, timeout, wait()'s return value, abort, reset, parties/n_waiting/broken); also seed 000 "Configure Barrier with Action", "...with Timeout", "Reset Barrier".
-- Shows: a barrier action run once per round, the index wait() returns, BrokenBarrierError on timeout or abort, and reset().
local threading = require "lthreading"

local function say(...) io.write(string.format(...) .. "\n") end   -- one write per line

-- configure a barrier with an action: it runs in one of the threads before they are released
local barrier = threading.Barrier(3, function() io.write('action: all 3 parties arrived\n') end)
print(string.format('parties=%d n_waiting=%d broken=%s', barrier.parties, barrier.n_waiting, tostring(barrier.broken)))

local indexes = threading.Queue()
local function party(b, q)
  local index = b:wait()
  -- after released, check if this was the last party (Python's "remaining == 0")
  if index == 0 then say('I was index 0 of this round') end
  q:put(index)
end
local threads = {}
for i = 1, 2 do threads[i] = threading.Thread(party, barrier, indexes); threads[i]:start() end
party(barrier, indexes)
for _, t in ipairs(threads) do t:join() end
local got = {}
for _ = 1, 3 do got[#got + 1] = indexes:get() end
table.sort(got)
say('indexes returned by wait(): %s', table.concat(got, ' '))

-- configure a barrier with a default timeout (Python: 5 s; scaled down to 0.1 s): only one
-- of two parties arrives, so the wait times out and the barrier breaks
local timed = threading.Barrier(2, nil, 0.1)
local ok, err = pcall(timed.wait, timed)
say('wait timed out: %s, error is BrokenBarrierError: %s, broken=%s',
    tostring(not ok), tostring(err == threading.BrokenBarrierError), tostring(timed.broken))
-- a broken barrier cannot be used...
local _, err2 = pcall(timed.wait, timed)
say('wait on a broken barrier raised %s', tostring(err2))
-- ...until it is reset
timed:reset()
say('after reset(): broken=%s', tostring(timed.broken))

-- abort() breaks the barrier for a thread that is waiting on it
local b2 = threading.Barrier(2)
local waiter = threading.Thread(function(b)
  local wok, werr = pcall(b.wait, b)
  say('waiter released by abort(), BrokenBarrierError: %s', tostring(not wok and werr == threading.BrokenBarrierError))
end, b2)
waiter:start()
while b2.n_waiting < 1 do threading.sleep(0.005) end
b2:abort()
waiter:join()
