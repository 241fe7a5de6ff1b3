-- API.md §5 "Userdata that knows how to cross": a full userdata whose metatable has
-- __reduce crosses as a rebuilt value.  The sender calls mt.__reduce(u), which returns a
-- function and its arguments; they cross by the usual rules; the receiver gets f(args...).
--
-- The real foreign userdata here is Lua's own FILE* (io.open): a FILE* knows no path, so the
-- spec keeps a weak map file -> {path, mode} and reopens the file on arrival (at the same
-- position).  The FILE* metatable is shared by every file of the state: each spec restores
-- it.  Every wait is bounded.

local threading = require "lthreading"
if not package.searchpath("helpers", package.path) then     -- run without the Makefile
  package.path = "spec/?.lua;" .. package.path
end
local H = require "helpers"

local T = H.JOIN
local FILE_MT = getmetatable(io.stdout)

-- Give FILE* a __reduce for the duration of f(); files opened with open() cross reopened.
local known = setmetatable({}, {__mode = "k"})
local function open(path, mode)
  local f = assert(io.open(path, mode))
  known[f] = {path = path, mode = mode}
  return f
end
local function reopen(path, mode, pos)
  local f = assert(io.open(path, mode))
  f:seek("set", pos)
  return f
end
local function with_reduce(reduce, f)
  local saved = rawget(FILE_MT, "__reduce")
  rawset(FILE_MT, "__reduce", reduce)
  local ok, err = pcall(f)
  rawset(FILE_MT, "__reduce", saved)
  if not ok then error(err, 0) end
end
local function file_reduce(file)
  local info = known[file]
  if not info then error("no path known for " .. tostring(file)) end
  return reopen, info.path, info.mode, file:seek()
end

local function tempfile(text)
  local path = os.tmpname()
  local w = assert(io.open(path, "w"))
  w:write(text)
  w:close()
  return path
end

