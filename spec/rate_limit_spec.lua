-- The fleet rate limit: one token bucket in the ledger's store, taken before
-- every gateway call; shared by every handle on one Redis.
local rate_limit = require "maintenance_report.rate_limit"
local memory = require "maintenance_report.ledger.memory"
local redis_store = require "maintenance_report.ledger.redis"
local redis_server = require "helpers.redis_server"
local fake = require "helpers.fake_transport"

describe("fleet rate limit", function()
  it("checks its options", function()
    assert.has_error(function() rate_limit.new(memory.new(), { per_second = 1 }) end,
      "rate_limit: unknown option 'per_second'")
    local r, err = rate_limit.new(memory.new(), {})
    assert.is_nil(r)
    assert.are.equal("invalid_input", err.kind)
  end)

  it("lets a burst through, then spaces calls at the rate (virtual clock)", function()
    local clock = fake.clock()
    local r = assert(rate_limit.new(memory.new{ monotime = clock.now }, { rate = 2, burst = 2 }))
    assert.are.equal(0, r:acquire(clock.sleep))
    assert.are.equal(0, r:acquire(clock.sleep))
    local waited = r:acquire(clock.sleep)
    assert.is_true(math.abs(waited - 0.5) < 1e-9, tostring(waited))
    assert.are.same({ 0.5 }, clock.sleeps)
  end)

  it("refuses with rate_limited, nothing sent, when the wait would pass max_wait", function()
    local clock = fake.clock()
    local r = assert(rate_limit.new(memory.new{ monotime = clock.now }, { rate = 0.1, burst = 1, max_wait = 5 }))
    assert(r:acquire(clock.sleep))
    local waited, err = r:acquire(clock.sleep)
    assert.is_nil(waited)
    assert.are.equal("rate_limited", err.kind)
    assert.is_false(err.sent)
  end)

  it("paces the client's gateway calls, orders and report reads alike", function()
    local clock = fake.clock()
    local limiter = assert(rate_limit.new(memory.new{ monotime = clock.now }, { rate = 1, burst = 1 }))
    local events = {}
    local c, transport = fake.client("sk-rate-spec", {
      { body = fake.fixture("vendor_order_success.json") },
      { body = fake.fixture("vendor_report_ready.json") },
    }, { rate_limit = limiter, now = clock.now, sleep = clock.sleep, first_poll_delay = 0.01,
      on_event = function(e) if e.event == "rate_limit" then events[#events + 1] = e end end })
    assert(c:query{ vin = "1G4AH59H45G118341" })
    assert.are.equal(2, #transport.requests)
    -- the poll itself waits ~0.01 s; the rest of the second up to 1 s is the limiter's
    local slept = 0
    for _, s in ipairs(clock.sleeps) do slept = slept + s end
    assert.is_true(slept >= 1 - 1e-9, "two calls at 1/s took " .. slept .. " s of waits")
    assert.are.equal(1, #events)
    assert.are.equal("get_report", events[1].op)
  end)

  describe("on Redis", function()
    local server
    lazy_setup(function() server = redis_server.start() end)
    lazy_teardown(function() if server then server:stop() end end)

    it("is one bucket for every handle (every node of a fleet)", function()
      local a = assert(redis_store.new(server.url, { prefix = "rl:" }))
      local b = assert(redis_store.new(server.url, { prefix = "rl:" }))
      local granted = 0
      for i = 1, 6 do
        local wait = assert((i % 2 == 0 and a or b):take_token("plan", 5, 5))
        if wait == 0 then granted = granted + 1 end
      end
      -- 5 tokens; refilling at 5/s, a sixth within the few ms this loop takes is not due
      assert.are.equal(5, granted)
      local wait = a:take_token("plan", 5, 5)
      assert.is_true(wait > 0 and wait <= 0.2, tostring(wait))
    end)
  end)
end)
