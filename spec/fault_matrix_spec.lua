-- The fault matrix: create_order and get_report against every fault the
-- sandbox (scenario VINs) and the raw fault server (spec/helpers/fault_server.py)
-- can produce, on 127.0.0.1 only. The run logic is shared with
-- tools/fault-matrix.lua (docs/fault-matrix.md); the expectations below are
-- written from api.md and issue 6, not read from the code or the generated file.
local mr = require "maintenance_report"
local fm = require "helpers.fault_matrix"
local fds = require "helpers.fds"

-- What the README's rules say for each fault, written from api.md and the
-- money rule, not read from the code or the generated table.
--   order:  kind, retryable, outcome ("not_placed": provably not bought;
--           "unknown": may have been charged), reached (order requests that
--           reached the server; nil: nothing listens, so none can be counted),
--           attempts (only a failure before the first byte is tried again:
--           ORDER_RETRIES = 2, so 3 attempts).
--   report: kind, retryable (a retryable read is retried once: 2 attempts).
local RETRIED = 1 + fm.ORDER_RETRIES

local function never_sent(kind)
  return { kind = kind, retryable = true, outcome = "not_placed", reached = nil, attempts = RETRIED }
end

-- The request left; the answer cannot tell whether the order was bought.
local function may_be_charged(kind)
  return { kind = kind, retryable = false, outcome = "unknown", reached = 1, attempts = 1 }
end

-- The gateway refused the request before the vendor saw it (api.md, gateway.md).
local function gateway_refused(kind, retryable, reached)
  return { kind = kind, retryable = retryable, outcome = "not_placed", reached = reached, attempts = 1 }
end

local function read(kind, retryable)
  return { kind = kind, retryable = retryable }
end

local EXPECTED = {
  refused = { order = never_sent("network"), report = read("network", true) },
  dns = { order = never_sent("network"), report = read("network", true) },
  -- No SYN-ACK, so no byte of the request can have left: on the allowlist.
  connect_timeout = { order = never_sent("timeout"), report = read("timeout", true) },
  read_timeout = { order = may_be_charged("timeout"), report = read("timeout", true) },
  reset_early = { order = may_be_charged("network"), report = read("network", true) },
  reset_headers = { order = may_be_charged("network"), report = read("network", true) },
  reset_body = { order = may_be_charged("network"), report = read("network", true) },
  truncated = { order = may_be_charged("network"), report = read("network", true) },
  -- An oversized answer is a protocol error; reading again would return the same.
  too_large = { order = may_be_charged("protocol"), report = read("protocol", false) },
  too_large_chunked = { order = may_be_charged("protocol"), report = read("protocol", false) },
  -- 5xx: the backend may have run the order; a read may be retried.
  http_500 = { order = may_be_charged("http"), report = read("http", true) },
  http_502 = { order = may_be_charged("http"), report = read("http", true) },
  http_504 = { order = may_be_charged("http"), report = read("http", true) },
  -- 429 comes from the gateway, before the backend; the sandbox counts arrivals.
  rate_limit = { order = gateway_refused("rate_limited", true, 1), report = read("rate_limited", true) },
  quota = { order = gateway_refused("quota_exceeded", false, 1), report = read("quota_exceeded", false) },
  -- The sandbox's gateway rejects bad credentials before counting an order.
  auth_wrong_key = { order = gateway_refused("auth", false, 0), report = read("auth", false) },
  auth_unknown_id = { order = gateway_refused("auth", false, 0), report = read("auth", false) },
  -- Some gateway versions answer format errors with 403 (api.md): still auth.
  forbidden_403_format = { order = gateway_refused("auth", false, 1), report = read("auth", false) },
  malformed_json = { order = may_be_charged("protocol"), report = read("protocol", false) },
  malformed_raw = { order = may_be_charged("protocol"), report = read("protocol", false) },
  slow_drip = { order = may_be_charged("timeout"), report = read("timeout", true) },
  truncated_sandbox = { order = may_be_charged("network"), report = read("network", true) },
  closed_mid_headers = { order = may_be_charged("network"), report = read("network", true) },
  empty_reply = { order = may_be_charged("network"), report = read("network", true) },
}
-- Each 401 text of api.md's table is an authentication failure, never retried.
for i = 1, 10 do
  EXPECTED["auth_" .. i] = { order = gateway_refused("auth", false, 1), report = read("auth", false) }
