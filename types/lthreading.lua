---@meta lthreading
-- Type stubs of lthreading for lua-language-server (LuaLS / LuaCATS annotations).
-- Add this folder to "workspace.library"; never put it on package.path (this file would
-- shadow the C module). Running it is harmless: it only builds a table of empty functions.
-- The reference is docs/reference.md.
-- The stub classes and parameters exist only for the annotations:
-- luacheck: no unused

---Python's `threading` module for Lua, with real parallelism.
---@class threading
---@field TIMEOUT_MAX number The largest timeout accepted, in seconds.
---@field _VERSION string The module's version, e.g. "0.2.0".
---@field excepthook fun(args: threading.ExceptHookArgs) Runs in a failing thread; assigning sets it for all.
local threading = {}

------------------------------------------------------------------------ error values

---An error value: raised as it is, compared with `==`; `tostring(err)` is its name.
---@class threading.Error
---@field name string
local Error = {}

---Raised by Barrier:wait on a broken barrier.
---@type threading.Error
threading.BrokenBarrierError = Error
---Raised by Future:result/exception, ThreadPoolExecutor:map and as_completed on timeout.
---@type threading.Error
threading.TimeoutError = Error
---Raised by Future:result/exception on a cancelled future.
---@type threading.Error
threading.CancelledError = Error
---Raised by ThreadPoolExecutor:submit, and by the pending futures' result(), once a pool's
---initializer failed.
---@type threading.Error
threading.BrokenThreadPool = Error

---@class threading.ExceptHookArgs
---@field exc_type string `type(err)`.
---@field exc_value any The error value.
---@field exc_traceback string The traceback.
---@field thread threading.Thread The thread that failed.

------------------------------------------------------------------------ module functions

---The calling thread's Thread object (MainThread, the Thread itself, a pool worker or a Dummy-N thread).
---@return threading.Thread
function threading.current_thread() end

---Python's alias of current_thread.
---@return threading.Thread
function threading.currentThread() end

---The main thread's Thread object (named "MainThread").
---@return threading.Thread
function threading.main_thread() end

---The number of live threads, the main thread included.
---@return integer
function threading.active_count() end

---Python's alias of active_count.
---@return integer
function threading.activeCount() end

---The live Thread objects, oldest first, the main thread included.
---@return threading.Thread[]
function threading.enumerate() end

---An integer identifying the calling OS thread.
---@return integer
function threading.get_ident() end

---The kernel's id of the calling thread.
---@return integer
function threading.get_native_id() end

---The stack size (bytes) for threads started from now on, before this call (0 = default).
---With `size`, sets it: 0, or at least 32 KiB (smaller is an error and changes nothing).
---@param size? integer
---@return integer previous
function threading.stack_size(size) end

---Sleeps `seconds` (fractional seconds work).
---@param seconds number
function threading.sleep(seconds) end

---Seconds from a monotonic clock, as a float.
---@return number
function threading.monotonic() end

---Iterates over the futures as they finish or are cancelled (those already done first);
---raises threading.TimeoutError when `timeout` passes with futures left.
---@param futures threading.Future[]
---@param timeout? number
---@return fun(): threading.Future?
function threading.as_completed(futures, timeout) end

---@alias threading.ReturnWhen "FIRST_COMPLETED"|"FIRST_EXCEPTION"|"ALL_COMPLETED"

---wait's return_when values: the strings of their names.
threading.FIRST_COMPLETED = "FIRST_COMPLETED"
threading.FIRST_EXCEPTION = "FIRST_EXCEPTION"
threading.ALL_COMPLETED = "ALL_COMPLETED"

---Waits until return_when holds (default "ALL_COMPLETED") or the timeout passed; returns
---the futures done and those not done, each once, in the order given.
---@param futures threading.Future[]
---@param timeout? number
---@param return_when? threading.ReturnWhen
---@return threading.Future[] done
---@return threading.Future[] not_done
function threading.wait(futures, timeout, return_when) end

---The default excepthook: prints "Exception in thread NAME:", the error and the traceback to stderr.
---@param args threading.ExceptHookArgs
function threading.__excepthook__(args) end

------------------------------------------------------------------------ Thread

