-- spec/helpers.lua -- small helpers shared by the lthreading specs.
--
-- Nothing here uses busted: helpers return values and the specs assert on them.
-- Every wait is bounded, so a bug makes a spec fail instead of hanging the run.

local threading = require "lthreading"

local H = {}

H.JOIN = 10          -- seconds any spec waits for a thread before calling it a failure

-- Start a thread running f(...) (nils among the arguments kept) and return it.
function H.spawn(f, ...)
  local t = threading.Thread{target = f, args = table.pack(...)}
  t:start()
  return t
end

-- Join t, bounded; raise (in the calling spec) if it did not end in time.
function H.join(t, timeout)
  local ok = t:join(timeout or H.JOIN)
  if ok ~= true then
    error("thread " .. tostring(t.name) .. " still running after " ..
          tostring(timeout or H.JOIN) .. " s (join returned " .. tostring(ok) .. ")", 2)
  end
  return t
end

-- Run f(...) in a new thread, wait for it (bounded) and return its results.
function H.run(f, ...)
  local t = H.spawn(f, ...)
  H.join(t)
  return t:result()
end

-- The same, packed: {n = count, ...}.
function H.runp(f, ...)
  return table.pack(H.run(f, ...))
end

-- Seconds f(...) took, then f's results.
function H.timed(f, ...)
  local t0 = threading.monotonic()
  local r = table.pack(f(...))
  return threading.monotonic() - t0, table.unpack(r, 1, r.n)
end

-- Poll pred() every 10 ms until it is true or `timeout` seconds passed; returns pred()'s last value.
function H.wait_until(pred, timeout)
  local deadline = threading.monotonic() + (timeout or H.JOIN)
  local v = pred()
  while not v and threading.monotonic() < deadline do
    threading.sleep(0.01)
    v = pred()
  end
  return v
end

-- Make the excepthook silent while a spec deliberately fails threads; returns a restore function.
function H.quiet_hook()
  local ok, saved = pcall(function() return threading.excepthook end)
  pcall(function() threading.excepthook = function() end end)
  return function()
    if ok and saved ~= nil then
      pcall(function() threading.excepthook = saved end)
    else
      pcall(function() threading.excepthook = threading.__excepthook__ end)
    end
  end
end

---------------------------------------------------------------------------- subprocesses
local function shquote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- The whole content of a file, or "" when it cannot be opened.
function H.readall(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end
local readall = H.readall

-- The LUA_CPATH_5_4 a child lua5.4 needs to find this very lthreading.so.
local function child_cpath()
  local so = package.searchpath("lthreading", package.cpath)
  local dir = so and so:match("^(.*)/[^/]*$")
  if dir then
    return dir .. "/?.so;" .. (os.getenv("LUA_CPATH_5_4") or "") .. ";"
  end
  return os.getenv("LUA_CPATH_5_4") or ";;"
end

-- Run `script` (Lua source) in a fresh `lua5.4` process, at most `limit` seconds (default 20).
-- Returns {code = exit status (124: timed out, 128+N: killed by signal N), out = stdout, err = stderr}.
-- The interpreter for child processes: $LT_LUA when set (the TSan run uses an instrumented
-- one, since the sanitizer's runtime cannot be preloaded into lua5.4), else lua5.4.
H.interpreter = os.getenv("LT_LUA") or "lua5.4"

function H.lua(script, limit, env)
  local src, out, err = os.tmpname(), os.tmpname(), os.tmpname()
  local f = assert(io.open(src, "wb"))
  f:write(script)
  f:close()
  local cmd = string.format("%s LUA_CPATH_5_4=%s timeout %d %s %s >%s 2>%s", env or "",
    shquote(child_cpath()), limit or 20, H.interpreter, shquote(src), shquote(out), shquote(err))
  local p = io.popen(cmd .. "; echo $?", "r")
  local status = p:read("a")
  p:close()
  local r = {code = tonumber(status:match("(%d+)%s*$")), out = readall(out), err = readall(err)}
  os.remove(src); os.remove(out); os.remove(err)
  return r
end

-- build/foreign_thread (made by make test; LT_FOREIGN: the sanitizer runs' own build): a C
-- host that runs a chunk on a pthread of its own, or with --main on its main thread, with
-- fork() and wait() as globals.  Returns its path, or nil and a reason for pending().
function H.foreign_host()
  local host = os.getenv("LT_FOREIGN") or "build/foreign_thread"
  local f = io.open(host, "rb")
  if not f then return nil, host .. " not built (run through make test)" end
  f:close()
  return host
end

-- Run `chunk` in that host, killed after opts.limit seconds (20); returns its output (stdout
-- and stderr) followed by "EXIT:<status>".  opts.main: on the host's main thread.
-- opts.fork: the chunk forks, so under TSan its children may start threads; with
-- opts.child_leaks == false, ASan's leak check is off too (a child cannot free the states
-- of the threads it does not have).
function H.foreign(host, chunk, opts)
  opts = opts or {}
  local tsan, asan, env = os.getenv("TSAN_OPTIONS"), os.getenv("ASAN_OPTIONS"), ""
  if opts.fork and tsan then env = "TSAN_OPTIONS='" .. tsan .. " die_after_fork=0' " end
  if opts.fork and opts.child_leaks == false and asan then
    env = env .. "ASAN_OPTIONS='" .. asan .. ":detect_leaks=0' "
  end
  local p = io.popen(env .. "LUA_CPATH_5_4='" .. (os.getenv("LUA_CPATH_5_4") or "./?.so;;")
    .. "' timeout " .. (opts.limit or 20) .. " " .. host .. (opts.main and " --main " or " ")
    .. shquote(chunk) .. " 2>&1; echo EXIT:$?")
  local out = p:read("a")
  p:close()
  return out
end

-- A printable summary of a subprocess result, for assertion messages.
function H.show(r)
  return string.format("exit %s\n--- stdout ---\n%s\n--- stderr ---\n%s",
    tostring(r.code), r.out:sub(1, 4000), r.err:sub(1, 4000))
end

-- Split text into lines (without their "\n").
function H.lines(s)
  local t = {}
  for line in s:gmatch("([^\n]*)\n") do t[#t + 1] = line end
  local rest = s:match("([^\n]+)$")
  if rest then t[#t + 1] = rest end
  return t
end

return H
