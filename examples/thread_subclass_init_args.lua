-- Mirrors: seed 004 (notebook) "7.1 With arguments" (MyThreadWithArgs).
-- Shows: a Thread subclass with its own init(), which calls Thread.init and keeps extra constructor data as fields for run().
local threading = require "lthreading"

local function say(...) io.write(string.format(...) .. "\n") end   -- one write per line

local MyThreadWithArgs = threading.Thread:extend()

-- Python's __init__(self, group, target, name, args, kwargs, *, daemon)
function MyThreadWithArgs:init(opts)
  threading.Thread.init(self, {target = opts.target, name = opts.name, daemon = opts.daemon})
  self.my_args = opts.args       -- a Lua table crosses to the thread as a copy
  self.kwargs = opts.kwargs
end

function MyThreadWithArgs:run()
  local kw = {}
  for k, v in pairs(self.kwargs) do kw[#kw + 1] = k .. "=" .. v end
  table.sort(kw)
  say("(%-10s) running with {%s} and {%s}", threading.current_thread().name,
      table.concat(self.my_args, ", "), table.concat(kw, ", "))
end

local threads = {}
for i = 0, 4 do
  local t = MyThreadWithArgs{args = {i}, kwargs = {a = 'A', b = 'B'}}
  t:start()
  threads[#threads + 1] = t
end
for _, t in ipairs(threads) do t:join() end