end
-- Valid JSON of the wrong shape: a 200 that may have placed an order nobody can read back.
for _, shape in ipairs{ "data_missing", "data_string", "detail_array", "detail_string", "top_array",
  "code_missing", "code_object", "ids_wrong_type" } do
  EXPECTED["shape_" .. shape] = { order = may_be_charged("protocol"), report = read("protocol", false) }
end
-- A status line libcurl cannot read arrives after the whole request did.
for _, shape in ipairs(fm.STATUS_LINES) do
  EXPECTED["status_" .. shape[1]] = { order = may_be_charged("protocol"), report = read("protocol", false) }
end

-- The faults the issues ask for, by id: the matrix must hold every one of them.
local REQUIRED = { "status_http09", "status_000", "status_099", "status_1000", "status_http30",
  "status_http17", "status_icy", "status_rtsp", "refused", "dns", "connect_timeout", "read_timeout",
  "reset_headers", "reset_body",
  "truncated", "too_large", "http_500", "http_502", "rate_limit", "quota", "malformed_json",
  "shape_data_missing", "shape_detail_array", "slow_drip",
  "auth_1", "auth_2", "auth_3", "auth_4", "auth_5", "auth_6", "auth_7", "auth_8", "auth_9", "auth_10" }

local CHARGE_WARNING = "check your orders before buying again"

