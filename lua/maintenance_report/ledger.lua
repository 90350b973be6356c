-- The order ledger: the one durable record, shared by the library, the CLI,
-- the batch and OpenResty, of which paid orders were placed for which
-- vehicle. Its single decision, begin(), is how every entry point learns
-- whether it may place an order, must poll an existing one, may reuse a
-- report, or must stop because an earlier outcome is unknown.
--
-- API (docs/ledger.md has the details and the file format):
--   ledger.key{ vin =, engine_number =, plate_number = } → "VIN\tENGINE\tPLATE"
--   ledger.new{ store =, now =, monotime =, sleep =, claim_ttl =, budget =, track_takeovers = } → L
--   ledger.memory(opts) → L;  ledger.file(path, opts) → L | nil, err;  ledger.shm(dict, opts) → L
--   ledger.redis(url, opts) → L | nil, err   (docs/fleet.md)
--   L:begin(fields, { reuse =, retry_unknown =, fresh =, wait =, sleep =, owner =, tenant = }) → one of
--     { action = "order",   claim = C }                        hold the key; C:intent() before sending
--     { action = "poll",    claim = C, order_id =, entry =,    placed, not final: poll, no new charge
--       taken_over = }                                           (true: its last holder died polling)
--     { action = "reuse",   entry =, joined = }                a final report younger than `reuse`,
--                                                                  or (joined) one another holder wrote
--                                                                  while this call waited for its claim
--     { action = "unknown", entry = }                          an earlier order may have been charged
--     nil, err   err.kind "ledger" (store failed or damaged) | "ledger_busy" (held past `wait`)
--                | "store_unavailable" (a Redis store cannot be reached)
--   C:intent() C:arm() C:placed(order_id, request_id) C:unknown(err) C:not_placed(err) C:final(status, report)
--     intent: durable, once a transport slot is free (a budget's reservation first); arm: right
--     before the first request byte
--     → true | nil, err (kind "ledger", "store_unavailable" or, from intent, "budget_exceeded";
--       err.order_id set when an order id could not be recorded)
--   C:polling() → true | nil, err (a poll decision's holder, before it polls)
--   C:refresh() → true | nil, err;  C:release() → true (always call it, also after errors)
--   L:get(fields_or_key) → entry | nil | nil, err;  L:list() → entries (by updated_at) | nil, err
--   L:forget(key) → true | nil, err;  L:stats() → { entries, by_state, orders, reused } | nil, err
--   L:budget_remaining(tenant) → budget.remaining's list | nil (no budget) | nil, err
--   L:check() → report | nil, err;  L:compact() → true | nil, err;  L:close()
--
-- Entry states: intent (about to send the paid request), placed (order id
-- known), ready / no_records (final, report stored), unknown (may have been
-- charged, no id), not_placed (provably not bought; reason says why).
-- Safety rests on the intent record, not on claims: an armed intent whose
-- writer is gone is unknown, never a free key, so an expired or dropped claim
-- can at worst make a key unknown; it can never let a second order through.
-- An intent is armed right before its request's first byte is written, so an
-- unarmed one (on the same boot) is a request that never left.
local options = require "maintenance_report.options"
local budget_mod = require "maintenance_report.budget"
local util = require "maintenance_report.ledger.util"

local ledger = {}

ledger.STATES = {
  intent = "about to send the paid order request",
  placed = "order id known, report not final",
  ready = "final report stored",
  no_records = "final: the vendor has no records for the vehicle",
  unknown = "the order may have been charged; no order id",
  not_placed = "provably not bought",
}

local FINAL = { ready = true, no_records = true }
local NOT_SYNCED = { sync = false }
local DEFAULT_CLAIM_TTL = 600

---------------------------------------------------------------------------
-- Keys
---------------------------------------------------------------------------

-- Tab separates the parts; none may hold it, a quote, a backslash or any control character.
local function key_part(fields, name, required)
  local value = fields[name]
  if value == nil or value == "" then
    if required then error("ledger.key: " .. name .. " is required", 3) end
    return ""
  end
  if type(value) ~= "string" then error("ledger.key: " .. name .. " must be a string", 3) end
  if value:find('[%z\1-\31\127"\\ ]') then
    error("ledger.key: " .. name .. " must be normalized (no spaces, quotes or control characters)", 3)
  end
  return value
end

--- The key of a normalized (vin, engine_number, plate_number); missing parts are "".
function ledger.key(fields)
  if type(fields) ~= "table" then error("ledger.key: a table is required", 2) end
  return key_part(fields, "vin", true) .. "\t" .. key_part(fields, "engine_number")
    .. "\t" .. key_part(fields, "plate_number")
end

--- vin, engine_number, plate_number of a key.
function ledger.split_key(key)
  return key:match("^([^\t]*)\t([^\t]*)\t([^\t]*)$")
end

---------------------------------------------------------------------------
-- Claims
---------------------------------------------------------------------------

local Claim = {}
Claim.__index = Claim

-- What an error says, without anything else it may carry.
local function reason_of(err)
  if type(err) ~= "table" then return { kind = "error", message = tostring(err) } end
  return { kind = err.kind and tostring(err.kind) or "error", message = tostring(err.message),
    request_id = err.request_id, http_status = err.http_status }
end

function Claim:check_state(method, allowed)
  if self.released then error("claim:" .. method .. ": the claim was released", 3) end
  local state = self.entry and self.entry.state
  if not allowed[state or "none"] then
    error(("claim:%s: not allowed from state %s"):format(method, tostring(state)), 3)
  end
end

-- Writes the next entry: refreshes the claim (a shm ttl), then compare-and-swaps.
-- sync = false: written so that it outlives the process, not fsync'd.
function Claim:write(changes, order_id, sync)
  local L = self.ledger
  local now = L.now()
  local previous = self.entry or {}
  local entry = {
    key = self.key, vin = self.vin, engine_number = self.engine_number, plate_number = self.plate_number,
    state = changes.state, order_id = previous.order_id, request_id = previous.request_id,
    created_at = previous.created_at or now, updated_at = now, placed_at = previous.placed_at,
    owner = self.owner, reserved = previous.reserved, tenant = previous.tenant,
  }
  for k, v in pairs(changes) do
    if v == false then entry[k] = nil else entry[k] = v end -- false clears a field
  end
  -- An unreachable shared store keeps its kind (store_unavailable): the caller fails closed the same way.
  local function fail(message, cause)
    local kind = type(cause) == "table" and cause.kind == "store_unavailable" and cause.kind or "ledger"
    return nil, util.error(kind, message, { order_id = order_id or entry.order_id, key = self.key })
  end
  local held, err = L.store:claim(self.key, self.token, L.claim_ttl)
  if held == nil then return fail("cannot refresh the claim: " .. tostring(err), err) end
  if not held then return fail("the claim was lost to another holder; the entry was not written") end
  local ok, current = L.store:cas(self.key, self.token, previous.version, entry,
    sync == false and NOT_SYNCED or nil)
  if ok == nil then return fail("cannot write the ledger: " .. tostring(current), current) end
  if not ok then return fail("the ledger entry changed under this claim; it was not written") end
  self.entry = entry
  return true
end

--- Right before the paid request is written. Only for an "order" decision, once.
--- With a budget, the order's price is reserved first (nil, budget_exceeded: nothing
--- written, nothing to send); the intent names its reservation, so that whoever
--- finds the order not placed gives it back. A failed intent write keeps it: the
--- intent may be in the store, and a budget errs on the side of spending less.
function Claim:intent()
  if self.action ~= "order" then error("claim:intent: only an \"order\" decision may place an order", 2) end
  if self.intent_written then error("claim:intent: already called", 2) end
  if self.released then error("claim:intent: the claim was released", 2) end
  local L = self.ledger
  local reservation, rerr
  if L.budget then
    reservation, rerr = L.budget:reserve(self.tenant, L.now())
    if not reservation then return nil, rerr end
  end
  local ok, err = self:write{ state = "intent", created_at = L.now(), order_id = false,
    request_id = false, placed_at = false, report = false, reason = false, armed = false,
    boot_id = util.boot_id() or false, reserved = reservation or false, tenant = self.tenant or false }
  if ok then self.intent_written = true end
  return ok, err
end

-- Gives back the reservation of an intent that was provably not placed.
local function release_reservation(L, entry)
  local reserved = entry and entry.reserved
  if reserved and L.store.unreserve then budget_mod.release_in(L.store, reserved) end
end

--- After intent(), at the last moment before the request's first byte is
--- written (once the connection stands): marks the intent "armed". An intent
--- found unarmed, on the same boot of the machine, proves that its process
--- died before sending, so it is not placed; armed, it is unknown. Written
--- without fsync (page-cache data outlives the process; after a reboot the
--- boot id differs and an unarmed intent counts as unknown), so the moment
--- between it and the send is a write() call, not an fsync.
function Claim:arm()
  if not self.intent_written then error("claim:arm: intent() first", 2) end
  if self.armed then return true end
  self:check_state("arm", { intent = true })
  local ok, err = self:write({ state = "intent", armed = true }, nil, false)
  if ok then self.armed = true end
  return ok, err
end

local FROM_INTENT = { intent = true }
local FROM_INTENT_OR_PLACED = { intent = true, placed = true }

--- The order id (and request id) the vendor returned.
function Claim:placed(order_id, request_id)
  if type(order_id) ~= "string" or order_id == "" then error("claim:placed: order_id must be a string", 2) end
  self:check_state("placed", FROM_INTENT_OR_PLACED)
  return self:write({ state = "placed", order_id = order_id, request_id = request_id or false,
    placed_at = self.entry.placed_at or self.ledger.now() }, order_id)
end

--- The order may have been charged and no id is known (a placed entry keeps its id).
function Claim:unknown(err)
  self:check_state("unknown", FROM_INTENT_OR_PLACED)
  return self:write{ state = "unknown", reason = reason_of(err) }
end

--- The order was provably not bought (nothing sent, or the vendor refused it).
function Claim:not_placed(err)
  self:check_state("not_placed", FROM_INTENT)
  local intent = self.entry
  local ok, werr = self:write{ state = "not_placed", reason = reason_of(err), reserved = false }
  if ok then release_reservation(self.ledger, intent) end
  return ok, werr
end

--- The final report: status "ready" or "no_records", report a JSON-encodable table.
function Claim:final(status, report)
  if not FINAL[status] then error("claim:final: status must be \"ready\" or \"no_records\"", 2) end
  if report ~= nil and type(report) ~= "table" then error("claim:final: report must be a table", 2) end
  self:check_state("final", FROM_INTENT_OR_PLACED)
  -- Not copied here: every store copies or serializes what cas writes. Not fsync'd
  -- either: a final record lost with the machine leaves the order placed, and the
  -- next holder polls it again, which is free.
  return self:write({ state = status, report = report or false, reason = false }, nil, false)
end

--- Before the holder of a "poll" decision starts polling: marks a released entry held
--- again, so that should this holder die too, the next one takes it over (only with
--- track_takeovers; a holder that only reads the order id writes nothing).
function Claim:polling()
  local entry = self.entry
  if not (self.ledger.track_takeovers and entry and entry.state == "placed" and entry.released) then
    return true
  end
  return self:write({ state = "placed", released = false }, nil, false)
end

--- Extends the claim's ttl (shm); call it during long polls.
function Claim:refresh()
  if self.released then return nil, util.error("ledger", "the claim was released", { key = self.key }) end
  local held, err = self.ledger.store:claim(self.key, self.token, self.ledger.claim_ttl)
  if held then return true end
  return nil, util.error("ledger", held == false and "the claim was lost to another holder"
    or "cannot refresh the claim: " .. tostring(err), { key = self.key })
end

--- Ends the claim; the entry stays as last written. Idempotent. A placed entry
--- (still polling) is marked released first, so the next holder knows that it
--- resumes the order rather than takes it over from a dead holder.
function Claim:release()
  if not self.released then
    if self.ledger.track_takeovers and self.entry and self.entry.state == "placed" and not self.entry.released then
      pcall(self.write, self, { state = "placed", released = true }, nil, false)
    end
    self.released = true
    self.ledger.store:release(self.key, self.token)
  end
  return true
end

---------------------------------------------------------------------------
-- The ledger
---------------------------------------------------------------------------

local Ledger = {}
Ledger.__index = Ledger

local NEW_RULES = {
  store = { type = "table" }, now = { type = "function" }, monotime = { type = "function" },
  sleep = { type = "function" }, claim_ttl = options.number(0.001, 1e9), budget = { type = "table" },
  -- two more writes per resumed order, so that a poll decision can say taken_over
  -- (shm and Redis ledgers: where /metrics counts takeovers)
  track_takeovers = { type = "boolean" },
}

--- ledger.new{ store = (required), now = epoch-seconds fn (os.time), monotime = fn (core.monotime),
--- sleep = fn(seconds) used while waiting (core.sleep), claim_ttl = seconds (600) }.
function ledger.new(opts)
  local ok, err = options.check("ledger.new", opts, NEW_RULES, 2)
  if not ok then error(tostring(err), 2) end
  if not opts.store then error("ledger.new: store is required", 2) end
  local budget
  if opts.budget then
    budget, err = budget_mod.new(opts.store, opts.budget)
    if not budget then error("ledger.new: " .. tostring(err), 2) end
  end
  local core
  local function lazy_core()
    core = core or require "maintenance_report.core"
    return core
  end
  return setmetatable({
    store = opts.store,
    now = opts.now or os.time,
    monotime = opts.monotime or function() return lazy_core().monotime() end,
    sleep = opts.sleep or function(s) return lazy_core().sleep(s) end,
    claim_ttl = opts.claim_ttl or DEFAULT_CLAIM_TTL,
    budget = budget,
    track_takeovers = opts.track_takeovers or false,
    reused = 0,
  }, Ledger)
end

-- Options for the ledger itself, split from a store's own.
local function split(opts)
  local own, store = {}, {}
  for k, v in pairs(opts or {}) do
    if NEW_RULES[k] and k ~= "store" then own[k] = v else store[k] = v end
  end
  if own.monotime then store.monotime = own.monotime end
  return own, store
end

--- A ledger over a memory store (one process). opts: those of ledger.new.
function ledger.memory(opts)
  local own, store_opts = split(opts)
  own.store = require("maintenance_report.ledger.memory").new(store_opts)
  return ledger.new(own)
end

--- A ledger over the append-only file at path; opts: ledger.new's plus the file store's.
function ledger.file(path, opts)
  local own, store_opts = split(opts)
  local store, err = require("maintenance_report.ledger.file").open(path, store_opts)
  if not store then return nil, err end
  own.store = store
  return ledger.new(own)
end

--- A ledger over an OpenResty lua_shared_dict; opts: ledger.new's plus the shm store's.
function ledger.shm(dict, opts)
  local own, store_opts = split(opts)
  own.store = require("maintenance_report.ledger.shm").new(dict, store_opts)
  if own.track_takeovers == nil then own.track_takeovers = true end
  own.now = own.now or (rawget(_G, "ngx") and function() return rawget(_G, "ngx").time() end) or nil
  own.sleep = own.sleep or (rawget(_G, "ngx") and rawget(_G, "ngx").sleep) or nil
  return ledger.new(own)
end

--- A ledger over Redis, shared by a fleet: url is redis://[[user]:password@]host[:port][/db].
--- opts: ledger.new's plus the Redis store's (prefix, wait_replicas, wait_timeout, timeout, pool_size).
--- Claims expire after claim_ttl (default 60 s here: a dead node's vehicle is taken over
--- that soon); a holder refreshes its claim before every poll.
function ledger.redis(url, opts)
  local own, store_opts = split(opts)
  local store, err = require("maintenance_report.ledger.redis").new(url, store_opts)
  if not store then return nil, err end
  own.store = store
  own.claim_ttl = own.claim_ttl or 60
  if own.track_takeovers == nil then own.track_takeovers = true end
  local ngx = rawget(_G, "ngx")
  own.now = own.now or (ngx and function() return ngx.time() end) or nil
  own.sleep = own.sleep or (ngx and ngx.sleep) or nil
  return ledger.new(own)
end

local BEGIN_RULES = {
  reuse = options.number(0, 1e12), retry_unknown = { type = "boolean" }, fresh = { type = "boolean" },
  wait = options.number(0, 1e9), sleep = { type = "function" }, owner = { type = "string" },
  tenant = { type = "string" },
}

local function key_of(fields_or_key)
  if type(fields_or_key) == "string" then return fields_or_key end
  return ledger.key(fields_or_key)
end

-- Takes the key's claim, waiting up to opts.wait for another holder.
-- Returns true, and whether it had to wait for one.
function Ledger:take(key, token, opts)
  local wait, sleep = opts.wait or 0, opts.sleep or self.sleep
  local started = self.monotime()
  local pause = 0.005
  local waited_once = false
  while true do
    local held, err = self.store:claim(key, token, self.claim_ttl)
    if held == nil then return nil, util.store_error(err, "cannot claim the ledger key") end
    if held then return true, waited_once end
    local waited = self.monotime() - started
    if waited >= wait then
      return nil, util.error("ledger_busy", ("another holder keeps the ledger key for %s (waited %.3g s)")
        :format((key:gsub("\t", " "):gsub(" +$", "")), waited), { key = key })
    end
    waited_once = true
    sleep(math.min(pause, wait - waited))
    pause = math.min(pause * 2, 0.25)
  end
end

--- The one decision every entry point makes before a paid order (see the top of this file).
function Ledger:begin(fields, opts)
  opts = opts or {}
  local ok, err = options.check("ledger:begin", opts, BEGIN_RULES, 2)
  if not ok then return nil, err end
  local key = ledger.key(fields)
  local token = util.token()
  local began = self.now()
  local waited
  ok, waited = self:take(key, token, opts)
  if not ok then return nil, waited end
  local vin, engine_number, plate_number = ledger.split_key(key)
  local claim = setmetatable({ ledger = self, key = key, token = token, vin = vin,
    engine_number = engine_number, plate_number = plate_number, owner = opts.owner, tenant = opts.tenant },
    Claim)
  local entry, read_err = self.store:read(key)
  if read_err then
    claim:release()
    return nil, util.store_error(read_err, "cannot read the ledger")
  end
  claim.entry = entry
  -- Having waited for another holder, a final report it wrote meanwhile answers
  -- this call too: concurrent calls for one vehicle share one order.
  local joined = waited and entry and FINAL[entry.state] and (entry.updated_at or 0) >= math.floor(began)
  local decision, decide_err = self:decide(claim, entry, opts, joined)
  if not decision or decision.action == "reuse" or decision.action == "unknown" then claim:release() end
  return decision, decide_err
end

function Ledger:decide(claim, entry, opts, joined)
  local state = entry and entry.state
  if state == nil or state == "not_placed" then
    claim.action = "order"
    return { action = "order", claim = claim }
  end
  if FINAL[state] then
    local reuse = opts.reuse or 0
    if joined or (not opts.fresh and reuse > 0 and self.now() - (entry.updated_at or 0) < reuse) then
      self.reused = self.reused + 1
      return { action = "reuse", entry = entry, joined = joined and true or false }
    end
    claim.action = "order"
    return { action = "order", claim = claim }
  end
  if state == "placed" then
    claim.action = "poll"
    if not self.track_takeovers then
      return { action = "poll", order_id = entry.order_id, entry = entry, claim = claim }
    end
    -- Every holder that stops polling marks the entry released; one that is not
    -- was left by a holder that died or lost its claim: this one takes it over.
    return { action = "poll", order_id = entry.order_id, entry = entry, claim = claim,
      taken_over = not entry.released }
  end
  if state == "intent" then
    -- This claim is held, so the intent's writer is gone. Unarmed on this very
    -- boot, it provably stopped before writing the request: not placed.
    -- Armed, or from another boot (an unsynced arm may be lost): unknown.
    local boot = util.boot_id()
    if not entry.armed and boot ~= nil and entry.boot_id == boot then
      local ok, err = claim:write{ state = "not_placed", armed = false, reserved = false, reason = {
        kind = "ledger", message = "the process placing this order stopped before it wrote the request" } }
      if not ok then return nil, err end
      release_reservation(self, entry)
      claim.action = "order"
      return { action = "order", claim = claim }
    end
    local ok, err = claim:write{ state = "unknown", reason = { kind = "ledger",
      message = "the process placing this order stopped before it recorded the outcome" } }
    if not ok then return nil, err end
    entry, state = claim.entry, "unknown"
  end
  if state == "unknown" then
    if opts.retry_unknown then
      claim.action = "order"
      return { action = "order", claim = claim }
    end
    return { action = "unknown", entry = util.copy(entry) }
  end
  return nil, util.error("ledger", "the ledger entry has an unrecognized state " .. tostring(state),
    { key = claim.key })
end

--- The entry of fields (a table) or of a key (a string): entry | nil (absent) | nil, err.
function Ledger:get(fields_or_key)
  local entry, err = self.store:read(key_of(fields_or_key))
  if err then return nil, util.store_error(err, "cannot read the ledger") end
  return entry
end

--- Every entry, oldest update first (ties by key).
function Ledger:list()
  local entries, err = self.store:list()
  if not entries then return nil, util.store_error(err, "cannot list the ledger") end
  table.sort(entries, function(a, b)
    if (a.updated_at or 0) ~= (b.updated_at or 0) then return (a.updated_at or 0) < (b.updated_at or 0) end
    return a.key < b.key
  end)
  return entries
end

--- Removes a key's entry; refuses (ledger_busy) while another holder has its claim.
function Ledger:forget(fields_or_key)
  local key = key_of(fields_or_key)
  local token = util.token()
  local ok, err = self:take(key, token, {})
  if not ok then return nil, err end
  local deleted, delete_err = self.store:delete(key, token)
  self.store:release(key, token)
  if not deleted then return nil, util.store_error(delete_err or "the claim was lost", "cannot forget") end
  return true
end

--- { entries = n, by_state = { state = n }, orders = entries with an order id, reused = reuses by this ledger }.
function Ledger:stats()
  local stats = { by_state = {}, reused = self.reused }
  for state in pairs(ledger.STATES) do stats.by_state[state] = 0 end
  if self.store.summary then -- the counts without reading every entry (the file store)
    local summary, err = self.store:summary()
    if not summary then return nil, util.store_error(err, "cannot list the ledger") end
    stats.entries, stats.orders = summary.entries, summary.orders
    for state, n in pairs(summary.by_state) do stats.by_state[state] = n end
    return stats
  end
  local entries, err = self.store:list()
  if not entries then return nil, util.store_error(err, "cannot list the ledger") end
  stats.entries, stats.orders = #entries, 0
  for _, entry in ipairs(entries) do
    stats.by_state[entry.state] = (stats.by_state[entry.state] or 0) + 1
    if type(entry.order_id) == "string" then stats.orders = stats.orders + 1 end
  end
  return stats
end

--- What the budget has left for tenant (optional) now: budget.remaining's list, or nil
--- when this ledger has no budget.
function Ledger:budget_remaining(tenant)
  if not self.budget then return nil end
  return self.budget:remaining(tenant, self.now())
end

--- The store's damage report ({ ok = true, damaged = {} } for stores that cannot be damaged).
function Ledger:check()
  if self.store.check then return self.store:check() end
  return { ok = true, damaged = {} }
end

--- Rewrites the store with one record per key (file store; a no-op elsewhere).
function Ledger:compact()
  if self.store.compact then return self.store:compact() end
  return true
end

function Ledger:close()
  return self.store:close()
end

return ledger
