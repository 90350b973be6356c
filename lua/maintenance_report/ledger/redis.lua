-- The Redis store: one ledger for a fleet of machines. Same contract as the
-- memory, file and shm stores (spec/helpers/ledger_store_contract.lua).
--
-- Keys, all of a vehicle's in one Redis Cluster slot through the {hash tag}:
--   <prefix>{<key>}:c  the claim: a token, taken with SET NX PX, so it ends by
--                      itself when its holder dies (claim_ttl)
--   <prefix>{<key>}:n  the key's fencing counter, one more per claim taken
--   <prefix>{<key>}:e  the entry: a hash of j (entry JSON), v (version) and f
--                      (fence of its last writer)
--   <prefix>{budget}:<bucket>   ¥ reserved in a day or month, in fen
--   <prefix>{rate}:<name>       a token bucket (see rate_limit)
-- Every change runs in a script that first checks the caller's claim token,
-- so a node changes only what it holds, and that refuses a write from a
-- lower fence than the entry's last writer.
--
-- Any Redis failure is kind "store_unavailable", so that no order leaves
-- without a claim; what was written before the failure stays written.
-- Durability is Redis's: docs/fleet.md gives the settings (appendonly,
-- appendfsync always, noeviction) and what a failover can lose;
-- wait_replicas makes every write wait for that many replicas (WAIT).
local redis_client = require "maintenance_report.ledger.redis_client"
local util = require "maintenance_report.ledger.util"

local redis = {}
local unpack = table.unpack or unpack -- luacheck: ignore 143

local CLAIM = [[
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return redis.call('INCR', KEYS[2])
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return -1
end
return 0
]]

local RELEASE = [[
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
]]

-- KEYS: entry, claim. ARGV: token, expected version ('' for none), fence, json, new version.
local CAS = [[
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
local v = redis.call('HGET', KEYS[1], 'v') or ''
if v ~= ARGV[2] then return -1 end
local f = tonumber(redis.call('HGET', KEYS[1], 'f') or '0')
if f > tonumber(ARGV[3]) then return -2 end
redis.call('HSET', KEYS[1], 'j', ARGV[4], 'v', ARGV[5], 'f', ARGV[3])
return 1
]]

-- KEYS: entry, claim. ARGV: token ('' deletes whatever holds the claim).
local DELETE = [[
if ARGV[1] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
]]

-- KEYS: buckets. ARGV: amount, then per bucket its cap and its ttl in seconds.
-- All or nothing: {1} reserved, or {0, index of the full bucket, spent there}.
local RESERVE = [[
local amount = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  local spent = tonumber(redis.call('GET', key) or '0')
  if spent + amount > tonumber(ARGV[2 * i]) then return { 0, i, spent } end
end
for i, key in ipairs(KEYS) do
  redis.call('INCRBY', key, amount)
  redis.call('EXPIRE', key, ARGV[2 * i + 1])
end
return { 1 }
]]

local UNRESERVE = [[
for _, key in ipairs(KEYS) do
  if tonumber(redis.call('DECRBY', key, ARGV[1])) < 0 then redis.call('SET', key, 0, 'KEEPTTL') end
end
return 1
]]

-- A token bucket on Redis's clock. KEYS: bucket. ARGV: rate per second, burst.
-- 0 when a token was taken, else the milliseconds until one is due.
local TAKE_TOKEN = [[
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(state[1]) or burst, tonumber(state[2]) or now
tokens = math.min(burst, tokens + (now - at) * rate / 1000)
local ttl = math.ceil(burst / rate * 1000) + 1000
if tokens >= 1 then
  redis.call('HSET', KEYS[1], 'tokens', tokens - 1, 'at', now)
  redis.call('PEXPIRE', KEYS[1], ttl)
  return 0
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now)
redis.call('PEXPIRE', KEYS[1], ttl)
return math.ceil((1 - tokens) * 1000 / rate)
]]

local SCRIPTS = { claim = CLAIM, release = RELEASE, cas = CAS, delete = DELETE,
  reserve = RESERVE, unreserve = UNRESERVE, take_token = TAKE_TOKEN }

-- Script name → sha1, learnt from SCRIPT LOAD; shared by every store of this Lua state.
local shas = {}

