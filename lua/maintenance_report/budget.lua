-- Spend budgets: ¥ caps per day and per month, and per tenant, reserved in the
-- ledger's store before a paid order leaves and given back only when the order
-- provably was not placed. An order of unknown outcome keeps its reservation:
-- it may have been charged.
--
--   budget.new(store, { price = 17, day =, month =, tenant_day =, tenant_month =,
--                       utc_offset_hours = 8 }) → B        (amounts in yuan)
--   B:reserve(tenant, now) → reservation | nil, err (budget_exceeded, or the store's kind)
--   B:release(reservation) → true | nil, err
--   B:remaining(tenant, now) → { { name =, period =, cap =, spent =, remaining = } … } | nil, err
--
-- Days and months are calendar ones in utc_offset_hours (China time by
-- default: the vendor bills in it). Buckets are counted in fen, so that
-- sums stay exact; the store makes the check-and-add atomic (a Redis script,
-- the file lock, the shm mutex).
local errors = require "maintenance_report.errors"
local options = require "maintenance_report.options"

local budget = {}

local YUAN = options.number(0, 1e9)
budget.RULES = {
  price = options.number(0.01, 1e6), day = YUAN, month = YUAN, tenant_day = YUAN, tenant_month = YUAN,
  utc_offset_hours = { type = "number", min = -12, max = 14 },
}

-- Keep a day's bucket 3 days and a month's 62, then let Redis drop it.
local TTL = { day = 3 * 86400, month = 62 * 86400 }

local Budget = {}
Budget.__index = Budget

local function fen(yuan) return math.floor(yuan * 100 + 0.5) end
local function yuan(f) return f / 100 end

--- budget.new(store, opts) → B. Raises on unknown options; nil, err for bad values.
function budget.new(store, opts)
  local ok, err = options.check("budget", opts, budget.RULES, 2)
  if not ok then return nil, err end
  for _, need in ipairs{ "reserve", "unreserve", "spent" } do
    if type(store[need]) ~= "function" then error("budget: the ledger's store has no " .. need, 2) end
  end
  if not (opts.day or opts.month or opts.tenant_day or opts.tenant_month) then
    return nil, errors.new("invalid_input", "budget: give at least one of day, month, tenant_day, tenant_month")
  end
  return setmetatable({ store = store, price = fen(opts.price or 17), opts = opts,
    offset = (opts.utc_offset_hours or 8) * 3600 }, Budget)
end

local TENANT = "^[%w._-]+$"

--- The buckets an order of tenant draws on at epoch time now.
function Budget:buckets(tenant, now)
  local t = math.floor(now or os.time()) + self.offset
  local day, month = os.date("!%Y-%m-%d", t), os.date("!%Y-%m", t)
  local o, out = self.opts, {}
  local function add(cap, period, name)
    if cap then out[#out + 1] = { name = name, period = period, cap = fen(cap), ttl = TTL[period] } end
  end
  add(o.day, "day", "day:" .. day)
  add(o.month, "month", "month:" .. month)
  if tenant then
    add(o.tenant_day, "day", "tenant:" .. tenant .. ":day:" .. day)
    add(o.tenant_month, "month", "tenant:" .. tenant .. ":month:" .. month)
  end
  return out
end

local function check_tenant(tenant)
  if tenant ~= nil and (type(tenant) ~= "string" or #tenant > 64 or not tenant:match(TENANT)) then
    return nil, errors.new("invalid_input", "tenant must be 1-64 letters, digits, '.', '_' or '-'",
      { field = "tenant" })
  end
  return true
end

--- Reserves one order's price. The reservation names its buckets, so that
--- another process can give it back (ledger entries keep it).
function Budget:reserve(tenant, now)
  local ok, err = check_tenant(tenant)
  if not ok then return nil, err end
  local buckets = self:buckets(tenant, now)
  local reserved, full = self.store:reserve(buckets, self.price)
  if reserved == nil then return nil, full end
  if not reserved then
    local b, spent = buckets[full.index], full.spent
    return nil, errors.new("budget_exceeded", ("the %s budget %s has ¥%g left of ¥%g and an order costs ¥%g; "
      .. "nothing was sent"):format(b.period, b.name, yuan(math.max(0, b.cap - spent)), yuan(b.cap),
      yuan(self.price)), { budget = b.name, cap = yuan(b.cap), spent = yuan(spent), price = yuan(self.price),
      sent = false, order_outcome = "not_placed" })
  end
  local names = {}
  for i, b in ipairs(buckets) do names[i] = b.name end
  return { buckets = names, fen = self.price }
end

--- Gives a reservation back to store (the order was provably not placed), from
--- whichever process finds it: the reservation names its own buckets.
function budget.release_in(store, reservation)
  if type(reservation) ~= "table" or type(reservation.buckets) ~= "table"
    or type(reservation.fen) ~= "number" then return true end
  local buckets = {}
  for i, name in ipairs(reservation.buckets) do buckets[i] = { name = name } end
  return store:unreserve(buckets, reservation.fen)
end

function Budget:release(reservation)
  return budget.release_in(self.store, reservation)
end

--- What is left in every bucket an order of tenant would draw on now (yuan).
function Budget:remaining(tenant, now)
  local ok, err = check_tenant(tenant)
  if not ok then return nil, err end
  local buckets = self:buckets(tenant, now)
  local names = {}
  for i, b in ipairs(buckets) do names[i] = b.name end
  local spent, serr = self.store:spent(names)
  if not spent then return nil, serr end
  local out = {}
  for i, b in ipairs(buckets) do
    local s = spent[b.name] or 0
    out[i] = { name = b.name, period = b.period, cap = yuan(b.cap), spent = yuan(s),
      remaining = yuan(math.max(0, b.cap - s)), orders_left = math.max(0, math.floor((b.cap - s) / self.price)) }
  end
  return out
end

return budget
