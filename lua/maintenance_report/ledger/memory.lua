-- The memory store: one process, every coroutine and task in it. The library's
-- default. Claims are tokens with an optional ttl on a monotonic clock.
local util = require "maintenance_report.ledger.util"

local memory = {}

local Store = {}
Store.__index = Store

--- memory.new{ monotime = fn } → store. monotime (seconds, never going back)
--- measures claim ttls; default core.monotime.
function memory.new(opts)
  opts = opts or {}
  local monotime = opts.monotime or require("maintenance_report.core").monotime
  return setmetatable({ entries = {}, claims = {}, monotime = monotime }, Store)
end

function Store:live_claim(key)
  local c = self.claims[key]
  if c and c.expires and c.expires <= self.monotime() then
    self.claims[key] = nil
    return nil
  end
  return c
end

function Store:holds(key, token)
  local c = self:live_claim(key)
  return c ~= nil and c.token == token
end

--- claim(key, token, ttl) → true (taken, or refreshed by its holder) | false (held by another token).
function Store:claim(key, token, ttl)
  local c = self:live_claim(key)
  if c and c.token ~= token then return false end
  self.claims[key] = { token = token, expires = ttl and self.monotime() + ttl or nil }
  return true
end

--- release(key, token) → true. Compare-and-delete: another token's claim stays.
function Store:release(key, token)
  if self:holds(key, token) then self.claims[key] = nil end
  return true
end

function Store:read(key)
  return util.copy(self.entries[key])
end

--- cas(key, token, expected_version, entry) → true | false, current. Sets entry.version.
function Store:cas(key, token, expected_version, entry)
  local current = self.entries[key]
  if not self:holds(key, token) then return false, util.copy(current) end
  if (current and current.version) ~= expected_version then return false, util.copy(current) end
  local stored = util.copy(entry)
  stored.key, stored.version = key, (expected_version or 0) + 1
  self.entries[key] = stored
  entry.version = stored.version
  return true
end

function Store:list()
  local out = {}
  for _, entry in pairs(self.entries) do out[#out + 1] = util.copy(entry) end
  return out
end

--- delete(key, token) → true | false (token given and not the holder). nil token: unconditional.
function Store:delete(key, token)
  if token ~= nil and not self:holds(key, token) then return false end
  self.entries[key] = nil
  return true
end

-- Budgets (maintenance_report.budget): fen reserved per bucket name.
function Store:reserve(buckets, amount)
  self.budget = self.budget or {}
  return util.reserve_in(buckets, amount, function(name) return self.budget[name] or 0 end,
    function(name, delta) self.budget[name] = (self.budget[name] or 0) + delta end)
end

function Store:unreserve(buckets, amount)
  self.budget = self.budget or {}
  for _, b in ipairs(buckets) do self.budget[b.name] = math.max(0, (self.budget[b.name] or 0) - amount) end
  return true
end

function Store:spent(names)
  local out = {}
  for _, name in ipairs(names) do out[name] = (self.budget or {})[name] or 0 end
  return out
end

--- A token bucket (maintenance_report.rate_limit): 0 when a token was taken, else seconds to wait.
function Store:take_token(name, rate, burst)
  self.buckets = self.buckets or {}
  local now, b = self.monotime(), self.buckets[name]
  if not b then b = { tokens = burst, at = now } self.buckets[name] = b end
  b.tokens, b.at = math.min(burst, b.tokens + (now - b.at) * rate), now
  if b.tokens >= 1 then
    b.tokens = b.tokens - 1
    return 0
  end
  return (1 - b.tokens) / rate
end

function Store:close()
  self.claims = {}
  return true
end

return memory
