-- Spend budgets: reserved before an order leaves, refused with budget_exceeded
-- and nothing sent, given back only when an order provably was not placed.
local budget = require "maintenance_report.budget"
local ledger = require "maintenance_report.ledger"
local memory = require "maintenance_report.ledger.memory"
local exit = require "maintenance_report.cli.exit"
local fake = require "helpers.fake_transport"
local shell = require "helpers.shell"

local SECRET = "sk-budget-spec-secret"
local VINS = { "1G4AH59H45G118341", "1M8GDM9AXKP042788", "1G1BN53E6NW128495", "WBAXW1104J0X16755" }

local function order_ok() return { body = fake.fixture("vendor_order_success.json") } end
local function ready() return { body = fake.fixture("vendor_report_ready.json") } end

local function orders_sent(transport)
  local n = 0
  for _, req in ipairs(transport.requests) do
    if req.url:find("/maintenance/order", 1, true) then n = n + 1 end
  end
  return n
end

local function left(L, tenant, period)
  for _, b in ipairs(assert(L:budget_remaining(tenant))) do
    if b.name:find("^" .. (tenant and ("tenant:" .. tenant .. ":") or "") .. period) then return b end
  end
end

describe("spend budgets", function()
  it("checks its options like every public call", function()
    local store = memory.new()
    assert.has_error(function() budget.new(store, { daily = 10 }) end, "budget: unknown option 'daily'")
    local b, err = budget.new(store, { price = 17 })
    assert.is_nil(b)
    assert.are.equal("invalid_input", err.kind)
    b, err = budget.new(store, { day = -1 })
    assert.is_nil(b)
    assert.are.equal("day", err.field)
    assert.has_error(function() ledger.memory{ budget = { day = -1 } } end)
  end)

  it("counts days and months in China time by default (the date(1) of Asia/Shanghai decides)", function()
    local b = assert(budget.new(memory.new(), { day = 100, month = 1000 }))
    for _, epoch in ipairs{ 1796140799, 1796140800, 1798732799, 1798732800 } do
      local expected_day = shell.run("TZ=Asia/Shanghai date -d @" .. epoch .. " +%F")
      local expected_month = shell.run("TZ=Asia/Shanghai date -d @" .. epoch .. " +%Y-%m")
      local buckets = b:buckets(nil, epoch)
      assert.are.equal("day:" .. expected_day, buckets[1].name)
      assert.are.equal("month:" .. expected_month, buckets[2].name)
    end
    local utc = assert(budget.new(memory.new(), { day = 100, utc_offset_hours = 0 }))
    assert.are.equal("day:" .. shell.run("TZ=UTC date -d @1796140800 +%F"), utc:buckets(nil, 1796140800)[1].name)
  end)

  it("places as many orders as the day's cap allows; the next is budget_exceeded with nothing sent", function()
    local L = ledger.memory{ budget = { day = 34, price = 17 } }
    local c, transport = fake.client(SECRET, { order_ok(), ready(), order_ok(), ready() }, { ledger = L })
    assert(c:query{ vin = VINS[1] })
    assert(c:query{ vin = VINS[2] })
    local sent_before = #transport.requests
    local report, err = c:query{ vin = VINS[3] }
    assert.is_nil(report)
    assert.are.equal("budget_exceeded", err.kind)
    assert.is_false(err.sent)
    assert.are.equal("not_placed", err.order_outcome)
    assert.are.equal(sent_before, #transport.requests, "a request left after budget_exceeded")
    assert.are.equal(2, orders_sent(transport))
    assert.truthy(tostring(err):find("¥0 left of ¥34", 1, true), tostring(err))
    assert.are.equal(exit.CODES.ledger, exit.code(err))
    local day = left(L, nil, "day")
    assert.are.same({ 34, 34, 0, 0 }, { day.cap, day.spent, day.remaining, day.orders_left })
    -- a vehicle already bought is still served: reuse and polling cost nothing
    assert.are.equal(nil, L:get{ vin = VINS[3] })
  end)

  it("gives the reservation back when the gateway refuses the order (provably not placed)", function()
    local L = ledger.memory{ budget = { day = 17 } }
    local c, transport = fake.client(SECRET, {
      { status = 401, body = '{"message":"HMAC signature does not match"}' },
      order_ok(), ready(),
    }, { ledger = L })
    local _, err = c:query{ vin = VINS[1] }
    assert.are.equal("not_placed", err.order_outcome)
    assert.are.equal(0, left(L, nil, "day").spent)
    assert(c:query{ vin = VINS[2] })
    assert.are.equal(2, orders_sent(transport))
    assert.are.equal(17, left(L, nil, "day").spent)
  end)

  it("keeps the reservation of an order whose outcome is unknown: it may have been charged", function()
    local L = ledger.memory{ budget = { day = 34 } }
    local c = fake.client(SECRET, { { status = 500, body = "<html>boom</html>" }, order_ok(), ready() },
      { ledger = L, retries = 0 })
    local _, err = c:query{ vin = VINS[1] }
    assert.are.equal("unknown", err.order_outcome)
    assert.are.equal(17, left(L, nil, "day").spent)
    assert(c:query{ vin = VINS[2] })
    local _, full = c:query{ vin = VINS[3] }
    assert.are.equal("budget_exceeded", full.kind)
  end)

  it("caps a tenant on its own, next to the fleet's caps", function()
    local L = ledger.memory{ budget = { day = 1000, tenant_day = 17 } }
    local c, transport = fake.client(SECRET, { order_ok(), ready(), order_ok(), ready() }, { ledger = L })
    assert(c:query{ vin = VINS[1], tenant = "dealer-a" })
    local _, err = c:query{ vin = VINS[2], tenant = "dealer-a" }
    assert.are.equal("budget_exceeded", err.kind)
    assert.truthy(err.budget:find("^tenant:dealer%-a:day:"), err.budget)
    assert(c:query{ vin = VINS[2], tenant = "dealer-b" })
    assert.are.equal(2, orders_sent(transport))
    assert.are.equal(34, left(L, nil, "day").spent)
    local _, bad = c:query{ vin = VINS[3], tenant = "no spaces" }
    assert.are.equal("invalid_input", bad.kind)
    assert.are.equal(2, orders_sent(transport))
  end)

  it("an intent left unarmed by a dead process is not placed, and its reservation comes back", function()
    local L = ledger.memory{ budget = { day = 17 } }
    local d = assert(L:begin{ vin = VINS[1] })
    assert(d.claim:intent())
    assert.are.equal(17, left(L, nil, "day").spent)
    d.claim:release() -- the holder is gone before it armed: nothing was sent
    d = assert(L:begin{ vin = VINS[1] })
    assert.are.equal("order", d.action)
    assert.are.equal("not_placed", L:get{ vin = VINS[1] }.state)
    assert.are.equal(0, left(L, nil, "day").spent)
    d.claim:release()
  end)
end)
