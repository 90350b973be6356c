-- A fleet-wide rate limit: one token bucket in the ledger's store (a Redis
-- script on Redis's clock; in-process for the memory store), taken before
-- every gateway call, so that all machines together stay under the usage
-- plan's limit instead of learning it from 429s.
--
--   rate_limit.new(store, { rate = calls per second, burst = (rate), name = "gateway",
--                           max_wait = 30 }) → R
--   R:acquire(sleep) → seconds waited | nil, err (rate_limited: nothing was sent)
--
-- If the store cannot answer, the call goes ahead: the gateway's own limit
-- still holds, and a 429 is safe (nothing is charged); the ledger, which
-- decides about money, fails closed on its own.
local errors = require "maintenance_report.errors"
local options = require "maintenance_report.options"

local rate_limit = {}

local RULES = {
  rate = options.number(0.001, 1e6), burst = options.number(1, 1e6), name = { type = "string" },
  max_wait = options.number(0, 86400),
}

local Limiter = {}
Limiter.__index = Limiter

function rate_limit.new(store, opts)
  local ok, err = options.check("rate_limit", opts, RULES, 2)
  if not ok then return nil, err end
  if not opts.rate then return nil, errors.new("invalid_input", "rate_limit: rate (calls per second) is required") end
  if type(store.take_token) ~= "function" then error("rate_limit: the store has no token bucket", 2) end
  return setmetatable({ store = store, rate = opts.rate, burst = opts.burst or math.max(1, opts.rate),
    name = opts.name or "gateway", max_wait = opts.max_wait or 30 }, Limiter)
end

function Limiter:acquire(sleep)
  local waited = 0
  while true do
    local wait = self.store:take_token(self.name, self.rate, self.burst)
    if wait == nil or wait <= 0 then return waited end
    if waited + wait > self.max_wait then
      return nil, errors.new("rate_limited", ("the fleet's rate limit (%g calls/s) had no room within %g s; "
        .. "nothing was sent"):format(self.rate, self.max_wait), { sent = false, retryable = true })
    end
    sleep(wait)
    waited = waited + wait
  end
end

return rate_limit
