-- spec/stack_paths.lua -- every way Lua code can make the C stack grow, each run until Lua
-- stops it (LUAI_MAXCCALLS: "C stack overflow", or "error in error handling" once a message
-- handler overflows too).  Used by spec/thread_hostile_spec.lua (each path in a thread with
-- the smallest stack lthreading accepts) and tools/stack_floor.lua (which measures the floor).
--
-- Each entry is {name, f}: f runs as a thread's target, with no upvalues, and either returns
-- or raises; what matters is that it never crashes the process.

local P = {}
local function add(name, f) P[#P + 1] = {name, f} end

---------------------------------------------------------------------- calls from C into Lua
add("pcall", function()
  local function f() local _, e = pcall(f); error(e, 0) end
  f()
end)
add("xpcall", function()
  local function f() local _, e = xpcall(f, function(m) return m end); error(e, 0) end
  f()
end)
add("xpcall, the handler recursing at the deepest point", function()
  local function g() return (string.gsub("x", "x", g)) end
  local function f() local _, e = xpcall(f, function(m) g() return m end); error(e, 0) end
  f()
end)
add("error with a traceback handler at the deepest point", function()
  local function f() return (string.gsub("x", "x", f)) end     -- no pcall: the thread's own
  f()                                                          -- handler runs at the bottom
end)
add("string.gsub function callback", function()
  local function f() return (string.gsub("x", "x", f)) end
  return pcall(f)
end)
add("string.gsub table replacement with __index", function()
  local t
  t = setmetatable({}, {__index = function() return (string.gsub("x", "x", t)) end})
  return pcall(string.gsub, "x", "x", t)
end)
add("string.gmatch iterator", function()
  local function f() for _ in ("ab"):gmatch(".") do f() end end
  return pcall(f)
end)
add("string.format %s with __tostring", function()
  local mt = {}
  mt.__tostring = function() return string.format("%s%5s", setmetatable({}, mt), "") end
  return pcall(string.format, "%s", setmetatable({}, mt))
end)
add("table.sort comparator", function()
  local function f() table.sort({3, 1, 2}, function(a, b) f() return a < b end) end
  return pcall(f)
end)
add("table.concat with __index", function()
  local mt = {__len = function() return 1 end}
  mt.__index = function() return table.concat(setmetatable({}, mt)) end
  return pcall(table.concat, setmetatable({}, mt))
end)
add("table.unpack, insert, move with metamethods", function()
  local mt = {__len = function() return 2 end}
  mt.__index = function() return table.unpack(setmetatable({}, mt)) end
  mt.__newindex = function() table.insert(setmetatable({}, mt), 1, 1) end
  local ok1, e1 = pcall(table.unpack, setmetatable({}, mt))
  local ok2, e2 = pcall(table.move, {1, 2}, 1, 2, 1, setmetatable({}, mt))
  return ok1, e1, ok2, e2
end)
add("ipairs with __index", function()
  local mt = {}
  mt.__index = function() for _ in ipairs(setmetatable({}, mt)) do end end
  return pcall(function() for _ in ipairs(setmetatable({}, mt)) do end end)
end)
add("pairs with __pairs", function()
  local mt = {}
  mt.__pairs = function() return pairs(setmetatable({}, mt)) end
  return pcall(pairs, setmetatable({}, mt))
end)

----------------------------------------------------------------------------- metamethods
add("__index chain", function()
  local mt = {}
  mt.__index = function(_, k) return setmetatable({}, mt)[k] end
  return pcall(function() return setmetatable({}, mt).x end)
end)
add("__newindex chain", function()
  local mt = {}
  mt.__newindex = function(_, k, v) setmetatable({}, mt)[k] = v end
  return pcall(function() setmetatable({}, mt).x = 1 end)
end)
add("__tostring through tostring", function()
  local mt = {}
  mt.__tostring = function() return tostring(setmetatable({}, mt)) end
  return pcall(tostring, setmetatable({}, mt))
end)
add("__tostring through print", function()
  local mt = {}
  mt.__tostring = function() print(setmetatable({}, mt)) return "" end
  return pcall(print, setmetatable({}, mt))
end)
add("__concat", function()
  local mt = {}
  mt.__concat = function() return setmetatable({}, mt) .. "x" end
  return pcall(function() return setmetatable({}, mt) .. "x" end)
end)
add("__eq", function()
  local mt = {}
  mt.__eq = function() return setmetatable({}, mt) == setmetatable({}, mt) end
  return pcall(function() return setmetatable({}, mt) == setmetatable({}, mt) end)
end)
add("__lt and __le", function()
  local mt = {}
  mt.__lt = function() return setmetatable({}, mt) < setmetatable({}, mt) end
  mt.__le = function() return setmetatable({}, mt) <= setmetatable({}, mt) end
  return pcall(function() return setmetatable({}, mt) < setmetatable({}, mt) end),
         pcall(function() return setmetatable({}, mt) <= setmetatable({}, mt) end)
end)
add("__len, __unm, __add", function()     -- (__call is no C call: it grows the Lua stack)
  local mt = {}
  mt.__len = function() return #setmetatable({}, mt) end
  mt.__unm = function() return -setmetatable({}, mt) end
  mt.__add = function() return setmetatable({}, mt) + 1 end
  return pcall(function() return #setmetatable({}, mt) end),
         pcall(function() return -setmetatable({}, mt) end),
         pcall(function() return setmetatable({}, mt) + 1 end)
end)
add("__close", function()
  local mt = {}
  local function f() local _ <close> = setmetatable({}, mt) end
  mt.__close = function() f() end
  return pcall(f)
end)

------------------------------------------------------------------------------ the parser
add("load with a reader function", function()
  local function f() return load(function() f() return nil end) end
  return pcall(f)
end)
add("load of deeply nested source", function()
  local n = 300
  local src = {
    "return " .. ("("):rep(n) .. "1" .. (")"):rep(n),
    "return " .. ("-"):rep(n) .. "1",
    "return " .. ("not "):rep(n) .. "1",
    "return " .. ("{"):rep(n) .. ("}"):rep(n),
    "return " .. ("function() return "):rep(n) .. "1" .. (" end"):rep(n),
    ("do "):rep(n) .. (" end"):rep(n),
    ("while 1 do "):rep(n) .. (" end"):rep(n),
    ("if 1 then "):rep(n) .. (" end"):rep(n),
    "return " .. ("1 .. "):rep(n) .. "1",
    "return " .. ("2 ^ "):rep(n) .. "1",
    "return " .. ("f("):rep(n) .. (")"):rep(n),
    "return " .. ("a["):rep(n) .. "1" .. ("]"):rep(n),
    "local a = " .. ("{a = "):rep(n) .. "1" .. ("}"):rep(n),
  }
  local out = {}
  for i, s in ipairs(src) do out[i] = select(2, load(s)) or "ok" end
  return table.concat(out, "\n")
end)
add("load of deep source from inside deep calls", function()
  local src = "return " .. ("("):rep(150) .. "1" .. (")"):rep(150)
  local function f() load(src) return (string.gsub("x", "x", f)) end
  return pcall(f)
end)
add("require chain (package.preload __index)", function()
  local n = 0
  setmetatable(package.preload, {__index = function()
    n = n + 1
    require("m" .. n)                          -- inside the searcher: findloader's frame kept
    return function() return require("x" .. n) end
  end})
  return pcall(require, "m0")
end)

---------------------------------------------------------------------------- coroutines
add("coroutine.wrap nesting", function()
  local function f() return coroutine.wrap(f)() end
  return pcall(f)
end)
add("coroutine.resume nesting", function()
  local function f() local _, e = coroutine.resume(coroutine.create(f)); error(e, 0) end
  return pcall(f)
end)
add("coroutine.close with __close", function()
  local mt = {}
  local function f()
    local co = coroutine.create(function() local _ <close> = setmetatable({}, mt)
                                           coroutine.yield() end)
    coroutine.resume(co)
    local ok, e = coroutine.close(co)
    if not ok then error(e, 0) end
  end
  mt.__close = function() f() end
  return pcall(f)
end)

------------------------------------------------------------------------- lthreading's own
add("lock:with nesting", function()
  local threading = require "lthreading"
  local function f() return threading.Lock():with(f) end
  return pcall(f)
end)
add("Shared:update nesting", function()
  local threading = require "lthreading"
  local function f() return threading.Shared():update("k", f) end
  return pcall(f)
end)
add("Condition:wait_for nesting", function()
  local threading = require "lthreading"
  local function f()
    local c = threading.Condition(threading.Lock())
    c:acquire()
    return c:wait_for(f, 0)
  end
  return pcall(f)
end)
add("queue put/get of deep values at the deepest point", function()
  local threading = require "lthreading"
  local q = threading.Queue()
  local deep = {}
  for _ = 1, 2000 do deep = {deep} end
  local function f()
    local ok = pcall(q.put, q, deep)
    if ok then pcall(q.get, q) end
    return (string.gsub("x", "x", f))
  end
  return pcall(f)
end)

return P
