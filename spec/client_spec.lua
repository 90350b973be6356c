-- The client against a scripted transport: validation, error mapping, retries, polling.
local mr = require "maintenance_report"
local fake = require "helpers.fake_transport"

local VIN = "1G4AH59H45G118341" -- a published VIN with a valid check digit
local SECRET = "sk-THE-SECRET-KEY-42"

local function new_client(steps, extra)
  return fake.client(SECRET, steps, extra)
end

local function order_ok()
  return { body = fake.fixture("vendor_order_success.json") }
end

describe("mr.new", function()
  it("raises naming an unknown option or a wrongly typed one", function()
    assert.has_error(function() mr.new{ secret_id = "a", secret_key = "b", timout = 3 } end,
      "maintenance_report.new: unknown option 'timout'")
    assert.has_error(function() mr.new{ secret_id = "a", secret_key = "b", timeout = "3" } end,
      "maintenance_report.new: option 'timeout' must be a number, got string")
    assert.has_error(function() mr.new("opts") end)
  end)

  it("returns invalid_input for missing credentials and unsafe values", function()
    local c, err = mr.new{ secret_id = "a" }
    assert.is_nil(c)
    assert.are.equal("invalid_input", err.kind)
    assert.are.equal("secret_key", err.field)
    c, err = mr.new{ secret_id = "a", secret_key = "b", source = "market\r\nX-Injected: 1" }
    assert.is_nil(c)
    assert.are.equal("invalid_input", err.kind)
    assert.are.equal("source", err.field)
    c, err = mr.new{ secret_id = "a", secret_key = "b", algorithm = "hmac-md5" }
    assert.is_nil(c)
    assert.are.equal("algorithm", err.field)
    c, err = mr.new{ secret_id = "a", secret_key = "b", endpoint = "ftp://x" }
    assert.is_nil(c)
    assert.are.equal("endpoint", err.field)
  end)

  it("has the documented defaults", function()
    local c = assert(mr.new{ secret_id = "a", secret_key = "b" })
    local s = c:settings()
    assert.are.equal("market", s.source)
    assert.are.equal("https://service-plb7hsqv-1257199080.ap-shanghai.apigateway.myqcloud.com/release", s.endpoint)
    assert.are.equal("hmac-sha1", s.algorithm)
    assert.are.same({ 10, 5, 2, 120, 900 }, { s.timeout, s.connect_timeout, s.retries, s.poll_interval, s.max_wait })
    c:close()
  end)
end)