---@class threading.ThreadOptions
---@field target? function The function the thread calls.
---@field args? table Its arguments (`n` is honoured, so nils survive).
---@field name? string The thread's name.
---@field daemon? boolean Default: the creating thread's flag.
---@field memory_limit? integer Bytes the thread's Lua state may allocate (0: no limit).
---@field [string] any Other keys become fields of the instance.

---A thread of execution with its own Lua state. `threading.Thread` is also the class table:
---call it to make a thread, `extend` it to subclass.
---@class threading.Thread
---@field name string Read/write; default "Thread-N".
---@field ident integer? nil until started.
---@field native_id integer? nil until started.
---@field daemon boolean Read/write until start().
---@field _target function? The target given to the constructor.
---@field _args table? The args given to the constructor.
---@field [string] any Your own fields: copied to the thread at start() and back when it ends.
---@overload fun(opts: threading.ThreadOptions): threading.Thread
---@overload fun(target: function, ...: any): threading.Thread
local Thread = {}
threading.Thread = Thread

---Starts the thread (once only).
function Thread:start() end

---Waits until the thread ends; true once it has ended, false if the timeout passed first.
---@param timeout? number
---@return boolean
function Thread:join(timeout) end

---True from start() until the thread ends.
---@return boolean
function Thread:is_alive() end

---Asks a started thread to stop; returns at once. True if the thread had not ended yet.
---The thread raises threading.CancelledError at its next blocking lthreading call (or
---within a few thousand VM instructions of Lua code); pcall may catch it.
---@return boolean
function Thread:cancel() end

---Python's alias of is_alive.
---@return boolean
function Thread:isAlive() end

---Waits for the end, then returns the target's return values, or raises its error value.
---@return any ...
function Thread:result() end

---What the thread runs; the default calls self._target(table.unpack(self._args)).
---@return any ...
function Thread:run() end

---The initializer called by Class(...); Thread.init(self, opts) applies the options.
---@param opts threading.ThreadOptions
---@overload fun(self: threading.Thread, target: function, ...: any)
function Thread:init(opts) end

---A new class inheriting from this one (declare it with `---@class Worker: threading.Thread`).
---@return threading.Thread
function Thread:extend() end

---Python's accessor of `name`.
---@return string
function Thread:getName() end

---Python's accessor of `name`.
---@param name string
function Thread:setName(name) end

---Python's accessor of `daemon`.
---@return boolean
function Thread:isDaemon() end

---Python's accessor of `daemon` (before start()).
---@param daemonic boolean
function Thread:setDaemon(daemonic) end

------------------------------------------------------------------------ Timer

---@class threading.TimerOptions: threading.ThreadOptions
---@field interval number Seconds to wait before calling the target.

---A Thread that calls its target after `interval` seconds unless cancelled.
---@class threading.Timer: threading.Thread
---@field interval number
---@field finished threading.Event Set by cancel() and once the action ran.
---@overload fun(interval: number, f: function, ...: any): threading.Timer
---@overload fun(opts: threading.TimerOptions): threading.Timer
local Timer = {}
threading.Timer = Timer

---Stops the timer if it has not fired yet (also before start(), from any thread).
function Timer:cancel() end

---Waits out the interval, then calls the target unless cancelled; returns its values.
---@return any ...
function Timer:run() end

---@param interval number
---@param f function
---@param ... any
---@overload fun(self: threading.Timer, opts: threading.TimerOptions)
function Timer:init(interval, f, ...) end

------------------------------------------------------------------------ lock-like objects

---The surface every lock-like object shares: `obj(...)` acquires (returning the object, or
---nil when not acquired) and `<close>` releases.
---@class threading.LockLike
local LockLike = {}

---Acquires (blocking), calls f(...), releases even when f raises; returns f's values.
---@param f function
---@param ... any
---@return any ...
function LockLike:with(f, ...) end

---A non-reentrant lock; any thread may release it.
---@class threading.Lock: threading.LockLike
---@overload fun(blocking?: boolean|number, timeout?: number): threading.Lock?
local Lock = {}

---Makes an unlocked Lock.
---@return threading.Lock
function threading.Lock() end

---Takes the lock; false when not blocking and held, or when the timeout passed.
---@param blocking? boolean Default true.
---@param timeout? number Seconds; nil or negative: forever.
---@return boolean
---@overload fun(self: threading.Lock, timeout: number): boolean
function Lock:acquire(blocking, timeout) end