describe("fault matrix", function()
  local env
  local results = {}
  lazy_setup(function() env = fm.start() end)
  lazy_teardown(function()
    if #results > 0 then
      io.write("\n")
      for line in fm.text(results):gmatch("[^\n]+") do io.write("# ", line, "\n") end
    end
    if env then env:stop() end
  end)

  it("has an expectation for every fault it runs, and runs every fault the issue lists", function()
    for _, fault in ipairs(fm.FAULTS) do
      assert.is_table(EXPECTED[fault.id], "no expectation for fault " .. fault.id)
    end
    for id in pairs(EXPECTED) do assert.is_table(fm.BY_ID[id], "expected fault not in the matrix: " .. id) end
    for _, id in ipairs(REQUIRED) do assert.is_table(fm.BY_ID[id], "required fault missing: " .. id) end
    -- the server's 401 bodies are api.md's ten messages, in the table's order
    assert.are.equal(10, #fm.AUTH_MESSAGES)
    assert.are.equal("HMAC signature does not match.", fm.AUTH_MESSAGES[1])
    assert.are.equal("HMAC apikey is invalid for API.", fm.AUTH_MESSAGES[10])
  end)

  local function check_common(r)
    assert.is_true(r.ok, "a Lua error escaped: " .. tostring(r.lua_error))
    assert.is_nil(r.value, "the call succeeded")
    assert.is_true(mr.errors.is(r.err), "err is not a typed error")
    local line = tostring(r.err)
    assert.is_string(line)
    assert.is_nil(line:find("[\r\n]"), "tostring(err) spans lines")
    assert.is_true(#r.err.message > 0)
  end

  for _, fault in ipairs(fm.FAULTS) do
    local expected = EXPECTED[fault.id] or { order = {}, report = {} }

    it("create_order: " .. fault.label .. " → " .. tostring(expected.order.kind), function()
      if not fm.available(env, fault) then
        pending("no reliable connect timeout on this loopback (the accept queue did not fill)")
        return
      end
      local r = fm.run_case(env, fault, "create_order")
      results[#results + 1] = r
      check_common(r)
      local want = expected.order
      assert.are.equal(want.kind, r.kind)
      assert.are.equal(want.retryable, r.retryable)
      assert.are.equal(want.outcome, r.outcome)
      if want.outcome == "unknown" then assert.truthy(r.err.message:find(CHARGE_WARNING, 1, true)) end
      -- Sent at most once; only a failure before sending is tried again.
      assert.are.equal(want.attempts, r.attempts)
      if want.reached ~= nil then assert.are.equal(want.reached, r.sends) end
      assert.is_true((r.sends or 0) <= 1)
      if want.attempts > 1 then assert.is_false(r.err.sent) end
    end)

    it("get_report: " .. fault.label .. " → " .. tostring(expected.report.kind), function()
      if not fm.available(env, fault) then
        pending("no reliable connect timeout on this loopback (the accept queue did not fill)")
        return
      end
      local r = fm.run_case(env, fault, "get_report")
      results[#results + 1] = r
      check_common(r)
      assert.are.equal(expected.report.kind, r.kind)
      assert.are.equal(expected.report.retryable, r.retryable)
      assert.is_nil(r.outcome) -- reading never buys anything
      assert.are.equal(r.order_id, r.err.order_id)
      assert.are.equal(expected.report.retryable and 1 + fm.REPORT_RETRIES or 1, r.attempts)
      if r.kind == "timeout" then
        -- The total timeout bounds a slow drip too: no attempt outlives it by much.
        assert.is_true(r.elapsed < r.attempts * (fm.TIMEOUT + 0.5), ("took %.2fs"):format(r.elapsed))
      end
    end)
  end

  it("bounds a slow drip by the total timeout, not the gap between bytes", function()
    local r = fm.run_case(env, fm.BY_ID.slow_drip, "create_order")
    assert.are.equal("timeout", r.kind)
    -- each byte comes 50 ms after the last, far inside any idle timeout
    assert.is_true(r.elapsed >= fm.TIMEOUT - 0.05, ("returned after %.2fs"):format(r.elapsed))
    assert.is_true(r.elapsed < fm.TIMEOUT + 0.5, ("returned after %.2fs"):format(r.elapsed))
  end)
end)

-- Every published gateway text (gateway.md), by the kind its wording says,
-- whichever of the two documented statuses it comes with. Written from
-- gateway.md: the gateway answers these itself, before the vendor, except the
-- ones about the backend (499 after forwarding, 5xx), whose order may have run.
local TEXT_KINDS = {
  auth = { "apikey_invalid", "xdate_required", "xdate_skew", "date_required", "id_or_signature_missing",
    "multiple_header", "header_required", "algorithm", "format", "headers_invalid", "cannot_verify", "mismatch",
    "auth_header_required", "oauth" },
  forbidden = { "no_usage_plan", "client_ip", "ip_denied", "params_fail", "header_param", "path_param",
    "query_param", "body_param", "form_content_type", "https_not_allowed", "http_not_allowed", "cors" },
  not_found = { "no_micro_service", "no_host", "get_host_fail", "method_unsupported", "no_api", "no_match_host",
    "no_match_env", "no_match_default_env", "no_match_uri", "no_match_method", "method_not_allowed" },
  rate_limited = { "rate_limit" }, quota_exceeded = { "quota" },
}
local EXPECTED_TEXT = {}
for kind, ids in pairs(TEXT_KINDS) do
  for _, id in ipairs(ids) do
    EXPECTED_TEXT[id] = { kind = kind, retryable = kind == "rate_limited", outcome = "not_placed" }
  end
end
for _, id in ipairs{ "api_config", "tsf_config", "mock_config", "cors_config" } do
  -- the gateway's own configuration: nothing was forwarded, and the same answer comes again
  EXPECTED_TEXT[id] = { kind = "http", retryable = false, outcome = "not_placed" }
end
EXPECTED_TEXT.client_closed = { kind = "network", retryable = true, outcome = "unknown" }
for _, id in ipairs{ "query_params_error", "internal_error", "bad_gateway", "gateway_timeout" } do
  EXPECTED_TEXT[id] = { kind = "http", retryable = true, outcome = "unknown" }
end

describe("fault matrix: every published gateway text", function()
  local env
  lazy_setup(function() env = fm.start() end)
  lazy_teardown(function() if env then env:stop() end end)

  it("covers every text of gateway.md with an expectation", function()
    assert.is_true(#fm.GATEWAY_FAULTS >= 50)
    for _, fault in ipairs(fm.GATEWAY_FAULTS) do
      assert.is_table(EXPECTED_TEXT[fault.text_id], "no expectation for " .. fault.text_id)
    end
  end)

  for _, fault in ipairs(fm.GATEWAY_FAULTS) do
    local want = EXPECTED_TEXT[fault.text_id] or {}
    it(("%s → %s"):format(fault.label, tostring(want.kind)), function()
      local o = fm.run_case(env, fault, "create_order")
      assert.is_true(o.ok, o.lua_error)
      assert.are.equal(fault.status, o.err.http_status)
      assert.are.equal(fault.text, o.err.code) -- the sandbox sent exactly the published text
      assert.are.equal(want.kind, o.kind)
      assert.are.equal(want.outcome, o.outcome)
      assert.are.equal(fault.text_id, o.err.gateway_text)
      assert.are.equal(1, o.attempts) -- an order is never sent twice
      assert.are.equal(0, o.sends)    -- the gateway answered; the vendor saw nothing
      local r = fm.run_case(env, fault, "get_report")
      assert.are.equal(want.kind, r.kind)
      assert.are.equal(want.retryable, r.retryable)
      assert.are.equal(want.retryable and 1 + fm.REPORT_RETRIES or 1, r.attempts)
    end)
  end
end)

describe("1,000 failing calls", function()
  local server
  lazy_setup(function() server = fm.start_fault_server() end)
  lazy_teardown(function() if server then server:stop() end end)

  local function open_fds() return fds.list() end

  local function new_client(endpoint)
    return assert(mr.new{ secret_id = fm.SECRET_ID, secret_key = fm.SECRET_KEY, endpoint = endpoint,
      timeout = 0.5, connect_timeout = 0.3, retries = 0, retry_base = 0.001 })
  end

  -- Fast faults: connection refused, 500, malformed JSON, reset; each on both operations.
  local FAST = {
    { "refused", "network" }, { "http_500", "http" }, { "malformed", "protocol" }, { "reset_early", "network" },
  }

  local function endpoint(fault, tag)
    if fault == "refused" then return ("http://127.0.0.1:%d/release"):format(server.refused_port) end
    return server.base .. "/f/" .. fault .. "/" .. tag
  end

  -- retry_unknown: each call asks for a new order on purpose, past the ledger's
  -- buy-once rule, so that every call reaches the server.
  it("leak no file descriptor and send each order once", function()
    local clients = {}
    for i, f in ipairs(FAST) do
      clients[i] = new_client(endpoint(f[1], "leak"))
      -- warm up: libcurl's lazily created state is not a leak
      clients[i]:create_order{ vin = fm.NORMAL_VIN, retry_unknown = true }
      clients[i]:get_report(fm.ORDER_ID)
    end
    local before, before_names = open_fds()
    local calls, wrong = 0, {}
    for round = 1, 1000 / (2 * #FAST) do
      for i, f in ipairs(FAST) do
        for _, op in ipairs{ "create_order", "get_report" } do
          local ok, value, err = pcall(function()
            if op == "create_order" then return clients[i]:create_order{ vin = fm.NORMAL_VIN, retry_unknown = true } end
            return clients[i]:get_report(fm.ORDER_ID)
          end)
          calls = calls + 1
          if not ok or value ~= nil or type(err) ~= "table" or err.kind ~= f[2] then
            wrong[#wrong + 1] = ("round %d %s %s: %s"):format(round, f[1], op, ok and tostring(err and err.kind)
              or tostring(value))
          end
        end
      end
    end
    local after, after_names = open_fds()
    for _, c in ipairs(clients) do c:close() end
    assert.are.equal(1000, calls)
    assert.are.same({}, wrong)
    assert.is_true(after <= before, ("%d descriptors before, %d after 1,000 failing calls\nbefore: %s\nafter: %s")
      :format(before, after, before_names, after_names))
    -- 125 rounds + the warm-up: every order reached the server exactly once per call
    local counts = server:counts()
    for _, f in ipairs(FAST) do
      if f[1] ~= "refused" then
        assert.are.equal(1000 / (2 * #FAST) + 1, math.floor(counts["/f/" .. f[1] .. "/leak/maintenance/order"]))
      end
    end
  end)

  it("leak no file descriptor across 100 clients created, failed and closed", function()
    local function one_round()
      for _, f in ipairs(FAST) do
        local c = new_client(endpoint(f[1], "clients"))
        local ok = pcall(c.get_report, c, fm.ORDER_ID)
        assert.is_true(ok)
        c:close()
      end
    end
    one_round()
    local before, before_names = open_fds()
    for _ = 1, 25 do one_round() end
    collectgarbage()
    local after, after_names = open_fds()
    assert.is_true(after <= before, ("%d descriptors before, %d after\nbefore: %s\nafter: %s")
      :format(before, after, before_names, after_names))
  end)
end)