describe("client:create_order", function()
  it("sends a signed GET with the vendor's parameters and returns the order id", function()
    local c, transport = new_client{ order_ok() }
    local order = assert(c:create_order{ vin = " 1g4ah59h45g118341 ", plate_number = "京A12345" })
    assert.are.equal("e192e8de8e6660****46f41b", order.order_id) -- from the listing's sample
    assert.are.equal(1200, order.code)
    assert.are.equal("购买成功", order.message)
    local req = transport.requests[1]
    assert.are.equal("http://127.0.0.1:9/release/maintenance/order?vin=" .. VIN
      .. "&engine_number=&plate_number=%E4%BA%ACA12345", req.url)
    assert.are.equal("GET", req.method)
    assert.truthy(req.headers["X-Date"]:match("GMT$"))
    assert.are.equal("market", req.headers["X-Source"])
    assert.truthy(req.headers.Authorization:match('^hmac id="AKIDtest", algorithm="hmac%-sha1", '
      .. 'headers="x%-date x%-source", signature="[%w+/=]+"$'))
  end)

  it("rejects bad input before any request is sent", function()
    local c, transport = new_client{}
    local order, err = c:create_order{ vin = "SBL666666BM9D933" } -- the listing's own sample VIN
    assert.is_nil(order)
    assert.are.equal("invalid_input", err.kind)
    assert.are.equal("VIN must be 17 characters, got 16", err.message)
    assert.are.equal("vin", err.field)
    order, err = c:create_order{ vin = "1G4AH59H55G118341" }
    assert.is_nil(order)
    assert.matches("check digit", err.message)
    order, err = c:create_order{ vin = VIN, plate_number = "XX12345" }
    assert.is_nil(order)
    assert.are.equal("plate_number", err.field)
    order, err = c:create_order{ vin = VIN, engine_number = "AB\r\n12" }
    assert.is_nil(order)
    assert.are.equal("engine_number", err.field)
    assert.are.equal(0, #transport.requests)
  end)

  it("raises on programmer errors", function()
    local c = new_client{}
    assert.has_error(function() c:create_order(VIN) end)
    assert.has_error(function() c:create_order{ vni = VIN } end, "create_order: unknown option 'vni'")
  end)

  it("relaxes only the check digit with vin_check_digit = false", function()
    local c = new_client({ order_ok() }, { vin_check_digit = false })
    assert.truthy(c:create_order{ vin = "1G4AH59H55G118341" })
    local _, err = c:create_order{ vin = "1G4AH59H55G11834I" }
    assert.are.equal("invalid_input", err.kind)
  end)

  it("maps the vendor's missing-VIN answer to an api error with its Chinese message", function()
    local c = new_client{ { body = fake.fixture("vendor_order_missing_vin.json") } }
    local _, err = c:create_order{ vin = VIN }
    assert.are.equal("api", err.kind)
    assert.are.equal("20704", err.code)
    assert.are.equal("车架号不能为空", err.message)
    assert.are.equal("not_placed", err.order_outcome) -- api.md: the vendor refused it
  end)

  it("retries only when the request provably never left (DNS, connection refused)", function()
    local c, transport = new_client{ { error = { kind = "connect", sent = false } },
      { error = { kind = "dns", sent = false } }, order_ok() }
    assert.truthy(c:create_order{ vin = VIN })
    assert.are.equal(3, #transport.requests)
  end)

  it("never repeats an order after a timeout and reports an unknown outcome", function()
    local c, transport = new_client{ { error = { kind = "timeout", sent = true } } }
    local order, err = c:create_order{ vin = VIN }
    assert.is_nil(order)
    assert.are.equal(1, #transport.requests)
    assert.are.equal("timeout", err.kind)
    assert.are.equal("unknown", err.order_outcome)
    assert.is_false(err.retryable)
    assert.matches("check your orders before buying again", err.message)
  end)

  for _, status in ipairs{ 500, 502, 504 } do
    it("never repeats an order after HTTP " .. status, function()
      local c, transport = new_client{ { status = status, body = "<html><body>Bad Gateway</body></html>" } }
      local _, err = c:create_order{ vin = VIN }
      assert.are.equal(1, #transport.requests)
      assert.are.equal("http", err.kind)
      assert.are.equal(status, err.http_status)
      assert.are.equal("unknown", err.order_outcome)
    end)
  end

  it("treats an unreadable 200 answer to an order as an unknown outcome", function()
    local c = new_client{ { body = '{"code":"0","data":' } }
    local _, err = c:create_order{ vin = VIN }
    assert.are.equal("protocol", err.kind)
    assert.are.equal("unknown", err.order_outcome)
  end)

  it("does not retry an order on 429 but says it is retryable (the gateway refused it)", function()
    local c, transport = new_client{ fake.json_message(429, "API rate limit exceeded.") }
    local _, err = c:create_order{ vin = VIN }
    assert.are.equal(1, #transport.requests)
    assert.are.equal("rate_limited", err.kind)
    assert.is_true(err.retryable)
    assert.are.equal("not_placed", err.order_outcome)
  end)
end)

describe("gateway error mapping", function()
  -- status, message and expected kind, from the gateway table in api.md.
  local cases = {
    { 401, "HMAC signature does not match.", "auth" },
    { 401, "HMAC signature cannot be verified.", "auth" },
    { 401, "HMAC signature cannot be verified, the x-date header is out of date for HMAC Authentication.", "auth" },
    { 401, "HMAC signature cannot be verified, a valid x-date header is required for HMAC Authentication.", "auth" },
    { 401, "HMAC signature cannot be verified, a valid date or x-date header is required.", "auth" },
    { 401, "HMAC id or signature missing.", "auth" },
    { 401, "HMAC algorithm hmac-md5 not supported.", "auth" },
    { 401, "HMAC authorization format error.", "auth" },
    { 401, "HMAC signature cannot be verified, a valid x-source header is required.", "auth" },
    { 401, "HMAC apikey is invalid for API.", "auth" },
    { 403, "HMAC authorization format error.", "auth" }, -- older gateways answer format errors with 403
    { 403, "Found no validate usage plan.", "forbidden" },
    { 404, "There is no api match uri[/release/nope].", "not_found" },
    { 429, "API rate limit exceeded.", "rate_limited" },
    { 429, "API quota exceeded.", "quota_exceeded" },
  }
  for _, case in ipairs(cases) do
    it(("maps %d %q to %s"):format(case[1], case[2], case[3]), function()
      local c = new_client({ fake.json_message(case[1], case[2]) }, { retries = 0 })
      local _, err = c:get_report("abc123")
      assert.are.equal(case[3], err.kind)
      assert.are.equal(case[1], err.http_status)
      assert.are.equal(case[2], err.message)
      assert.are.equal(case[2], err.code)
      assert.are.equal("abc123", err.order_id)
      assert.are.equal(32, #err.request_id)
      assert.are.equal(case[3] == "rate_limited", err.retryable)
    end)
  end

  for _, status in ipairs{ 500, 502, 504 } do
    it("maps an HTML " .. status .. " page to a retryable http error with a clean snippet", function()
      local c = new_client({ { status = status, body = "<html>\n<head><title>" .. status
        .. " Bad Gateway</title></head>\r\n<body>upstream\tfailed</body></html>" } }, { retries = 0 })
      local _, err = c:get_report("abc123")
      assert.are.equal("http", err.kind)
      assert.are.equal(status, err.http_status)
      assert.is_true(err.retryable)
      assert.are.equal("HTTP " .. status .. ": " .. status .. " Bad Gateway upstream failed", err.message)
    end)
  end

  it("maps a non-JSON 200 body to a protocol error with the status and a snippet", function()
    local c = new_client{ { body = "<html><body>维护中 maintenance</body></html>" } }
    local _, err = c:get_report("abc123")
    assert.are.equal("protocol", err.kind)
    assert.are.equal(200, err.http_status)
    assert.are.equal("维护中 maintenance", err.snippet)
  end)

  it("maps JSON of the wrong shape to a protocol error", function()
    for _, body in ipairs{ "[]", '"text"', '{"code":"0"}', '{"code":"0","data":[]}', "{}" } do
      local c = new_client{ { body = body } }
      local report, err = c:get_report("abc123")
      assert.is_nil(report, body)
      assert.are.equal("protocol", err.kind, body)
    end
  end)

  it("maps transport failures to network, tls and timeout kinds", function()
    local expected = { dns = "network", connect = "network", network = "network", tls = "tls",
      timeout = "timeout", too_large = "protocol" }
    for transport_kind, kind in pairs(expected) do
      local c = new_client({ { error = { kind = transport_kind, sent = true } } }, { retries = 0 })
      local _, err = c:get_report("abc123")
      assert.are.equal(kind, err.kind, transport_kind)
      assert.are.equal(transport_kind, err.transport)
    end
  end)

  it("maps the vendor's business codes 20804 and -1 to api errors", function()
    local c = new_client{ { body = '{"code":"20804","message":"订单号不能为空","result":{}}' },
      { body = '{"code":-1,"message":"服务或其它异常","result":{}}' } }
    local _, err = c:get_report("abc123")
    assert.are.same({ "api", "20804", "订单号不能为空" }, { err.kind, err.code, err.message })
    _, err = c:get_report("abc123")
    assert.are.same({ "api", "-1", "服务或其它异常" }, { err.kind, err.code, err.message })
  end)
end)

describe("client:get_report", function()
  it("normalizes the listing's ready report", function()
    local c = new_client{ { body = fake.fixture("vendor_report_ready.json") } }
    local report = assert(c:get_report("318bba4664194601800a6376027fffb56"))
    assert.are.equal("ready", report.status)
    assert.are.equal(1205, report.code)
    assert.are.equal("318bba4664194601800a6376027fffb56", report.order_id)
    assert.are.equal("路虎", report.vehicle.brand)
    assert.are.equal(32, #report.request_id)
  end)

  it("gives no_records for 1206 and pending for 1204", function()
    local c = new_client{ { body = fake.fixture("vendor_report_no_records.json") }, { body = fake.PENDING } }
    assert.are.equal("no_records", assert(c:get_report("a1")).status)
    assert.are.equal("pending", assert(c:get_report("a1")).status)
  end)

  it("turns any other result code into an api error carrying the raw code", function()
    local c = new_client{ { body = '{"code":"0","data":{"result":"3","detail":{"resultCode":"1207",'
      .. '"resultMsg":"查询失败"}}}' } }
    local _, err = c:get_report("a1")
    assert.are.same({ "api", "1207", "查询失败", "a1" }, { err.kind, err.code, err.message, err.order_id })
  end)

  it("lets users override the status table", function()
    local c = new_client({ { body = '{"code":"0","data":{"result":"3","detail":{"resultCode":"1207"}}}' } },
      { report_status = { [1205] = "ready", [1206] = "no_records", [1207] = "pending" } })
    assert.are.equal("pending", assert(c:get_report("a1")).status)
  end)

  it("retries reads on network errors, 5xx and 429 with growing, jittered backoff", function()
    local c, transport, clock = new_client({ { error = { kind = "network", sent = true } },
      { status = 503, body = "busy" }, fake.json_message(429, "API rate limit exceeded."),
      { body = fake.PENDING } }, { retries = 3, retry_base = 1, retry_max_delay = 3 })
    assert.truthy(c:get_report("a1"))
    assert.are.equal(4, #transport.requests)
    -- full jitter with random() = 0.5: half of min(max, base·2^(n-1))
    assert.are.same({ 0.5, 1, 1.5 }, clock.sleeps)
  end)

  it("does not retry auth errors or quota exhaustion", function()
    for _, message in ipairs{ "HMAC signature does not match.", "API quota exceeded." } do
      local status = message:find("quota") and 429 or 401
      local c, transport = new_client{ fake.json_message(status, message) }
      local _, err = c:get_report("a1")
      assert.is_false(err.retryable)
      assert.are.equal(1, #transport.requests)
    end
  end)

  it("gives up after `retries` retries", function()
    local c, transport = new_client({ { status = 502 }, { status = 502 }, { status = 502 } }, { retries = 2 })
    local _, err = c:get_report("a1")
    assert.are.equal("http", err.kind)
    assert.are.equal(3, #transport.requests)
  end)

  it("validates the order id", function()
    local c, transport = new_client{}
    local _, err = c:get_report("bad id!")
    assert.are.equal("invalid_input", err.kind)
    assert.are.equal(0, #transport.requests)
    assert.has_error(function() c:get_report(42) end)
  end)
end)

describe("client:query", function()
  it("orders once, polls with growing jittered waits up to poll_interval, and returns the report", function()
    local c, transport, clock = new_client({ order_ok(), { body = fake.PENDING }, { body = fake.PENDING },
      { body = fake.PENDING }, { body = fake.PENDING }, { body = fake.fixture("vendor_report_ready.json") } },
      { first_poll_delay = 1, poll_growth = 0.5, poll_interval = 2, random = function() return 1 end })
    local report = assert(c:query{ vin = VIN })
    assert.are.equal("ready", report.status)
    assert.are.equal("e192e8de8e6660****46f41b", report.order_id)
    local orders = 0
    for _, req in ipairs(transport.requests) do
      if req.url:find("/maintenance/order", 1, true) then orders = orders + 1 end
    end
    assert.are.equal(1, orders)
    -- after 0, 1, 2, 3, 4.5 s of polling: max(1, elapsed / 2) up to 2 (random = 1: no jitter)
    local expected = { 1, 1, 1, 1.5, 2 }
    assert.are.equal(#expected, #clock.sleeps)
    for i, v in ipairs(expected) do assert.is_true(math.abs(clock.sleeps[i] - v) < 1e-9) end
  end)

  it("returns a pending error with the order id when max_wait runs out, and never orders again", function()
    local steps = { order_ok() }
    for _ = 1, 50 do steps[#steps + 1] = { body = fake.PENDING } end
    local c, transport, clock = new_client(steps, { poll_interval = 3 })
    local start = clock.time
    local report, err = c:query{ vin = VIN, max_wait = 10 }
    assert.is_nil(report)
    assert.are.equal("pending", err.kind)
    assert.are.equal("e192e8de8e6660****46f41b", err.order_id)
    assert.is_true(clock.time - start <= 10 + 1e-9)
    assert.is_true(clock.time - start >= 10 - 1e-9)
    assert.is_nil(transport.requests[2].url:find("/maintenance/order", 1, true))
  end)

  it("attaches the order id to an error met while polling", function()
    local c = new_client({ order_ok(), fake.json_message(401, "HMAC signature does not match.") })
    local _, err = c:query{ vin = VIN }
    assert.are.equal("auth", err.kind)
    assert.are.equal("e192e8de8e6660****46f41b", err.order_id)
  end)
end)

describe("errors", function()
  it("print as one line with the details", function()
    local c = new_client{ { status = 502, body = "<h1>Bad\nGateway</h1>" } }
    local _, err = c:create_order{ vin = VIN }
    local line = tostring(err)
    assert.is_nil(line:find("\n"))
    assert.matches("^http: HTTP 502: Bad Gateway", line)
    assert.matches("order outcome unknown", line)
    assert.matches("request %x+", line)
  end)

  it("never contain the secret key, even when the server echoes it", function()
    local c = new_client({ { status = 500, body = "<p>key=" .. SECRET .. "</p>" },
      fake.json_message(401, "HMAC signature does not match. " .. SECRET),
      { body = '{"code":"-1","message":"bad key ' .. SECRET .. '"}' } }, { retries = 0 })
    for _ = 1, 3 do
      local _, err = c:get_report("a1")
      assert.is_nil(tostring(err):find(SECRET, 1, true))
      for _, v in pairs(err) do
        if type(v) == "string" then assert.is_nil(v:find(SECRET, 1, true)) end
      end
    end
  end)
end)
