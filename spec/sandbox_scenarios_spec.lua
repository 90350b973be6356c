-- Scenario VINs: valid by check digit, and each one triggers its behaviour on
-- the phase it names, over raw HTTP.
local sandbox = require "maintenance_report_sandbox"
local http = require "helpers.sandbox_http"

-- Independent check-digit computation (GB 16735 / ISO 3779), used to judge
-- the sandbox's VINs; checked first against api.md's valid examples.
local VALUES = { A = 1, B = 2, C = 3, D = 4, E = 5, F = 6, G = 7, H = 8, J = 1, K = 2, L = 3, M = 4,
                 N = 5, P = 7, R = 9, S = 2, T = 3, U = 4, V = 5, W = 6, X = 7, Y = 8, Z = 9 }
local WEIGHTS = { 8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2 }
local function vin_ok(vin)
  if #vin ~= 17 or vin:find("[^0-9A-HJ-NPR-Z]") then return false end
  local sum = 0
  for i = 1, 17 do
    local c = vin:sub(i, i)
    sum = sum + (tonumber(c) or VALUES[c]) * WEIGHTS[i]
  end
  local r = sum % 11
  return vin:sub(9, 9) == (r == 10 and "X" or tostring(r))
end

local PENDING_CODE = "1204"

local function doc(res) return http.json(res.body) end

describe("scenario VINs", function()
  it("the spec's own check-digit test accepts api.md's examples and rejects a typo", function()
    for _, v in ipairs({ "1G4AH59H45G118341", "WBAXW1104J0X16755", "1G1BN53E6NW128495" }) do
      assert.is_true(vin_ok(v), v)
    end
    assert.is_false(vin_ok("1G4AH59H55G118341"))
    assert.is_false(vin_ok("SBL666666BM9D933"))
  end)

  it("are valid, distinct, recognisable and listed with a description", function()
    local seen, count = {}, 0
    for name, description in pairs(sandbox.scenarios) do
      count = count + 1
      assert.is_string(description)
      local vin = sandbox.scenario_vin(name)
      assert.is_true(vin_ok(vin), name .. " " .. vin)
      assert.are.equal("LSANDB0X", vin:sub(1, 8))
      assert.is_nil(seen[vin], vin)
      seen[vin] = name
      assert.are.equal(name, sandbox.scenario_of(vin).name)
      -- variants stay valid and distinct
      local v2 = sandbox.scenario_vin(name, 7)
      assert.is_true(vin_ok(v2), v2)
      assert.are_not.equal(vin, v2)
    end
    assert.is_true(count >= 25)
    assert.is_nil(sandbox.scenario_of("WBAXW1104J0X16755"))
  end)

  it("cover each fault on both the order and the report call", function()
    for _, fault in ipairs({ "service_error", "slow", "http_500", "http_502", "rate_limit", "quota",
                             "malformed_json", "truncated_body", "connection_closed" }) do
      assert.is_string(sandbox.scenarios["order_" .. fault], fault)
      assert.is_string(sandbox.scenarios["report_" .. fault], fault)
    end
    assert.is_string(sandbox.scenarios.no_records)
  end)
end)

