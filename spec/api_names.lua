-- spec/api_names.lua -- the public names of lthreading, computed from the live module.
--
-- Used by docs_spec.lua (every name is in docs/reference.md) and types_spec.lua (every name
-- has a stub in types/lthreading.lua).  Names are found by walking what the module really
-- exports, so a name added to the C code is checked without touching this file:
--   - module names: the module table's string keys;
--   - classes: every CamelCase module entry that makes an object when called (CTOR_ARGS
--     gives the arguments of those that need some), plus the objects only methods make
--     (DERIVED: Future);
--   - methods and fields: the instance's metatable __index -- a table (walked with its own
--     __index chain), or a function whose upvalues hold the method table -- and, for the
--     class tables (Thread, Timer), the class table and its chain; function values are
--     methods, other values fields;
--   - metamethods: the instance metatable's "__" keys a user meets (__call, __close, __len,
--     __pairs, ...; not the internal ones in INTERNAL_META);
--   - error values: module tables whose metatable's __name is "lthreading.Error";
--   - environment variables: every getenv("NAME") in src/*.c.
-- What an __index *function* computes (t.name, bar.parties, threading.excepthook) cannot be
-- enumerated: COMPUTED_FIELDS lists those, and fields() checks each one is really there.

local threading = require "lthreading"

local M = {}

-- Arguments for constructors that need some to make an object.
M.CTOR_ARGS = {
  Thread = { function() end },
  Timer = { 0, function() end },
  Barrier = { 2 },
}

-- Classes whose objects come from methods, not from a module constructor.
M.DERIVED = {
  Future = function()
    local pool = threading.ThreadPoolExecutor(1)
    local fut = pool:submit(function() return 1 end)
    fut:result(10)
    pool:shutdown()
    return fut
  end,
}

-- Fields read through an __index function (not enumerable), per class ("threading": the
-- module itself).  Each must be non-nil on the object made by M.instance (a Thread or Timer
-- that was started and joined).
M.COMPUTED_FIELDS = {
  threading = { "excepthook" },
  Thread = { "name", "ident", "native_id", "daemon", "_target", "_args" },
  Timer = { "interval", "finished" },
  Barrier = { "parties", "n_waiting", "broken" },
}

-- The documented options of the table-form constructors, per class.
M.OPTIONS = {
  Thread = { "target", "args", "name", "daemon", "memory_limit" },
  Timer = { "interval", "target", "args", "name", "daemon" },
  Queue = { "maxsize" },
  ThreadPoolExecutor = { "max_workers", "initializer", "initargs", "thread_name_prefix" },
}

-- Names the API specifies (API.md) that the module may not export yet: documenting or
-- stubbing them early is fine.  class -> { name = true }.
M.PLANNED = {
  Shared = { append = true, pop = true },
}

-- Metatable keys that are machinery, not API.
M.INTERNAL_META = {
  __gc = true, __name = true, __index = true, __newindex = true, __tostring = true,
  __mode = true, __metatable = true,
}

local function callable(v)
  if type(v) == "function" then return true end
  local mt = getmetatable(v)
  return mt ~= nil and type(mt) == "table" and mt.__call ~= nil
end

function M.is_error_value(v)
  local mt = type(v) == "table" and getmetatable(v)
  return mt and type(mt) == "table" and mt.__name == "lthreading.Error" or false
end

-- The module's names: {name = value}, its raw keys plus the computed ones.
function M.module_names()
  local names = {}
  for k, v in pairs(threading) do
    if type(k) == "string" then names[k] = v end
  end
  for _, k in ipairs(M.COMPUTED_FIELDS.threading) do
    names[k] = assert(threading[k], "threading." .. k .. " is nil")
  end
  return names
end

-- The error values: {name = value}.
function M.error_values()
  local errs = {}
  for k, v in pairs(threading) do
    if type(k) == "string" and M.is_error_value(v) then errs[k] = v end
  end
  return errs
end

-- Start and join a Thread-like object, so that its ident/native_id are set.
local function finish(obj)
  obj:start()
  assert(obj:join(10), "a probe thread did not end")
  return obj
end

-- An object of the class `name`.
function M.instance(name)
  if M.DERIVED[name] then return M.DERIVED[name]() end
  local ctor = threading[name]
  local args = M.CTOR_ARGS[name] or {}
  local ok, obj = pcall(ctor, table.unpack(args))
  assert(ok, "cannot make a threading." .. name .. " to list its methods: give its arguments " ..
             "in CTOR_ARGS of spec/api_names.lua (" .. tostring(obj) .. ")")
  if type(ctor) == "table" then finish(obj) end       -- a class table: Thread, Timer
  return obj
end

-- Walk a method table (and its __index chain, and an __index function's table upvalues).
local function walk(index, into, seen, skip)
  if seen[index] then return end
  seen[index] = true
  if type(index) == "table" then
    for k, v in pairs(index) do
      if type(k) == "string" and k:sub(1, 2) ~= "__" and into[k] == nil then into[k] = v end
    end
    local mt = getmetatable(index)
    if type(mt) == "table" and mt.__index ~= nil then walk(mt.__index, into, seen, skip) end
  elseif type(index) == "function" then
    for i = 1, 255 do
      local name, up = debug.getupvalue(index, i)
      if name == nil then break end
      if type(up) == "table" and up ~= skip then walk(up, into, seen, skip) end
    end
  end
end

-- The classes: {Name = {object =, methods = {name = function}, fields = {name = true},
-- meta = {__name = function}, parent = "Name" or nil}}.
function M.classes()
  local classes = {}
  local names = {}
  for k, v in pairs(threading) do
    if type(k) == "string" and k:match("^%u") and callable(v) and not M.is_error_value(v) then
      names[#names + 1] = k
    end
  end
  for k in pairs(M.DERIVED) do names[#names + 1] = k end
  table.sort(names)
  for _, name in ipairs(names) do
    local obj = M.instance(name)
    local mt = getmetatable(obj)
    local members = {}
    local c = { object = obj, methods = {}, fields = {}, meta = {} }
    if type(mt) == "table" then
      for k, v in pairs(mt) do
        if type(k) == "string" and k:sub(1, 2) == "__" and not M.INTERNAL_META[k] then
          c.meta[k] = v
        end
      end
      if mt.__index ~= nil then walk(mt.__index, members, {}, mt) end
    end
    if type(threading[name]) == "table" then walk(threading[name], members, {}) end
    for k, v in pairs(members) do
      if type(v) == "function" then c.methods[k] = v else c.fields[k] = true end
    end
    for _, f in ipairs(M.COMPUTED_FIELDS[name] or {}) do
      assert(obj[f] ~= nil, "threading." .. name .. " has no field " .. f ..
                            " (update COMPUTED_FIELDS in spec/api_names.lua)")
      c.fields[f] = true
    end
    classes[name] = c
  end
  -- a class table's parent (Timer extends Thread): its methods and fields are the parent's
  for name in pairs(classes) do
    local mt = type(threading[name]) == "table" and getmetatable(threading[name])
    local parent = type(mt) == "table" and mt.__index
    for other in pairs(classes) do
      if other ~= name and parent ~= nil and rawequal(threading[other], parent) then
        classes[name].parent = other
      end
    end
  end
  return classes
end

-- The environment variables the C code reads: a sorted array of names.
function M.env_vars(srcdir)
  srcdir = srcdir or "src"
  local seen, out = {}, {}
  local p = assert(io.popen("ls " .. srcdir .. "/*.c 2>/dev/null"))
  for path in p:lines() do
    local f = assert(io.open(path, "rb"))
    local text = f:read("a")
    f:close()
    for name in text:gmatch('getenv%s*%(%s*"([%w_]+)"%s*%)') do
      if not seen[name] then seen[name] = true; out[#out + 1] = name end
    end
  end
  p:close()
  table.sort(out)
  return out
end

-- The sorted keys of a table.
function M.sorted(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = k end
  table.sort(out)
  return out
end

return M
