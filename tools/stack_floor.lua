-- tools/stack_floor.lua -- measure the smallest thread stack on which every path of
-- spec/stack_paths.lua (each way Lua code makes the C stack grow, run to Lua's C-call limit)
-- ends without crashing.  For each path, a binary search over stack sizes, each try in a
-- child process (a crash is a signal there, not here).
--
--   lua5.4 tools/stack_floor.lua [lo_KiB] [hi_KiB] [first path number]
--   LT_FLOOR_ENV='LD_PRELOAD=... ASAN_OPTIONS=...' lua5.4 tools/stack_floor.lua   (ASan)
--
-- The module is taken from LUA_CPATH_5_4, and must let stack_size() set sizes below the
-- floor: build it with -DLT_STACK_FLOOR=32768, e.g.
--   mkdir -p /tmp/floor && cc -std=c11 -fPIC -O2 -D_GNU_SOURCE -DLT_STACK_FLOOR=32768 \
--     -I/usr/include/lua5.4 -shared -o /tmp/floor/lthreading.so src/*.c -lpthread
--   LUA_CPATH_5_4='/tmp/floor/?.so;;' lua5.4 tools/stack_floor.lua

package.path = "spec/?.lua;" .. package.path
local paths = require "stack_paths"
local lo0, hi0 = tonumber(arg[1]) or 32, tonumber(arg[2]) or 4096
local first = tonumber(arg[3]) or 1     -- the first path to measure (by its number)
local interp = os.getenv("LT_LUA") or "lua5.4"
local env = os.getenv("LT_FLOOR_ENV") or ""

local function try(i, kib)
  local script = string.format([[
package.path = "spec/?.lua;" .. package.path
local threading = require "lthreading"
local path = require("stack_paths")[%d]
threading.stack_size(%d * 1024)
local t = threading.Thread(path[2])
t:start()
assert(t:join(60), "timed out")
local r = table.pack(pcall(t.result, t))
io.write(r[1] and "ok" or tostring(r[2]):sub(1, 60))
]], i, kib)
  local f = assert(io.open("/tmp/stack_floor_try.lua", "w"))
  f:write(script)
  f:close()
  local p = io.popen(env .. " " .. interp ..
                     " /tmp/stack_floor_try.lua 2>/dev/null; echo \"|$?\"")
  local out = p:read("a")
  p:close()
  local text, code = out:match("^(.-)|(%d+)%s*$")
  return tonumber(code) == 0, text
end

local worst, worst_name = 0, nil
for i = first, #paths do
  local path = paths[i]
  local lo, hi = lo0, hi0           -- invariant: lo crashes (or is untested), hi survives
  local ok, text = try(i, hi)
  if not ok then
    print(string.format("%-55s crashes even at %d KiB", path[1], hi))
  else
    while hi - lo > 4 do
      local mid = (lo + hi) // 2
      if try(i, mid) then hi = mid else lo = mid end
    end
    print(string.format("%-55s needs %5d KiB  (%s)", path[1], hi, (text or ""):gsub("\n", " ")))
    if hi > worst then worst, worst_name = hi, path[1] end
  end
end
print(string.format("worst: %d KiB (%s)", worst, worst_name))
