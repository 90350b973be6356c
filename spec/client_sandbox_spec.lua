-- End to end: the client against the local sandbox (real nginx, real HTTP).
local mr = require "maintenance_report"
local sandbox = require "maintenance_report_sandbox"

local NORMAL_VIN = "WBAXW1104J0X16755" -- a published VIN: WMI WBA (BMW)

describe("client against the sandbox", function()
  local sb
  lazy_setup(function() sb = assert(sandbox.start{ pending_polls = 2 }) end)
  lazy_teardown(function() if sb then sb:stop() end end)
  before_each(function() assert(sb:reset()) end)

  local function client(extra)
    local opts = { secret_id = sb.secret_id, secret_key = sb.secret_key, endpoint = sb.base_url,
      timeout = 5, first_poll_delay = 0.01, poll_interval = 0.05, retry_base = 0.01 }
    for k, v in pairs(extra or {}) do opts[k] = v end
    return assert(mr.new(opts))
  end

  it("orders, polls through pending and returns the normalized report", function()
    local polls = {}
    local c = client{ on_event = function(ev) if ev.event == "poll" then polls[#polls + 1] = ev.status end end }
    local report = assert(c:query{ vin = NORMAL_VIN })
    assert.are.equal("ready", report.status)
    assert.are.equal(1205, report.code)
    assert.are.same({ "pending", "pending", "ready" }, polls)
    assert.are.equal("WB******16755", report.vehicle.vin) -- masked like the vendor's
    assert.are.equal(2018, report.vehicle.year)           -- position 10 'J'
    assert.is_true(#report.records > 0)
    for i = 2, #report.records do
      assert.is_true(report.records[i - 1].date <= report.records[i].date)
      assert.is_true(report.records[i - 1].mileage <= report.records[i].mileage)
    end
    assert.are.equal(1, sb:stats().orders)
  end)

  it("gives the same report for the same VIN", function()
    local c = client()
    local a = assert(c:query{ vin = NORMAL_VIN })
    local b = assert(c:query{ vin = NORMAL_VIN })
    assert.are_not.equal(a.order_id, b.order_id)
    assert.are.same(a.records, b.records)
    assert.are.same(a.flags, b.flags)
  end)

  it("returns no_records for the no-records scenario", function()
    local report = assert(client():query{ vin = sandbox.scenario_vin("no_records") })
    assert.are.equal("no_records", report.status)
    assert.are.equal(1206, report.code)
    assert.are.same({}, report.records)
  end)

  for _, algorithm in ipairs{ "hmac-sha1", "hmac-sha256", "hmac-sha384", "hmac-sha512" } do
    it("is accepted by the gateway with " .. algorithm, function()
      assert(client{ algorithm = algorithm }:create_order{ vin = NORMAL_VIN })
    end)
  end

  it("is accepted with the legacy 'date source' headers", function()
    assert(client{ signed_headers = "date source" }:create_order{ vin = NORMAL_VIN })
  end)

  it("maps a wrong key and an unknown id to auth errors", function()
    local _, err = client{ secret_key = "wrong" }:create_order{ vin = NORMAL_VIN }
    assert.are.same({ "auth", 401, "HMAC signature does not match." }, { err.kind, err.http_status, err.message })
    assert.are.equal("not_placed", err.order_outcome) -- the gateway refused it before the vendor
    _, err = client{ secret_id = "AKIDnobody" }:create_order{ vin = NORMAL_VIN }
    assert.are.same({ "auth", "HMAC signature cannot be verified." }, { err.kind, err.message })
    assert.are.equal(0, sb:stats().orders)
  end)

  it("sends an order once when the answer comes after the client's timeout", function()
    local vin = sandbox.scenario_vin("order_slow", 2) -- answers after 2 s
    local _, err = client{ timeout = 0.5 }:create_order{ vin = vin }
    assert.are.equal("timeout", err.kind)
    assert.are.equal("unknown", err.order_outcome)
    assert.are.equal(1, sb:stats().orders_by_vin[vin])
  end)

  -- scenario → kind, retryable, order outcome. The gateway's own refusals are
  -- "not_placed"; the vendor's -1 "服务或其它异常" says nothing about whether the
  -- order was bought, so, like a 5xx or a broken answer, it is "unknown".
  local order_faults = {
    order_service_error = { "api", false, "unknown" },
    order_http_500 = { "http", false, "unknown" },
    order_http_502 = { "http", false, "unknown" },
    order_http_504 = { "http", false, "unknown" },
    order_rate_limit = { "rate_limited", true, "not_placed" },
    order_quota = { "quota_exceeded", false, "not_placed" },
    order_malformed_json = { "protocol", false, "unknown" },
    order_truncated_body = { "network", false, "unknown" },
    order_connection_closed = { "network", false, "unknown" },
    order_empty_reply = { "network", false, "unknown" },
  }
  for name, expected in pairs(order_faults) do
    it("maps " .. name .. " and never repeats the order", function()
      local vin = sandbox.scenario_vin(name)
      local order, err = client():create_order{ vin = vin }
      assert.is_nil(order)
      assert.are.equal(expected[1], err.kind)
      assert.are.equal(expected[2], err.retryable)
      assert.are.equal(expected[3], err.order_outcome)
      assert.are.equal(1, sb:stats().orders_by_vin[vin])
    end)
  end

  it("sends an order once even when a warm keep-alive connection dies unanswered", function()
    local c = client()
    local vin = sandbox.scenario_vin("order_empty_reply")
    -- A report read first leaves a pooled connection the order could reuse.
    assert(c:query{ vin = NORMAL_VIN })
    local _, err = c:create_order{ vin = vin }
    assert.are.equal("network", err.kind)
    assert.are.equal("unknown", err.order_outcome)
    assert.are.equal(1, sb:stats().orders_by_vin[vin])
  end)

  it("sends an order once through the multi interface on a warm connection", function()
    local c = client()
    local vin = sandbox.scenario_vin("order_empty_reply")
    assert(c:start_query{ vin = NORMAL_VIN })
    while c:step(1) > 0 do end
    local handle = c:start_query{ vin = vin }
    while c:step(1) > 0 do end
    local _, err = handle:result()
    assert.are.equal("unknown", err.order_outcome)
    assert.are.equal(1, sb:stats().orders_by_vin[vin])
  end)

  local report_faults = {
    report_service_error = "api", report_http_500 = "http", report_http_502 = "http",
    report_http_504 = "http", report_rate_limit = "rate_limited", report_quota = "quota_exceeded",
    report_malformed_json = "protocol", report_truncated_body = "network",
    report_connection_closed = "network", report_empty_reply = "network",
  }
  for name, kind in pairs(report_faults) do
    it("maps " .. name .. " and keeps the order id", function()
      local vin = sandbox.scenario_vin(name)
      local report, err = client{ retries = 1 }:query{ vin = vin }
      assert.is_nil(report)
      assert.are.equal(kind, err.kind)
      assert.is_string(err.order_id)
      assert.are.equal(1, sb:stats().orders)
    end)
  end

  it("retries a report read through transient faults", function()
    local vin = sandbox.scenario_vin("report_http_502", 2) -- fails twice, then works
    local report = assert(client{ retries = 2 }:query{ vin = vin })
    assert.are.equal("ready", report.status)
    assert.are.equal(1, sb:stats().orders)
  end)

  it("returns pending with the order id at max_wait and resumes without a new order", function()
    local vin = sandbox.scenario_vin("pending_polls", 5)
    local c = client()
    local report, err = c:query{ vin = vin, max_wait = 0 }
    assert.is_nil(report)
    assert.are.equal("pending", err.kind)
    report = assert(c:wait_report(err.order_id))
    assert.are.equal("ready", report.status)
    assert.are.equal(1, sb:stats().orders)
  end)

  it("runs queries side by side through start_query and step", function()
    local c = client()
    local vins = { NORMAL_VIN, "1G4AH59H45G118341", "1G1BN53E6NW128495" }
    local handles, done = {}, 0
    for i, vin in ipairs(vins) do
      handles[i] = c:start_query{ vin = vin, on_done = function() done = done + 1 end }
    end
    local rounds = 0
    while c:step(1) > 0 and rounds < 100 do rounds = rounds + 1 end
    assert.are.equal(3, done)
    for i = 1, 3 do assert.are.equal("ready", assert(handles[i]:result()).status) end
    assert.are.equal(3, sb:stats().orders)
  end)
end)
