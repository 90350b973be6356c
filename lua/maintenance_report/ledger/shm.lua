-- The shm store: one OpenResty machine, every nginx worker, over a
-- lua_shared_dict. Entries are JSON strings under <prefix>e:<key>; a claim is
-- <prefix>c:<key> = token, taken with dict:safe_add (atomic across workers)
-- and ended by compare-and-delete or its ttl (a worker that dies mid-claim).
-- Compare, check and set run under a short safe_add mutex <prefix>m:<key>.
-- A shared dict is memory: it does not survive an nginx restart, and a full
-- dict's plain set() and add() evict old items (an unknown or placed entry
-- among them, which would let a vehicle be bought again), so every write
-- here is safe_set or safe_add, which fail instead; give the ledger its own dict.
local util = require "maintenance_report.ledger.util"

local shm = {}

local Store = {}
Store.__index = Store

--- shm.new(dict, { prefix = "ledger:", sleep = fn (ngx.sleep), mutex_ttl = 1, mutex_wait = 1 }) → store.
function shm.new(dict, opts)
  if dict == nil then error("ledger shm: a lua_shared_dict is required", 2) end
  opts = opts or {}
  local ngx = rawget(_G, "ngx")
  return setmetatable({
    dict = dict, prefix = opts.prefix or "ledger:",
    sleep = opts.sleep or (ngx and ngx.sleep),
    mutex_ttl = opts.mutex_ttl or 1, mutex_wait = opts.mutex_wait or 1,
    now = opts.monotime or (ngx and function() ngx.update_time() return ngx.now() end) or os.clock,
  }, Store)
end

function Store:names(key)
  local p = self.prefix
  return p .. "e:" .. key, p .. "c:" .. key, p .. "m:" .. key
end

-- Runs fn while holding the key's mutex: fn's results, or nil, err.
function Store:mutex(key, fn)
  local _, _, mutex = self:names(key)
  local started, pause = self.now(), 0.001
  while true do
    local ok, err = self.dict:safe_add(mutex, true, self.mutex_ttl)
    if ok then break end
    if err ~= "exists" then return nil, util.error("ledger", "shm mutex: " .. tostring(err)) end
    if self.now() - started >= self.mutex_wait or not self.sleep then
      return nil, util.error("ledger", "the ledger's shm mutex stayed busy")
    end
    self.sleep(pause)
    pause = math.min(pause * 2, 0.02)
  end
  local ok, a, b = pcall(fn)
  self.dict:delete(mutex)
  if not ok then error(a, 0) end
  return a, b
end

local function decode(text, key)
  if text == nil then return nil end
  local entry, message = util.decode(text)
  if not entry then return nil, util.error("ledger", "shm entry for " .. key .. " is not JSON: " .. message) end
  return entry
end

--- claim(key, token, ttl) → true | false | nil, err. Its holder calling again refreshes the ttl.
function Store:claim(key, token, ttl)
  local _, claim = self:names(key)
  local ok, err = self.dict:safe_add(claim, token, ttl or 0)
  if ok then return true end
  if err ~= "exists" then return nil, util.error("ledger", "shm claim: " .. tostring(err)) end
  return self:mutex(key, function()
    if self.dict:get(claim) ~= token then return false end
    local set, set_err = self.dict:safe_set(claim, token, ttl or 0)
    if not set then return nil, util.error("ledger", "shm claim: " .. tostring(set_err)) end
    return true
  end)
end

function Store:release(key, token)
  local _, claim = self:names(key)
  return self:mutex(key, function()
    if self.dict:get(claim) == token then self.dict:delete(claim) end
    return true
  end)
end

function Store:read(key)
  local entry_name = self:names(key)
  return decode(self.dict:get(entry_name), key)
end

--- cas(key, token, expected_version, entry) → true | false, current | nil, err.
function Store:cas(key, token, expected_version, entry)
  local entry_name, claim = self:names(key)
  return self:mutex(key, function()
    local current, err = decode(self.dict:get(entry_name), key)
    if err then return nil, err end
    if self.dict:get(claim) ~= token then return false, current end
    if (current and current.version) ~= expected_version then return false, current end
    local stored = util.copy(entry)
    stored.key, stored.version = key, (expected_version or 0) + 1
    local ok, set_err = self.dict:safe_set(entry_name, util.encode(stored))
    if not ok then return nil, util.error("ledger", "shm write: " .. tostring(set_err)) end
    entry.version = stored.version
    return true
  end)
end

function Store:list()
  local marker = self.prefix .. "e:"
  local out = {}
  for _, name in ipairs(self.dict:get_keys(0)) do
    if name:sub(1, #marker) == marker then
      local entry = decode(self.dict:get(name), name)
      if entry then out[#out + 1] = entry end
    end
  end
  return out
end

function Store:delete(key, token)
  local entry_name, claim = self:names(key)
  return self:mutex(key, function()
    if token ~= nil and self.dict:get(claim) ~= token then return false end
    self.dict:delete(entry_name)
    return true
  end)
end

-- Budgets (maintenance_report.budget): <prefix>b:<bucket> = fen, changed under one mutex.
local BUDGET_MUTEX = "\0budget"

function Store:reserve(buckets, amount)
  local p = self.prefix .. "b:"
  return self:mutex(BUDGET_MUTEX, function()
    local failed
    local ok, full = util.reserve_in(buckets, amount, function(name) return self.dict:get(p .. name) or 0 end,
      function(name, delta)
        local set, err = self.dict:safe_set(p .. name, (self.dict:get(p .. name) or 0) + delta)
        if not set then failed = failed or err end
      end)
    if failed then return nil, util.error("ledger", "shm budget write: " .. tostring(failed)) end
    return ok, full
  end)
end

function Store:unreserve(buckets, amount)
  local p = self.prefix .. "b:"
  return self:mutex(BUDGET_MUTEX, function()
    for _, b in ipairs(buckets) do
      self.dict:safe_set(p .. b.name, math.max(0, (self.dict:get(p .. b.name) or 0) - amount))
    end
    return true
  end)
end

function Store:spent(names)
  local out = {}
  for _, name in ipairs(names) do out[name] = self.dict:get(self.prefix .. "b:" .. name) or 0 end
  return out
end

function Store.close(_)
  return true
end

return shm