describe("__reduce", function()
  local path
  before_each(function() path = tempfile("one\ntwo\nthree\n") end)
  after_each(function() os.remove(path) end)

  it("a FILE* crosses to a thread as a reopened file, at the same position", function()
    with_reduce(file_reduce, function()
      local f = open(path, "r")
      assert.equal("one", f:read("l"))
      local r = H.runp(function(file) return io.type(file), file:read("l"), file:read("l") end, f)
      assert.same({n = 3, "file", "two", "three"}, r)
      assert.equal("two", f:read("l"), "the sender's file is untouched")
      f:close()
    end)
  end)

  it("through a Queue, a Shared and a pool task, and back as a result", function()
    with_reduce(file_reduce, function()
      local f = open(path, "r")
      local q = threading.Queue()
      q:put({file = f})
      local item = H.run(function(queue) local it = queue:get(10) return it.file:read("a") end, q)
      assert.equal("one\ntwo\nthree\n", item)
      local s = threading.Shared()
      s.f = f
      assert.equal("one", s.f:read("l"))
      local pool <close> = threading.ThreadPoolExecutor(1)
      assert.equal("one", pool:submit(function(file) return file:read("l") end, f):result(T))
      f:close()
    end)
  end)

  it("keeps identity: the same userdata twice in one transfer is rebuilt once", function()
    local calls = threading.Shared({n = 0})
    with_reduce(function(file)
      local info = known[file]
      return function(c, p, m)
        c:incr("n")
        return assert(io.open(p, m))
      end, calls, info.path, info.mode
    end, function()
      local f = open(path, "r")
      local same = H.run(function(t) return rawequal(t[1], t[2]) and rawequal(t[1], t.x.y), 0 end,
                            {f, f, x = {y = f}})
      assert.is_true(same)
      assert.equal(1, calls.n)
      -- two transfers: two rebuilds
      H.run(function() end, f)
      assert.equal(2, calls.n)
      f:close()
    end)
  end)

  it("an error in __reduce is an error of the transfer, naming the path", function()
    with_reduce(file_reduce, function()
      local stranger = io.tmpfile()        -- not in the map: its __reduce raises
      local t = threading.Thread(function() end, 1, stranger)
      local ok, err = pcall(t.start, t)
      assert.is_false(ok)
      assert.matches("^cannot transfer args%[2%]: __reduce failed: .*no path known for file", err)
      local q = threading.Queue()
      ok, err = pcall(q.put, q, {a = {stranger}})
      assert.is_false(ok)
      assert.matches("cannot transfer item.a%[1%]: __reduce failed: ", err, 1, false)
      assert.equal(0, q:qsize(), "nothing was stored")
      stranger:close()
    end)
  end)

  it("__reduce must return a function (or a callable) first", function()
    local q = threading.Queue()
    with_reduce(function() return 42 end, function()
      local ok, err = pcall(q.put, q, io.stdout)
      assert.is_false(ok)
      assert.matches("cannot transfer item: __reduce failed: it returned number, not a function", err, 1, true)
    end)
    with_reduce(function() end, function()
      local ok, err = pcall(q.put, q, io.stdout)
      assert.is_false(ok)
      assert.matches("it returned nothing, not a function", err, 1, true)
    end)
    with_reduce(function() return setmetatable({}, {__call = function() return "called" end}) end,
                function()
      -- a callable table crosses as a table copy, its metatable's __call a function
      q:put(io.stdout)
      assert.equal("called", q:get_nowait())
    end)
  end)

  it("what __reduce returns crosses by the usual rules; the path says where", function()
    local q = threading.Queue()
    with_reduce(function() return print, coroutine.create(print) end, function()
      local ok, err = pcall(q.put, q, {io.stdout})
      assert.is_false(ok)
      assert.matches("cannot transfer item[1].<__reduce arg 1>: coroutine", err, 1, true)
    end)
    with_reduce(function(u) return print, u end, function()
      local ok, err = pcall(q.put, q, io.stdout)
      assert.is_false(ok)
      assert.matches("inside its own __reduce values", err, 1, true)
    end)
  end)

  it("an error in the rebuilding function is raised where the value arrives", function()
    local q = threading.Queue()
    with_reduce(function() return function() error("cannot rebuild here", 0) end end, function()
      assert.is_true(q:put({io.stdout}))
    end)
    local ok, err = pcall(q.get_nowait, q)
    assert.is_false(ok)
    assert.equal("cannot rebuild here", err)
    assert.equal(0, q:qsize(), "the item was taken (and freed)")
  end)

  it("a rebuilding function may return nil, also for a userdata met twice", function()
    with_reduce(function() return function() return nil end end, function()
      local r = H.runp(function(t) return t[1], t[2], t[3] end, {io.stdout, io.stdout, 3})
      assert.same({n = 3, nil, nil, 3}, r)
    end)
  end)

  it("without __reduce a foreign userdata still cannot cross", function()
    local q = threading.Queue()
    local ok, err = pcall(q.put, q, {conn = io.stdout})
    assert.is_false(ok)
    assert.matches("cannot transfer item.conn: userdata (FILE*)", err, 1, true)
  end)

  it("a chain of userdata reducing to userdata is bounded by the nesting limit", function()
    -- each FILE* reduces to a new FILE*: endless without the limit.  In a thread with a small
    -- stack (its limit is lower: fewer temporary files), whose FILE* metatable is its own.
    local saved = threading.stack_size(64 * 1024)
    local t = threading.Thread(function()
      getmetatable(io.stdout).__reduce = function() return print, io.tmpfile() end
      local q = require("lthreading").Queue()
      local ok, err = pcall(q.put, q, io.stdout)
      getmetatable(io.stdout).__reduce = nil
      collectgarbage()
      return ok, err
    end)
    t:start()
    threading.stack_size(saved)
    H.join(t)
    local ok, err = t:result()
    assert.is_false(ok)
    assert.matches("nested too deeply", err, 1, true)
  end)
end)
