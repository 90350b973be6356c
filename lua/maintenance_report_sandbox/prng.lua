-- Small deterministic PRNG (Park-Miller "minimal standard", multiplier
-- 48271). Every intermediate value stays below 2^53, so Lua 5.4 integers and
-- LuaJIT doubles produce the same sequence. Never touches math.random.
local M = {}
M.__index = M

local MOD = 2147483647

-- Seeds from a string (e.g. a VIN) with a simple polynomial hash.
function M.new(seed_string)
  local h = 0
  for i = 1, #seed_string do
    h = (h * 131 + seed_string:byte(i)) % MOD
  end
  if h == 0 then h = 1 end
  local self = setmetatable({ state = h }, M)
  -- Mix a little: nearby seeds otherwise start with correlated outputs.
  for _ = 1, 4 do self:next() end
  return self
end

function M:next()
  self.state = (self.state * 48271) % MOD
  return self.state
end

-- Integer in [lo, hi].
function M:int(lo, hi)
  return lo + self:next() % (hi - lo + 1)
end

-- True with the given chance in percent.
function M:chance(percent)
  return self:int(1, 100) <= percent
end

function M:pick(list)
  return list[self:int(1, #list)]
end

return M
