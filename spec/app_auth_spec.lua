-- App-key auth (应用认证, gateway.md): the string to sign, PathAndParameters,
-- hmac-sha1/hmac-sha256, an explicit Accept, the server's echo of its string to
-- sign. Known answers come from the openssl CLI; the sandbox checks app auth
-- with its own code and nginx's HMAC.
local mr = require "maintenance_report"
local gateway = require "maintenance_report.gateway"
local fake = require "helpers.fake_transport"
local shell = require "helpers.shell"
local cli = require "helpers.cli_run"
local sandbox = require "maintenance_report_sandbox"
local quote = require("maintenance_report_sandbox.shell").quote

local APP_KEY, APP_SECRET = "AKIDapp0123456789", "app-secret-5e4d3c2b1a"
local VIN = "WBAXW1104J0X16755"
local DATE_EPOCH = 1764547200 -- 2025-12-01 00:00:00 UTC
local DATE = "Mon, 01 Dec 2025 00:00:00 GMT"

-- base64(HMAC(key, data)) from the openssl CLI, never from this project's C.
local function openssl_hmac(digest, key, data)
  local dir = cli.tmpdir()
  shell.write_file(dir .. "/sts", data)
  local out = shell.run(("openssl dgst -%s -hmac %s -binary < %s | base64 -w0"):format(digest, quote(key),
    quote(dir .. "/sts")))
  return (out:gsub("%s+$", ""))
end

local function sent_headers(opts, call)
  local t = fake.transport{ { status = 200, body = '{"code":"-1","message":"x"}' } }
  local o = { secret_id = APP_KEY, secret_key = APP_SECRET, auth = "app", transport = t, retries = 0,
    wall_clock = function() return DATE_EPOCH end, endpoint = "https://example.invalid/release" }
  for k, v in pairs(opts or {}) do o[k] = v end
  local c = assert(mr.new(o))
  call(c)
  c:close()
  return t.requests[1].headers, t.requests[1].url
end

describe("app auth", function()
  teardown(function() cli.cleanup() end)

  it("builds PathAndParameters without the stage, sorted, with a bare key for an empty value", function()
    assert.are.equal("/maintenance/order?engine_number&plate_number&vin=" .. VIN,
      gateway.path_and_parameters("/maintenance/order", { "vin", VIN, "engine_number", "", "plate_number", "" }))
    assert.are.equal("/p?a=1&b&c=3", gateway.path_and_parameters("/p", { "c", "3", "a", "1", "b", "" }))
    assert.are.equal("/p", gateway.path_and_parameters("/p", {}))
  end)

  it("signs exactly gateway.md's string to sign, with openssl's HMAC-SHA256 and HMAC-SHA1", function()
    -- Written from gateway.md: headers, method, Accept, Content-Type, Content-MD5 (empty for GET), path.
    local sts = "x-date: " .. DATE .. "\nGET\napplication/json\n\n\n/maintenance_report/get?order_id=abc123"
    for _, alg in ipairs{ { "hmac-sha256", "sha256" }, { "hmac-sha1", "sha1" } } do
      for _, endpoint in ipairs{ "https://example.invalid/release", "https://example.invalid/test",
        "https://example.invalid/prepub", "https://example.invalid" } do
        local headers, url = sent_headers({ algorithm = alg[1], endpoint = endpoint },
          function(c) c:get_report("abc123") end)
        assert.are.equal(endpoint .. "/maintenance_report/get?order_id=abc123", url)
        assert.are.equal(DATE, headers["X-Date"])
        assert.are.equal("application/json", headers.Accept) -- sent, not left to a */* default
        assert.are.equal(('hmac id="%s", algorithm="%s", headers="x-date", signature="%s"'):format(
          APP_KEY, alg[1], openssl_hmac(alg[2], APP_SECRET, sts)), headers.Authorization)
      end
    end
  end)

  it("signs an order's parameters sorted, empty ones as bare keys, values as before URL encoding", function()
    local plate = "京A12345"
    local headers, url = sent_headers({ algorithm = "hmac-sha256" },
      function(c) c:create_order{ vin = VIN, plate_number = plate } end)
    assert.truthy(url:find("plate_number=%E4%BA%ACA12345", 1, true))
    local sts = "x-date: " .. DATE .. "\nGET\napplication/json\n\n\n/maintenance/order?engine_number&plate_number="
      .. plate .. "&vin=" .. VIN
    assert.truthy(headers.Authorization:find(openssl_hmac("sha256", APP_SECRET, sts), 1, true))
    assert.is_nil(headers["X-Source"])
  end)

  it("signs the Accept it sends, whatever it is", function()
    local headers = sent_headers({ algorithm = "hmac-sha256", accept = "application/json; charset=utf-8" },
      function(c) c:get_report("abc123") end)
    local sts = "x-date: " .. DATE .. "\nGET\napplication/json; charset=utf-8\n\n\n"
      .. "/maintenance_report/get?order_id=abc123"
    assert.are.equal("application/json; charset=utf-8", headers.Accept)
    assert.truthy(headers.Authorization:find(openssl_hmac("sha256", APP_SECRET, sts), 1, true))
  end)

  it("refuses the algorithms app auth does not have, and an unknown mode, before sending", function()
    local c, err = mr.new{ secret_id = APP_KEY, secret_key = APP_SECRET, auth = "app", algorithm = "hmac-sha512" }
    assert.is_nil(c)
    assert.are.equal("invalid_input", err.kind)
    c, err = mr.new{ secret_id = APP_KEY, secret_key = APP_SECRET, auth = "token" }
    assert.is_nil(c)
    assert.truthy(err.message:find("'key'", 1, true))
  end)

  it("shows where the server's echoed string to sign first differs from ours", function()
    local ours = "x-date: D\nGET\napplication/json\n\n\n/p?a=1"
    assert.truthy(gateway.first_difference(ours, "x-date: D#GET#*/*###/p?a=1"):find(
      'byte 15, line 3: server "*/*###/p?a=1", ours "application/json###/p?a=1"', 1, true))
    assert.truthy(gateway.first_difference(ours, ours:gsub("\n", "#")):find("equals ours", 1, true))
  end)
