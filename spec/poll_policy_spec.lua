-- The default polling policy's bounds (issue 13, "calls per report"), on a
-- virtual clock: for a report ready T seconds after its order, at most 40
-- report reads for T = 900 s and the report seen no later than 20% of T after
-- it is ready; for T = 5 s, seen within 1.5 s. The bounds are the issue's
-- targets; the reads at T = 60 and 3600 s are those documented in README
-- (about log(T) / log(1.2) reads, plus 120-s waits past 600 s).
local mr = require "maintenance_report"
local ledger = require "maintenance_report.ledger"
local fake = require "helpers.fake_transport"

local VIN = "LSVAB2BM4KN000001"

-- A transport whose report turns ready `ready_after` seconds after the order,
-- on the clock given; counts the report reads.
local function scripted(clock, ready_after)
  local t = { reads = 0 }
  local ordered_at
  function t.request(_, req)
    local body
    if req.url:find("/maintenance/order", 1, true) then
      ordered_at, body = clock.time, fake.fixture("vendor_order_success.json")
    else
      t.reads = t.reads + 1
      body = clock.time - ordered_at >= ready_after and fake.fixture("vendor_report_ready.json") or fake.PENDING
    end
    return { status = 200, body = body,
      headers = { ["x-api-requestid"] = ("%032x"):format(t.reads), ["content-type"] = "text/html; charset=utf-8" } }
  end
  function t.delay() return clock.time - ordered_at - ready_after end
  return t
end

-- Reads and detection delay of one query for a report ready after T, jitter at `random`.
local function run(T, random, extra)
  local clock = fake.clock()
  local transport = scripted(clock, T)
  local opts = { secret_id = "AKIDtest", secret_key = "secret", endpoint = "http://127.0.0.1:9/release",
    transport = transport, now = clock.now, sleep = clock.sleep, random = function() return random end,
    max_wait = 7 * 86400 }
  for k, v in pairs(extra or {}) do opts[k] = v end
  local c = assert(mr.new(opts))
  local report = assert(c:query{ vin = VIN })
  assert.are.equal("ready", report.status)
  c:close()
  return transport.reads, transport.delay()
end

-- Over T × [0.9, 1.1] and the jitter's extremes: the most reads, the longest
-- delay, the longest delay as a fraction of its T.
local function worst(T)
  local max_reads, max_delay, max_share = 0, 0, 0
  for _, random in ipairs{ 0, 0.5, 1 } do
    for i = 0, 40 do
      local t = T * (0.9 + 0.2 * i / 40)
      local reads, delay = run(t, random)
      max_reads, max_delay = math.max(max_reads, reads), math.max(max_delay, delay)
      max_share = math.max(max_share, delay / t)
    end
  end
  return max_reads, max_delay, max_share
end

describe("the default polling policy", function()
  it("sees a report ready after 5 s within 1.5 s", function()
    local _, delay = worst(5)
    assert.is_true(delay <= 1.5, "delay " .. delay)
  end)

  it("sees a report ready after 60 s within 20% of T, in at most 25 reads", function()
    local reads, _, share = worst(60)
    assert.is_true(share <= 0.2, "delay share " .. share)
    assert.is_true(reads <= 25, "reads " .. reads)
  end)

  it("sees a report ready after 900 s within 20% of T, in at most 40 reads", function()
    local reads, _, share = worst(900)
    assert.is_true(share <= 0.2, "delay share " .. share)
    assert.is_true(reads <= 40, "reads " .. reads)
  end)

  it("sees a report ready after 3600 s within 20% of T, in at most 70 reads", function()
    local reads, _, share = worst(3600)
    assert.is_true(share <= 0.2, "delay share " .. share)
    assert.is_true(reads <= 70, "reads " .. reads)
  end)

  it("waits poll_growth of the time already polled, between first_poll_delay and poll_interval", function()
    local clock = fake.clock()
    local c = assert(mr.new{ secret_id = "AKIDtest", secret_key = "secret", transport = scripted(clock, 1e9),
      now = clock.now, sleep = clock.sleep, random = function() return 1 end,
      first_poll_delay = 2, poll_growth = 0.5, poll_interval = 9, max_wait = 40 })
    local report, err = c:query{ vin = VIN }
    assert.is_nil(report)
    assert.are.equal("pending", err.kind)
    -- elapsed 0, 2, 4, 6, 9, 13.5, 20.25 → waits 2, 2, 2, 3, 4.5, 6.75, 9, then what is left of 40 s
    local expected = { 2, 2, 2, 3, 4.5, 6.75, 9, 9, 1.75 }
    assert.are.equal(#expected, #clock.sleeps, table.concat(clock.sleeps, " "))
    for i, v in ipairs(expected) do
      assert.is_true(math.abs(clock.sleeps[i] - v) < 1e-9, i .. ": " .. clock.sleeps[i])
    end
  end)

  it("shortens waits by at most 10% for jitter", function()
    local clock = fake.clock()
    local c = assert(mr.new{ secret_id = "AKIDtest", secret_key = "secret", transport = scripted(clock, 1e9),
      now = clock.now, sleep = clock.sleep, random = function() return 0 end,
      first_poll_delay = 2, poll_growth = 0, poll_interval = 9, max_wait = 3.7 })
    c:query{ vin = VIN }
    local last = math.floor(clock.sleeps[3] * 1e6 + 0.5) / 1e6
    assert.are.same({ 1.8, 1.8, 0.1 }, { clock.sleeps[1], clock.sleeps[2], last })
  end)

  it("refreshes its ledger claim at least every third of claim_ttl during a long wait", function()
    local clock = fake.clock()
    local L = ledger.memory{ claim_ttl = 6, now = clock.now, monotime = clock.now, sleep = clock.sleep }
    local claims, claim = {}, L.store.claim
    L.store.claim = function(store, ...)
      claims[#claims + 1] = clock.time
      return claim(store, ...)
    end
    local c = assert(mr.new{ secret_id = "AKIDtest", secret_key = "secret", transport = scripted(clock, 300),
      now = clock.now, sleep = clock.sleep, random = function() return 1 end, ledger = L })
    assert.are.equal("ready", assert(c:query{ vin = VIN }).status)
    assert.is_true(#claims > 2)
    for i = 2, #claims do
      assert.is_true(claims[i] - claims[i - 1] <= 2 + 1e-9, ("gap %g s"):format(claims[i] - claims[i - 1]))
    end
  end)
end)
