-- Every C source in src/ is built by each rockspec: a file missing from a rockspec's
-- `sources` builds a module that fails to load (undefined symbols) only once installed.
describe("rockspecs", function()
  local function c_sources()
    local list, p = {}, io.popen("ls src/*.c")
    for f in p:read("a"):gmatch("%S+") do list[#list + 1] = f end
    p:close()
    return list
  end

  it("list every C source of src/ in build.modules.lthreading.sources", function()
    local p = io.popen("ls rockspec/*.rockspec")
    local specs = p:read("a")
    p:close()
    local n = 0
    for path in specs:gmatch("%S+") do
      n = n + 1
      local env = {}
      local chunk = assert(loadfile(path, "t", env))
      chunk()
      local listed = {}
      for _, s in ipairs(env.build.modules.lthreading.sources) do listed[s] = true end
      local missing = {}
      for _, f in ipairs(c_sources()) do
        if not listed[f] then missing[#missing + 1] = f end
      end
      assert.same({}, missing, path .. " does not build every source")
      for s in pairs(listed) do
        assert.is_truthy(io.open(s), path .. " lists a missing file " .. s)
      end
    end
    assert.is_true(n >= 1)
  end)
end)
