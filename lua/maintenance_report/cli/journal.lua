-- The batch journal: append-only JSON lines, each written with
-- core.append_durable (open O_APPEND, write, fsync) before the batch goes on.
--
-- Events (every line also has "time", epoch seconds):
--   {"event":"run", "input":…, "pid":…}                    a batch run starts
--   {"event":"ordering", "vin":…, "line":…}                BEFORE an order request is sent
--   {"event":"ordered", "vin":…, "order_id":…, "request_id":…}   the moment the order answer arrives
--   {"event":"order_failed", "vin":…, "kind":…, "message":…, "order_outcome":"unknown"|"not_placed"}
--   {"event":"done", "vin":…, "order_id":…, "status":"ready"|"no_records"}
--   {"event":"report_failed", "vin":…, "order_id":…, "kind":…, "message":…}   (pending at the deadline too)
--
-- Reading it back gives, per VIN, what a re-run may do:
--   "resume"  an order id is known: poll it (never order again)
--   "unknown" an intent without an order id, or an order that failed with an
--             unknown outcome: it may have been placed and charged, so it is
--             not ordered again unless the user says so (--retry-unknown)
--   "order"   never ordered, or every attempt provably failed before placing
-- Lines that are not valid JSON objects (a torn last line after a crash) are
-- counted and ignored.
--
-- One run at a time per journal: journal.lock takes an flock(2) on the file
-- next to it (path .. ".lock"). The kernel drops that lock when its holder
-- exits, however it dies, so there is no stale lock to take over and no
-- window in which two runs both believe they hold it.
local json = require "maintenance_report.json"

local journal = {}

local Journal = {}
Journal.__index = Journal

local function decode(line)
  local value = json.decode(line)
  if type(value) ~= "table" or type(value.event) ~= "string" then return nil end
  return value
end

--- Folds one event into the per-VIN state table.
function journal.apply(states, ev)
  local vin = type(ev.vin) == "string" and ev.vin or nil
  if not vin then return end
  local s = states[vin]
  if not s then
    s = { intents = 0, orders = 0 }
    states[vin] = s
  end
  local e = ev.event
  if e == "ordering" then
    s.intents = s.intents + 1
    if not s.order_id then s.state = "intent" end
  elseif e == "ordered" and type(ev.order_id) == "string" and ev.order_id ~= "" then
    s.orders = s.orders + 1
    s.order_id = ev.order_id
    s.state = "ordered"
  elseif e == "order_failed" then
    if not s.order_id then
      if ev.order_outcome == "unknown" then
        s.state = "unknown"
      else
        s.state = "failed"
      end
      s.last_error = { kind = ev.kind, message = ev.message }
    end
  elseif e == "done" then
    if type(ev.order_id) == "string" and ev.order_id ~= "" then s.order_id = s.order_id or ev.order_id end
    s.state = "done"
    s.status = ev.status
  elseif e == "report_failed" then
    if type(ev.order_id) == "string" and ev.order_id ~= "" then s.order_id = s.order_id or ev.order_id end
    if s.state ~= "done" then s.state = "ordered" end
    s.last_error = { kind = ev.kind, message = ev.message }
  end
end

--- What a run may do for a VIN: "resume", order_id | "unknown" | "order".
function Journal:plan(vin)
  local s = self.states[vin]
  if not s then return "order" end
  if s.order_id then return "resume", s.order_id end
  if s.state == "intent" or s.state == "unknown" then return "unknown" end
  return "order"
end

--- Opens (creating if needed) a journal; reads what is there. Returns a journal or nil, message.
--- opts.append(path, data) replaces core.append_durable (for tests).
function journal.open(path, opts)
  opts = opts or {}
  local self = setmetatable({
    path = path, states = {}, corrupt = 0, lines = 0, orders = 0,
    append = opts.append or require("maintenance_report.core").append_durable,
  }, Journal)
  local f = io.open(path, "rb")
  if f then
    local content = f:read("*a") or ""
    f:close()
    for line in content:gmatch("[^\n]+") do
      if line:find("%S") then
        local ev = decode(line)
        if ev then
          self.lines = self.lines + 1
          if ev.event == "ordered" then self.orders = self.orders + 1 end
          journal.apply(self.states, ev)
        else
          self.corrupt = self.corrupt + 1
        end
      end
    end
    -- A torn last line (a crash mid-write) must not swallow the next event.
    if content ~= "" and content:sub(-1) ~= "\n" then
      local ok, err = self.append(path, "\n")
      if not ok then return nil, "cannot write the journal: " .. tostring(err) end
    end
  end
  return self
end

--- Appends one event, durably; returns true or nil, message.
function Journal:write(ev)
  ev.time = ev.time or os.time()
  local ok, err = self.append(self.path, json.encode(ev) .. "\n")
  if not ok then return nil, "cannot write the journal " .. self.path .. ": " .. tostring(err) end
  if ev.event == "ordered" then self.orders = self.orders + 1 end
  journal.apply(self.states, ev)
  return true
end

---------------------------------------------------------------------------
-- A lock, so that two runs never share a journal (and so never order twice)
---------------------------------------------------------------------------

--- Takes the lock of the journal at path; returns a lock ({ path=, pid= }) or nil, message.
function journal.lock(path)
  local core = require "maintenance_report.core"
  local file = path .. ".lock"
  local handle, err, why = core.flock(file)
  if not handle then
    if why == "busy" then
      return nil, string.format("journal %s is in use by another batch run (it holds %s)", path, file)
    end
    return nil, "cannot lock the journal " .. path .. ": " .. tostring(err)
  end
  return { path = file, pid = core.getpid(), handle = handle }
end

--- Releases a lock from journal.lock (the lock file stays: removing it would let a
--- later run lock a new file while an older run still holds the old one).
function journal.unlock(lock)
  if lock and lock.handle then
    lock.handle:release()
    lock.handle = nil
  end
end

return journal
