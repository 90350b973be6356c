-- Every public call checks its options by the same rules, before anything is
-- sent; the client keeps its state, and its secret, private.
local mr = require "maintenance_report"
local fake = require "helpers.fake_transport"

local VIN = "1G4AH59H45G118341"
local SECRET = "sk-options-spec-secret-77"
local ORDER_ID = "0123456789abcdef0123456789abcdef"

local function new_client(steps, extra)
  return fake.client(SECRET, steps, extra)
end

local function base_opts(extra)
  local o = { secret_id = "AKIDtest", secret_key = SECRET, transport = fake.transport{} }
  for k, v in pairs(extra) do o[k] = v end
  return o
end

local function order_ok()
  return { body = fake.fixture("vendor_order_success.json") }
end

local function rejected(call, field, ...)
  local value, err = call(...)
  assert.is_nil(value)
  assert.are.equal("invalid_input", err.kind)
  assert.are.equal(field, err.field)
  return err
end

describe("option values out of range", function()
  it("are refused by mr.new with invalid_input naming the option", function()
    for _, case in ipairs{
      { "max_in_flight", 0 }, { "max_in_flight", 1.5 }, { "retries", math.huge }, { "retries", -1 },
      { "retries", 0 / 0 }, { "max_body", 42 }, { "poll_interval", 0 }, { "poll_interval", -1 },
      { "max_wait", 0 / 0 }, { "max_wait", math.huge }, { "timeout", 0 }, { "timeout", 1 / 0 },
      { "connect_timeout", -5 }, { "first_poll_delay", 0 }, { "retry_base", -0.1 },
      { "utc_offset_hours", 99 }, { "utc_offset_hours", 0 / 0 }, { "utc_offset_hours", 5.6 },
      { "utc_offset_hours", 14.25 },
    } do
      local c, err = mr.new(base_opts{ [case[1]] = case[2] })
      assert.is_nil(c, case[1] .. "=" .. tostring(case[2]))
      assert.are.equal("invalid_input", err.kind)
      assert.are.equal(case[1], err.field)
      assert.truthy(err.message:find(case[1], 1, true))
    end
  end)

  it("are refused by query, wait_report, start_query and start_report, and nothing is sent", function()
    local c, transport = new_client()
    rejected(c.query, "poll_interval", c, { vin = VIN, poll_interval = 0 })
    rejected(c.query, "max_wait", c, { vin = VIN, max_wait = 0 / 0 })
    rejected(c.wait_report, "poll_interval", c, ORDER_ID, { poll_interval = -1 })
    rejected(c.wait_report, "max_wait", c, ORDER_ID, { max_wait = -3 })
    assert.are.equal(0, #transport.requests)
  end)

  it("are refused by start_query and start_report before anything starts", function()
    local transport = { requests = {} }
    function transport.request() error("no blocking request expected") end
    function transport.submit(_, req) transport.requests[#transport.requests + 1] = req return 1 end
    function transport.perform() return {} end
    local c = assert(mr.new{ secret_id = "AKIDtest", secret_key = SECRET, transport = transport })
    rejected(c.start_query, "poll_interval", c, { vin = VIN, poll_interval = -1 })
    rejected(c.start_report, "max_wait", c, ORDER_ID, { max_wait = 0 / 0 })
    assert.are.equal(0, c:step(0))
    assert.are.equal(0, #transport.requests)
  end)
end)

describe("programmer errors", function()
  it("raise naming the call and the option, on every public call", function()
    local c = new_client()
    assert.has_error(function() c:wait_report(ORDER_ID, 5) end, "wait_report: options must be a table, got number")
    assert.has_error(function() c:wait_report(ORDER_ID, { poll_intervall = 1 }) end,
      "wait_report: unknown option 'poll_intervall'")
    assert.has_error(function() c:query{ vin = VIN, maxwait = 1 } end, "query: unknown option 'maxwait'")
    assert.has_error(function() c:query{ vin = VIN, max_wait = "1" } end,
      "query: option 'max_wait' must be a number, got string")
    assert.has_error(function() c:start_query{ vin = VIN, on_done = 1 } end,
      "start_query: option 'on_done' must be a function, got number")
    assert.has_error(function() c:start_report(ORDER_ID, { x = 1 }) end, "start_report: unknown option 'x'")
    assert.has_error(function() c:start_report(42) end, "start_report: order_id must be a string, got number")
    assert.has_error(function() c:create_order{ vin = VIN, engine = "x" } end,
      "create_order: unknown option 'engine'")
    assert.has_error(function() mr.new{ secret_id = "a", secret_key = "b", timout = 3 } end,
      "maintenance_report.new: unknown option 'timout'")
  end)

  it("include a step timeout that is not a finite, non-negative number", function()
    local transport = { request = function() end, submit = function() return 1 end,
      perform = function() return {} end }
    local c = assert(mr.new{ secret_id = "AKIDtest", secret_key = SECRET, transport = transport })
    for _, bad in ipairs{ -1, 0 / 0, 1 / 0, "1" } do
      assert.has_error(function() c:step(bad) end)
    end
    assert.are.equal(0, c:step(0))
  end)

  it("include a clock or random hook that does not return a number", function()
    assert.has_error(function() mr.new(base_opts{ now = function() return nil end }) end,
      "maintenance_report.new: option 'now' must return a finite number, got nil")
    assert.has_error(function() mr.new(base_opts{ random = function() return 2 end }) end)
  end)
end)

describe("a Lua error after a paid order", function()
  it("is raised with the order id, so the order is never lost", function()
    local calls = 0
    local clock = fake.clock()
    local transport = fake.transport{ order_ok() }
    local c = assert(mr.new{ secret_id = "AKIDtest", secret_key = SECRET, transport = transport,
      sleep = clock.sleep, random = function() return 0.5 end,
      now = function()
        calls = calls + 1
        if calls > 3 then return nil end -- a hook that breaks after the order left
        return clock.now()
      end })
    local ok, message = pcall(c.query, c, { vin = VIN })
    assert.is_false(ok)
    assert.are.equal(1, #transport.requests)
    local order_id = fake.fixture("vendor_order_success.json"):match('"orderId"%s*:%s*"([^"]+)"')
    assert.truthy(tostring(message):find(order_id, 1, true), tostring(message))
    assert.truthy(tostring(message):find("wait_report", 1, true))
  end)
end)

describe("the client's state", function()
  local function contains_secret(value, seen)
    seen = seen or {}
    if type(value) == "string" then return value:find(SECRET, 1, true) ~= nil end
    if type(value) ~= "table" or seen[value] then return false end
    seen[value] = true
    for k, v in pairs(value) do
      if contains_secret(k, seen) or contains_secret(v, seen) then return true end
    end
    local mt = getmetatable(value)
    return mt ~= nil and contains_secret(mt, seen)
  end

  it("holds no secret key in any field of the client or its settings", function()
    local c = new_client()
    assert.is_false(contains_secret(c))
    assert.is_false(contains_secret(c:settings()))
    assert.is_nil(c:settings().secret_key)
    assert.are.equal("AKIDtest", c:settings().secret_id)
  end)

  it("has the documented defaults, from one place", function()
    local defaults = require "maintenance_report.defaults"
    local s = assert(mr.new{ secret_id = "a", secret_key = "b" }):settings()
    for k, v in pairs(defaults.CLIENT) do assert.are.equal(v, s[k], k) end
    assert.are.equal(defaults.VERSION, mr._VERSION)
    assert.are.same({ 10, 5, 2, 1, 0.2, 120, 900, 8 * 1024 * 1024 },
      { s.timeout, s.connect_timeout, s.retries, s.first_poll_delay, s.poll_growth, s.poll_interval, s.max_wait,
        s.max_body })
  end)
end)

describe("two clients", function()
  -- A transport that answers every request at once, blocking or through submit/perform.
  local function multi_transport(name, log)
    local t, next_id, done = {}, 0, {}
    function t.request(_, req)
      log[#log + 1] = name
      local fixture = req.url:find("/maintenance/order", 1, true) and "vendor_order_success.json"
        or "vendor_report_ready.json"
      return { status = 200, headers = {}, body = fake.fixture(fixture) }
    end
    function t.submit(_, req)
      next_id = next_id + 1
      done[#done + 1] = { id = next_id, response = t.request(nil, req) }
      return next_id
    end
    function t.perform()
      local out = done
      done = {}
      return out
    end
    function t.cancel() end
    return t
  end

  it("each send their own requests, even when one is called inside the other's task", function()
    local log = {}
    local a = assert(mr.new{ secret_id = "AKIDa", secret_key = "ka", transport = multi_transport("A", log) })
    local b = assert(mr.new{ secret_id = "AKIDb", secret_key = "kb", transport = multi_transport("B", log) })
    local handle = a:scheduler():spawn(function() return b:get_report(ORDER_ID) end)
    while not handle:done() do a:step(0.01) end
    local report = assert(handle:result())
    assert.are.equal("ready", report.status)
    assert.are.same({ "B" }, log)
  end)
end)
