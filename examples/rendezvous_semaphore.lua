-- Mirrors: seed 003 (notebook) "Sync Patterns" / "Randevu Patterni" (rendezvous), second cell: two Semaphore(0).
-- Shows: the rendezvous pattern: each thread signals its arrival and waits for the other's, so A1 and B1 both happen before A2 and B2.
local threading = require "lthreading"

local function say(...) io.write(string.format(...) .. "\n") end   -- one write per line

local function taskA(lockA, lockB)
  say("A1")
  lockA:release()      -- A has arrived
  lockB:acquire()      -- wait for B to arrive
  say("A2")
end

local function taskB(lockA, lockB)
  say("B1")
  lockB:release()      -- B has arrived
  lockA:acquire()      -- wait for A to arrive
  say("B2")
end

local lockA = threading.Semaphore(0)
local lockB = threading.Semaphore(0)

local A = threading.Thread{target = taskA, args = {lockA, lockB}}
local B = threading.Thread{target = taskB, args = {lockA, lockB}}

A:start()
B:start()
