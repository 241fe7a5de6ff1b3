-- spec/examples_spec.lua: runs every script in examples/ as its own process and checks its
-- output for what must hold (counts, final values, guaranteed orderings), while tolerating
-- the orderings that threads legitimately vary. Behaviour only, never speed.
--   busted --lua=lua5.4 spec/examples_spec.lua      (or: make test SPECS=spec/examples_spec.lua)

---------------------------------------------------------------------------- helpers
local function shell_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- the repository root: the parent of this file's directory (else the current directory)
local ROOT = (function()
  local p = io.popen("pwd")
  local cwd = p:read("l")
  p:close()
  local src = debug.getinfo(1, "S").source
  if src:sub(1, 1) ~= "@" then return cwd end
  local path = src:sub(2)
  if path:sub(1, 1) ~= "/" then path = cwd .. "/" .. path end
  path = path:gsub("/%./", "/")
  local root = path:match("^(.*)/[^/]+/[^/]+$")          -- drop "/spec/examples_spec.lua"
  return (root and root ~= "") and root or cwd
end)()

-- where lthreading.so is found: LUA_CPATH_5_4 as given (the Makefile exports it), else the root
local CPATH = os.getenv("LUA_CPATH_5_4") or (ROOT .. "/?.so;;")

-- run examples/NAME.lua; returns its output (stdout and stderr together), exit status, lines
local function run(name)
  -- $LT_LUA: the TSan run's instrumented interpreter (see the Makefile); lua5.4 otherwise
  local cmd = string.format('cd %s && LUA_CPATH_5_4=%s timeout 30 ' .. (os.getenv("LT_LUA") or "lua5.4")
    .. ' examples/%s.lua 2>&1; echo "EXIT:$?"',
    shell_quote(ROOT), shell_quote(CPATH), name)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  p:close()
  local code = tonumber(out:match("EXIT:(%d+)%s*$"))
  out = out:gsub("EXIT:%d+%s*$", "")
  local lines = {}
  for l in out:gmatch("[^\n]*") do if l ~= "" then lines[#lines + 1] = l end end
  return out, code, lines
end

local function show(out) return "\n--- output ---\n" .. out .. "--------------" end

-- index of the first (or, with last = true, the last) line containing `text` (plain)
local function find(lines, text, last)
  local found
  for i, l in ipairs(lines) do
    if l:find(text, 1, true) then
      if not last then return i end
      found = i
    end
  end
  return found
end

-- how many lines match the Lua pattern
local function count(lines, pattern)
  local n = 0
  for _, l in ipairs(lines) do if l:find(pattern) then n = n + 1 end end
  return n
end

local function has(out, text)
  assert.is_truthy(out:find(text, 1, true), "missing: " .. text .. show(out))
end

local function hasnt(out, text)
  assert.is_falsy(out:find(text, 1, true), "unexpected: " .. text .. show(out))
end

local function line_is(lines, i, text, out)
  assert.are.equal(text, lines[i], "line " .. i .. show(out))
end

-- every line containing `a` comes before the first line containing `b`
local function before(lines, a, b, out)
  local ia, ib = find(lines, a, true), find(lines, b)
  assert.is_truthy(ia, "missing: " .. a .. show(out))
  assert.is_truthy(ib, "missing: " .. b .. show(out))
  assert.is_true(ia < ib, "'" .. a .. "' should come before '" .. b .. "'" .. show(out))
end

local function count_is(lines, pattern, n, out)
  assert.are.equal(n, count(lines, pattern), "lines matching " .. pattern .. show(out))
end

-- every "X (expected Y)" in the output has X == Y
local function expectations_hold(lines, out, at_least)
  local n = 0
  for _, l in ipairs(lines) do
    local got, want = l:match("(%-?%d+) %(expected (%-?%d+)%)")
    if got then
      n = n + 1
      assert.are.equal(want, got, l .. show(out))
    end
  end
  assert.is_true(n >= (at_least or 1), "expected-value lines" .. show(out))
end

---------------------------------------------------------------------------- the checks
-- { example name, function(out, lines) ... end }: the example must also exit with 0
local CHECKS = {
  {"thread_run_function", function(out, L)
    has(out, "Waiting for the thread...")
    has(out, "Hello")
    before(L, "This is from another thread", "TEST", out)   -- printed after join()
  end},

  {"thread_run_function_args", function(out, L)
    count_is(L, "^Waiting for the thread%.%.%.$", 2, out)
    -- the first thread was joined before the second "Waiting" line
    assert.is_true(find(L, "New message from another thread") < find(L, "Waiting for the thread...", true), show(out))
    has(out, "TEST")
    has(out, "HELLO")
  end},

  {"thread_subclass", function(out, L)
    has(out, "Waiting for the thread to finish")
    before(L, "This is coming from another thread", "Thread finished", out)
  end},

  {"thread_subclass_return_value", function(out, L)
    line_is(L, #L, "Got: 99", out)
    before(L, "This is coming from another thread", "Got: 99", out)
  end},

  {"thread_subclass_run_name", function(out, L)
    count_is(L, "^hello from Thread%-%d+$", 6, out)
    local names = {}
    for _, l in ipairs(L) do
      local n = l:match("^hello from (Thread%-%d+)$")
      if n then assert.is_nil(names[n], "duplicate name " .. n .. show(out)); names[n] = true end
    end
    line_is(L, #L, "started 5 subclass threads", out)
  end},

  {"thread_subclass_init_args", function(out, L)
    count_is(L, "running with", 5, out)
    for i = 0, 4 do
      count_is(L, "running with {" .. i .. "} and {a=A, b=B}", 1, out)
    end
  end},

  {"thread_name_default", function(out, L)
    assert.are.same({"Thread-1", "Thread-2"}, L, show(out))
  end},

  {"thread_name_set", function(out, L)
    assert.are.same({"MyThread", "MyOtherThread",
      "inside the thread, current_thread().name = MyOtherThread"}, L, show(out))
  end},

  {"thread_daemon_query", function(out, L)
    assert.are.same({"false"}, L, show(out))
  end},

  {"thread_daemon_set", function(out, L)
    assert.are.same({"true", "true", "child of a daemon thread is a daemon: true"}, L, show(out))
  end},

  {"thread_ident", function(out, L)
    assert.are.equal(2, #L, show(out))
    line_is(L, 1, "nil", out)
    assert.is_truthy(L[2]:match("^%d+$"), show(out))
  end},

  {"thread_native_id", function(out, L)
    assert.are.equal(2, #L, show(out))
    line_is(L, 1, "nil", out)
    assert.is_truthy(L[2]:match("^%d+$"), show(out))
  end},

  {"thread_is_alive", function(out, L)
    assert.are.same({"false", "false", "true", "false"}, L, show(out))
  end},

  {"main_thread", function(out, L)
    assert.are.equal(4, #L, show(out))
    assert.is_truthy(L[1]:match("^name=MainThread, daemon=false, id=%d+$"), show(out))
    line_is(L, 2, L[1], out)
    line_is(L, 3, "current_thread() == main_thread(): true", out)
    line_is(L, 4, "from a worker: main_thread().name=MainThread, its ident differs from mine: true", out)
  end},

  {"active_count", function(out, L)
    assert.are.same({"1", "while two threads run: 3", "after they ended: 1"}, L, show(out))
  end},

  {"current_thread_in_thread", function(out, L)
    assert.are.same({"Thread-1", "reported by the starter: Thread-1"}, L, show(out))
  end},

  {"get_ident_native_id", function(out, L)
    assert.are.equal(4, #L, show(out))
    assert.is_truthy(L[1]:match("^%d+$"), show(out))
    assert.is_truthy(L[2]:match("^%d+$"), show(out))
    line_is(L, 3, "thread: get_ident() == ident: true, get_native_id() == native_id: true", out)
    line_is(L, 4, "thread ids differ from main: true", out)
  end},

  {"enumerate_threads", function(out, L)
    assert.are.same({"MainThread", "while the worker runs: MainThread, Worker"}, L, show(out))
  end},

  {"thread_unhandled_exception", function(out, L)
    has(out, "Exception in thread Thread-1:")
    has(out, "Something bad happened")
    -- the hook has run (stderr) before join() returned; stdout is line buffered
    before(L, "Working...", "Exception in thread Thread-1:", out)
    before(L, "Something bad happened", "Continuing on...", out)
    line_is(L, #L, "Continuing on...", out)
  end},

  {"thread_excepthook", function(out, L)
    assert.are.same({"Working...", "Thread failed: Something bad happened",
      "(hook: exc_type=string, thread=Thread-1)", "Continuing on..."}, L, show(out))
    hasnt(out, "Exception in thread")
  end},

  {"thread_local_data", function(out, L)
    count_is(L, "^Stored value: 1$", 1, out)
    count_is(L, "^Stored value: 2$", 1, out)
    has(out, "Shared Local, thread A sees value: 10")
    has(out, "Shared Local, thread B sees value: 20")
    assert.are.equal(4, #L, show(out))
  end},

  {"thread_local_show_value", function(out, L)
    line_is(L, 1, "(MainThread) No value yet", out)
    line_is(L, 2, "(MainThread) value=1000", out)
    line_is(L, #L, "(MainThread) value=1000", out)
    count_is(L, "No value yet", 3, out)
    -- each worker first has no value, then its own random one (never main's 1000)
    local workers = 0
    for _, l in ipairs(L) do
      local name = l:match("^%((Thread%-%d+)%s*%) No value yet$")
      if name then
        workers = workers + 1
        local later = find(L, "(" .. name, true)
        local v = tonumber(L[later]:match("value=(%d+)$"))
        assert.is_truthy(v and v >= 1 and v <= 100, show(out))
      end
    end
    assert.are.equal(2, workers, show(out))
  end},

  {"thread_restart_error", function(out, L)
    count_is(L, "^Hello from the new thread$", 2, out)
    has(out, "second start() succeeded: false")
    has(out, "threads can only be started once")
  end},

  {"thread_stop_event", function(out, L)
    has(out, "Main stopping thread")
    local last_running = find(L, "Worker thread running...", true) or 0
    assert.is_true(find(L, "Worker closing down") > last_running, show(out))
    assert.is_true(count(L, "^Worker thread running%.%.%.$") <= 5, show(out))
    line_is(L, #L, "Worker stopped: is_alive() = false", out)
  end},

  {"threads_hello_loop", function(out, L)
    count_is(L, "^hello from thread Thread%-%d+$", 15, out)
    local per = {}
    for _, l in ipairs(L) do
      local n = l:match("^hello from thread (Thread%-%d+)$")
      if n then per[n] = (per[n] or 0) + 1 end
    end
    local names = 0
    for _, c in pairs(per) do names = names + 1; assert.are.equal(5, c, show(out)) end
    assert.are.equal(3, names, show(out))
  end},

  {"thread_objects_workers", function(out, L)
    count_is(L, "^worker$", 5, out)
    for i = 0, 4 do count_is(L, "^Worker: " .. i .. "$", 1, out) end
  end},

  {"current_thread_names", function(out, L)
    assert.are.equal(6, #L, show(out))
    before(L, "worker Starting", "worker Exiting", out)
    before(L, "my_service Starting", "my_service Exiting", out)
    local w2 = nil
    for _, l in ipairs(L) do w2 = w2 or l:match("^(Thread%-%d+) Starting$") end
    assert.is_truthy(w2, show(out))
    before(L, w2 .. " Starting", w2 .. " Exiting", out)
  end},

  {"thread_logging", function(out, L)
    before(L, "[DEBUG] (worker    ) Starting", "[DEBUG] (worker    ) Exiting", out)
    before(L, "[DEBUG] (my_service) Starting", "[DEBUG] (my_service) Exiting", out)
    count_is(L, "^%[DEBUG%] %(Thread%-%d+%s*%) Starting$", 1, out)
    count_is(L, "^%[DEBUG%] %(Thread%-%d+%s*%) Exiting$", 1, out)
    has(out, "[DEBUG] (MainThread) application.log got 4 records")
  end},

  {"daemon_thread", function(out, L)
    before(L, "(non-daemon) Starting", "(non-daemon) Exiting", out)
    -- the process did not wait for the daemon thread's 1 s sleep
    hasnt(out, "(daemon    ) Exiting")
  end},

  {"daemon_join", function(out, L)
    before(L, "(daemon    ) Starting", "(daemon    ) Exiting", out)
    before(L, "(daemon    ) Exiting", "(MainThread) both joined", out)
    before(L, "(non-daemon) Exiting", "(MainThread) both joined", out)
  end},

  {"join_timeout", function(out)
    has(out, "(MainThread) d:join(0.1) returned false")
    has(out, "d.isAlive()\ttrue")
    has(out, "(non-daemon) Exiting")
  end},

  {"enumerate_join_all", function(out, L)
    count_is(L, "sleep 0%.%d%d$", 3, out)
    count_is(L, "%) ending$", 3, out)
    line_is(L, #L, "(MainThread) all joined, active_count() = 1", out)
  end},

  {"lock_mutex", function(out, L)
    count_is(L, "^>thread %d got the lock, sleeping for [%d.]+ %(threads holding it: 1%)$", 10, out)
    for i = 0, 9 do count_is(L, "^>thread " .. i .. " got the lock", 1, out) end
  end},

  {"lock_acquire_release_threads", function(out, L)
    assert.are.equal(6, #L, show(out))
    -- inside the lock each thread prints "got" then "releases": the pairs never interleave
    for i = 1, 6, 2 do
      local name = L[i]:match("^(Thread%-%d+) got lock$")
      assert.is_truthy(name, show(out))
      line_is(L, i + 1, name .. " releases lock", out)
    end
  end},

  {"lock_nonblocking", function(out, L)
    assert.are.same({"couldn't get lock", "locked(): true", "got lock", "locked() after release: false",
      "other thread, acquire(false) while main holds it: false"}, L, show(out))
  end},

  {"lock_acquire_timeout", function(out, L)
    assert.are.same({"could not acquire the lock within 0.05 s: handling the failure",
      "acquired the lock with a 5 s timeout"}, L, show(out))
  end},

  {"lock_context_manager", function(out)
    has(out, "Lock acquired via with")
    has(out, "Lock acquired directly")
    has(out, "Lock acquired via lock:with")
    has(out, "lock:with returned 42")
    has(out, "error caught: failure inside the critical section; lock still held: false")
    has(out, "lock:with raised: true; lock still held: false")
  end},

  {"rlock_reentrant", function(out, L)
    assert.are.equal(20, #L, show(out))
    local seen = {}
    for i = 1, 20, 2 do
      local id = L[i]:match("^>thread (%d) sleeping for [%d.]+$")
      assert.is_truthy(id, show(out))
      line_is(L, i + 1, ">thread " .. id .. " done", out)   -- the lock is held across both
      assert.is_nil(seen[id], show(out)); seen[id] = true
    end
  end},

  {"condition_wait_notify", function(out, L)
    assert.are.same({"Main thread waiting for data...", "Thread sending notification...", "Got data: {33}"},
                    L, show(out))
  end},

  {"condition_notify_all", function(out, L)
    has(out, "(c1) Starting consumer thread")
    has(out, "(c2) Starting consumer thread")
    before(L, "(p ) Starting producer thread", "(p ) Making resource available", out)
    before(L, "(p ) Making resource available", "(c1) Resource is available to consumer", out)
    before(L, "(p ) Making resource available", "(c2) Resource is available to consumer", out)
  end},

  {"semaphore_limit", function(out, L)
    count_is(L, "^Thread %d got [%d.]+ %(inside: [12]%)$", 10, out)
    for i = 0, 9 do count_is(L, "^Thread " .. i .. " got", 1, out) end
  end},

  {"semaphore_active_pool", function(out, L)
    count_is(L, "Waiting to join the pool$", 4, out)
    count_is(L, "Running: %[", 8, out)
    for _, l in ipairs(L) do
      local list = l:match("Running: %[(.*)%]$")
      if list then
        local n = select(2, list:gsub("'%d'", ""))
        assert.is_true(n <= 2, "more than 2 in the pool: " .. l .. show(out))
      end
    end
    has(out, "Running: []")
  end},

  {"semaphore_acquire_options", function(out, L)
    assert.are.same({"acquire: true", "acquire: true", "acquire(false) when none is left: false",
      "acquire(0.05) when none is left: false", "acquire(2) while another thread releases: true",
      "positions after one extra release: 3", "BoundedSemaphore extra release raised an error: true"}, L, show(out))
  end},

  {"event_start_signal", function(out, L)
    line_is(L, 1, "Main thread blocking...", out)   -- the workers only start after set()
    assert.are.equal(6, #L, show(out))
    for i = 0, 4 do count_is(L, "^Thread " .. i .. " got [%d.]+$", 1, out) end
  end},

  {"event_wait_timeout", function(out, L)
    has(out, "(block     ) wait_for_event starting")
    has(out, "(block     ) event set: true")
    has(out, "(nonblock  ) processing event")
    before(L, "(MainThread) Waiting before calling Event.set()", "(block     ) event set: true", out)
    line_is(L, #L, "(MainThread) after clear(): is_set() = false, wait(0.01) = false", out)
  end},

  {"timer_hello", function(out, L)
    has(out, "Waiting for the timer...")
    count_is(L, "^Hello world$", 1, out)
  end},

  {"timer_cancel", function(out, L)
    has(out, "(t1        ) worker running")
    hasnt(out, "(t2")                                -- cancelled before its delay passed
    before(L, "(MainThread) canceling t2", "(MainThread) done", out)
  end},

  {"barrier_workers", function(out, L)
    has(out, "Main thread waiting on all results...")
    count_is(L, "^Thread %d done, got: [%d.]+$", 5, out)
    before(L, " done, got: ", "All threads have their result", out)
    line_is(L, #L, "All threads have their result", out)
  end},

  {"barrier_action_timeout_reset", function(out, L)
    line_is(L, 1, "parties=3 n_waiting=0 broken=false", out)
    count_is(L, "^action: all 3 parties arrived$", 1, out)
    count_is(L, "^I was index 0 of this round$", 1, out)
    has(out, "indexes returned by wait(): 0 1 2")
    has(out, "wait timed out: true, error is BrokenBarrierError: true, broken=true")
    has(out, "wait on a broken barrier raised BrokenBarrierError")
    has(out, "after reset(): broken=false")
    has(out, "waiter released by abort(), BrokenBarrierError: true")
  end},

  {"race_condition_shared_variable", function(out)
    assert.is_truthy(out:find("unprotected: final value %-?%d+ %(expected 0%)"), show(out))
    has(out, "with a Lock: final value 0 (expected 0)")
    has(out, "with Shared:incr: final value 0 (expected 0)")
  end},

  {"race_condition_timing", function(out, L)
    has(out, "race: waiter notified: false")
    before(L, "main: notification sent", "fixed: waiter notified: true", out)
  end},

  {"deadlock_self_lock", function(out, L)
    assert.are.same({"Lock: Thread acquiring lock...", "Lock: Thread acquiring lock again...",
      "Lock: deadlock! the second acquire timed out (the thread waits on itself)",
      "RLock: Thread acquiring lock...", "RLock: Thread acquiring lock again...",
      "RLock: acquired the lock a second time"}, L, show(out))
  end},

  {"deadlock_nested_functions", function(out, L)
    before(L, "deadlock: task2 could not get the lock", "-- again with an RLock --", out)
    before(L, "-- again with an RLock --", "task2 got the lock", out)
    count_is(L, "^task2 got the lock$", 1, out)
  end},

  {"deadlock_lock_ordering", function(out, L)
    -- opposite orders: at least one of the two must give up (the other may then get through)
    local gave_up = count(L, "^thread %d %([AB], [AB]%): gave up")
    local got = count(L, "^thread %d %([AB], [AB]%): got both locks")
    assert.is_true(gave_up >= 1 and gave_up + got == 2, show(out))
    has(out, "ordered thread 1: got both locks")
    has(out, "ordered thread 2: got both locks")
  end},

  {"livelock_bounded", function(out, L)
    for n = 0, 1 do
      local done = count(L, "^Task " .. n .. " made it, all done%.$")
      local stopped = count(L, "^Task " .. n .. " stopped after 5 attempts %(livelock%)$")
      assert.are.equal(1, done + stopped, show(out))
      assert.is_true(count(L, "^Task " .. n .. " cannot get the second lock") <= 5, show(out))
    end
  end},

  {"countdown_latch", function(out, L)
    count_is(L, "^worker %d counting down$", 5, out)
    count_is(L, "latch is open$", 3, out)
    before(L, "counting down", "latch is open", out)   -- nobody passes before 5 count-downs
  end},

  {"thread_safe_counter", function(out)
    has(out, "counter value: 10000 (expected 10000)")
    has(out, "Shared:incr count: 10000 (expected 10000)")
  end},

  {"counter_class_lock", function(out, L)
    count_is(L, "Acquired lock$", 4, out)
    count_is(L, "%) Done$", 2, out)
    line_is(L, #L, "(MainThread) Counter: 4", out)
  end},

  {"wait_for_result", function(out, L)
    assert.are.same({"1. sleep loop: result 4", "2. join: result 9", "3. event: result 16",
      "4. condition: result 25", "5. queue: result 36"}, L, show(out))
  end},

  {"thread_return_value_methods", function(out, L)
    assert.are.same({"method 1: from an instance variable", "method 2: from a queue",
      'method 3: from a shared "global"', "a plain table upvalue is copied: unchanged",
      "Thread:result(): 42 returned"}, L, show(out))
  end},

  {"thread_sleep", function(out)
    has(out, "main slept at least 0.1 s: true")
    has(out, "three threads slept 0.2 s each; elapsed")
  end},

  {"random_thread_safe", function(out, L)
    count_is(L, "^thread average of 1000 random%(%): 0%.[3456]%d$", 4, out)
    has(out, "gauss values drawn under the lock: 1000")
  end},

  {"atomic_operations_shared", function(out, L)
    expectations_hold(L, out, 4)
  end},

  {"busy_wait", function(out)
    has(out, "1. tight loop: goal reached (checked many times: true)")
    has(out, "2. loop with sleep: goal reached after")
    has(out, "3. loop with condition wait: goal reached")
  end},

  {"spinlock", function(out)
    has(out, "1. spin: got the lock after spinning")
    has(out, "2. spin with sleep: got the lock")
    has(out, "3. spin with acquire(timeout): got the lock")
    has(out, "4. spin with a limit: gave up after 5 attempts")
    has(out, "blocking acquire: got the lock")
  end},

  {"thread_pool", function(out, L)
    assert.are.same({"submit: result 49 (ran in a pool thread: true)", "future done: true",
      "map: 1 4 9 16 25 36 49 64", "as_completed: 6 results, sum 91",
      'failed task: result() raised "task failed"', "submit after shutdown is an error: true"}, L, show(out))
  end},

  {"luv_queue", function(out, L)
    expectations_hold(L, out, 2)
    line_is(L, 3, "results: 1 4 9 16 25", out)
    -- level-triggered, drained, and exact: no wake-up finds the queue empty (never spins)
    assert.is_truthy(out:find("wake%-ups that found nothing: 0 of %d+"), show(out))
  end},

  {"cqueues_queue", function(out, L)
    expectations_hold(L, out, 3)
    has(out, "future: pool result (done: true)")
    has(out, "producers finished: true")
  end},

  {"rendezvous_lock", function(out, L)
    assert.are.equal(4, #L, show(out))
    before(L, "A1", "A2", out)
    before(L, "B1", "B2", out)
  end},

  {"rendezvous_semaphore", function(out, L)
    assert.are.equal(4, #L, show(out))
    -- both arrive before either leaves
    before(L, "A1", "A2", out); before(L, "A1", "B2", out)
    before(L, "B1", "A2", out); before(L, "B1", "B2", out)
  end},

  {"demo", function(out)
    has(out, "same answer: true")
    assert.is_truthy(out:find("speedup: [%d.]+x"), show(out))
    has(out, "balance 20000 (expected 20000)")
    for _, row in ipairs{{1000, 168}, {2000, 303}, {5000, 669}, {10000, 1229}, {20000, 2262}, {50000, 5133}} do
      assert.is_truthy(out:find(string.format(": pi%%(%d%%) = %d\n", row[1], row[2])), show(out))
    end
    has(out, "map(x -> x*x, 1..10) = 1 4 9 16 25 36 49 64 81 100")
    has(out, "submit(count_primes, 1, 100000):result() = 9592")
  end},
}

---------------------------------------------------------------------------- the specs
describe("examples", function()
  for _, c in ipairs(CHECKS) do
    local name, check = c[1], c[2]
    it(name .. ".lua", function()
      local needs = ({luv_queue = "luv", cqueues_queue = "cqueues"})[name]
      if needs and _VERSION ~= "Lua 5.4" and not pcall(require, needs) then
        return pending(needs .. " is not installed for " .. _VERSION)   -- (Debian: 5.4 only)
      end
      local out, code, lines = run(name)
      assert.are.equal(0, code, "exit status of examples/" .. name .. ".lua" .. show(out))
      check(out, lines)
    end)
  end

  it("has a check for every file in examples/", function()
    local checked = {}
    for _, c in ipairs(CHECKS) do checked[c[1]] = true end
    local p = io.popen("ls " .. shell_quote(ROOT .. "/examples"))
    local missing = {}
    for f in p:lines() do
      local name = f:match("^(.*)%.lua$")
      if name and not checked[name] then missing[#missing + 1] = name end
    end
    p:close()
    assert.are.same({}, missing)
  end)
end)
