-- API.md §4: Shared, one table seen by every thread it is passed to.
--
-- Thread bodies run in another lua_State with plain globals: they never call busted's
-- assert; they return what they saw and the main thread checks it.  Every wait is bounded.

local threading = require "lthreading"
if not package.searchpath("helpers", package.path) then     -- run without the Makefile
  package.path = "spec/?.lua;" .. package.path
end
local H = require "helpers"

-- Start n threads running f(i, ...), join them all (bounded), return their first results.
local function run_all(n, f, ...)
  local ts, out = {}, {}
  for i = 1, n do ts[i] = H.spawn(f, i, ...) end
  for i = 1, n do H.join(ts[i], 30); out[i] = ts[i]:result() end
  return out
end

describe("Shared", function()
  it("is one table seen by every thread it is passed to", function()
    local s = threading.Shared({greeting = "hi"})
    local seen = H.run(function(sh) sh.from_thread = 42; return sh.greeting end, s)
    assert.equal("hi", seen)
    assert.equal(42, s.from_thread)
    assert.is_true(H.run(function(sh, box) return rawequal(sh, box.s) end, s, {s = s}))
  end)

  it("copies values in and out: a table read back is a copy, numbers keep their type", function()
    local s = threading.Shared()
    local t = {1, 2, {3}}
    s.t = t
    t[1] = 99                                   -- the stored copy is unaffected
    local a = s.t
    assert.same({1, 2, {3}}, a)
    a[2] = 0                                    -- nor by changing what was read
    assert.same({1, 2, {3}}, s.t)
    assert.is_false(rawequal(s.t, s.t))
    s.i, s.f, s.b, s.str = 3, 3.0, false, string.rep("x", 100)
    assert.equal("integer", math.type(s.i))
    assert.equal("float", math.type(s.f))
    assert.is_false(s.b)
    assert.equal(string.rep("x", 100), s.str)
    assert.is_nil(s.missing)
  end)

  it("keeps a Shared stored inside a Shared as a reference, also across threads", function()
    local s = threading.Shared()
    s.inner = threading.Shared({n = 1})
    assert.is_true(rawequal(s.inner, s.inner))
    s.inner.n = 2
    assert.equal(2, s.inner.n)
    H.run(function(sh) sh.inner.n = sh.inner.n + 10 end, s)
    assert.equal(12, s.inner.n)
    local lock = threading.Lock()
    s.lock = lock
    assert.is_true(rawequal(lock, s.lock))
    s.me = s                                    -- holding itself is fine
    assert.is_true(rawequal(s, s.me))
  end)

  it("makes each read and write atomic: concurrent readers never see a torn value", function()
    local s = threading.Shared()
    s.v = {1, 1, 1, 1, 1, 1, 1, 1}
    local writer = H.spawn(function(sh)
      for i = 1, 2000 do
        local x = i % 2
        sh.v = {x, x, x, x, x, x, x, x}
      end
    end, s)
    local torn = run_all(2, function(_, sh)
      local bad = 0
      for _ = 1, 2000 do
        local v = sh.v
        for j = 2, 8 do if v[j] ~= v[1] then bad = bad + 1 break end end
      end
      return bad
    end, s)
    H.join(writer, 30)
    assert.same({0, 0}, torn)
  end)

  it("loses no write when threads write distinct keys at once", function()
    local s = threading.Shared()
    run_all(4, function(i, sh) for j = 1, 250 do sh[(i - 1) * 250 + j] = i end end, s)
    assert.equal(1000, #s)
    for k = 1, 1000 do assert.equal((k - 1) // 250 + 1, s[k]) end
  end)

  it("raises on a value that cannot cross and leaves the table as it was", function()
    local s = threading.Shared({k = "old"})
    local ok, err = pcall(function() s.k = {coroutine.create(print)} end)
    assert.is_false(ok)
    assert.matches("coroutine", err)
    assert.equal("old", s.k)
    assert.has_error(function() s.new = io.stdout end)
    assert.is_nil(s.new)
    assert.has_error(function() threading.Shared({bad = coroutine.create(print)}) end)
  end)

  it("takes strings, numbers, booleans and lthreading objects as keys, as Lua does", function()
    local s = threading.Shared()
    local lock = threading.Lock()
    s[1] = "int"; s[2.5] = "float"; s[true] = "yes"; s[false] = "no"; s[lock] = "lock"
    s[string.rep("k", 50)] = "long key"
    assert.equal("int", s[1.0])                 -- 1.0 and 1 are the same key
    assert.equal("float", s[2.5])
    assert.equal("yes", s[true]); assert.equal("no", s[false])
    assert.equal("lock", s[lock])
    assert.equal("long key", s[string.rep("k", 50)])
    assert.has_error(function() s[{}] = 1 end)
    assert.has_error(function() s[0 / 0] = 1 end)
    assert.has_error(function() return s[nil] end)
    s[1] = nil                                  -- assigning nil removes
    assert.is_nil(s[1])
  end)

  it("supports #, table.insert and table.remove through its metamethods", function()
    local s = threading.Shared({10, 20, 30})
    assert.equal(3, #s)
    table.insert(s, 40)
    table.insert(s, 1, 5)
    assert.equal(5, #s)
    assert.equal(5, s[1]); assert.equal(40, s[5])
    assert.equal(40, table.remove(s))
    assert.equal(5, table.remove(s, 1))
    assert.equal(3, #s)
    assert.equal("10,20,30", table.concat({s[1], s[2], s[3]}, ","))
    s[2] = nil                                  -- a hole: # is still a border
    local n = #s
    assert.is_true(n == 1 or n == 3)
  end)

  it("iterates with pairs over a snapshot taken when the loop starts, and with ipairs", function()
    local s = threading.Shared({a = 1, b = 2, 10, 20})
    local seen, count = {}, 0
    for k, v in pairs(s) do
      seen[k] = v
      count = count + 1
      s["added" .. count] = true                -- not seen by this loop
    end
    assert.equal(4, count)
    assert.same({a = 1, b = 2, [1] = 10, [2] = 20}, seen)
    local arr = {}
    for i, v in ipairs(s) do arr[i] = v end
    assert.same({10, 20}, arr)
    assert.same({a = 1, b = 2, 10, 20, added1 = true, added2 = true, added3 = true,
                 added4 = true}, s:snapshot())
  end)

  it("pairs sees a consistent state while other threads write", function()
    local s = threading.Shared({x = 0, y = 0})
    local writer = H.spawn(function(sh)
      for i = 1, 3000 do sh:update("x", function() return i end); sh.y = i end
    end, s)
    local bad = 0
    for _ = 1, 300 do
      local snap = {}
      for k, v in pairs(s) do snap[k] = v end
      if snap.y > snap.x then bad = bad + 1 end -- y is written after x, never ahead of it
    end
    H.join(writer, 30)
    assert.equal(0, bad)
  end)

  it("update(k, f) is atomic and returns the new value; f(nil) for a missing key", function()
    local s = threading.Shared({sum = 0})
    run_all(4, function(_, sh)
      for j = 1, 500 do sh:update("sum", function(v) return v + j end) end
    end, s)
    assert.equal(4 * 500 * 501 // 2, s.sum)
    assert.equal("first", s:update("new", function(v) assert(v == nil); return "first" end))
    assert.equal("first", s.new)
    assert.is_nil(s:update("new", function() return nil end))   -- nil removes
    assert.is_nil(s.new)
  end)

  it("update(k, f): if f errors, nothing changes and the error propagates", function()
    local s = threading.Shared({k = 1})
    local ok, err = pcall(s.update, s, "k", function() error("nope", 0) end)
    assert.is_false(ok); assert.equal("nope", err)
    assert.equal(1, s.k)
    ok, err = pcall(s.update, s, "k", function() return coroutine.create(print) end)
    assert.is_false(ok); assert.matches("coroutine", err)
    assert.equal(1, s.k)
    s.k = 2                                     -- and the table is not left locked
    assert.equal(2, s.k)
  end)

  it("update(k, f): f touching the same Shared raises instead of deadlocking", function()
    local s = threading.Shared({a = 1, b = 2})
    local ok, err = pcall(s.update, s, "a", function(v) return v + s.b end)
    assert.is_false(ok)
    assert.matches("inside its own update", err)
    assert.equal(1, s.a)
    s.a = 5
    assert.equal(5, s.a)
  end)

  it("incr(k, [delta]) is atomic; a missing key counts as 0; integers stay integers", function()
    local s = threading.Shared()
    run_all(4, function(_, sh) for _ = 1, 1000 do sh:incr("n") end end, s)
    assert.equal(4000, s.n)
    assert.equal("integer", math.type(s.n))
    assert.equal(4010, s:incr("n", 10))
    assert.equal(-5, s:incr("neg", -5))
    local f = s:incr("f", 0.5)
    assert.equal(0.5, f); assert.equal("float", math.type(s.f))
    assert.equal(1.5, s:incr("f"))
    s.str = "x"
    assert.has_error(function() s:incr("str") end)
    assert.equal("x", s.str)
  end)

  it("concurrent sets and deletes of mixed keys: each thread finds exactly its own", function()
    local s = threading.Shared()
    local bad = run_all(4, function(id, sh)
      local mirror = {}
      local function key(r, x)
        if r == 1 then return "key-" .. id .. "-" .. x end
        if r == 2 then return id * 1000000 + x end
        return id * 10000 + x / 7                 -- floats; disjoint between threads
      end
      math.randomseed(id)
      for j = 1, 6000 do
        local k = key(math.random(3), math.random(1000))
        if math.random() < 0.4 then sh[k] = nil; mirror[k] = nil
        else sh[k] = j; mirror[k] = j end
      end
      local wrong = 0
      for x = 1, 1000 do
        for r = 1, 3 do
          local k = key(r, x)
          if sh[k] ~= mirror[k] then wrong = wrong + 1 end
        end
      end
      return wrong
    end, s)
    assert.same({0, 0, 0, 0}, bad)
  end)

  it("append(v) adds at #s + 1 and returns the new length; pop() removes s[#s]", function()
    local s = threading.Shared()
    assert.is_nil(s:pop())                      -- empty: nil
    assert.equal(1, s:append("a"))
    assert.equal(2, s:append({x = 1}))
    assert.equal(3, s:append(false))            -- false is a value
    assert.equal(3, #s)
    assert.is_false(s:pop())
    assert.same({x = 1}, s:pop())
    assert.equal(1, #s)
    s[3] = "beyond"                             -- a hole at 2: append fills it, # walks on
    assert.equal(3, s:append("b"))
    assert.equal("beyond", s:pop())
    assert.equal("b", s:pop())
    assert.equal("a", s:pop())
    assert.is_nil(s:pop())
    assert.equal(0, #s)
    s.name = "kept"                             -- pop only ever touches the array part
    assert.is_nil(s:pop())
    assert.equal("kept", s.name)
    assert.has_error(function() s:append(nil) end, "bad argument #1 to 'append' (cannot append nil)")
    assert.has_error(function() s:append(coroutine.create(print)) end)
    assert.equal(0, #s)
    assert.has_error(function() s:pop(1) end)   -- no index: that would be table.remove
  end)

  it("append from 4 threads loses no item and duplicates none", function()
    local s = threading.Shared()
    local N = 5000
    local placed = run_all(4, function(i, sh, n)
      local at = {}
      for j = 1, n do at[j] = sh:append(i * 100000 + j) end
      return at
    end, s, N)
    assert.equal(4 * N, #s)
    local seen, bad = {}, 0
    for idx = 1, 4 * N do
      local v = s[idx]
      if seen[v] then bad = bad + 1 end
      seen[v] = true
    end
    assert.equal(0, bad)
    for i = 1, 4 do
      local last = 0
      for j = 1, N do
        assert.is_true(seen[i * 100000 + j], "item lost")
        local at = placed[i][j]                 -- append returned where the item went
        if s[at] ~= i * 100000 + j or at <= last then bad = bad + 1 end
        last = at
      end
    end
    assert.equal(0, bad)
  end)

  it("append and pop mixed from 4 threads: every item is popped or left, exactly once", function()
    local s = threading.Shared()
    local popped = run_all(4, function(i, sh)
      local got = {}
      for j = 1, 3000 do
        sh:append(i * 100000 + j)
        if j % 3 ~= 0 then
          local v = sh:pop()
          if v ~= nil then got[#got + 1] = v end
        end
      end
      return got
    end, s)
    local count, dup = {}, 0
    local function see(v)
      if count[v] then dup = dup + 1 end
      count[v] = true
    end
    for i = 1, 4 do for _, v in ipairs(popped[i]) do see(v) end end
    local rest = #s
    for idx = 1, rest do see(s[idx]) end
    assert.equal(0, dup)
    local missing = 0
    for i = 1, 4 do for j = 1, 3000 do if not count[i * 100000 + j] then missing = missing + 1 end end end
    assert.equal(0, missing)
    assert.equal(4 * 3000, #popped[1] + #popped[2] + #popped[3] + #popped[4] + rest)
    for _ = 1, rest do assert.is_not_nil(s:pop()) end
    assert.equal(0, #s)
  end)

  it("append and pop are refused inside update() on the same Shared", function()
    local s = threading.Shared({n = 0})
    assert.has_error(function() s:update("n", function() s:append(1) end) end)
    assert.has_error(function() s:update("n", function() s:pop() end) end)
    assert.equal(0, #s)
    assert.equal(1, s:append(1))
  end)

  it("keys that all collided under the old unseeded hash work as any others", function()
    -- FNV-1a 64 then splitmix64's finalizer: the hash Shared used before it was seeded
    local function oldhash(k)
      local h = -3750763034362895579              -- 0xcbf29ce484222325
      for i = 1, #k do h = (h ~ k:byte(i)) * 0x100000001b3 end
      h = h ~ #k
      h = (h ~ (h >> 30)) * -4658895280553007687  -- 0xbf58476d1ce4e5b9
      h = (h ~ (h >> 27)) * -7723592293110705685  -- 0x94d049bb133111eb
      return h ~ (h >> 31)
    end
    local keys, i = {}, 0
    while #keys < 150 do                         -- one home slot in every table up to 1024
      i = i + 1
      local k = "c" .. i
      if oldhash(k) & 1023 == 0 then keys[#keys + 1] = k end
    end
    local s = threading.Shared()
    for j, k in ipairs(keys) do s[k] = j end
    for j, k in ipairs(keys) do assert.equal(j, s[k]) end
    local n = 0
    for k, v in pairs(s) do n = n + 1; assert.equal(keys[v], k) end
    assert.equal(#keys, n)
    for j = 1, #keys, 2 do s[keys[j]] = nil end  -- deletions keep the rest reachable
    for j, k in ipairs(keys) do
      if j % 2 == 1 then assert.is_nil(s[k]) else assert.equal(j, s[k]) end
    end
  end)

  it("hashes with a per-process seed: pairs order differs between two processes", function()
    local script = [[
      local s = require("lthreading").Shared()
      for i = 1, 64 do s["key" .. i] = i end
      local order = {}
      for k in pairs(s) do order[#order + 1] = k end
      local again = {}
      for k in pairs(s) do again[#again + 1] = k end
      assert(table.concat(order, " ") == table.concat(again, " "), "order changed in-process")
      print(table.concat(order, " "))
    ]]
    local a, b = H.lua(script), H.lua(script)
    assert.equal(0, a.code, H.show(a))
    assert.equal(0, b.code, H.show(b))
    assert.equal(64, select(2, a.out:gsub("key%d+", "")))
    assert.are_not.equal(a.out, b.out)
  end)

  it("method names shadow keys for s.k; get/set reach any key", function()
    local s = threading.Shared()
    s.update = "data"                           -- stored as data
    assert.equal("function", type(s.update))    -- but s.update is the method
    assert.equal("data", s:get("update"))
    s:set("incr", 7)
    assert.equal(7, s:get("incr"))
    s:set("incr", nil)
    assert.is_nil(s:get("incr"))
  end)

  it("a proxy used for many method calls (then it has its own metatable) still works", function()
    local s = threading.Shared({k = 1, [1] = "a"})
    local before = getmetatable(s)
    assert.equal(2, s:incr("k"))
    assert.is_true(rawequal(before, getmetatable(s)))   -- a few calls: the class metatable
    for _ = 1, 20 do s:get("k") end
    assert.is_false(rawequal(before, getmetatable(s)))  -- then one of its own
    assert.equal("function", type(s.get))       -- methods still win over data
    assert.is_true(rawequal(s.get, threading.Shared().get))
    s.x = "y"                                   -- __newindex, __index, __len, pairs
    assert.equal("y", s.x)
    assert.equal(2, s.k)
    assert.is_nil(s.absent)
    assert.equal(1, #s)
    local n = 0
    for _ in pairs(s) do n = n + 1 end
    assert.equal(3, n)
    assert.matches("^Shared: ", tostring(s))
    assert.has_error(function() return s[{}] end)
    local inner = threading.Shared()
    for _ = 1, 20 do inner:incr("n") end
    s.inner = inner                             -- still an lthreading object (a key, a value)
    s[inner] = true
    assert.is_true(rawequal(inner, s.inner))
    assert.is_true(s[inner])
    assert.equal(5, H.run(function(sh) return sh:incr("k", 3) end, s))
    local q = threading.Queue()
    q:put(s)
    assert.is_true(rawequal(s, q:get()))
  end)

  it("string keys hash the same whether cached or not, through garbage collection", function()
    local s = threading.Shared()
    for _ = 1, 3 do
      for i = 1, 300 do
        local k = "key" .. i                    -- new strings each round (old ones collected)
        s:incr(k)
        if i % 7 == 0 then s[k .. "x"] = i end
      end
      collectgarbage()
    end
    for i = 1, 300 do
      assert.equal(3, s:get("key" .. i))
      assert.equal(3, s["key" .. i])
      if i % 7 == 0 then assert.equal(i, s:get("key" .. i .. "x")) end
    end
    local long = string.rep("L", 200)            -- long keys: never cached, still found
    s[long] = 1
    assert.equal(2, s:incr(string.rep("L", 200)))
    local seen = H.run(function(sh)
      local bad = 0
      for i = 1, 300 do if sh["key" .. i] ~= 3 then bad = bad + 1 end end
      return bad
    end, s)
    assert.equal(0, seen)
  end)
end)
