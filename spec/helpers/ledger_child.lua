-- A child process for spec/ledger_file_spec.lua, sharing a file ledger with
-- its parent. Run as: <lua> spec/helpers/ledger_child.lua <mode> <args…>
--   race <path> <marker dir> <tasks> <others>: <tasks> concurrent begins on
--     one key; each blocked begin leaves a marker file; the one that gets
--     "order" holds its claim until <others> markers exist, then places
--     RACE-1. Prints one "ACTION <action> [order id]" line per begin.
--   hold <path> intent|armed|placed: orders, writes intent (and arms it, and placed KILL-1),
--     prints "HELD <pid>" and waits to be killed.
--   claim <path> <key>: takes the store's claim of <key>; prints "HELD <pid>" and waits to be
--     killed, or "BUSY" and exits when another holder has it.
--   compact <path>: orders OTHER (intent, placed OTHER-1), compacts the ledger, prints "COMPACTED".
local core = require "maintenance_report.core"
local ledger = require "maintenance_report.ledger"

local VEHICLE = { vin = "LSVAU2180N2183294", engine_number = "EA888", plate_number = "京A12345" }
local mode, path = arg[1], arg[2]
local L = assert(ledger.file(path))

local function count_markers(dir)
  local p = assert(io.popen("ls " .. dir))
  local n = 0
  for _ in p:lines() do n = n + 1 end
  p:close()
  return n
end

if mode == "claim" then
  if not L.store:claim(arg[3], "child-token") then
    io.write("BUSY\n")
    os.exit(0)
  end
  io.write("HELD ", core.getpid(), "\n")
  io.stdout:flush()
  core.sleep(60)
  os.exit(3)
elseif mode == "compact" then
  local d = assert(L:begin{ vin = "LSVAU2180N2183295" })
  assert(d.action == "order", d.action)
  assert(d.claim:intent())
  assert(d.claim:placed("OTHER-1", "REQ-OTHER"))
  d.claim:release()
  assert(L:compact())
  io.write("COMPACTED\n")
elseif mode == "hold" then
  local d = assert(L:begin(VEHICLE))
  assert(d.action == "order", d.action)
  assert(d.claim:intent())
  if arg[3] == "armed" or arg[3] == "placed" then assert(d.claim:arm()) end
  if arg[3] == "placed" then assert(d.claim:placed("KILL-1", "REQ-KILL")) end
  io.write("HELD ", core.getpid(), "\n")
  io.stdout:flush()
  core.sleep(60)
  os.exit(3) -- never killed: the parent spec fails on the missing kill
elseif mode == "race" then
  local dir, tasks, others = arg[3], tonumber(arg[4]), tonumber(arg[5])
  local tasks_left = {}
  for i = 1, tasks do
    local marked = false
    tasks_left[i] = coroutine.create(function()
      local d = assert(L:begin(VEHICLE, { wait = 30, sleep = function()
        if not marked then
          marked = true
          assert(io.open(dir .. "/busy-" .. core.getpid() .. "-" .. i, "w")):close()
        end
        coroutine.yield()
      end }))
      if d.action == "order" then
        assert(d.claim:intent())
        local started = core.monotime()
        while count_markers(dir) < others and core.monotime() - started < 30 do coroutine.yield() end
        assert(d.claim:placed("RACE-1", "REQ-RACE"))
      end
      io.write("ACTION ", d.action, " ", tostring(d.order_id or ""), "\n")
      d.claim:release()
    end)
  end
  while #tasks_left > 0 do
    for i = #tasks_left, 1, -1 do
      assert(coroutine.resume(tasks_left[i]))
      if coroutine.status(tasks_left[i]) == "dead" then table.remove(tasks_left, i) end
    end
    if #tasks_left > 0 then core.sleep(0.005) end -- all are waiting on another process
  end
end
