-- What the ledger and its stores share: typed errors, deep copies, claim
-- tokens and the JSON text of an entry.
local errors = require "maintenance_report.errors"

local util = {}

--- A typed error (errors.lua's metatable, so errors.is and tostring work)
--- even for the ledger's own kinds while errors.KINDS does not list them yet.
function util.error(kind, message, fields)
  if errors.KINDS[kind] then return errors.new(kind, message, fields) end
  local err = errors.new("invalid_input", message, fields)
  err.kind = kind
  return err
end

local PASSED_THROUGH = { ledger = true, ledger_busy = true, store_unavailable = true }

--- A store's failure as a ledger error: err may be a string or an error table.
function util.store_error(err, what)
  if type(err) == "table" and PASSED_THROUGH[err.kind] then return err end
  local message = type(err) == "table" and tostring(err.message) or tostring(err)
  return util.error("ledger", (what and what .. ": " or "") .. message)
end

--- A deep copy of plain data (entries and reports; no cycles).
function util.copy(value)
  if type(value) ~= "table" then return value end
  local out = {}
  for k, v in pairs(value) do out[k] = util.copy(v) end
  return setmetatable(out, getmetatable(value))
end

local boot

--- This boot of the machine (Linux's boot_id), or nil when it cannot be read.
--- An unarmed intent of the same boot proves its process died before writing
--- the request; after a reboot, a record not fsync'd may be gone.
function util.boot_id()
  if boot == nil then
    local f = io.open("/proc/sys/kernel/random/boot_id", "rb")
    boot = f and (f:read("*l") or false) or false
    if f then f:close() end
  end
  return boot or nil
end

local counter = 0
local pid

local function process_id()
  if pid == nil then
    local ok, core = pcall(require, "maintenance_report.core")
    pid = ok and core.getpid and core.getpid() or math.random(1, 2 ^ 30)
  end
  return pid
end

--- A claim token unique among live holders: process, time, a counter and a table's address.
function util.token()
  counter = counter + 1
  local address = tostring({}):match("0x(%x+)") or tostring(math.random(1, 2 ^ 30))
  return string.format("%d-%d-%d-%s-%d", process_id(), os.time(), counter, address, math.random(0, 2 ^ 30))
end

--- The budget check every store shares, over its own spent(name) and add(name, delta):
--- all buckets have room for amount → each gets it, true; else false, { index =, spent = }
--- (one table, as the stores' locks pass on two results).
function util.reserve_in(buckets, amount, spent, add)
  for i, b in ipairs(buckets) do
    local so_far = spent(b.name)
    if so_far + amount > b.cap then return false, { index = i, spent = so_far } end
  end
  for _, b in ipairs(buckets) do add(b.name, amount) end
  return true
end

--- JSON text of an entry (the library's own encoder: stable key order).
function util.encode(entry)
  return require("maintenance_report.json").encode(entry)
end

--- The entry of JSON text, or nil, message.
function util.decode(text)
  local core = require "maintenance_report.core"
  local ok, value, message = pcall(core.json_decode, text)
  if not ok then return nil, tostring(value) end
  if type(value) ~= "table" then return nil, message or "not a JSON object" end
  return value
end

return util
