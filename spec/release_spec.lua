-- The release's version is the same everywhere: the module's _VERSION (LT_VERSION in
-- src/lthreading.h), the release rockspec and the newest CHANGELOG.md entry.
local threading = require "lthreading"

-- the repository root: this file is ROOT/spec/release_spec.lua
local ROOT = (function()
  local src = debug.getinfo(1, "S").source
  local dir = src:sub(1, 1) == "@" and src:sub(2):match("^(.*)/spec/[^/]*$")
  return dir or "."
end)()

local function read(rel)
  local f = io.open(ROOT .. "/" .. rel, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function rockspec(rel)      -- a rockspec is Lua assignments: run them into a table
  local t = {}
  local chunk = assert(load(assert(read(rel), rel .. " missing"), "@" .. rel, "t", t))
  chunk()
  return t
end

local V = threading._VERSION

describe("the release", function()
  it("has a semantic version as the module's _VERSION, defined once in lthreading.h", function()
    assert.matches("^%d+%.%d+%.%d+$", V)
    assert.matches('#define LT_VERSION%s+"' .. V:gsub("%.", "%%.") .. '"', read("src/lthreading.h"))
  end)

  it("has a rockspec for that version, fetching the tag v<version>", function()
    local r = rockspec("rockspec/lthreading-" .. V .. "-1.rockspec")
    assert.equal("lthreading", r.package)
    assert.equal(V .. "-1", r.version)
    assert.equal("v" .. V, r.source.tag)
    assert.matches("^git%+https://", r.source.url)
    assert.equal("MIT", r.description.license)
    assert.same({"lua >= 5.4, < 5.6"}, r.dependencies)
  end)

  it("builds every C source in its rockspecs (release and scm)", function()
    local p = io.popen("cd '" .. ROOT .. "' && ls src/*.c")
    local want = {}
    for f in p:lines() do want[#want + 1] = f end
    p:close()
    table.sort(want)
    for _, rel in ipairs{"rockspec/lthreading-" .. V .. "-1.rockspec", "rockspec/lthreading-scm-1.rockspec"} do
      local srcs = {table.unpack(rockspec(rel).build.modules.lthreading.sources)}
      table.sort(srcs)
      assert.same(want, srcs, rel)
    end
  end)

  it("is the newest entry of CHANGELOG.md, with a link", function()
    local log = assert(read("CHANGELOG.md"), "CHANGELOG.md missing")
    local newest = log:match("\n## %[([^%]]+)%]")
    assert.equal(V, newest)
    assert.matches("\n%[" .. V:gsub("%.", "%%.") .. "%]: https://", log)
  end)

  it("ships an MIT LICENSE", function()
    local lic = assert(read("LICENSE"), "LICENSE missing")
    assert.matches("^MIT License", lic)
    assert.matches("Copyright %(c%) %d+ the lthreading authors", lic)
  end)
end)
