-- The file store: one append-only file shared by every process of one user
-- (the CLI's and scripts' default). docs/ledger.md describes the format:
--
--   maintenance-report-ledger 1 <generation>\n                  (line 1)
--   <crc> <key crc> "<key>" <entry json>\n                      (one per write)
--
-- <crc> is the CRC-32 of everything after its space, <key crc> that of the
-- quoted key, so a damaged line still names its key when that part is whole.
-- Every write happens under an exclusive flock on <path>.lock and is
-- fsync'd before cas returns. A claim is a flock on
-- <path>.claims/<hex key>.lock, which the kernel drops when its process
-- dies: a crashed holder never blocks a key, and its intent reads as unknown.
local crc32 = require "maintenance_report.ledger.crc32"
local util = require "maintenance_report.ledger.util"

local file = {}

local HEADER = "maintenance-report-ledger 1 "
local HEX8 = string.rep("%x", 8)

local Store = {}
Store.__index = Store

local function quote_key(key) return '"' .. key:gsub("\t", "\\t") .. '"' end

local function unquote_key(quoted)
  local inner = quoted:sub(2, -2)
  if inner:find('[\\"]') and inner:gsub("\\t", ""):find('[\\"]') then return nil end
  return (inner:gsub("\\t", "\t"))
end

local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

--- The line (with its newline) that records entry under key.
function file.encode_line(key, entry)
  local quoted = quote_key(key)
  local rest = crc32.hex(quoted) .. " " .. quoted .. " " .. util.encode(entry)
  return crc32.hex(rest) .. " " .. rest .. "\n"
end

-- key, entry of a whole line; or nil, problem.
local function decode_line(line)
  local crc, rest = line:match("^(" .. HEX8 .. ") (.*)$")
  if not crc then return nil, "no checksum" end
  if crc32.hex(rest) ~= crc then return nil, "checksum mismatch" end
  local key_crc, quoted, body = rest:match('^(' .. HEX8 .. ') ("[^"]*") (.*)$')
  if not key_crc or crc32.hex(quoted) ~= key_crc then return nil, "bad key field" end
  local key = unquote_key(quoted)
  local entry, message = util.decode(body)
  if not key or not entry then return nil, "bad JSON: " .. tostring(message) end
  if entry.key ~= key or type(entry.version) ~= "number" then return nil, "entry does not match its key" end
  return key, entry
end