---Frees the lock (an error if it is not locked).
function Lock:release() end

---True while held by any thread.
---@return boolean
function Lock:locked() end

---Python's old alias of acquire.
---@param blocking? boolean
---@param timeout? number
---@return boolean
function Lock:acquire_lock(blocking, timeout) end

---Python's old alias of release.
function Lock:release_lock() end

---Python's old alias of locked.
---@return boolean
function Lock:locked_lock() end

---A reentrant lock: its owner may acquire it again, and releases it as many times.
---@class threading.RLock: threading.LockLike
---@overload fun(blocking?: boolean|number, timeout?: number): threading.RLock?
local RLock = {}

---Makes an unlocked RLock.
---@return threading.RLock
function threading.RLock() end

---@param blocking? boolean Default true.
---@param timeout? number
---@return boolean
---@overload fun(self: threading.RLock, timeout: number): boolean
function RLock:acquire(blocking, timeout) end

---One level less; an error if the caller does not hold it.
function RLock:release() end

---True while any thread holds it.
---@return boolean
function RLock:locked() end

------------------------------------------------------------------------ Condition

---A condition variable over a Lock or RLock.
---@class threading.Condition: threading.LockLike
---@overload fun(blocking?: boolean|number, timeout?: number): threading.Condition?
local Condition = {}

---Makes a Condition over `lock` (default: a new RLock).
---@param lock? threading.Lock|threading.RLock
---@return threading.Condition
function threading.Condition(lock) end

---Acquires the underlying lock.
---@param blocking? boolean
---@param timeout? number
---@return boolean
---@overload fun(self: threading.Condition, timeout: number): boolean
function Condition:acquire(blocking, timeout) end

---Releases the underlying lock.
function Condition:release() end

---Releases the lock, waits for a notify (FIFO), re-acquires it; false on timeout.
---@param timeout? number
---@return boolean
function Condition:wait(timeout) end

---Waits until predicate() is true; returns its last value.
---@generic T
---@param predicate fun(): T
---@param timeout? number
---@return T
function Condition:wait_for(predicate, timeout) end

---Wakes up to n waiters (default 1), longest-waiting first.
---@param n? integer
function Condition:notify(n) end

---Wakes every waiter.
function Condition:notify_all() end

---Python's alias of notify_all.
function Condition:notifyAll() end

------------------------------------------------------------------------ Semaphore

---A counter that acquire decrements (waiting at 0) and release increments.
---@class threading.Semaphore: threading.LockLike
---@overload fun(blocking?: boolean|number, timeout?: number): threading.Semaphore?
local Semaphore = {}

---@param value? integer Initial value, default 1 (>= 0).
---@return threading.Semaphore
function threading.Semaphore(value) end

---@param blocking? boolean
---@param timeout? number
---@return boolean
---@overload fun(self: threading.Semaphore, timeout: number): boolean
function Semaphore:acquire(blocking, timeout) end

---Adds n (default 1) and wakes up to n waiters.
---@param n? integer
function Semaphore:release(n) end

---A Semaphore whose release above its initial value is an error.
---@class threading.BoundedSemaphore: threading.Semaphore
---@overload fun(blocking?: boolean|number, timeout?: number): threading.BoundedSemaphore?
local BoundedSemaphore = {}

---@param value? integer Initial value and bound, default 1.
---@return threading.BoundedSemaphore
function threading.BoundedSemaphore(value) end

---@param blocking? boolean
---@param timeout? number
---@return boolean
---@overload fun(self: threading.BoundedSemaphore, timeout: number): boolean
function BoundedSemaphore:acquire(blocking, timeout) end

---Adds n (default 1); an error, releasing nothing, if that goes above the initial value.
---@param n? integer
function BoundedSemaphore:release(n) end

------------------------------------------------------------------------ Event

---A flag threads can wait for.
---@class threading.Event
local Event = {}

---Makes an Event, initially not set.
---@return threading.Event
function threading.Event() end

---@return boolean
function Event:is_set() end

---Python's alias of is_set.
---@return boolean
function Event:isSet() end

---Sets the flag and wakes every waiter.
function Event:set() end

---Clears the flag.
function Event:clear() end

