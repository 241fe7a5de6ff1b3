-- Mirrors: seed 001 (SuperFastPython "Python Threading: The Complete Guide") "Are Lists, Dics, and Sets Thread-Safe?" (atomic operations).
-- Shows: in lthreading, one read or write of a Shared field is atomic, and so are s:append(v) and s:pop() (Python's list.append/pop); another compound step (read, then write) needs update()/incr() or a Lock.
local threading = require "lthreading"

local function say(...) io.write(string.format(...) .. "\n") end   -- one write per line

-- Python's lists are shared objects whose single operations are atomic under the GIL. Lua
-- tables are copied between lthreading threads, so the shared list is a threading.Shared.
local THREADS, ITEMS = 4, 500

-- atomic: single writes to distinct keys
local s = threading.Shared()
local threads = {}
for i = 1, THREADS do
  threads[i] = threading.Thread(function()
    for j = 1, ITEMS do s[(i - 1) * ITEMS + j] = i end
  end)
  threads[i]:start()
end
for _, t in ipairs(threads) do t:join() end
say('distinct-key writes: #s = %d (expected %d)', #s, THREADS * ITEMS)

-- atomic: appending from several threads, as Python's list.append. (table.insert(list, j)
-- would be two steps -- read #list, then write -- and could lose items without a Lock.)
local list = threading.Shared()
threads = {}
for i = 1, THREADS do
  threads[i] = threading.Thread(function()
    for j = 1, ITEMS do list:append(j) end
  end)
  threads[i]:start()
end
for _, t in ipairs(threads) do t:join() end
say('appends: #list = %d (expected %d)', #list, THREADS * ITEMS)

-- atomic: popping from several threads at once, as Python's list.pop(): each item once
local popped = threading.Shared{n = 0}
threads = {}
for i = 1, THREADS do
  threads[i] = threading.Thread(function()
    while list:pop() ~= nil do popped:incr('n') end
  end)
  threads[i]:start()
end
for _, t in ipairs(threads) do t:join() end
say('pops: items popped = %d (expected %d)', popped.n, THREADS * ITEMS)

-- compound: a read-modify-write of one field, made atomic by update()
local totals = threading.Shared{sum = 0}
threads = {}
for i = 1, THREADS do
  threads[i] = threading.Thread(function()
    for j = 1, ITEMS do totals:update('sum', function(v) return v + j end) end
  end)
  threads[i]:start()
end
for _, t in ipairs(threads) do t:join() end
say('update() sum = %d (expected %d)', totals.sum, THREADS * ITEMS * (ITEMS + 1) // 2)
