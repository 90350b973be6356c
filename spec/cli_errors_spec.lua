-- Exit codes for every error class, one-line errors with hints, no tracebacks, no secrets.
local sandbox = require "maintenance_report_sandbox"
local cli = require "helpers.cli_run"
local errors = require "maintenance_report.errors"
local exit = require "maintenance_report.cli.exit"
local hints = require "maintenance_report.cli.hints"

local VIN = "WBAXW1104J0X16755"
local KEY = "cli-errors-spec-S3CRET"
local WRONG_KEY = "wrong-but-also-secret-K3Y"

-- Error output: one "maintenance-report: …" line, at most one "hint: …" line, nothing else.
local function assert_clean_error(r)
  local lines = {}
  for line in r.err:gmatch("[^\n]+") do lines[#lines + 1] = line end
  assert.is_true(#lines >= 1 and #lines <= 2, r.err)
  assert.truthy(lines[1]:find("^maintenance%-report: "), r.err)
  if lines[2] then assert.truthy(lines[2]:find("^hint: "), r.err) end
  assert.falsy(r.err:find("traceback", 1, true), r.err)
  assert.falsy(r.err:find("%.lua:%d+"), r.err)
end

describe("CLI errors", function()
  local sb, env
  local start, stop = cli.sandbox_hooks({ pending_polls = 0, secret_key = KEY },
    function(s, e) sb, env = s, e end)
  lazy_setup(start)
  lazy_teardown(stop)
  before_each(function() assert(sb:reset()) end)

  local function run(args, extra_env)
    return cli.run(args, cli.merge(env, extra_env))
  end

  local function assert_nothing_sent()
    local stats = sb:stats()
    assert.are.equal(0, stats.orders)
    assert.are.equal(0, stats.report_reads)
  end

  describe("exit 2: usage or invalid input, nothing sent", function()
    it("for a VIN with a wrong check digit", function()
      local r = run{ "query", "--vin", "WBAXW1104J0X16756" }
      assert.are.equal(2, r.code)
      assert_clean_error(r)
      assert.truthy(r.err:find("check digit", 1, true))
      assert_nothing_sent()
    end)

    it("for argparse's own errors: unknown option, missing --vin, bad number, bad choice", function()
      for _, args in ipairs{
        { "query", "--vin", VIN, "--bogus" }, { "query" }, { "order", "--vin", VIN, "--timeout", "soon" },
        { "query", "--vin", VIN, "--format", "xml" }, { "query", "--vin", VIN, "--poll-interval", "0" },
        { "batch" }, { "frobnicate" }, {},
      } do
        local r = run(args)
        assert.are.equal(2, r.code, table.concat(args, " ") .. "\n" .. r.err)
        assert.truthy(r.err:find("Usage:", 1, true))
      end
      assert_nothing_sent()
    end)

    it("without credentials, with a hint naming the variables", function()
      local r = cli.run{ "order", "--vin", VIN, "--endpoint", sb.base_url }
      assert.are.equal(2, r.code)
      assert_clean_error(r)
      assert.truthy(r.err:find("MAINTENANCE_REPORT_SECRET_KEY", 1, true))
      assert.truthy(r.err:find("--secret-key-file", 1, true))
      local missing = run({ "order", "--vin", VIN, "--secret-key-file", "/nonexistent/key" })
      assert.are.equal(2, missing.code)
      assert_nothing_sent()
    end)

    it("for an order id that cannot be valid", function()
      local r = run{ "report", "no such id!" }
      assert.are.equal(2, r.code)
      assert_clean_error(r)
      assert_nothing_sent()
    end)
  end)

  describe("exit 3: authentication", function()
    it("for a wrong key, with a hint about the key", function()
      local r = run({ "query", "--vin", VIN }, { MAINTENANCE_REPORT_SECRET_KEY = WRONG_KEY })
      assert.are.equal(3, r.code)
      assert_clean_error(r)
      assert.truthy(r.err:find("401", 1, true))
      assert.truthy(r.err:find("hint: .*secret key"), r.err)
      assert.are.equal(0, sb:stats().orders)
    end)

    it("for an unknown secret id, with a hint about the id", function()
      local r = run({ "order", "--vin", VIN }, { MAINTENANCE_REPORT_SECRET_ID = "AKIDnobody" })
      assert.are.equal(3, r.code)
      assert_clean_error(r)
      assert.truthy(r.err:find("hint: .*secret id"), r.err)
    end)
  end)

  describe("exit 4: network, TLS, timeout", function()
    it("when nothing listens", function()
      local r = run{ "order", "--vin", VIN, "--endpoint", "http://127.0.0.1:9/release" }
      assert.are.equal(4, r.code)
      assert_clean_error(r)
      assert.truthy(r.err:find("hint: .*endpoint"), r.err)
    end)

    it("for TLS trouble, with a hint for its cause (here https:// to a plain-HTTP port)", function()
      local r = run{ "order", "--vin", VIN, "--endpoint", (sb.base_url:gsub("^http:", "https:")) }
      assert.are.equal(4, r.code)
      assert_clean_error(r)
      assert.truthy(r.err:find("tls", 1, true))
      assert.truthy(r.err:find("hint: the port does not speak TLS", 1, true), r.err)
    end)

  end)

  describe("exit 7: the order outcome is unknown (spec/cli_ledger_unknown_spec.lua has every cause)", function()
    it("for a timeout on the order, warning that it may have been charged", function()
      local vin = sandbox.scenario_vin("order_slow", 2)
      local r = run{ "query", "--vin", vin, "--timeout", "0.3" }
      assert.are.equal(7, r.code)
      assert_clean_error(r)
      assert.truthy(r.err:find("hint: .*do NOT order"), r.err)
      assert.are.equal(1, sb:stats().orders) -- it did arrive: hence the warning
    end)

    it("for the vendor's service error on the order (it may have been placed)", function()
      local r = run{ "query", "--vin", sandbox.scenario_vin("order_service_error") }
      assert.are.equal(7, r.code, r.err)
      assert_clean_error(r)
    end)

    it("for an HTTP 500 on the order, warning that it may have been charged", function()
      local r = run{ "order", "--vin", sandbox.scenario_vin("order_http_500") }
      assert.are.equal(7, r.code)
      assert_clean_error(r)
      assert.truthy(r.err:find("hint: .*do NOT order"), r.err)
    end)
  end)

  describe("exit 5: API and business errors", function()
    it("for the vendor's service error on a report read, naming the order", function()
      local r = run{ "query", "--vin", sandbox.scenario_vin("report_service_error"), "--poll-interval", "0.05" }
      assert.are.equal(5, r.code, r.err)
      assert_clean_error(r)
      assert.truthy(r.err:find("order %x+"), r.err)
    end)

    it("for quota exhausted, with a hint to buy quota", function()
      local r = run{ "order", "--vin", sandbox.scenario_vin("order_quota") }
      assert.are.equal(5, r.code)
      assert_clean_error(r)
      assert.truthy(r.err:find("hint: .*buy more quota"), r.err)
    end)

    it("for the gateway's rate limit", function()
      local r = run{ "order", "--vin", sandbox.scenario_vin("order_rate_limit") }
      assert.are.equal(5, r.code)
      assert_clean_error(r)
      assert.truthy(r.err:find("429", 1, true))
    end)


    it("for a report read failing after the order, pointing at the free resume command", function()
      local r = run{ "query", "--vin", sandbox.scenario_vin("report_quota"), "--poll-interval", "0.05" }
      assert.are.equal(5, r.code)
      assert_clean_error(r)
      local order_id = r.err:match("order (%x+)")
      assert.truthy(order_id, r.err)
      assert.truthy(r.err:find("report " .. order_id .. " --wait", 1, true), r.err)
    end)
  end)

  it("exits 1 with one line, not a traceback, on an internal error", function()
    local dir = cli.tmpdir()
    -- a broken dependency stands in for a bug
    cli.write(dir .. "/cjson.lua", 'error("simulated bug\\nsecond line of a traceback")\n')
    local r = run({ "order", "--vin", VIN }, { LUA_PATH = dir .. "/?.lua;;" })
    assert.are.equal(1, r.code)
    assert.truthy(r.err:find("^maintenance%-report: internal error: .*simulated bug"), r.err)
    assert.falsy(r.err:find("traceback", 1, true), r.err)
    assert.falsy(r.err:find("second line", 1, true), r.err)
    assert_nothing_sent()
  end)

  describe("MAINTENANCE_REPORT_DEBUG", function()
    -- the same broken dependency: an internal error whose message has a second line
    local function internal_error(debug_value)
      local dir = cli.tmpdir()
      cli.write(dir .. "/cjson.lua", 'error("simulated bug\\nsecond line of a traceback")\n')
      return run({ "order", "--vin", VIN }, { LUA_PATH = dir .. "/?.lua;;", MAINTENANCE_REPORT_DEBUG = debug_value })
    end

    it("means off for '', 0, false, no and off: one line, no traceback", function()
      for _, value in ipairs{ "", "0", "false", "no", "off", "OFF", " 0 " } do
        local r = internal_error(value)
        assert.are.equal(1, r.code)
        local label = "'" .. value .. "': " .. r.err
        assert.truthy(r.err:find("^maintenance%-report: internal error: .*simulated bug\n$"), label)
        assert.falsy(r.err:find("second line", 1, true), value)
      end
    end)

    it("means on for anything else: the whole message and a traceback", function()
      for _, value in ipairs{ "1", "yes", "true", "on" } do
        local r = internal_error(value)
        assert.are.equal(1, r.code)
        assert.truthy(r.err:find("second line of a traceback", 1, true), value .. ": " .. r.err)
        assert.truthy(r.err:find("stack traceback", 1, true), value .. ": " .. r.err)
      end
    end)

    it("is decided by one function", function()
      local function with(value) return exit.debug_enabled(function() return value end) end
      for _, off in ipairs{ false, "", "0", "false", "no", "off", "False", " off " } do
        assert.is_false(with(off or nil), tostring(off))
      end
      for _, on in ipairs{ "1", "2", "yes", "true", "on", "debug" } do assert.is_true(with(on), on) end
    end)
  end)

  it("hints at the clock for an out-of-date x-date and at the key for a bad signature", function()
    local date = errors.new("auth", "HMAC signature cannot be verified, the x-date header is out of date for "
      .. "HMAC Authentication.", { http_status = 401 })
    assert.truthy(hints.hint(date):find("clock", 1, true))
    local sig = errors.new("auth", "HMAC signature does not match.", { http_status = 401 })
    assert.truthy(hints.hint(sig):find("secret key", 1, true))
    local forbidden = errors.new("forbidden", "Found no validate usage plan.", { http_status = 403 })
    assert.are.equal(3, exit.code(forbidden))
    assert.truthy(hints.hint(forbidden):find("usage plan", 1, true))
    local pending = errors.new("pending", "still pending", { order_id = "abc123" })
    assert.are.equal(6, exit.code(pending))
    assert.truthy(hints.hint(pending):find("maintenance-report report abc123 --wait", 1, true))
  end)

  it("never prints a secret key, even with --verbose and on failures", function()
    local dir = cli.tmpdir()
    cli.write(dir .. "/in.csv", VIN .. "\n" .. sandbox.scenario_vin("no_records") .. "\n")
    cli.write(dir .. "/key", KEY .. "\n")
    local runs = {
      { { "query", "--vin", VIN, "--verbose", "--poll-interval", "0.05" } },
      { { "query", "--vin", VIN, "--verbose", "--format", "json", "--poll-interval", "0.05" } },
      { { "query", "--vin", VIN, "--verbose", "--format", "html", "--poll-interval", "0.05" } },
      { { "order", "--vin", VIN, "--verbose", "--format", "json" } },
      { { "sign", "--verbose" } },
      { { "sign", "--verbose", "--secret-key-file", dir .. "/key", "--algorithm", "hmac-sha512" } },
      { { "batch", dir .. "/in.csv", "--verbose", "--poll-interval", "0.05", "--rate", "50" } },
      { { "query", "--vin", VIN, "--verbose" }, { MAINTENANCE_REPORT_SECRET_KEY = WRONG_KEY } },
      { { "order", "--vin", VIN, "--verbose", "--endpoint", "http://127.0.0.1:9/release" } },
      { { "query", "--vin", sandbox.scenario_vin("order_http_500"), "--verbose" } },
    }
    for _, spec in ipairs(runs) do
      local r = run(spec[1], spec[2])
      local all = r.out .. r.err
      assert.truthy(#all > 0)
      assert.falsy(all:find(KEY, 1, true), table.concat(spec[1], " "))
      assert.falsy(all:find(WRONG_KEY, 1, true), table.concat(spec[1], " "))
    end
    -- --verbose did add request ids and timings
    local v = run{ "order", "--vin", VIN, "--verbose" }
    assert.truthy(v.err:find("request %x+"), v.err)
    assert.truthy(v.err:find("%d+ ms"), v.err)
  end)
end)