describe("scenario behaviour", function()
  local sb

  lazy_setup(function()
    sb = assert(sandbox.start { pending_polls = 1 })
  end)

  lazy_teardown(function()
    if sb then sb:stop() end
  end)

  -- What each fault looks like to a client, checked on a response.
  local EXPECT = {
    service_error = function(res)
      assert.are.equal(200, res.status)
      assert.are.same({ code = "-1", message = "服务或其它异常", result = {} }, doc(res))
    end,
    http_500 = function(res)
      assert.are.equal(500, res.status)
      assert.truthy(res.body:find("<html>", 1, true))
      assert.is_nil(doc(res))
    end,
    http_502 = function(res)
      assert.are.equal(502, res.status)
      assert.truthy(res.body:find("<html>", 1, true))
    end,
    http_504 = function(res)
      assert.are.equal(504, res.status)
      assert.truthy(res.body:find("<html>", 1, true))
    end,
    rate_limit = function(res)
      assert.are.equal(429, res.status)
      assert.are.same({ message = "API rate limit exceeded." }, doc(res))
    end,
    quota = function(res)
      assert.are.equal(429, res.status)
      assert.are.same({ message = "API quota exceeded." }, doc(res))
    end,
    malformed_json = function(res)
      assert.are.equal(200, res.status)
      assert.are.equal(0, res.rc)
      assert.truthy(#res.body > 0)
      assert.is_nil(doc(res))
    end,
    truncated_body = function(res)
      -- curl: "transfer closed with N bytes remaining to read"
      assert.are.equal(18, res.rc, res.out)
      assert.are.equal(200, res.status)
      local declared = tonumber(res.headers["content-length"])
      assert.is_true(declared > #res.body)
      assert.truthy(#res.body > 0)
    end,
    connection_closed = function(res)
      assert.are_not.equal(0, res.rc, res.out)
      assert.are.equal("", res.body)
      assert.is_nil(res.raw_headers:find("\r\n\r\n", 1, true))
    end,
    empty_reply = function(res)
      assert.are.equal(52, res.rc, res.out) -- curl: "Empty reply from server"
      assert.are.equal("", res.raw_headers)
    end,
  }

  local faults = {}
  for fault in pairs(EXPECT) do faults[#faults + 1] = fault end
  table.sort(faults)
  for _, fault in ipairs(faults) do
    local check = EXPECT[fault]
    it("order_" .. fault .. " breaks the order call every time", function()
      local vin = sandbox.scenario_vin("order_" .. fault)
      check(http.order(sb, vin))
      check(http.order(sb, vin))
    end)

    it("order_" .. fault .. " with variant N breaks only the first N order calls", function()
      local vin = sandbox.scenario_vin("order_" .. fault, 1)
      check(http.order(sb, vin))
      local id = http.order_id(sb, vin)
      local res = http.report_ready(sb, id)
      assert.are.equal("1205", doc(res).data.detail.resultCode)
    end)

    it("report_" .. fault .. " lets the order succeed and breaks the report call", function()
      local vin = sandbox.scenario_vin("report_" .. fault)
      local id = http.order_id(sb, vin)
      check(http.report(sb, id))
      check(http.report(sb, id))
    end)

    it("report_" .. fault .. " with variant N breaks only the first N report calls of an order", function()
      local vin = sandbox.scenario_vin("report_" .. fault, 2)
      local id = http.order_id(sb, vin)
      check(http.report(sb, id))
      check(http.report(sb, id))
      local res, pending = http.report_ready(sb, id)
      assert.are.equal(1, pending) -- faults did not count as polls
      assert.are.equal("1205", doc(res).data.detail.resultCode)
    end)
  end

  it("counts every order attempt, faulty ones included, on arrival", function()
    assert(sb:reset())
    local vin = sandbox.scenario_vin("order_http_500")
    http.order(sb, vin)
    http.order(sb, sandbox.scenario_vin("order_connection_closed"))
    assert.are.equal(2, sb:stats().orders)
    assert.are.equal(1, sb:stats().orders_by_vin[vin])
  end)

  it("no_records answers the vendor's 1206 sample after the pending phase", function()
    local id = http.order_id(sb, sandbox.scenario_vin("no_records"))
    assert.are.equal(PENDING_CODE, doc(http.report(sb, id)).data.detail.resultCode)
    local expected = http.json(http.read_file("spec/fixtures/vendor_report_no_records.json"))
    assert.are.same(expected, doc(http.report(sb, id)))
  end)

  it("pending_polls N keeps the report pending for exactly N polls", function()
    local id = http.order_id(sb, sandbox.scenario_vin("pending_polls", 4))
    local _, pending = http.report_ready(sb, id)
    assert.are.equal(4, pending)
  end)

  it("order_slow answers after the delay, counted on arrival", function()
    assert(sb:reset())
    local vin = sandbox.scenario_vin("order_slow", 0.6)
    local res = http.order(sb, vin)
    assert.are.equal(200, res.status)
    assert.is_true(res.time >= 0.6, tostring(res.time))
    assert.are.equal("0", doc(res).code)
    -- A client that gives up early has still placed (and paid for) the order.
    local gave_up = http.order(sb, vin, { max_time = 0.2 })
    assert.are.equal(28, gave_up.rc) -- curl: operation timed out
    assert.are.equal(2, sb:stats().orders)
  end)

  it("report_slow delays the report call without blocking the (single) worker", function()
    local id = http.order_id(sb, sandbox.scenario_vin("report_slow", 0.8))
    local slow_url = sb.base_url .. "/maintenance_report/get?order_id=" .. id
    local fast_url = sb.base_url .. "/maintenance/order?vin=WBAXW1104J0X16755"
    local function curl_cmd(url, out)
      local parts = { "curl -s --noproxy '*' -o /dev/null -w '%{time_total}'" }
      for _, h in ipairs(http.signed_headers { id = sb.secret_id, key = sb.secret_key }) do
        parts[#parts + 1] = "-H " .. http.quote(h)
      end
      parts[#parts + 1] = http.quote(url) .. " > " .. out
      return table.concat(parts, " ")
    end
    local slow_out, fast_out = os.tmpname(), os.tmpname()
    -- Start the fast call only once the slow one has arrived (its read is
    -- counted before the delay); the admin poll loop is bounded, no sleeps.
    local reads = sb:stats().report_reads + 1
    local stats_url = string.format("http://127.0.0.1:%d/__sandbox/stats", sb.port)
    local wait_arrival = string.format(
      "i=0; until curl -s --noproxy '*' %s | grep -q '\"report_reads\":%d[,}]'; "
        .. "do i=$((i+1)); [ $i -gt 2000 ] && exit 3; done",
      http.quote(stats_url), reads)
    local _, rc = http.sh(curl_cmd(slow_url, slow_out) .. " & " .. wait_arrival .. "; "
      .. curl_cmd(fast_url, fast_out) .. "; wait")
    assert.are.equal(0, rc)
    local slow_time = tonumber(http.read_file(slow_out))
    local fast_time = tonumber(http.read_file(fast_out))
    os.remove(slow_out)
    os.remove(fast_out)
    assert.is_true(slow_time >= 0.8, tostring(slow_time))
    assert.is_true(fast_time < 0.8, tostring(fast_time))
  end)
end)