end)

describe("app auth against the sandbox", function()
  local sb
  lazy_setup(function()
    sb = assert(sandbox.start{ pending_polls = 0, secret_id = APP_KEY, secret_key = APP_SECRET })
    local out = shell.run(("curl -sS --noproxy '*' -X POST %s"):format(
      quote(("http://127.0.0.1:%d/__sandbox/gateway?auth=app"):format(sb.port))))
    assert(out:find('"auth":"app"', 1, true), out)
  end)
  lazy_teardown(function()
    if sb then sb:stop() end
    cli.cleanup()
  end)

  local function client(extra)
    local o = { secret_id = APP_KEY, secret_key = APP_SECRET, endpoint = sb.base_url, retries = 0 }
    for k, v in pairs(extra or {}) do o[k] = v end
    return assert(mr.new(o))
  end

  it("accepts app-signed orders and reads with hmac-sha256 and hmac-sha1, any parameters", function()
    for _, alg in ipairs{ "hmac-sha256", "hmac-sha1" } do
      local c = client{ auth = "app", algorithm = alg }
      local report, err = c:query{ vin = VIN, plate_number = "京A12345", max_wait = 10, poll_interval = 0.05 }
      c:close()
      assert.is_nil(err, tostring(err))
      assert.are.equal("ready", report.status)
    end
  end)

  it("answers a key-pair signature with its own string to sign, and the client shows the first difference", function()
    local c = client{ auth = "key" }
    local _, err = c:get_report("abc123")
    c:close()
    assert.are.equal("auth", err.kind)
    assert.are.equal("mismatch", err.gateway_text)
    assert.truthy(err.code:find("Server StringToSign:x-date: ", 1, true))
    assert.truthy(err.code:find("#GET#*/*###/maintenance_report/get?order_id=abc123", 1, true)) -- curl's Accept
    assert.truthy(err.string_to_sign_diff:find("differs from ours at byte", 1, true))
    assert.is_nil(tostring(err):find("\n"))
  end)

  it("says the strings agree when only the secret is wrong", function()
    local c = client{ auth = "app", secret_key = "not-the-app-secret" }
    local _, err = c:get_report("abc123")
    c:close()
    assert.are.equal("mismatch", err.gateway_text)
    assert.truthy(err.message:find("equals ours", 1, true), err.message)
  end)

  it("is chosen on the command line by --auth app or $MAINTENANCE_REPORT_AUTH", function()
    local env = cli.sandbox_env(sb,
      { MAINTENANCE_REPORT_SECRET_ID = APP_KEY, MAINTENANCE_REPORT_SECRET_KEY = APP_SECRET })
    local r = cli.run({ "query", "--vin", VIN, "--auth", "app", "--poll-interval", "0.05" }, env)
    assert.are.equal(0, r.code, r.err)
    -- an order id nobody has: past the gateway, the vendor's own error (exit 5), not a 401 (exit 3)
    r = cli.run({ "report", "abc123", "--auth", "app" }, env)
    assert.are.equal(5, r.code, r.err)
    r = cli.run({ "report", "abc123" }, cli.merge(env, { MAINTENANCE_REPORT_AUTH = "app" }))
    assert.are.equal(5, r.code, r.err)
    r = cli.run({ "report", "abc123" }, env) -- key-pair signing: the sandbox wants app auth
    assert.are.equal(3, r.code)
    assert.truthy(r.err:find("hint: .*--auth key or app"), r.err)
    r = cli.run({ "report", "abc123" }, cli.merge(env, { MAINTENANCE_REPORT_AUTH = "token" }))
    assert.are.equal(2, r.code)
  end)
end)
