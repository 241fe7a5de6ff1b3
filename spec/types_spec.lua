-- luacheck: std +busted
-- types/lthreading.lua gives editors (lua-language-server) the module's types: every name the
-- live module exports (computed in spec/api_names.lua) must have a stub there, every stub of
-- a real class must name something that exists, and the file must load and run harmlessly.

if not package.searchpath("api_names", package.path) then
  package.path = "spec/?.lua;" .. package.path
end
local A = require "api_names"

local STUB = "types/lthreading.lua"

local function read(path)
  local f = assert(io.open(path, "rb"), "missing " .. path)
  local s = f:read("a")
  f:close()
  return s
end

-- LuaLS operators (`---@operator NAME`); other metamethods (__close, __pairs, __eq, ...) have
-- no annotation and are not checked here.
local OPERATORS = {
  add = true, sub = true, mul = true, div = true, mod = true, pow = true, unm = true,
  idiv = true, band = true, bor = true, bxor = true, bnot = true, shl = true, shr = true,
  concat = true, len = true, call = true,
}

-- Parse the stub file: classes (annotations and the functions defined on their local table)
-- and the module's names.
local function parse(text)
  local stub = { classes = {}, module = {}, params = {}, returns_module = false }
  local function class(name)
    local c = stub.classes[name]
    if not c then
      c = { name = name, parents = {}, methods = {}, fields = {}, ops = {} }
      stub.classes[name] = c
    end
    return c
  end
  local var_class = {}
  local block            -- the class whose annotation block we are in
  local pending          -- the class waiting for its `local X = {}` line
  local params = {}      -- ---@param names waiting for their function
  local n = 0
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    local cname, rest = line:match("^%-%-%-@class%s+([%w_%.]+)%s*(.*)$")
    if cname then
      block, pending = class(cname), cname
      for parent in (rest:match("^:%s*(.*)") or ""):gmatch("[%w_%.]+") do
        block.parents[#block.parents + 1] = parent
      end
    elseif line:match("^%-%-%-@field%s") then
      local f = line:match("^%-%-%-@field%s+([%a_][%w_]*)")
      if block and f then block.fields[f] = true end
    elseif line:match("^%-%-%-@operator%s") then
      local op = line:match("^%-%-%-@operator%s+([%a_]+)")
      if block and op then block.ops[op] = true end
    elseif line:match("^%-%-%-@overload%s") then
      if block then block.ops.call = true end            -- a callable class
    elseif line:match("^%-%-%-@param%s") then
      local name = line:match("^%-%-%-@param%s+(%.%.%.)") or line:match("^%-%-%-@param%s+([%a_][%w_]*)")
      params[#params + 1] = { name = name, line = n }
    elseif line:match("^%-%-") or line:match("^%s*$") then
      -- a comment or a blank line: annotation blocks go on
      if line:match("^%s*$") then block = nil end
    else
      block = nil
      local var = line:match("^local%s+([%a_][%w_]*)%s*=")
      if var and pending then var_class[var] = pending end
      pending = nil
      local owner, sep, fname, args = line:match("^function%s+([%a_][%w_]*)([.:])([%a_][%w_]*)%s*%((.-)%)")
      if owner then
        local set = {}
        for a in args:gmatch("[%a_][%w_]*") do set[a] = true end
        if args:match("%.%.%.") then set["..."] = true end
        for _, p in ipairs(params) do
          if not set[p.name] then
            stub.params[#stub.params + 1] = string.format("line %d: @param %s not a parameter of %s%s%s",
                                                          p.line, tostring(p.name), owner, sep, fname)
          end
        end
        if owner == "threading" and sep == "." then
          stub.module[fname] = true
        elseif var_class[owner] then
          stub.classes[var_class[owner]].methods[fname] = true
        end
      end
      params = {}
      local field = line:match("^threading%.([%a_][%w_]*)%s*=") or line:match('^threading%["([^"]+)"%]%s*=')
      if field then stub.module[field] = true end
      if line:match("^return%s+threading%s*$") then stub.returns_module = true end
    end
  end
  for f in pairs((stub.classes.threading or { fields = {} }).fields) do stub.module[f] = true end
  return stub
end

local stub = parse(read(STUB))
local classes = A.classes()

-- Does stub class `name` or one of its ancestors have `what` in its `kind` set?
local function has(name, kind, what, seen)
  seen = seen or {}
  local c = stub.classes[name]
  if not c or seen[name] then return false end
  seen[name] = true
  if c[kind][what] then return true end
  for _, p in ipairs(c.parents) do
    if has(p, kind, what, seen) then return true end
  end
  return false
end

describe("types/lthreading.lua", function()
  it("is a ---@meta file that compiles, runs harmlessly and returns the typed module", function()
    local text = read(STUB)
    assert.truthy(text:match("^%-%-%-@meta"), "the first line must be ---@meta")
    assert.is_table(stub.classes.threading, "no ---@class threading")
    assert.is_true(stub.returns_module, "the file must end with `return threading`")
    local wrote = {}
    local env = setmetatable({}, { __index = _G, __newindex = function(_, k) wrote[#wrote + 1] = k end })
    local chunk = assert(loadfile(STUB, "t", env))
    local m = chunk()
    assert.same({}, wrote, "running the stub set globals")
    assert.is_table(m)
    assert.is_function(m.Lock)
    assert.is_nil(m.Lock())                    -- stubs do nothing
    assert.equal(m.Local, m["local"])
  end)

  it("has a stub for every name the module exports", function()
    local missing = {}
    for _, name in ipairs(A.sorted(A.module_names())) do
      if not stub.module[name] then missing[#missing + 1] = name end
    end
    assert.same({}, missing, "no `function threading.NAME`, `threading.NAME =` or " ..
                             "`---@field NAME` under ---@class threading for these")
  end)

  it("has a ---@class threading.NAME for every class", function()
    local missing = {}
    for _, name in ipairs(A.sorted(classes)) do
      if not stub.classes["threading." .. name] then missing[#missing + 1] = name end
    end
    assert.same({}, missing, "classes without a ---@class in " .. STUB)
  end)

  it("has every method, field and operator of every class (or of an ancestor class)", function()
    local missing = {}
    for _, name in ipairs(A.sorted(classes)) do
      local c, sname = classes[name], "threading." .. name
      for _, m in ipairs(A.sorted(c.methods)) do
        if not has(sname, "methods", m) then missing[#missing + 1] = name .. ":" .. m .. "()" end
      end
      for _, f in ipairs(A.sorted(c.fields)) do
        if not has(sname, "fields", f) then missing[#missing + 1] = name .. "." .. f .. " (---@field)" end
      end
      for _, mm in ipairs(A.sorted(c.meta)) do
        local op = mm:sub(3)
        if OPERATORS[op] and not has(sname, "ops", op) then
          missing[#missing + 1] = name .. " " .. mm .. " (---@operator " .. op ..
                                  (op == "call" and " or ---@overload" or "") .. ")"
        end
      end
    end
    assert.same({}, missing, "members without a stub in " .. STUB)
  end)

  it("stubs only methods that exist (or are planned) on the real classes", function()
    local extra = {}
    for _, name in ipairs(A.sorted(classes)) do
      local sc = stub.classes["threading." .. name]
      for m in pairs(sc and sc.methods or {}) do
        local c, ok = classes[name], false
        while c and not ok do
          ok = c.methods[m] ~= nil
          c = c.parent and classes[c.parent]
        end
        if not ok and not (A.PLANNED[name] or {})[m] then extra[#extra + 1] = name .. ":" .. m end
      end
    end
    table.sort(extra)
    assert.same({}, extra, "stubbed methods that the module does not have")
  end)

  it("annotates only parameters the functions have", function()
    assert.same({}, stub.params)
  end)
end)