---True once the flag is set (even if cleared again before the waiter ran); false on timeout.
---@param timeout? number
---@return boolean
function Event:wait(timeout) end

---An fd (owned by the event; never close it) that polls readable while the flag is set.
---@return integer
function Event:fileno() end

------------------------------------------------------------------------ Barrier

---A barrier for a fixed number of threads.
---@class threading.Barrier
---@field parties integer
---@field n_waiting integer
---@field broken boolean
local Barrier = {}

---@param parties integer
---@param action? function Runs once per round, in the last thread to arrive.
---@param timeout? number Default timeout of wait().
---@return threading.Barrier
function threading.Barrier(parties, action, timeout) end

---Waits for all parties; returns this thread's index 0 .. parties-1.
---Raises threading.BrokenBarrierError when the barrier is or becomes broken.
---@param timeout? number nil: the constructor's timeout.
---@return integer
function Barrier:wait(timeout) end

---Back to the initial state; current waiters get BrokenBarrierError.
function Barrier:reset() end

---Breaks the barrier.
function Barrier:abort() end

------------------------------------------------------------------------ Local

---Thread-local data: each thread sees its own fields (pairs and # too).
---@class threading.Local
---@field [any] any
---@operator len: integer
local Local = {}

---@param defaults? table Copied into each thread's view.
---@return threading.Local
function threading.Local(defaults) end

---Same as threading.Local (`local` is a Lua keyword).
threading["local"] = threading.Local

------------------------------------------------------------------------ queues

---@class threading.QueueOptions
---@field maxsize? integer 0 or less: unbounded.

---A FIFO queue; items are copied in and out. `nil` is not a valid item.
---@class threading.Queue
---@field maxsize integer The bound; 0 when unbounded.
local Queue = {}

---@param maxsize? integer|threading.QueueOptions Default 0: unbounded.
---@return threading.Queue
function threading.Queue(maxsize) end

---Adds the item; true, or nil and "full" / "shutdown".
---@param item any
---@param block? boolean Default true.
---@param timeout? number
---@return true|nil ok
---@return "full"|"shutdown"|nil reason
---@overload fun(self: threading.Queue, item: any, timeout: number): true|nil, "full"|"shutdown"|nil
function Queue:put(item, block, timeout) end

---Removes and returns the next item; or nil and "empty" / "shutdown".
---@param block? boolean Default true.
---@param timeout? number
---@return any item
---@return "empty"|"shutdown"|nil reason
---@overload fun(self: threading.Queue, timeout: number): any, "empty"|"shutdown"|nil
function Queue:get(block, timeout) end

---put(item, false).
---@param item any
---@return true|nil ok
---@return "full"|"shutdown"|nil reason
function Queue:put_nowait(item) end

---get(false).
---@return any item
---@return "empty"|"shutdown"|nil reason
function Queue:get_nowait() end

---Puts array[1 .. #array] in order; true, or nil, reason and the number of items put.
---@param array any[]
---@param block? boolean
---@param timeout? number
---@return true|nil ok
---@return "full"|"shutdown"|nil reason
---@return integer? n_put
function Queue:put_many(array, block, timeout) end

---Waits like get for one item, then takes up to max: an array of 1..max items, or nil, reason.
---@param max? integer Default: no limit.
---@param block? boolean
---@param timeout? number
---@return any[]|nil items
---@return "empty"|"shutdown"|nil reason
function Queue:get_many(max, block, timeout) end

---@return integer
function Queue:qsize() end

---@return boolean
function Queue:empty() end

---@return boolean
function Queue:full() end

---Marks one item taken by get as processed.
function Queue:task_done() end

---Waits until every item put had its task_done(); false if the timeout passed.
---@param timeout? number
---@return boolean
function Queue:join(timeout) end

---Puts fail from now on; gets drain the rest. immediate: drop the items left too.
---@param immediate? boolean
function Queue:shutdown(immediate) end

---An fd (owned by the queue; never close it) that polls readable while the queue holds
---items or is shut down; a get_nowait that finds it empty makes it stop.
---@return integer
function Queue:fileno() end

---A last-in, first-out Queue.
---@class threading.LifoQueue: threading.Queue
local LifoQueue = {}

---@param maxsize? integer|threading.QueueOptions
---@return threading.LifoQueue
function threading.LifoQueue(maxsize) end

---A Queue of tables `{priority, ...}`: lowest priority first, FIFO among equals.
---@class threading.PriorityQueue: threading.Queue
local PriorityQueue = {}

---@param maxsize? integer|threading.QueueOptions
---@return threading.PriorityQueue
function threading.PriorityQueue(maxsize) end

---An unbounded FIFO Queue.
---@class threading.SimpleQueue: threading.Queue
local SimpleQueue = {}

---@return threading.SimpleQueue
function threading.SimpleQueue() end

------------------------------------------------------------------------ Shared

---One table seen by every thread it is passed to; each read and write is atomic and copies.
---@class threading.Shared
---@field [string|number|boolean|userdata] any
---@operator len: integer
local Shared = {}

---@param init? table Its pairs are copied in.
---@return threading.Shared
function threading.Shared(init) end

---Reads any key (method names included).
---@param k any
---@return any
function Shared:get(k) end

---Writes any key (method names included); nil removes it.
---@param k any
---@param v any
function Shared:set(k, v) end

---Atomic s[k] = f(s[k]); returns the new value. f must not use the same Shared.
---@generic T
---@param k any
---@param f fun(old: any): T
---@return T
function Shared:update(k, f) end

---Atomic add (a missing key counts as 0); returns the new value.
---@param k any
---@param delta? number Default 1.
---@return number
function Shared:incr(k, delta) end

---Atomic s[#s + 1] = v; returns the new length.
---@param v any
---@return integer
function Shared:append(v) end

---Atomic: removes and returns s[#s]; nil when empty.
---@return any
function Shared:pop() end

---A plain table copy of the whole table, taken atomically.
---@return table
function Shared:snapshot() end

------------------------------------------------------------------------ pool

---@class threading.PoolOptions
---@field max_workers? integer Default: the number of cores.
---@field initializer? function Runs once in each worker, before its first task; if it raises, the pool is broken.
---@field initargs? any[] The initializer's arguments.
---@field thread_name_prefix? string Workers are named PREFIX_i (default ThreadPoolExecutor-N_i).

---A pool of worker threads that keep their Lua state between tasks. A `<close>` variable
---holding it shuts it down (waiting) at the end of the scope.
---@class threading.ThreadPoolExecutor
local ThreadPoolExecutor = {}

---@param max_workers? integer|threading.PoolOptions
---@return threading.ThreadPoolExecutor
function threading.ThreadPoolExecutor(max_workers) end

---Queues f(...) and returns its Future.
---@param f function
---@param ... any
---@return threading.Future
function ThreadPoolExecutor:submit(f, ...) end

---The first return value of f(item) for each item, in order; raises a task's error or
---threading.TimeoutError (then the items not yet started are cancelled).  The items run in
---chunks (one task runs f over a slice of them), sized from the measured cost per item
---unless chunksize is given.
---@param f function
---@param items any[]
---@param timeout? number
---@param chunksize? integer Items per task (at least 1); default: sized from the cost.
---@return any[]
function ThreadPoolExecutor:map(f, items, timeout, chunksize) end

---No new tasks; cancel_futures cancels the queued ones; wait waits for the workers.
---@param wait? boolean Default true.
---@param cancel_futures? boolean Default false.
function ThreadPoolExecutor:shutdown(wait, cancel_futures) end

---The result of ThreadPoolExecutor:submit.
---@class threading.Future
local Future = {}

---The task's return values, or raises its error; threading.TimeoutError on timeout,
---threading.CancelledError when cancelled.
---@param timeout? number
---@return any ...
function Future:result(timeout) end

---nil when the task succeeded, else its error value and traceback.
---@param timeout? number
---@return any err
---@return string? traceback
function Future:exception(timeout) end

---@return boolean
function Future:done() end

---@return boolean
function Future:running() end

---@return boolean
function Future:cancelled() end

---Cancels a task not yet started: true then (or if already cancelled), else false.
---@return boolean
function Future:cancel() end

---An fd (owned by the future; never close it) that polls readable once it is done.
---@return integer
function Future:fileno() end

---fn(fut) once fut is done or cancelled, in the thread that finished it (fn crosses like a
---task); at once, here, if it is done already. An error in fn is reported on stderr.
---@param fn fun(fut: threading.Future)
function Future:add_done_callback(fn) end

return threading