local Store = {}
Store.__index = Store

local function unavailable(self, message)
  return util.error("store_unavailable", ("Redis %s: %s"):format(self.where, tostring(message)),
    { store = self.where })
end

--- redis.new(url_or_config, { prefix = "mr:ledger:", wait_replicas = 0, wait_timeout = 1,
--- timeout = (the URL's, 1 s), pool_size = 32 }) → store | nil, err.
function redis.new(url, opts)
  opts = opts or {}
  local config, message
  if type(url) == "table" then config = url else config, message = redis_client.parse_url(url) end
  if not config then return nil, util.error("invalid_input", "ledger: " .. message) end
  if opts.timeout then config.timeout = opts.timeout end
  config.pool_size = opts.pool_size
  return setmetatable({
    config = config, where = redis_client.describe(config),
    prefix = opts.prefix or "mr:ledger:",
    wait_replicas = opts.wait_replicas or 0, wait_timeout = opts.wait_timeout or 1,
    fences = {}, -- "key\0token" → the fence this store got with that claim
  }, Store)
end

-- Runs fn(conn) on a connection for one operation; nil, store_unavailable on failure.
function Store:with(fn)
  local conn, message = redis_client.open(self.config, self)
  if not conn then return nil, unavailable(self, message) end
  local ok, a, b = pcall(fn, conn)
  conn:done()
  if not ok then error(a, 0) end
  return a, b
end

-- Runs a script: EVALSHA, loading it first (and again after a Redis restart).
local function script(self, conn, name, keys, ...)
  local argv = { "EVALSHA", false, #keys }
  for _, key in ipairs(keys) do argv[#argv + 1] = key end
  for i = 1, select("#", ...) do argv[#argv + 1] = (select(i, ...)) end
  if shas[name] then
    argv[2] = shas[name]
    local reply, message, kind = conn:call(unpack(argv))
    if reply ~= nil then return reply end
    if kind ~= "reply" or not tostring(message):find("^NOSCRIPT") then return nil, unavailable(self, message) end
  end
  local sha, message = conn:call("SCRIPT", "LOAD", SCRIPTS[name])
  if not sha then return nil, unavailable(self, message) end
  shas[name], argv[2] = sha, sha
  local reply
  reply, message = conn:call(unpack(argv))
  if reply == nil then return nil, unavailable(self, message) end
  return reply
end

-- Waits for wait_replicas replicas to have every write so far (a failover then keeps them).
local function replicate(self, conn)
  if self.wait_replicas <= 0 then return true end
  local acked, message = conn:call("WAIT", self.wait_replicas, math.floor(self.wait_timeout * 1000))
  if acked == nil then return nil, unavailable(self, message) end
  if acked < self.wait_replicas then
    return nil, unavailable(self, ("only %d of %d replicas acknowledged the write"):format(acked, self.wait_replicas))
  end
  return true
end

function Store:names(key)
  local base = self.prefix .. "{" .. key .. "}"
  return base .. ":e", base .. ":c", base .. ":n"
end

--- claim(key, token, ttl) → true | false | nil, err. Its holder calling again refreshes the ttl.
function Store:claim(key, token, ttl)
  local _, claim, fence = self:names(key)
  local ms = math.max(1, math.ceil((ttl or 600) * 1000))
  return self:with(function(conn)
    local reply, err = script(self, conn, "claim", { claim, fence }, token, ms)
    if reply == nil then return nil, err end
    if reply == 0 then return false end
    if reply > 0 then self.fences[key .. "\0" .. token] = reply end
    return true
  end)
end

function Store:release(key, token)
  local _, claim = self:names(key)
  self.fences[key .. "\0" .. token] = nil
  return self:with(function(conn)
    local reply, err = script(self, conn, "release", { claim }, token)
    if reply == nil then return nil, err end
    return true
  end)
end

local function decode(key, text)
  if not text then return nil end
  local entry, message = util.decode(text)
  if not entry then
    return nil, util.error("ledger", ("Redis entry for %s is not JSON: %s"):format(key:gsub("\t", " "), message))
  end
  return entry
end

function Store:read(key)
  local entry_name = self:names(key)
  return self:with(function(conn)
    local text, message = conn:call("HGET", entry_name, "j")
    if text == nil then return nil, unavailable(self, message) end
    return decode(key, text)
  end)
end

--- cas(key, token, expected_version, entry) → true | false, current | nil, err.
function Store:cas(key, token, expected_version, entry)
  local entry_name, claim = self:names(key)
  local fence = self.fences[key .. "\0" .. token] or 0
  local stored = util.copy(entry)
  stored.key, stored.version = key, (expected_version or 0) + 1
  return self:with(function(conn)
    -- "%d": a version read back from JSON is a float in Lua 5.3+, and "4.0" must still equal "4"
    local reply, err = script(self, conn, "cas", { entry_name, claim }, token,
      expected_version and ("%d"):format(expected_version) or "", ("%d"):format(fence), util.encode(stored),
      ("%d"):format(stored.version))
    if reply == nil then return nil, err end
    if reply ~= 1 then
      local text = conn:call("HGET", entry_name, "j")
      return false, text and decode(key, text) or nil
    end
    local replicated, rerr = replicate(self, conn)
    if not replicated then return nil, rerr end
    entry.version = stored.version
    return true
  end)
end

-- Every entry key, by SCAN (never KEYS, which blocks a busy server).
function Store:list()
  local pattern = self.prefix:gsub("[%*%?%[%]\\]", "\\%0") .. "{*}:e"
  return self:with(function(conn)
    local out, cursor = {}, "0"
    repeat
      local reply, message = conn:call("SCAN", cursor, "MATCH", pattern, "COUNT", 500)
      if not reply then return nil, unavailable(self, message) end
      cursor = reply[1]
      for _, name in ipairs(reply[2]) do
        local text, herr = conn:call("HGET", name, "j")
        if text == nil then return nil, unavailable(self, herr) end
        local entry = text and util.decode(text)
        if entry then out[#out + 1] = entry end
      end
    until cursor == "0"
    return out
  end)
end

function Store:delete(key, token)
  local entry_name, claim = self:names(key)
  return self:with(function(conn)
    local reply, err = script(self, conn, "delete", { entry_name, claim }, token or "")
    if reply == nil then return nil, err end
    return reply == 1
  end)
end

---------------------------------------------------------------------------
-- Budgets and the fleet rate limit (used by maintenance_report.budget and
-- maintenance_report.rate_limit; the other stores have their own).
---------------------------------------------------------------------------

local function budget_key(self, bucket) return self.prefix .. "{budget}:" .. bucket end

--- reserve({ { name =, cap =, ttl = } ... }, amount) → true | false, { index =, spent = } | nil, err.
--- Atomic: one script.
function Store:reserve(buckets, amount)
  local keys, args = {}, {}
  for i, b in ipairs(buckets) do
    keys[i] = budget_key(self, b.name)
    args[2 * i - 1], args[2 * i] = b.cap, b.ttl
  end
  return self:with(function(conn)
    local reply, err = script(self, conn, "reserve", keys, amount, unpack(args, 1, 2 * #buckets))
    if reply == nil then return nil, err end
    if reply[1] == 1 then return true end
    return false, { index = reply[2], spent = reply[3] }
  end)
end

function Store:unreserve(buckets, amount)
  local keys = {}
  for i, b in ipairs(buckets) do keys[i] = budget_key(self, b.name) end
  return self:with(function(conn)
    local reply, err = script(self, conn, "unreserve", keys, amount)
    if reply == nil then return nil, err end
    return true
  end)
end

--- spent({ names }) → { name = fen } | nil, err.
function Store:spent(names)
  return self:with(function(conn)
    local out = {}
    for _, name in ipairs(names) do
      local value, message = conn:call("GET", budget_key(self, name))
      if value == nil then return nil, unavailable(self, message) end
      out[name] = tonumber(value) or 0
    end
    return out
  end)
end

--- take_token(name, rate, burst) → 0 (taken) | seconds until one is due | nil, err.
function Store:take_token(name, rate, burst)
  return self:with(function(conn)
    local reply, err = script(self, conn, "take_token", { self.prefix .. "{rate}:" .. name }, rate, burst)
    if reply == nil then return nil, err end
    return reply / 1000
  end)
end

function Store:close()
  if self.blocking then self.blocking:close() end
  self.blocking = nil
  return true
end

return redis
