-- The one retry-delay formula, used by the client and the CLI batch:
-- full-jitter exponential backoff (AWS Architecture Blog, "Exponential
-- Backoff And Jitter"). Jitter spreads the retries of many callers that
-- failed together, which a fixed schedule would line up again.
local backoff = {}

--- Delay before retry number `attempt` (1 for the first retry), in seconds:
--- uniform in [0, min(max_delay, base * 2^(attempt-1))). `random` returns [0, 1).
function backoff.delay(attempt, base, max_delay, random)
  local cap = math.min(max_delay, base * 2 ^ (attempt - 1))
  return cap * random()
end

return backoff
