-- API.md §1: values that cross threads.
--
-- Thread bodies below run in another lua_State: they see that state's plain globals, not
-- busted's, so they never call busted's assert; they return what they saw and the main
-- thread checks it.

local threading = require "lthreading"
if not package.searchpath("helpers", package.path) then     -- run without the Makefile
  package.path = "spec/?.lua;" .. package.path
end
local H = require "helpers"

-- A light userdata obtainable from plain Lua: debug.upvalueid returns one.
local function some_lightuserdata()
  local x = 0
  local function f() return x end
  return debug.upvalueid(f, 1)
end

describe("values crossing threads (API.md §1)", function()
  local restore_hook
  setup(function() restore_hook = H.quiet_hook() end)
  teardown(function() restore_hook() end)

  ------------------------------------------------------------------ nil, boolean, string
  describe("nil, boolean, string", function()
    it("copies nil and booleans", function()
      local r = H.runp(function(a, b, c)
        return select("#", a, b, c), type(a), a, b, c
      end, nil, true, false)
      assert.same({n = 5, 3, "nil", nil, true, false}, r)
    end)

    it("copies strings binary-safe, \\0 and every byte value included", function()
      local bytes = {}
      for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
      local s = "a\0b\0\0" .. table.concat(bytes) .. "\0"
      local len, back, first0 = H.run(function(v) return #v, v, v:find("\0", 1, true) end, s)
      assert.equal(#s, len)
      assert.equal(s, back)
      assert.equal(2, first0)
    end)

    it("copies the empty string", function()
      local len, back = H.run(function(v) return #v, v end, "")
      assert.equal(0, len)
      assert.equal("", back)
    end)
  end)

  ------------------------------------------------------------------------------- numbers
  describe("numbers", function()
    it("keeps integers integers and floats floats (math.type)", function()
      local r = H.runp(function(...)
        local out = {}
        for i = 1, select("#", ...) do out[i] = math.type((select(i, ...))) end
        return out, ...
      end, 3, 3.0, math.maxinteger, math.mininteger, 0, -0.0, 2^53, 1e300, 0.1)
      assert.same({"integer", "float", "integer", "integer", "integer", "float",
                   "float", "float", "float"}, r[1])
      local expect = {3, 3.0, math.maxinteger, math.mininteger, 0, -0.0, 2^53, 1e300, 0.1}
      for i = 1, #expect do
        assert.equal(math.type(expect[i]), math.type(r[i + 1]), "value " .. i)
        assert.equal(expect[i], r[i + 1], "value " .. i)
      end
    end)

    it("keeps the exact bits of special floats (inf, -inf, nan, -0.0)", function()
      local inf, ninf, nan, nzero = H.run(function(a, b, c, d)
        return a, b, c, d
      end, math.huge, -math.huge, 0/0, -0.0)
      assert.equal(math.huge, inf)
      assert.equal(-math.huge, ninf)
      assert.is_true(nan ~= nan)
      assert.equal("float", math.type(nzero))
      assert.equal(-math.huge, 1 / nzero)
    end)
  end)

  -------------------------------------------------------------------------------- tables
  describe("tables", function()
    it("copies big arrays exactly, whatever their shape (holes, extra keys, backwards fills)", function()
      local function shapes()
        local pure, holes, extra, back = {}, {}, {}, {}
        for i = 1, 500 do pure[i] = i; holes[i] = i * 0.5; extra[i] = tostring(i) end
        holes[250] = nil
        extra.name, extra[900], extra[-3] = "x", "far", "neg"
        for i = 500, 1, -1 do back[i] = i end
        back.k = true
        return {pure, holes, extra, back}
      end
      local sent = shapes()
      local back = H.run(function(t) return t end, sent)
      assert.same(sent, back)
      -- and sent on again from the receiving side (arrays the decoder made)
      assert.same(sent, H.run(function(t) return t end, back))
      local ok, err = pcall(H.run, function(t) return t end,
        (function() local t = {} for i = 1, 100 do t[i] = i end t[70] = coroutine.create(print) return t end)())
      assert.is_false(ok)
      assert.matches("cannot transfer args%[1%]%[70%]: coroutine", err)
    end)

    -- Runs of integers, floats or strings in a big array travel packed (marshal.c); what
    -- arrives must be exact, value for value, subtype for subtype.
    it("copies packed runs exactly: integers to the extremes, floats bit for bit, binary strings", function()
      local ints, floats, strs = {}, {}, {}
      for i = 1, 300 do ints[i] = i * 7919 - 1000000; floats[i] = i / 3; strs[i] = "s" .. i end
      ints[1], ints[2], ints[3], ints[300] = math.mininteger, math.maxinteger, 0, -1
      floats[10], floats[11], floats[12], floats[13], floats[14] = -0.0, 0 / 0, math.huge, -math.huge, 2.0
      floats[15], floats[16] = 5e-324, 1.7976931348623157e308
      strs[5], strs[6], strs[7] = "", ("\0\255"):rep(100), ("long"):rep(1000)
      local r = H.runp(function(a, b, c)
        local out = {}
        for i = 1, #b do out[i] = string.pack("<d", b[i]) end   -- the exact bits
        return a, #b, table.concat(out), c, math.type(b[14]), math.type(a[3])
      end, ints, floats, strs)
      assert.same(ints, r[1])
      local want = {}
      for i = 1, 300 do want[i] = string.pack("<d", floats[i]) end
      assert.equal(300, r[2])
      assert.equal(table.concat(want), r[3])
      assert.same(strs, r[4])
      assert.equal("float", r[5]); assert.equal("integer", r[6])
    end)

    it("copies mixed big arrays exactly: subtypes kept where runs change kind", function()
      local mixed = {}
      for i = 1, 400 do
        local k = (i // 7) % 5
        mixed[i] = k == 0 and i or k == 1 and i + 0.5 or k == 2 and ("x" .. i) or k == 3 and (i % 2 == 0)
                   or {i}
      end
      mixed[100], mixed[101], mixed[102] = 3, 3.0, "3"            -- alternating kinds
      mixed[64], mixed[65], mixed[66], mixed[67] = 1, 2, 3, 4.0   -- a run that ends on a float
      local back = H.run(function(t) return t end, mixed)
      assert.same(mixed, back)
      for i = 1, 400 do assert.equal(math.type(mixed[i]), math.type(back[i]), "element " .. i) end
      -- a run exactly as long as the batches the encoder pops in (64), then another kind
      local edge = {}
      for i = 1, 130 do edge[i] = i <= 64 and i or i <= 128 and ("s" .. i) or i + 0.25 end
      assert.same(edge, H.run(function(t) return t end, edge))
    end)

    it("keeps holes, extra keys and metatables of packed arrays", function()
      local mt = {__index = function(_, k) return "default " .. tostring(k) end}
      local t = setmetatable({}, mt)
      for i = 1, 200 do t[i] = i * 1.5 end
      t[100] = nil; t.name = "t"; t[1000] = 1
      local r = H.runp(function(v)
        return v[99], v[100], rawget(v, 100), v[101], v.name, v[1000], v.missing,
               getmetatable(v) ~= nil
      end, t)
      assert.same({n = 8, 148.5, "default 100", nil, 151.5, "t", 1, "default missing", true}, r)
    end)

    it("keeps string keys that look like numbers apart from integer keys", function()
      -- found by the fuzzer: the string key "1" once became the integer key 1
      local t = {["1"] = "s1", [1] = "i1", ["2"] = "s2", [3] = "i3"}
      local r = H.run(function(v)
        local kinds = {}
        for k, x in pairs(v) do kinds[#kinds + 1] = type(k) .. ":" .. tostring(k) .. "=" .. x end
        table.sort(kinds)
        return table.concat(kinds, ",")
      end, {["1"] = "only"})
      assert.equal("string:1=only", r)
      local back = H.run(function(v) return v end, t)
      assert.same(t, back)
      assert.is_nil(rawget(back, 2))
    end)

    it("are deep copies: the receiver's changes do not reach the sender", function()
      local t = {1, 2, {x = "y"}, k = {deep = {deeper = true}}}
      local back = H.run(function(v)
        v[1] = 100; v[3].x = "changed"; v.k.deep.deeper = false; v.new = 1
        return v
      end, t)
      assert.same({1, 2, {x = "y"}, k = {deep = {deeper = true}}}, t)
      assert.same({100, 2, {x = "changed"}, k = {deep = {deeper = false}}, new = 1}, back)
      assert.are_not.equal(t, back)
    end)

    it("copy keys of every transferable type (integer, float, string, boolean, table)", function()
      local tk = {name = "key table"}
      local t = {[1] = "int", [1.5] = "float", s = "string", [true] = "yes", [false] = "no",
                 [tk] = "table key", [math.maxinteger] = "max"}
      local r = H.runp(function(v)
        local tabkey
        for k, val in pairs(v) do
          if type(k) == "table" then tabkey = k.name .. "=" .. val end
        end
        return v[1], v[1.5], v.s, v[true], v[false], tabkey, v[math.maxinteger]
      end, t)
      assert.same({n = 7, "int", "float", "string", "yes", "no", "key table=table key", "max"}, r)
    end)

    it("keep sequence length and array contents (100000 elements)", function()
      local big = {}
      for i = 1, 100000 do big[i] = i end
      local n, sum = H.run(function(v)
        local s = 0
        for i = 1, #v do s = s + v[i] end
        return #v, s
      end, big)
      assert.equal(100000, n)
      assert.equal(100000 * 100001 // 2, sum)
    end)

    it("nest to ordinary depths (50 levels)", function()
      local t = {}
      local cur = t
      for _ = 1, 49 do cur.next = {}; cur = cur.next end
      cur.leaf = "bottom"
      local depth, leaf = H.run(function(v)
        local d = 1
        while v.next do v = v.next; d = d + 1 end
        return d, v.leaf
      end, t)
      assert.equal(50, depth)
      assert.equal("bottom", leaf)
    end)

    it("keep cycles within one transfer", function()
      local t = {name = "root"}
      t.self = t
      t.child = {parent = t}
      local r = H.runp(function(v)
        return v.self == v, v.child.parent == v, v.name, v
      end, t)
      assert.is_true(r[1])
      assert.is_true(r[2])
      assert.equal("root", r[3])
      -- and the copy coming back keeps the cycle too
      local back = r[4]
      assert.equal(back, back.self)
      assert.equal(back, back.child.parent)
      assert.are_not.equal(t, back)
    end)

    it("keep shared sub-tables shared within one transfer", function()
      local shared = {count = 0}
      local t = {a = shared, b = shared, list = {shared, shared}}
      local r = H.runp(function(v)
        v.a.count = v.a.count + 1
        return v.a == v.b, v.list[1] == v.a, v.list[2] == v.b, v.b.count
      end, t)
      assert.same({n = 4, true, true, true, 1}, r)
    end)

    it("keep a sub-table shared between two args (the args are one transfer)", function()
      local shared = {}
      local same = H.run(function(x, y) return x == y end, shared, shared)
      assert.is_true(same)
    end)

    it("carry their metatables, by the same rules", function()
      local Point = {}
      Point.__index = Point
      Point.__add = function(a, b) return setmetatable({x = a.x + b.x, y = a.y + b.y}, getmetatable(a)) end
      Point.__tostring = function(p) return "(" .. p.x .. "," .. p.y .. ")" end
      function Point.norm1(p) return math.abs(p.x) + math.abs(p.y) end
      local p1 = setmetatable({x = 1, y = 2}, Point)
      local p2 = setmetatable({x = 10, y = -20}, Point)
      local r = H.runp(function(a, b)
        local c = a + b
        return tostring(c), c:norm1(), getmetatable(a) == getmetatable(b), c
      end, p1, p2)
      assert.equal("(11,-18)", r[1])
      assert.equal(29, r[2])
      assert.is_true(r[3])       -- one metatable shared by two values stays one
      assert.equal("(11,-18)", tostring(r[4]))
      assert.equal(29, r[4]:norm1())
    end)

    it("carry a metatable whose __index is a loaded module as that module", function()
      local v = setmetatable({}, {__index = string})
      local up, same = H.run(function(x)
        return x.upper("abc"), getmetatable(x).__index == string
      end, v)
      assert.equal("ABC", up)
      assert.is_true(same)
    end)
  end)

  ------------------------------------------------------------------------- Lua functions
  describe("Lua functions", function()
    it("cross with their upvalues", function()
      local k, tbl = 10, {mult = 3}
      local function f(x) return (x + k) * tbl.mult end
      local r = H.run(function(g) return g(5) end, f)
      assert.equal(45, r)
    end)

    it("can be the target itself, with upvalues", function()
      local greeting, punct = "hello", "!"
      local r = H.run(function(who) return greeting .. " " .. who .. punct end, "world")
      assert.equal("hello world!", r)
    end)

    it("keep their debug info (source and line numbers)", function()
      local function f() return 1 end
      local info = debug.getinfo(f, "S")
      local src, line = H.run(function(g)
        local i = debug.getinfo(g, "S")
        return i.source, i.linedefined
      end, f)
      assert.equal(info.source, src)
      assert.equal(info.linedefined, line)
      assert.matches("marshal_spec%.lua", src)
    end)

    it("are copies: the receiver changing an upvalue does not change the sender's", function()
      local count = 0
      local function bump() count = count + 1; return count end
      local r = H.run(function(g) g(); g(); return g() end, bump)
      assert.equal(3, r)
      assert.equal(0, count)
    end)

    it("keep upvalues shared between closures shared (a counter's inc/get pair)", function()
      local function counter()
        local n = 0
        return function() n = n + 1 end, function() return n end
      end
      local inc, get = counter()
      inc()                             -- the sender's cell holds 1
      local r = H.runp(function(i, g, box)
        i(); i(); box.inc(); box.inc()
        return g(), box.get()
      end, inc, get, {inc = inc, get = get})
      assert.same({n = 2, 5, 5}, r)
      assert.equal(1, get())            -- the sender's cell is untouched
    end)

    it("keep shared upvalues shared when they come back as results", function()
      local inc, get = H.run(function()
        local n = 100
        return function() n = n + 1 end, function() return n end
      end)
      inc(); inc()
      assert.equal(102, get())
    end)

    it("cross when recursive (the function is its own upvalue)", function()
      local function fact(n) if n <= 1 then return 1 end return n * fact(n - 1) end
      assert.equal(3628800, H.run(function(f) return f(10) end, fact))
    end)

    it("see the receiver's globals through _ENV (here busted's per-file environment)", function()
      -- busted runs this file with its own _ENV table; in the thread it is plain globals.
      local r = H.runp(function()
        return _ENV == _G, type(print), type(string.format), describe == nil, it == nil,
               type(require)
      end)
      assert.same({n = 6, true, "function", "function", true, true, "function"}, r)
    end)

    it("see the receiver's globals through an _ENV that is a sandbox table", function()
      local sandbox = {x = "sandbox value"}
      local f = load("return x, print ~= nil, _ENV == _G", "=sandboxed", "t", sandbox)
      assert.equal("sandbox value", (f()))       -- in the sender it is the sandbox
      local r = H.runp(function(g) return g() end, f)
      assert.same({n = 3, nil, true, true}, r)
    end)

    it("turn a reference to the sender's _G into the receiver's globals", function()
      local g = debug.getregistry()[2]         -- LUA_RIDX_GLOBALS: the real _G
      local r = H.runp(function(arg_g, tbl)
        return arg_g == _G, tbl.g == _G, g == _G, rawequal(arg_g, _G)
      end, g, {g = g})
      assert.same({n = 4, true, true, true, true}, r)
    end)
  end)

  ---------------------------------------------------------------------------- C functions
  describe("C functions", function()
    it("cross as the same C function (string.format)", function()
      local r = H.runp(function(fmt)
        return fmt("%d-%s-%.1f", 7, "x", 1.5), fmt == string.format
      end, string.format)
      assert.same({n = 2, "7-x-1.5", true}, r)
    end)

    it("cross with their upvalues copied (require works in the receiver)", function()
      local r = H.runp(function(req)
        local s = req("string")
        local lt = req("lthreading")
        return s == string, lt.Lock ~= nil, lt == req("lthreading")
      end, require)
      assert.same({n = 3, true, true, true}, r)
    end)
  end)

  ------------------------------------------------------------------------- loaded modules
  describe("loaded modules", function()
    it("arrive as the receiver's own require(name): string", function()
      local same, up = H.run(function(m) return m == string, m.upper("q") end, string)
      assert.is_true(same)
      assert.equal("Q", up)
    end)

    it("arrive as the receiver's own module inside tables too (table, math, os)", function()
      local r = H.runp(function(v)
        return v.t == table, v.m == math, v.o == os, v.list[1] == string
      end, {t = table, m = math, o = os, list = {string}})
      assert.same({n = 4, true, true, true, true}, r)
    end)

    it("arrive as the receiver's own require(name): lthreading", function()
      local r = H.runp(function(m) return m == require("lthreading") end, threading)
      assert.same({n = 1, true}, r)
    end)

    it("arrive as the receiver's own require(name): a required Lua library", function()
      local r = H.runp(function(m)
        return m == require("helpers"), type(m.run)
      end, H)
      assert.same({n = 2, true, "function"}, r)
    end)

    it("arrive as the receiver's own require(name), found through the creator's package.path", function()
      -- a module only reachable through a package.path entry this thread added at run time
      local base = os.tmpname()
      os.remove(base)
      local dir, modname = base:match("^(.*)/([^/]+)$")
      local file = assert(io.open(base .. ".lua", "w"))
      file:write("return {answer = 42, loads = 0}\n")
      file:close()
      local saved_path = package.path
      package.path = dir .. "/?.lua;" .. package.path
      finally(function()
        package.path = saved_path
        package.loaded[modname] = nil
        os.remove(base .. ".lua")
      end)
      local mod = require(modname)
      mod.loads = mod.loads + 1           -- the sender's copy differs from a fresh load
      local ok, r = pcall(H.runp, function(m, name)
        return m == require(name), m.answer, m.loads
      end, mod, modname)
      assert.is_true(ok, tostring(r))
      assert.same({n = 3, true, 42, 0}, r)
    end)

    it("are never a copy: a module used as an upvalue is the receiver's", function()
      local r = H.runp(function() return threading == require("lthreading") end)
      assert.same({n = 1, true}, r)
    end)

    it("cross lthreading's classes and error values by name", function()
      local r = H.runp(function(lock_cls, thread_cls, err)
        local lt = require "lthreading"
        return lock_cls == lt.Lock, thread_cls == lt.Thread, err == lt.BrokenBarrierError,
               tostring(err)
      end, threading.Lock, threading.Thread, threading.BrokenBarrierError)
      assert.same({n = 4, true, true, true, "BrokenBarrierError"}, r)
    end)

    it("come back as the sender's own module", function()
      local s, lt = H.run(function() return string, require("lthreading") end)
      assert.equal(string, s)
      assert.equal(threading, lt)
    end)

    -- Whether a table is a module is known without a pass over package.loaded (see
    -- marshal.c, LOADED MODULES).  Through a Queue in this thread, a module comes back as
    -- itself (by name) and any other table as a copy.
    describe("are told apart from other tables as package.loaded changes", function()
      local q = threading.Queue()
      local function same(t) q:put({t}); return rawequal(q:get()[1], t) end
      local NAME = "lthreading_spec_module"
      after_each(function() package.loaded[NAME] = nil; package.loaded[NAME .. "2"] = nil end)

      it("a module added after tables were sent (require's way: a new name)", function()
        local t = {x = 1}
        assert.is_false(same(t))
        package.loaded[NAME] = t
        assert.is_true(same(t))
        package.preload[NAME .. "2"] = function() return {y = 2} end
        local m = require(NAME .. "2")
        package.preload[NAME .. "2"] = nil
        assert.is_true(same(m))
      end)

      it("a module removed: a copy from then on", function()
        local t = {}
        package.loaded[NAME] = t
        assert.is_true(same(t))
        package.loaded[NAME] = nil
        assert.is_false(same(t))
        assert.is_false(same(t))
      end)

      it("a module replaced under the same name: the old table is a copy, the new one the module", function()
        local t1, t2, t3 = {1}, {2}, {3}
        package.loaded[NAME] = t1
        assert.is_true(same(t1))
        package.loaded[NAME] = nil                   -- reload: clear, then require again
        package.loaded[NAME] = t2
        assert.is_true(same(t2))
        assert.is_false(same(t1))
        -- replaced in place (no nil first): known once the table it replaced is looked up
        -- again, which finds it gone and rescans (the case no metamethod reports)
        package.loaded[NAME] = t3
        assert.is_false(same(t2))
        assert.is_true(same(t3))
        -- a module put back under its old name (busted between spec files) is known at once
        package.loaded[NAME] = t1
        assert.is_true(same(t1))
      end)

      it("a table under two names stays a module while it has one of them", function()
        local t = {}
        package.loaded[NAME] = t
        package.loaded[NAME .. "2"] = t
        assert.is_true(same(t))
        package.loaded[NAME .. "2"] = nil
        assert.is_true(same(t))
        package.loaded[NAME] = nil
        assert.is_false(same(t))
      end)

      it("a plain table is never mistaken for one", function()
        local t = {x = 1}
        package.loaded[NAME] = {x = 1}                -- equal contents, another table
        assert.is_false(same(t))
        -- the watching metatable put on another table records nothing that counts
        local other = setmetatable({}, getmetatable(package.loaded))
        other[NAME .. "2"] = t
        assert.is_false(same(t))
        assert.is_false(same({}))
        assert.is_true(same(string))
      end)

      it("are still exact when package.loaded has a metatable of someone else's", function()
        local saved = getmetatable(package.loaded)
        setmetatable(package.loaded, {__index = function() return nil end})
        finally(function() setmetatable(package.loaded, saved) end)
        local t = {}
        assert.is_false(same(t))
        package.loaded[NAME] = t
        assert.is_true(same(t))
        package.loaded[NAME] = {}                    -- replaced in place: seen here too
        assert.is_false(same(t))
        assert.is_true(same(package.loaded[NAME]))
      end)
    end)
  end)

  ---------------------------------------------------------------------- lthreading objects
  describe("lthreading objects", function()
    it("cross by reference: both threads see the same Lock", function()
      local lock = threading.Lock()
      lock:acquire()
      local seen_locked, got = H.run(function(l) return l:locked(), l:acquire(false) end, lock)
      assert.is_true(seen_locked)
      assert.is_false(got)
      -- the other direction: the thread releases it, this thread sees it free
      H.run(function(l) l:release() end, lock)
      assert.is_false(lock:locked())
    end)

    it("cross by reference as upvalues and inside tables", function()
      local lock = threading.Lock()
      local r = H.runp(function(box)
        lock:acquire()
        return box.l == lock, box.list[1] == lock
      end, {l = lock, list = {lock}})
      assert.same({n = 2, true, true}, r)
      assert.is_true(lock:locked())
      lock:release()
    end)

    it("come back as the same Lua value", function()
      local lock = threading.Lock()
      local back = H.run(function(l) return l end, lock)
      assert.equal(lock, back)
      assert.is_true(rawequal(lock, back))
    end)

    it("are one Lua value per thread: == and table keys work", function()
      local lock = threading.Lock()
      local r = H.runp(function(a, b, box)
        local keyed = {[a] = "found"}
        return a == b, rawequal(a, box.k), keyed[b], keyed[box.k]
      end, lock, lock, {k = lock})
      assert.same({n = 4, true, true, "found", "found"}, r)
      local keyed = {[threading.current_thread()] = 1}
      assert.equal(1, keyed[threading.current_thread()])
      assert.is_true(rawequal(threading.main_thread(), threading.main_thread()))
    end)

    it("include the Thread object itself (current_thread() in the thread is t)", function()
      local t = H.spawn(function()
        return require("lthreading").current_thread()
      end)
      H.join(t)
      assert.is_true(rawequal(t, (t:result())))
    end)

    it("live as long as any thread references them: a thread never joined still runs", function()
      local done = threading.Lock()
      done:acquire()
      finally(function() if done:locked() then done:release() end end)
      do
        local t = threading.Thread(function(d)
          require("lthreading").sleep(0.1)
          d:release()
        end, done)
        t:start()
      end                                  -- the only reference here is dropped
      collectgarbage(); collectgarbage()
      assert.is_true(done:acquire(H.JOIN))
    end)

    it("live as long as any thread references them: dropped while another thread waits", function()
      local t
      do
        local lock = threading.Lock()
        lock:acquire()
        t = threading.Thread(function(l)
          local got = l:acquire(0.3)        -- times out: nobody releases it
          return got, l:locked()
        end, lock)
        t:start()
      end                                  -- this thread drops the lock while t waits on it
      collectgarbage(); collectgarbage()
      H.join(t)
      assert.same({n = 2, false, true}, table.pack(t:result()))
    end)
  end)

  --------------------------------------------------------------------------- light userdata
  describe("light userdata", function()
    it("is copied as the same pointer", function()
      local p = some_lightuserdata()
      assert.equal("userdata", type(p))
      local ty, back = H.run(function(v) return type(v), v end, p)
      assert.equal("userdata", ty)
      assert.equal(p, back)
    end)
  end)

  --------------------------------------------------------------------------- not transferable
  describe("values that cannot cross", function()
    it("a coroutine fails with an error naming its path (args[2])", function()
      local co = coroutine.create(function() end)
      assert.has_error(function()
        local t = threading.Thread(function() end, 1, co)
        t:start()
        t:join(H.JOIN)
      end)
      local ok, err = pcall(function()
        local t = threading.Thread{target = function() end, args = {1, co}}
        t:start()
        t:join(H.JOIN)
      end)
      assert.is_false(ok)
      assert.matches("cannot transfer args%[2%]: coroutine", tostring(err))
    end)

    it("a full userdata (io FILE*) fails with an error naming its path and type", function()
      local ok, err = pcall(function()
        local t = threading.Thread{target = function() end, args = {1, {conn = io.stdout}}}
        t:start()
        t:join(H.JOIN)
      end)
      assert.is_false(ok)
      assert.matches("cannot transfer args%[2%]%.conn: userdata %(FILE%*%)", tostring(err))
    end)

    it("a non-transferable upvalue of the target fails the same way", function()
      local co = coroutine.create(function() end)
      local ok, err = pcall(function()
        local t = threading.Thread(function() return co end)
        t:start()
        t:join(H.JOIN)
      end)
      assert.is_false(ok)
      assert.matches("cannot transfer", tostring(err))
      assert.matches("coroutine", tostring(err))
    end)

    it("a non-transferable result raises from result(), not a crash", function()
      local t = H.spawn(function() return 1, coroutine.create(print) end)
      H.join(t)
      local ok, err = pcall(t.result, t)
      assert.is_false(ok)
      assert.matches("coroutine", tostring(err))
    end)

    it("a failed transfer leaves the module working", function()
      pcall(function()
        local t = threading.Thread(function() end, io.stderr)
        t:start()
        t:join(H.JOIN)
      end)
      assert.equal(42, H.run(function() return 42 end))
    end)
  end)

  ------------------------------------------------------------------------------------ args
  describe("thread args", function()
    it("may hold nils: {n = 3, 1, nil, 3} is honoured", function()
      local t = threading.Thread{target = function(...)
        return select("#", ...), ...
      end, args = {n = 3, 1, nil, 3}}
      t:start()
      H.join(t)
      assert.same({n = 4, 3, 1, nil, 3}, table.pack(t:result()))
    end)

    it("keep trailing nils counted by n", function()
      local t = threading.Thread{target = function(...) return select("#", ...) end,
                                 args = {n = 4, "a", nil, nil, nil}}
      t:start()
      H.join(t)
      assert.equal(4, t:result())
    end)
  end)

  ---------------------------------------------------------------------------------- errors
  describe("errors in threads", function()
    it("keep the file:line of where they were raised", function()
      local f = function() error("boom") end; local line = debug.getinfo(1, "l").currentline
      local t = H.spawn(f)
      H.join(t)
      local ok, err = pcall(t.result, t)
      assert.is_false(ok)
      assert.matches("marshal_spec%.lua:" .. line .. ": boom", err)
    end)

    it("cross as values (an error table arrives as a copy of it)", function()
      local t = H.spawn(function() error({code = 42, msg = "structured"}) end)
      H.join(t)
      local ok, err = pcall(t.result, t)
      assert.is_false(ok)
      assert.same({code = 42, msg = "structured"}, err)
    end)
  end)

  ----------------------------------------------------------------------- huge / deep values
  describe("deeply nested or huge values", function()
    local function clear_error(err)
      local s = tostring(err):lower()
      return type(err) == "string" and (s:find("deep") or s:find("nest") or s:find("depth")
        or s:find("transfer") or s:find("memory") or s:find("too")) ~= nil
    end

    it("a 100000-deep nested table crosses or fails with a clear error", function()
      local root = {}
      local cur = root
      for _ = 2, 100000 do local n = {}; cur[1] = n; cur = n end
      local ok, depth = pcall(function()
        return H.run(function(v)
          local d = 1
          while v[1] do v = v[1]; d = d + 1 end
          return d
        end, root)
      end)
      if ok then
        assert.equal(100000, depth)
      else
        assert.is_true(clear_error(depth), "unclear error: " .. tostring(depth))
      end
      assert.equal(1, H.run(function() return 1 end))   -- still alive and working
    end)

    it("a 100000-deep nested table as a thread's result: returned or a clear error", function()
      local t = H.spawn(function()
        local root = {}
        local cur = root
        for _ = 2, 100000 do local n = {}; cur[1] = n; cur = n end
        return root
      end)
      H.join(t)
      local ok, v = pcall(t.result, t)
      if ok then
        local d = 1
        while v[1] do v = v[1]; d = d + 1 end
        assert.equal(100000, d)
      else
        assert.is_true(clear_error(v), "unclear error: " .. tostring(v))
      end
    end)

    it("a 100000-deep chain of closures crosses or fails with a clear error", function()
      local f = function() return 0 end
      for _ = 1, 100000 do local g = f; f = function() return g() end end
      local ok, err = pcall(H.run, function(h) return type(h) end, f)
      if ok then
        assert.equal("function", err)
      else
        assert.is_true(clear_error(err), "unclear error: " .. tostring(err))
      end
    end)

    it("a 10 MB string crosses intact or fails with a clear error", function()
      local s = string.rep("0123456789abcdef", 10 * 1024 * 1024 // 16) .. "\0end"
      local ok, len, tail, back = pcall(H.run, function(v) return #v, v:sub(-4), v end, s)
      if ok then
        assert.equal(#s, len)
        assert.equal("\0end", tail)
        assert.is_true(s == back)
      else
        assert.is_true(clear_error(len), "unclear error: " .. tostring(len))
      end
    end)
  end)

  ------------------------------------------------------------------------ thread globals
  describe("a thread's globals", function()
    it("are fresh: the creator's globals are absent, the standard libraries present", function()
      -- luacheck: globals LTHREADING_SPEC_CREATOR_GLOBAL LTHREADING_SPEC_FILE_GLOBAL (on purpose)
      local G = debug.getregistry()[2]
      rawset(G, "LTHREADING_SPEC_CREATOR_GLOBAL", "creator")
      LTHREADING_SPEC_FILE_GLOBAL = "file env"    -- lands in busted's environment
      local ok, r = pcall(H.runp, function()
        local libs = {}
        for _, name in ipairs{"string", "table", "math", "io", "os", "coroutine", "utf8",
                              "debug", "package"} do
          libs[#libs + 1] = type(_G[name])
        end
        return LTHREADING_SPEC_CREATOR_GLOBAL, LTHREADING_SPEC_FILE_GLOBAL,
               table.concat(libs, ","), type(print), type(require), type(pcall)
      end)
      rawset(G, "LTHREADING_SPEC_CREATOR_GLOBAL", nil)
      LTHREADING_SPEC_FILE_GLOBAL = nil
      assert.is_true(ok, tostring(r))
      assert.same({n = 6, nil, nil, "table,table,table,table,table,table,table,table,table",
                   "function", "function", "function"}, r)
    end)

    it("have package.path and package.cpath copied from the creator", function()
      local saved = package.path
      package.path = package.path .. ";/nonexistent/lthreading-spec/?.lua"
      local ok, p, cp = pcall(H.run, function() return package.path, package.cpath end)
      local want = package.path
      package.path = saved
      assert.is_true(ok, tostring(p))
      assert.equal(want, p)
      assert.equal(package.cpath, cp)
    end)

    it("allow require \"lthreading\" in every thread (and in threads of threads)", function()
      local r = H.runp(function()
        local lt = require "lthreading"
        local t = lt.Thread(function()
          local lt2 = require "lthreading"
          return lt2.Lock ~= nil, lt2.current_thread().name
        end)
        t.name = "grandchild"
        t:start()
        if not t:join(10) then return "inner join timed out" end
        return lt.Lock ~= nil, t:result()
      end)
      assert.same({n = 3, true, true, "grandchild"}, r)
    end)
  end)

  ----------------------------------------------------------------------- reopening the module
  describe("re-running luaopen_lthreading", function()
    it("gives a working module over the same objects and threads", function()
      local lock = threading.Lock()
      local main = threading.main_thread()
      local saved = package.loaded.lthreading
      package.loaded.lthreading = nil
      local ok, again = pcall(require, "lthreading")
      package.loaded.lthreading = saved
      assert.is_true(ok, tostring(again))
      assert.equal("table", type(again))
      assert.is_true(rawequal(main, again.main_thread()))
      assert.is_true(rawequal(again.current_thread(), threading.current_thread()))
      -- an object made before the reload works with threads made after it, and vice versa
      lock:acquire()
      local t = again.Thread(function(l) return l:locked(), l:acquire(false) end, lock)
      t:start()
      assert.is_true(t:join(H.JOIN))
      assert.same({n = 2, true, false}, table.pack(t:result()))
      lock:release()
      local l2 = again.Lock()
      assert.is_true(l2:acquire(false))
      assert.is_false(l2:acquire(false))
      l2:release()
      assert.equal(7, H.run(function(l) return l:acquire(false) and 7 end, l2))
    end)
  end)
end)
