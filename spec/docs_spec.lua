-- luacheck: std +busted
-- docs/ is the users' reference: every public name the live module exports must be in
-- docs/reference.md, the documentation must only link inside the repository, and its quick
-- start must run.  The names are computed from the module itself (spec/api_names.lua), so a
-- name added to the C code fails here until it is documented.

if not package.searchpath("helpers", package.path) then
  package.path = "spec/?.lua;" .. package.path
end
local H = require "helpers"
local A = require "api_names"

local function read(path)
  local f = assert(io.open(path, "rb"), "missing " .. path)
  local s = f:read("a")
  f:close()
  return s
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- The identifiers of a piece of text (Lua names).
local function idents(text, into)
  into = into or {}
  for w in text:gmatch("[%a_][%w_]*") do into[w] = true end
  return into
end

-- Parse Markdown into sections: {level, heading, own = text up to the next heading}.
-- Fenced code blocks stay in `own` but are marked: `prose` is `own` without them.
local function sections_of(text)
  local secs = { { level = 0, heading = "", own = {}, prose = {} } }
  local fenced = false
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    local cur = secs[#secs]
    if line:match("^%s*```") then
      fenced = not fenced
      cur.own[#cur.own + 1] = line
    elseif not fenced and line:match("^#+%s") then
      local hashes, title = line:match("^(#+)%s+(.-)%s*$")
      secs[#secs + 1] = { level = #hashes, heading = title, own = {}, prose = {} }
    else
      cur.own[#cur.own + 1] = line
      if not fenced then cur.prose[#cur.prose + 1] = line end
    end
  end
  for i, s in ipairs(secs) do
    s.own = table.concat(s.own, "\n")
    s.prose = table.concat(s.prose, "\n")
    s.index = i
    s.heading_idents = idents(s.heading)
    -- what counts as documenting a name: inline code spans of the prose, and the heading
    s.names = idents(s.heading)
    for span in s.prose:gmatch("`([^`\n]+)`") do idents(span, s.names) end
  end
  -- a section's scope: itself and its subsections
  for i, s in ipairs(secs) do
    s.scope = {}
    for k in pairs(s.names) do s.scope[k] = true end
    for j = i + 1, #secs do
      if secs[j].level <= s.level then break end
      for k in pairs(secs[j].names) do s.scope[k] = true end
    end
  end
  -- the "Planned" section and its subsections document nothing that exists
  local planned_level
  for _, s in ipairs(secs) do
    if planned_level and s.level <= planned_level then planned_level = nil end
    if s.heading:match("^Planned") then planned_level = s.level end
    s.planned = planned_level ~= nil
  end
  return secs
end

local REF = "docs/reference.md"
local ref = sections_of(read(REF))

-- Is `name` documented anywhere in the reference (outside "Planned")?
local function documented(name)
  for _, s in ipairs(ref) do
    if not s.planned and s.names[name] then return true end
  end
  return false
end

-- The sections whose heading names the class, and their subsections' names.
local function class_scope(class)
  local scope, found = {}, false
  for _, s in ipairs(ref) do
    if not s.planned and s.heading_idents[class] then
      found = true
      for k in pairs(s.scope) do scope[k] = true end
    end
  end
  return found and scope or nil
end

local classes = A.classes()

-- Is member `m` (method, field or metamethod) of class `name` documented: in the class's own
-- sections, its parent's, or those of another class with the very same function under the
-- same name (the Queue family, the lock-like `with`)?
local function member_documented(cname, m, kind)
  local n = cname
  while n do
    local scope = class_scope(n)
    if scope and scope[m] then return true end
    n = classes[n].parent
  end
  local mine = classes[cname][kind][m]
  if type(mine) ~= "function" then return false end
  for other, oc in pairs(classes) do
    if other ~= cname and rawequal(oc[kind][m], mine) then
      local scope = class_scope(other)
      if scope and scope[m] then return true end
    end
  end
  return false
end

local function missing_msg(what, list)
  return string.format("%s not documented in %s (as a heading or in `backticks`, outside " ..
                       "\"Planned\"): %s", what, REF, table.concat(list, ", "))
end

describe("docs/reference.md", function()
  it("documents every name the module exports", function()
    local missing = {}
    for _, name in ipairs(A.sorted(A.module_names())) do
      if not documented(name) then missing[#missing + 1] = name end
    end
    assert.same({}, missing, missing_msg("module names", missing))
  end)

  it("documents every error value in its error values section", function()
    local errs = A.error_values()
    assert.is_true(next(errs) ~= nil)
    local section
    for _, s in ipairs(ref) do
      if s.heading:lower():match("error values") then section = s end
    end
    assert.is_table(section, "no \"Error values\" heading in " .. REF)
    local missing = {}
    for _, name in ipairs(A.sorted(errs)) do
      assert.equal(name, tostring(errs[name]))          -- what the section says of them
      if not section.scope[name] then missing[#missing + 1] = name end
    end
    assert.same({}, missing, missing_msg("error values", missing))
  end)

  it("has a section for every class", function()
    local missing = {}
    for _, name in ipairs(A.sorted(classes)) do
      if not class_scope(name) then missing[#missing + 1] = name end
    end
    assert.same({}, missing, "no heading names these classes in " .. REF .. ": " ..
                             table.concat(missing, ", "))
  end)

  it("documents every method, field and metamethod of every class in the class's section", function()
    local missing = {}
    for _, name in ipairs(A.sorted(classes)) do
      local c = classes[name]
      for _, kind in ipairs({ "methods", "fields", "meta" }) do
        for _, m in ipairs(A.sorted(c[kind])) do
          if not member_documented(name, m, kind) then missing[#missing + 1] = name .. "." .. m end
        end
      end
    end
    assert.same({}, missing, missing_msg("members", missing))
  end)

  it("documents the constructors' options, which the constructors accept", function()
    local th = require "lthreading"
    local f = function() end
    local t = th.Thread{target = f, args = {1}, name = "opt", daemon = true, memory_limit = 2 ^ 24}
    assert.equal(f, t._target); assert.equal(1, t._args[1])
    assert.equal("opt", t.name); assert.is_true(t.daemon)
    local tm = th.Timer{interval = 0.25, target = f, args = {}, name = "tm", daemon = true}
    assert.equal(0.25, tm.interval); assert.equal("tm", tm.name)
    assert.equal(3, th.Queue{maxsize = 3}.maxsize)
    th.ThreadPoolExecutor{max_workers = 1}:shutdown()
    local missing = {}
    for _, name in ipairs(A.sorted(A.OPTIONS)) do
      for _, opt in ipairs(A.OPTIONS[name]) do
        local n, found = name, false
        while n and not found do          -- a subclass takes its parent's options
          found = (class_scope(n) or {})[opt] ~= nil
          n = classes[n] and classes[n].parent
        end
        if not found then missing[#missing + 1] = name .. "{" .. opt .. "}" end
      end
    end
    assert.same({}, missing, missing_msg("options", missing))
  end)

  it("documents every environment variable the C code reads", function()
    local vars = A.env_vars()
    assert.is_true(#vars > 0)
    local missing = {}
    for _, v in ipairs(vars) do
      if not documented(v) then missing[#missing + 1] = v end
    end
    assert.same({}, missing, missing_msg("environment variables", missing))
  end)

  it("names only methods that exist (or are planned) in a class's sections", function()
    local wrong = {}
    for _, s in ipairs(ref) do
      local named = {}
      for k in pairs(s.heading_idents) do
        if classes[k] then named[#named + 1] = k end
      end
      if not s.planned and #named > 0 then
        for span in s.prose:gmatch("`([^`\n]+)`") do
          local m = span:match("^[%a_][%w_%.]*:([%a_][%w_]*)%(")
          local ok = m == nil
          for _, cname in ipairs(named) do
            local c = classes[cname]
            while c and not ok do
              ok = c.methods[m] ~= nil or (A.PLANNED[cname] or {})[m] == true
              c = c.parent and classes[c.parent]
            end
          end
          if not ok then wrong[#wrong + 1] = s.heading .. ": " .. span end
        end
      end
    end
    assert.same({}, wrong, "documented methods that no class of the heading has")
  end)
end)

-- Relative links of a Markdown text: {target, anchor}.
local function links(text)
  local out = {}
  local prose = text:gsub("```.-```", ""):gsub("`[^`\n]*`", "")
  for target in prose:gmatch("%]%(([^)%s]+)%)") do out[#out + 1] = target end
  return out
end

-- GitHub's anchor of a heading.
local function slug(heading)
  return (heading:lower():gsub("[^%w%s%-_]", ""):gsub("%s", "-"))
end

local function anchors(path)
  local set = {}
  for _, s in ipairs(sections_of(read(path))) do set[slug(s.heading)] = true end
  return set
end

describe("the documentation's links", function()
  local files = { "README.md", "docs/README.md", "docs/reference.md", "docs/values.md",
                  "docs/python.md", "docs/guarantees.md" }

  it("README.md links to docs/", function()
    local found = false
    for _, l in ipairs(links(read("README.md"))) do
      if l:match("^docs/") then found = true end
    end
    assert.is_true(found, "README.md has no link into docs/")
  end)

  it("point to files and headings inside the repository", function()
    local bad = {}
    for _, file in ipairs(files) do
      local dir = file:match("^(.*)/") or "."
      for _, l in ipairs(links(read(file))) do
        local target, anchor = l:match("^([^#]*)#?(.*)$")
        local path = target == "" and file or (dir .. "/" .. target)
        local depth, inside = 0, not l:match("^%a[%w+.-]*:") and not target:match("^/")
        for part in path:gmatch("[^/]+") do
          if part == ".." then depth = depth - 1 elseif part ~= "." then depth = depth + 1 end
          if depth < 0 then inside = false end
        end
        if not inside or not exists(path) then
          bad[#bad + 1] = file .. ": " .. l
        elseif anchor ~= "" and path:match("%.md$") and not anchors(path)[anchor] then
          bad[#bad + 1] = file .. ": " .. l .. " (no such heading)"
        end
      end
    end
    assert.same({}, bad, "links that leave the repository or lead nowhere")
  end)
end)

describe("docs/README.md", function()
  it("has a quick start that runs and prints what its comments promise", function()
    local text = read("docs/README.md")
    local code = text:match("## Quick start%s*```lua\n(.-)```")
    assert.is_string(code)
    local r = H.lua(code, 30)
    assert.equal(0, r.code, H.show(r))
    local pos = 1
    for expected in code:gmatch("%-%->%s*([^\n]+)") do
      local s, e = r.out:find(expected, pos, true)
      assert.is_truthy(s, "missing in output: " .. expected .. "\n" .. H.show(r))
      pos = e + 1
    end
  end)
end)