-- Every key a damaged line still names whole: at its start, and where a
-- lost newline glued another record on. first_ok says the line's own key is readable.
local function readable_keys(line)
  local keys, first_ok = {}, false
  for at, key_crc, quoted in line:gmatch("()(" .. HEX8 .. ') ("[^"]*") ') do
    local key = crc32.hex(quoted) == key_crc and unquote_key(quoted)
    if key then
      keys[#keys + 1] = key
      if at == 10 then first_ok = true end
    end
  end
  return keys, first_ok
end

local function exists(path)
  return os.rename(path, path) ~= nil
end

local function make_dir(dir)
  if exists(dir) then return true end
  local q = "'" .. dir:gsub("'", "'\\''") .. "'"
  local ok = os.execute("mkdir -p -m 700 " .. q)
  if (ok == true or ok == 0) and exists(dir) then return true end
  return nil, "cannot create directory " .. dir
end

--- file.open(path, opts) → store | nil, err. opts (all optional, mostly for tests):
---   append(path, data, sync) → true | nil, msg   (core.append_durable: O_APPEND, write, fsync
---                                                unless sync is false)
---   fsync_dir(dir), flock(path), sleep(s), monotime()   (the core's)
---   lock_wait = seconds to wait for the file lock (10)
---   compact_min = records before automatic compaction is considered (1000), compact_ratio (4)
function file.open(path, opts)
  if type(path) ~= "string" or path == "" then error("ledger file: path must be a string", 2) end
  opts = opts or {}
  local core = require "maintenance_report.core"
  local dir = path:match("^(.*)/[^/]*$") or "."
  if dir == "" then dir = "/" end
  local store = setmetatable({
    path = path, dir = dir, lock_path = path .. ".lock", claims_dir = path .. ".claims",
    append = opts.append or core.append_durable,
    fsync_dir = opts.fsync_dir or core.fsync_dir,
    flock = opts.flock or core.flock,
    sleep = opts.sleep or core.sleep,
    monotime = opts.monotime or core.monotime,
    lock_wait = opts.lock_wait or 10,
    compact_min = opts.compact_min or 1000,
    compact_ratio = opts.compact_ratio or 4,
    claims = {},
  }, Store)
  store:reset()
  local ok, err = make_dir(dir)
  if not ok then return nil, util.error("ledger", err) end
  ok, err = store:locked(function()
    if not exists(path) then
      local created, create_err = store.append(path, HEADER .. util.token():gsub("[^%w]", "") .. "\n")
      if not created then return nil, create_err end
      store.fsync_dir(dir)
    end
    return store:refresh(true)
  end)
  if not ok then return nil, util.store_error(err, "cannot open the ledger " .. path) end
  return store
end

-- Forgets what was read, so that the next refresh reads the whole file.
function Store:reset()
  self.index, self.damaged, self.unreadable = {}, {}, nil
  self.header, self.offset, self.lines, self.records, self.torn = nil, 0, 0, 0, 0
end

-- Runs fn under the exclusive file lock, polling a busy lock up to lock_wait seconds.
function Store:locked(fn)
  local started, pause = self.monotime(), 0.001
  local lock, message, why
  while true do
    lock, message, why = self.flock(self.lock_path)
    if lock then break end
    if why ~= "busy" then return nil, util.error("ledger", "cannot lock the ledger: " .. tostring(message)) end
    if self.monotime() - started >= self.lock_wait then
      return nil, util.error("ledger", "the ledger file stayed locked for " .. self.lock_wait .. " s")
    end
    self.sleep(pause)
    pause = math.min(pause * 2, 0.05)
  end
  local ok, a, b = pcall(fn)
  lock:release()
  if not ok then error(a, 0) end
  return a, b
end

function Store:damage(line, problem, text)
  local keys, first_ok = readable_keys(text)
  local record = { line = line, reason = problem, keys = keys, excerpt = text:sub(1, 120) }
  self.damaged[#self.damaged + 1] = record
  if not first_ok and not self.unreadable then self.unreadable = record end
  for _, key in ipairs(keys) do
    local previous = self.index[key]
    local vin, engine_number, plate_number = key:match("^([^\t]*)\t([^\t]*)\t([^\t]*)$")
    self.index[key] = {
      key = key, vin = vin, engine_number = engine_number, plate_number = plate_number, state = "unknown",
      order_id = previous and previous.order_id, created_at = previous and previous.created_at,
      updated_at = previous and previous.updated_at,
      version = (previous and previous.version or 0) + 1,
      reason = { kind = "ledger", message = ("ledger line %d is damaged (%s); the order may have been charged")
        :format(line, problem) },
    }
  end
end

function Store:apply(text)
  self.lines = self.lines + 1
  if self.lines == 1 then
    if text:sub(1, #HEADER) ~= HEADER then
      self:damage(1, "not a ledger header", text)
      self.unreadable = self.unreadable or self.damaged[#self.damaged]
    end
    self.header = text
    return
  end
  self.records = self.records + 1
  local key, entry = decode_line(text)
  if not key then
    -- A glued record after the damage may still be whole: keep it.
    self:damage(self.lines, entry, text)
    local at = text:find(HEX8 .. " " .. HEX8 .. ' "', 2)
    while at do
      local inner_key, inner = decode_line(text:sub(at))
      if inner_key then
        self.index[inner_key] = not inner.deleted and inner or nil
        break
      end
      at = text:find(HEX8 .. " " .. HEX8 .. ' "', at + 1)
    end
    return
  end
  self.index[key] = not entry.deleted and entry or nil
end

-- Reads what was appended since the last read (all of it when the file was
-- replaced by a compaction). `locked`: no writer is active, so an unfinished
-- last line is a torn write, not one in progress.
function Store:refresh(locked)
  local f = io.open(self.path, "rb")
  if not f then return nil, util.error("ledger", "cannot read the ledger file " .. self.path) end
  local header = f:read("*l")
  local size = f:seek("end")
  if header ~= self.header or size < self.offset then self:reset() end
  f:seek("set", self.offset)
  local data = f:read("*a") or ""
  f:close()
  local pos = 1
  while true do
    local nl = data:find("\n", pos, true)
    if not nl then break end
    self:apply(data:sub(pos, nl - 1))
    pos = nl + 1
  end
  self.offset = self.offset + pos - 1
  if locked then self.torn = #data - pos + 1 end
  return true
end

function Store:unreadable_error()
  local d = self.unreadable
  return util.error("ledger", ("ledger %s line %d is damaged and names no key (%s); no order can be decided "
    .. "until it is repaired (see `maintenance-report ledger check`)"):format(self.path, d.line, d.reason),
    { line = d.line, path = self.path })
end

--- claim(key, token) → true | false | nil, err. The ttl is not used: the kernel ends a dead holder's flock.
function Store:claim(key, token)
  local c = self.claims[key]
  if c then return c.token == token end
  local ok, err = make_dir(self.claims_dir)
  if not ok then return nil, util.error("ledger", err) end
  local lock, message, why = self.flock(self.claims_dir .. "/" .. hex(key) .. ".lock")
  if lock then
    self.claims[key] = { token = token, lock = lock }
    return true
  end
  if why == "busy" then return false end
  return nil, util.error("ledger", "cannot claim: " .. tostring(message))
end

function Store:release(key, token)
  local c = self.claims[key]
  if c and c.token == token then
    c.lock:release()
    self.claims[key] = nil
  end
  return true
end

--- read(key) → entry | nil | nil, err (also while a damaged line names no key: it could be any).
function Store:read(key)
  local ok, err = self:refresh(false)
  if not ok then return nil, err end
  if self.unreadable then return nil, self:unreadable_error() end
  return util.copy(self.index[key])
end

-- Appends one record under the lock; a torn tail is compacted away first, so
-- the record never joins it on one line.
function Store:append_record(key, entry, sync)
  if self.torn > 0 then
    local ok, err
    if self.unreadable then
      ok, err = self.append(self.path, "\n") -- ends the fragment: it stays visible as damage
    else
      ok, err = self:compact_locked()
    end
    if not ok then return nil, err end
    if self.unreadable then self:refresh(true) end
  end
  local line = file.encode_line(key, entry)
  if self.lines == 0 then -- an empty file (a crash right after it was created) gets its header first
    local header = HEADER .. util.token():gsub("[^%w]", "")
    line = header .. "\n" .. line
    self.header, self.lines = header, 1
  end
  local ok, err = self.append(self.path, line, sync ~= false)
  if not ok then
    self:reset() -- part of it may be in the file: read everything again next time
    return nil, util.store_error(err, "cannot write the ledger")
  end
  self.offset, self.lines, self.records = self.offset + #line, self.lines + 1, self.records + 1
  self.index[key] = not entry.deleted and util.copy(entry) or nil
  return true
end

function Store:key_count()
  local n = 0
  for _ in pairs(self.index) do n = n + 1 end
  return n
end

--- cas(key, token, expected_version, entry [, opts]) → true | false, current | nil, err. Durable
--- before it returns; opts.sync = false: written (it outlives the process), not fsync'd.
function Store:cas(key, token, expected_version, entry, opts)
  local c = self.claims[key]
  if not c or c.token ~= token then return false, util.copy(self.index[key]) end
  local ok, err = self:locked(function()
    local refreshed, refresh_err = self:refresh(true)
    if not refreshed then return nil, refresh_err end
    local current = self.index[key]
    if (current and current.version) ~= expected_version then return false, util.copy(current) end
    local stored = util.copy(entry)
    stored.key, stored.version = key, (expected_version or 0) + 1
    local appended, append_err = self:append_record(key, stored, not (opts and opts.sync == false))
    if not appended then return nil, append_err end
    entry.version = stored.version
    if self.records > self.compact_min and self.records > self.compact_ratio * self:key_count()
      and not self.unreadable and #self.damaged == 0 then
      self:compact_locked() -- the record is already durable; a failed compaction loses nothing
    end
    return true
  end)
  return ok, err
end

function Store:list()
  local ok, err = self:refresh(false)
  if not ok then return nil, err end
  local out = {}
  for _, entry in pairs(self.index) do out[#out + 1] = util.copy(entry) end
  return out
end

--- delete(key, token) → true | false (token given, not the holder) | nil, err. Appends a tombstone.
function Store:delete(key, token)
  if token ~= nil and not (self.claims[key] and self.claims[key].token == token) then return false end
  return self:locked(function()
    local ok, err = self:refresh(true)
    if not ok then return nil, err end
    local current = self.index[key]
    if not current then return true end
    return self:append_record(key, { key = key, deleted = true, version = (current.version or 0) + 1 })
  end)
end

-- Writes one record per key to a temp file, fsyncs it, renames it over the
-- ledger and fsyncs the directory. Damaged keys are written as unknown.
function Store:compact_locked()
  if self.unreadable then return nil, self:unreadable_error() end
  local keys = {}
  for key in pairs(self.index) do keys[#keys + 1] = key end
  table.sort(keys)
  local header = HEADER .. util.token():gsub("[^%w]", "")
  local parts = { header .. "\n" }
  for _, key in ipairs(keys) do parts[#parts + 1] = file.encode_line(key, self.index[key]) end
  local content = table.concat(parts)
  local tmp = self.path .. ".compact." .. util.token():gsub("[^%w]", "")
  local ok, err = self.append(tmp, content)
  if ok then
    local renamed, rename_err = os.rename(tmp, self.path)
    ok, err = renamed, rename_err
  end
  if not ok then
    os.remove(tmp)
    return nil, util.store_error(err, "cannot compact the ledger")
  end
  self.fsync_dir(self.dir)
  self.header, self.offset, self.lines, self.records, self.torn = header, #content, #keys + 1, #keys, 0
  self.damaged = {}
  return true
end

--- compact() → true | nil, err (refused while a damaged line names no key).
function Store:compact()
  return self:locked(function()
    local ok, err = self:refresh(true)
    if not ok then return nil, err end
    return self:compact_locked()
  end)
end

--- check() → { ok, path, records, keys, torn_tail = bytes, damaged = { { line, reason, keys, excerpt } },
--- unreadable_line = n or nil } | nil, err.
function Store:check()
  return self:locked(function()
    self:reset()
    local ok, err = self:refresh(true)
    if not ok then return nil, err end
    return {
      ok = #self.damaged == 0 and self.torn == 0, path = self.path, records = self.records,
      keys = self:key_count(), torn_tail = self.torn, damaged = util.copy(self.damaged),
      unreadable_line = self.unreadable and self.unreadable.line or nil,
    }
  end)
end

-- Budgets (maintenance_report.budget): <path>.budget, one "<bucket> <fen delta>" line per
-- change, appended and fsync'd under the ledger's file lock, summed on every read.
function Store:budget_sums()
  local sums = {}
  local f = io.open(self.path .. ".budget", "rb")
  if not f then return sums end
  for line in f:lines() do
    local name, delta = line:match("^(%S+) (%-?%d+)$")
    if name then sums[name] = (sums[name] or 0) + tonumber(delta) end
  end
  f:close()
  return sums
end

function Store:budget_append(lines)
  if #lines == 0 then return true end
  local ok, err = self.append(self.path .. ".budget", table.concat(lines))
  if not ok then return nil, util.store_error(err, "cannot write the budget file") end
  return true
end

function Store:reserve(buckets, amount)
  return self:locked(function()
    local sums, lines = self:budget_sums(), {}
    local ok, full = util.reserve_in(buckets, amount, function(name) return sums[name] or 0 end,
      function(name, delta) lines[#lines + 1] = name .. " " .. delta .. "\n" end)
    if not ok then return false, full end
    return self:budget_append(lines)
  end)
end

function Store:unreserve(buckets, amount)
  return self:locked(function()
    local sums, lines = self:budget_sums(), {}
    for _, b in ipairs(buckets) do
      local back = math.min(amount, sums[b.name] or 0)
      if back > 0 then lines[#lines + 1] = b.name .. " " .. -back .. "\n" end
    end
    return self:budget_append(lines)
  end)
end

function Store:spent(names)
  local sums = self:budget_sums()
  local out = {}
  for _, name in ipairs(names) do out[name] = sums[name] or 0 end
  return out
end

function Store:close()
  for key, c in pairs(self.claims) do
    c.lock:release()
    self.claims[key] = nil
  end
  return true
end

return file
