-- The README's code must keep working: its tutorial runs top to bottom and prints what its
-- comments say.

if not package.searchpath("helpers", package.path) then
  package.path = "spec/?.lua;" .. package.path
end
local H = require "helpers"

local function readme()
  local f = assert(io.open("README.md", "rb"))
  local s = f:read("a")
  f:close()
  return s
end

describe("README.md", function()
  it("has a tutorial that runs top to bottom and prints what its comments promise", function()
    local text = readme()
    local tutorial = text:match("### A tutorial that runs top to bottom%s*```lua\n(.-)```")
    assert.is_string(tutorial)
    local r = H.lua(tutorial, 30)
    assert.equal(0, r.code, H.show(r))
    -- every "--> expected" comment must appear, in order, in the output
    local pos = 1
    for expected in tutorial:gmatch("%-%->%s*([^\n]+)") do
      local words = {}
      for w in expected:gmatch("%S+") do words[#words + 1] = w:gsub("%p", "%%%0") end
      local pattern = table.concat(words, "%s+")
      local s, e = r.out:find(pattern, pos)
      assert.is_truthy(s, "missing in output: " .. expected .. "\n" .. H.show(r))
      pos = e + 1
    end
  end)

  it("shows the two commands a new user runs", function()
    local text = readme()
    assert.is_truthy(text:find("make demo", 1, true))
    assert.is_truthy(text:find("make test", 1, true))
  end)
end)
