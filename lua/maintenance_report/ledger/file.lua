-- The file store: one append-only file shared by every process of one user
-- (the CLI's and scripts' default). docs/ledger.md describes the format:
--
--   maintenance-report-ledger <format> <generation>\n         (line 1; format 2, or 1)
--   <crc> <key crc> "<key>" <entry json>\n                      (one per write)
--
-- <crc> is the CRC-32 of everything after its space, <key crc> that of the
-- quoted key, so a damaged line still names its key when that part is whole.
-- Every write happens under an exclusive flock on <path>.lock and is
-- fsync'd before cas returns. The store keeps its descriptors of <path>.lock
-- and <path> open for its life: a write is flock, stat, write, fsync, unlock.
-- The stat notices another process's compaction (a rename over <path>): the
-- path then names another inode than the held descriptor, which is reopened
-- and read from the start. Reading an entry back uses the held descriptor,
-- whose file is the one the index was read from, even after such a rename.
--
-- Claims, which the kernel drops when their process dies (a crashed holder
-- never blocks a key, and its intent reads as unknown):
-- - format 2: an exclusive OFD lock (fcntl F_OFD_SETLK) on one byte of
--   <path>.claim-locks, at core.key_slot(key) (a 52-bit hash of the key). OFD
--   locks belong to the open file description, not the process, so closing
--   another descriptor of the file does not drop them, and two stores (two
--   opens) conflict even in one process. Two keys with the same byte exclude
--   each other: the second waits or is refused (ledger_busy) while the first
--   is held, never shares it. Among n keys held at once that happens with a
--   chance of about n² / 2^53 (1,000 held: 1 in 9·10^9).
-- - format 1 (a ledger written before format 2): a flock on
--   <path>.claims/<hex key>.lock, one file per key, which is what processes
--   of older versions take. They read a format 2 header as damage and refuse
--   to order, so the two kinds of claim never guard one ledger together.
--
-- Memory stays flat in the number of keys: the index keeps, per key, one
-- number: where its latest record starts in the file and its version, state and
-- whether it has an order id. An entry, its report included, is read back from
-- the file when asked for, so a batch of 100,000 vehicles does not hold 100,000
-- reports.
local crc32 = require "maintenance_report.ledger.crc32"
local util = require "maintenance_report.ledger.util"

local file = {}

-- A new ledger is format 2 (its claims are byte locks); compaction keeps a file's format.
local CURRENT_FORMAT = 2
local function header_prefix(format) return "maintenance-report-ledger " .. format .. " " end
local function new_header(format) return header_prefix(format) .. util.token():gsub("[^%w]", "") end
local HEX8 = string.rep("%x", 8)

local Store = {}
Store.__index = Store

-- The packed facts of an entry: version × 16 + state code × 2 + (order id ? 1 : 0).
-- Code 0 is a state this version does not know: summary() reads such an entry.
local STATE_CODES = { intent = 1, placed = 2, ready = 3, no_records = 4, unknown = 5, not_placed = 6 }
local STATE_NAMES = {}
for name, code in pairs(STATE_CODES) do STATE_NAMES[code] = name end

local function pack(entry)
  return (entry.version or 0) * 16 + (STATE_CODES[entry.state] or 0) * 2
    + (type(entry.order_id) == "string" and 1 or 0)
end

local function packed_version(m)
  return math.floor(m / 16)
end

-- index[key] = offset × META_SPAN + pack(entry): exact in a double (LuaJIT) and an
-- integer (5.4) while the offset is below 8 GiB and the version below 65536;
-- beyond either, or for a damaged key's entry (a table), meta[key] holds pack(entry).
local META_SPAN, MAX_PACKED_OFFSET = 1048576, 8589934592
-- Records to write in one go while compacting, and to read in one go (bytes).
local COMPACT_CHUNK, READ_CHUNK = 1024 * 1024, 1024 * 1024

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
---   append(path, data, sync) → true | nil, msg   (default: a write on the held descriptor,
---                                                fsync'd unless sync is false; for the
---                                                compaction's and budget's files
---                                                core.append_durable)
---   flock(path) → lock | nil, msg, "busy"        (default: flock on the held descriptor)
---   fsync_dir(dir), sleep(s), monotime()   (the core's)
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
    claim_locks_path = path .. ".claim-locks", core = core,
    append = opts.append or core.append_durable, append_hook = opts.append,
    fsync_dir = opts.fsync_dir or core.fsync_dir,
    flock = opts.flock or core.flock, flock_hook = opts.flock,
    sleep = opts.sleep or core.sleep,
    monotime = opts.monotime or core.monotime,
    lock_wait = opts.lock_wait or 10,
    compact_min = opts.compact_min or 1000,
    compact_ratio = opts.compact_ratio or 4,
    claims = {}, slots = {},
  }, Store)
  store:reset()
  local ok, err = make_dir(dir)
  if not ok then return nil, util.error("ledger", err) end
  ok, err = store:locked(function()
    if not exists(path) then
      local created, create_err = store.append(path, new_header(CURRENT_FORMAT) .. "\n")
      if not created then return nil, create_err end
      store.fsync_dir(dir)
    end
    return store:refresh(true)
  end)
  if not ok then return nil, util.store_error(err, "cannot open the ledger " .. path) end
  return store
