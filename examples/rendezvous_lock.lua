-- Mirrors: seed 003 (notebook) "Sync Patterns" / "Randevu Patterni" (rendezvous), first cell: taskA / taskB with one Lock.
-- Shows: a lock only keeps A2 and B2 from running at the same time; it does not make the threads meet (for that see rendezvous_semaphore.lua).
local threading = require "lthreading"

local function say(...) io.write(string.format(...) .. "\n") end   -- one write per line

local function taskA(lock)
  say("A1")
  local _ <close> = lock()
  say("A2")
end

local function taskB(lock)
  say("B1")
  local _ <close> = lock()
  say("B2")
end

local lock = threading.Lock()

local A = threading.Thread{target = taskA, args = {lock}}
local B = threading.Thread{target = taskB, args = {lock}}

A:start()
B:start()