end

-- Forgets what was read, so that the next refresh reads the whole file.
-- index: key → the offset of its latest record in the file with pack(entry) (see
-- META_SPAN), or the entry itself (a damaged key's, which no line holds); meta: the
-- pack(entry) of keys whose index value does not hold it; keys: their number.
function Store:reset()
  self.index, self.meta, self.keys, self.damaged, self.unreadable = {}, {}, 0, {}, nil
  self.header, self.format, self.offset, self.lines, self.records, self.torn = nil, nil, 0, 0, 0, 0
end

-- Records that key's latest entry is at `where` (an offset, or the entry); entry nil: deleted.
function Store:remember(key, where, entry)
  if entry == nil or entry.deleted then
    if self.index[key] ~= nil then self.keys = self.keys - 1 end
    self.index[key], self.meta[key] = nil, nil
    return
  end
  if self.index[key] == nil then self.keys = self.keys + 1 end
  self:place(key, where, pack(entry))
end

function Store:place(key, where, m)
  if type(where) == "number" and where < MAX_PACKED_OFFSET and m < META_SPAN then
    self.index[key], self.meta[key] = where * META_SPAN + m, nil
  else
    self.index[key], self.meta[key] = where, m
  end
end

-- key's offset (or entry) and pack(entry); nil when the key has no entry.
function Store:lookup(key)
  local v = self.index[key]
  if v == nil then return nil end
  local m = self.meta[key]
  if m ~= nil then return v, m end
  return math.floor(v / META_SPAN), v % META_SPAN
end

-- The record line starting at offset of the file read so far (the held
-- descriptor's: a compaction by another process does not change it), or nil.
function Store:line_at(offset)
  if not self.data then return nil end
  return (self.data:read_line(offset))
end

-- A fresh copy of key's entry (nil: none), read from its line; nil, err when
-- neither the file read so far nor a full re-read has it (once: no re-read,
-- for a caller in the middle of reading the file).
function Store:entry_of(key, once)
  local where = self:lookup(key)
  if where == nil then return nil end
  if type(where) == "table" then return util.copy(where) end
  for attempt = 1, once and 1 or 2 do
    local line = self:line_at(where)
    local found, entry = nil, nil
    if line then found, entry = decode_line(line) end
    if found == key then return entry end
    if attempt == 2 then break end
    self:reset()
    local ok, err = self:refresh(false)
    if not ok then return nil, err end
    where = self:lookup(key)
    if where == nil then return nil end
    if type(where) == "table" then return util.copy(where) end
  end
  return nil, util.error("ledger", "cannot read the entry of " .. key:gsub("\t", " ") .. " back from " .. self.path)
end

function Store:version_of(key)
  local _, m = self:lookup(key)
  return m and packed_version(m) or nil
end

-- A forked child shares its parent's open file descriptions, and with them the
-- parent's flock and byte locks, which it would pass as its own: before it locks
-- or claims anything it closes its copies (without unlocking, which would drop
-- the parent's locks) and forgets the parent's claims, then opens its own.
function Store:own_descriptors()
  local pid = self.core.getpid()
  if pid == self.pid then return end
  if self.pid ~= nil then
    if self.lock_fd then self.lock_fd:close() end
    if self.claim_fd then self.claim_fd:close() end
    self.lock_fd, self.claim_fd, self.claims, self.slots = nil, nil, {}, {}
  end
  self.pid = pid
end

-- Takes the exclusive file lock once: a lock to release | nil, message, "busy" | nil, message.
local HELD_LOCK = {}
function Store:try_lock()
  if self.flock_hook then return self.flock_hook(self.lock_path) end
  self:own_descriptors()
  if not self.lock_fd then
    local fd, err = self.core.open_fd(self.lock_path, true)
    if not fd then return nil, err end
    self.lock_fd = fd
  end
  local ok, err, why = self.lock_fd:lock()
  if not ok then return nil, err, why end
  return HELD_LOCK
end

function Store:unlock(lock)
  if lock ~= HELD_LOCK then return lock:release() end
  if not self.lock_fd:unlock() then -- closing the descriptor drops the flock in any case
    self.lock_fd:close()
    self.lock_fd = nil
  end
end

-- Runs fn under the exclusive file lock, polling a busy lock up to lock_wait seconds.
function Store:locked(fn)
  local started, pause = self.monotime(), 0.001
  local lock, message, why
  while true do
    lock, message, why = self:try_lock()
    if lock then break end
    if why ~= "busy" then return nil, util.error("ledger", "cannot lock the ledger: " .. tostring(message)) end
    if self.monotime() - started >= self.lock_wait then
      return nil, util.error("ledger", "the ledger file stayed locked for " .. self.lock_wait .. " s")
    end
    self.sleep(pause)
    pause = math.min(pause * 2, 0.05)
  end
  local ok, a, b = pcall(fn)
  self:unlock(lock)
  if not ok then error(a, 0) end
  return a, b
end

function Store:damage(line, problem, text)
  local keys, first_ok = readable_keys(text)
  local record = { line = line, reason = problem, keys = keys, excerpt = text:sub(1, 120) }
  self.damaged[#self.damaged + 1] = record
  if not first_ok and not self.unreadable then self.unreadable = record end
  for _, key in ipairs(keys) do
    local previous = self:entry_of(key, true)
    local vin, engine_number, plate_number = key:match("^([^\t]*)\t([^\t]*)\t([^\t]*)$")
    local entry = {
      key = key, vin = vin, engine_number = engine_number, plate_number = plate_number, state = "unknown",
      order_id = previous and previous.order_id, created_at = previous and previous.created_at,
      updated_at = previous and previous.updated_at,
      version = (self:version_of(key) or 0) + 1,
      reason = { kind = "ledger", message = ("ledger line %d is damaged (%s); the order may have been charged")
        :format(line, problem) },
    }
    self:remember(key, entry, entry)
  end
end

-- One line of the file, starting at offset.
function Store:apply(text, offset)
  self.lines = self.lines + 1
  if self.lines == 1 then
    local format = text:match("^maintenance%-report%-ledger ([12]) ")
    if not format then
      self:damage(1, "not a ledger header", text)
      self.unreadable = self.unreadable or self.damaged[#self.damaged]
    end
    self.header, self.format = text, tonumber(format)
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
        self:remember(inner_key, offset + at - 1, inner)
        break
      end
      at = text:find(HEX8 .. " " .. HEX8 .. ' "', at + 1)
    end
    return
  end
  self:remember(key, offset, entry)
end

-- Reads what was appended since the last read (all of it when the file was
-- replaced by a compaction). `locked`: no writer is active, so an unfinished
-- last line is a torn write, not one in progress.
function Store:refresh(locked)
  local id, size = self.core.file_identity(self.path)
  if not id then return nil, util.error("ledger", "cannot read the ledger file " .. self.path) end
  if id ~= self.data_id then
    self:close_data()
    local fd, err = self.core.open_fd(self.path)
    if not fd then return nil, util.error("ledger", "cannot read the ledger file " .. tostring(err)) end
    local fd_id, fd_size = fd:identity()
    if not fd_id then
      fd:close()
      return nil, util.error("ledger", "cannot read the ledger file " .. self.path .. ": " .. tostring(fd_size))
    end
    self.data, self.data_id, size = fd, fd_id, fd_size
    self:reset()
  end
  -- Shorter, or grown by others with another first line: rewritten in place, read it all again.
  if size < self.offset or (size > self.offset and self.header
      and self.data:read(0, #self.header + 1) ~= self.header .. "\n") then
    self:reset()
  end
  local data, read_to = "", self.offset
  while read_to < size do
    local chunk, err = self.data:read(read_to, math.min(READ_CHUNK, size - read_to))
    if not chunk then return nil, util.error("ledger", "cannot read the ledger file " .. self.path .. ": " .. err) end
    if chunk == "" then break end
    read_to = read_to + #chunk
    data = data .. chunk
    local pos = 1
    while true do
      local nl = data:find("\n", pos, true)
      if not nl then break end
      self:apply(data:sub(pos, nl - 1), self.offset + pos - 1)
      pos = nl + 1
    end
    self.offset = self.offset + pos - 1
    data = data:sub(pos)
  end
  if locked then self.torn = read_to - self.offset end
  return true
end

function Store:close_data()
  if self.data then self.data:close() end
  self.data, self.data_id = nil, nil
end

-- Appends to the ledger file, which the caller has just refreshed under the lock:
-- the held descriptor is the file the path names.
function Store:append_data(text, sync)
  if self.append_hook then return self.append_hook(self.path, text, sync) end
  return self.data:append(text, sync)
end

function Store:unreadable_error()
  local d = self.unreadable
  return util.error("ledger", ("ledger %s line %d is damaged and names no key (%s); no order can be decided "
    .. "until it is repaired (see `maintenance-report ledger check`)"):format(self.path, d.line, d.reason),
    { line = d.line, path = self.path })
end

--- claim(key, token) → true | false | nil, err. The ttl is not used: the kernel ends a dead holder's lock.
function Store:claim(key, token)
  self:own_descriptors()
  local c = self.claims[key]
  if c then return c.token == token end
  if self.format == 1 then return self:claim_by_file(key, token) end
  local slot = self.core.key_slot(key)
  -- Another key of this store holds that byte: an OFD lock does not exclude its own holder.
  if self.slots[slot] ~= nil then return false end
  if not self.claim_fd then
    local fd, err = self.core.open_fd(self.claim_locks_path, true)
    if not fd then return nil, util.error("ledger", "cannot claim: " .. tostring(err)) end
    self.claim_fd = fd
  end
  local held, err = self.claim_fd:range_lock(slot)
  if held == nil then return nil, util.error("ledger", "cannot claim: " .. tostring(err)) end
  if not held then return false end
  self.claims[key], self.slots[slot] = { token = token, slot = slot }, key
  return true
end

-- A format 1 ledger's claim: a flock on one file per key.
function Store:claim_by_file(key, token)
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

function Store:drop_claim(key, c)
  self.claims[key] = nil
  if c.lock then return c.lock:release() end
  self.slots[c.slot] = nil
  if not self.claim_fd:range_unlock(c.slot) then -- closing drops every byte lock: release them all
    self:close_claims()
  end
end

function Store:close_claims()
  for key, c in pairs(self.claims) do
    self.claims[key] = nil
    if c.lock then c.lock:release() end
  end
  self.slots = {}
  if self.claim_fd then self.claim_fd:close() end
  self.claim_fd = nil
end

function Store:release(key, token)
  self:own_descriptors()
  local c = self.claims[key]
  if c and c.token == token then self:drop_claim(key, c) end
  return true
end

--- read(key) → entry | nil | nil, err (also while a damaged line names no key: it could be any).
function Store:read(key)
  local ok, err = self:refresh(false)
  if not ok then return nil, err end
  if self.unreadable then return nil, self:unreadable_error() end
  return self:entry_of(key)
end

-- Appends one record under the lock; a torn tail is compacted away first, so
-- the record never joins it on one line.
function Store:append_record(key, entry, sync)
  if self.torn > 0 then
    local ok, err
    if self.unreadable then
      ok, err = self:append_data("\n") -- ends the fragment: it stays visible as damage
    else
      ok, err = self:compact_locked()
    end
    if not ok then return nil, err end
    if self.unreadable then self:refresh(true) end
  end
  local line = file.encode_line(key, entry)
  local at = self.offset
  if self.lines == 0 then -- an empty file (a crash right after it was created) gets its header first
    local header = new_header(CURRENT_FORMAT)
    line = header .. "\n" .. line
    self.header, self.format, self.lines = header, CURRENT_FORMAT, 1
    at = at + #header + 1
  end
  local ok, err = self:append_data(line, sync ~= false)
  if not ok then
    self:reset() -- part of it may be in the file: read everything again next time
    return nil, util.store_error(err, "cannot write the ledger")
  end
  self.offset, self.lines, self.records = self.offset + #line, self.lines + 1, self.records + 1
  self:remember(key, at, entry)
  return true
end

function Store:key_count()
  return self.keys
end

--- cas(key, token, expected_version, entry [, opts]) → true | false, current | nil, err. Durable
--- before it returns; opts.sync = false: written (it outlives the process), not fsync'd.
function Store:cas(key, token, expected_version, entry, opts)
  self:own_descriptors()
  local c = self.claims[key]
  if not c or c.token ~= token then return false, (self:entry_of(key)) end
  local ok, err = self:locked(function()
    local refreshed, refresh_err = self:refresh(true)
    if not refreshed then return nil, refresh_err end
    if self:version_of(key) ~= expected_version then return false, (self:entry_of(key)) end
    -- A shallow copy: the line is written at once, and nothing keeps the table.
    local stored = {}
    for k, v in pairs(entry) do stored[k] = v end
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
  local keys = {}
  for key in pairs(self.index) do keys[#keys + 1] = key end
  local out = {}
  for _, key in ipairs(keys) do
    local entry, eerr = self:entry_of(key)
    if eerr then return nil, eerr end
    out[#out + 1] = entry
  end
  return out
end

--- summary() → { entries = n, by_state = { state = n }, orders = entries with an order id } | nil, err,
--- from the index alone: no entry is read (but those of a state it does not know).
function Store:summary()
  local ok, err = self:refresh(false)
  if not ok then return nil, err end
  local out = { entries = 0, by_state = {}, orders = 0 }
  for key in pairs(self.index) do
    local _, m = self:lookup(key)
    local state = STATE_NAMES[math.floor(m / 2) % 8]
    if not state then
      local entry, eerr = self:entry_of(key)
      if eerr then return nil, eerr end
      state = entry and entry.state
    end
    if state then
      out.entries = out.entries + 1
      out.by_state[state] = (out.by_state[state] or 0) + 1
      if m % 2 == 1 then out.orders = out.orders + 1 end
    end
  end
  return out
end

--- delete(key, token) → true | false (token given, not the holder) | nil, err. Appends a tombstone.
function Store:delete(key, token)
  self:own_descriptors()
  if token ~= nil and not (self.claims[key] and self.claims[key].token == token) then return false end
  return self:locked(function()
    local ok, err = self:refresh(true)
    if not ok then return nil, err end
    local version = self:version_of(key)
    if not version then return true end
    return self:append_record(key, { key = key, deleted = true, version = version + 1 })
  end)
end

-- Writes one record per key to a temp file, fsyncs it, renames it over the
-- ledger and fsyncs the directory. Damaged keys are written as unknown. The
-- latest line of every other key is copied as it is, a chunk at a time, so
-- compacting a large ledger never holds it in memory.
function Store:compact_locked()
  if self.unreadable then return nil, self:unreadable_error() end
  local keys = {}
  for key in pairs(self.index) do keys[#keys + 1] = key end
  table.sort(keys)
  local header = new_header(self.format or CURRENT_FORMAT)
  local tmp = self.path .. ".compact." .. util.token():gsub("[^%w]", "")
  local parts, buffered, size = { header .. "\n" }, #header + 1, #header + 1
  local offsets = {}
  local ok, err = self.data ~= nil, "cannot read " .. self.path
  for _, key in ipairs(keys) do
    if not ok then break end
    local where, m = self:lookup(key)
    local line
    if type(where) == "table" then
      line = file.encode_line(key, where)
    else
      local text = self:line_at(where)
      if not text or decode_line(text) ~= key then
        ok, err = nil, "the record of " .. key:gsub("\t", " ") .. " cannot be read back"
        break
      end
      line = text .. "\n"
    end
    offsets[key] = { size, m }
    parts[#parts + 1] = line
    size, buffered = size + #line, buffered + #line
    if buffered >= COMPACT_CHUNK then
      ok, err = self.append(tmp, table.concat(parts), false)
      parts, buffered = {}, 0
    end
  end
  if ok then ok, err = self.append(tmp, table.concat(parts)) end -- fsync'd: every chunk with it
  if ok then
    local renamed, rename_err = os.rename(tmp, self.path)
    ok, err = renamed, rename_err
  end
  if not ok then
    os.remove(tmp)
    return nil, util.store_error(err, "cannot compact the ledger")
  end
  self.fsync_dir(self.dir)
  self:close_data()
  local fd = self.core.open_fd(self.path)
  if not fd then -- compacted all the same: the next refresh opens it and reads it whole
    self:reset()
    return true
  end
  self.data, self.data_id = fd, (fd:identity())
  for key, placed in pairs(offsets) do self:place(key, placed[1], placed[2]) end
  self.header, self.offset, self.lines, self.records, self.torn = header, size, #keys + 1, #keys, 0
  self.format = self.format or CURRENT_FORMAT
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

-- Releases every claim and closes the held descriptors; a later call opens them again.
function Store:close()
  self:own_descriptors()
  self:close_claims()
  self:close_data()
  if self.lock_fd then self.lock_fd:close() end
  self.lock_fd = nil
  return true
end

return file
