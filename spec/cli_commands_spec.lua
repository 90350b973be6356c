-- The CLI's subcommands against the local sandbox (127.0.0.1 only), run as
-- `lua5.4 bin/maintenance-report …` subprocesses, as users run them.
local sandbox = require "maintenance_report_sandbox"
local cli = require "helpers.cli_run"
local parse_html = require "helpers.html_parse"

local VIN = "WBAXW1104J0X16755"

local function has_class(el, class)
  return (" " .. (el.attrs.class or "") .. " "):find(" " .. class .. " ", 1, true) ~= nil
end

describe("CLI subcommands against the sandbox", function()
  local sb, env
  local start, stop = cli.sandbox_hooks({ pending_polls = 1, secret_key = "cli-commands-spec-key" },
    function(s, e) sb, env = s, e end)
  lazy_setup(start)
  lazy_teardown(stop)
  before_each(function() assert(sb:reset()) end)

  local function run(args, extra_env)
    return cli.run(args, cli.merge(env, extra_env))
  end

  it("has --help on the program and on every subcommand, with the exit codes", function()
    local r = cli.run{ "--help" }
    assert.are.equal(0, r.code)
    for _, name in ipairs{ "query", "order", "report", "batch", "ledger", "sign", "sandbox" } do
      assert.truthy(r.out:find("\n%s+" .. name .. "%s"), name)
    end
    local expected = {
      query = { "--vin", "--engine-number", "--plate-number", "--format", "--output", "--timeout",
                "--poll-interval", "--max-wait", "--secret-id", "--secret-key-file", "--endpoint", "--source",
                "--cafile", "--insecure", "--verbose", "--ledger", "--reuse", "--fresh", "--retry-unknown" },
      order = { "--vin", "--format", "--ledger", "--retry-unknown" },
      report = { "--wait", "--format", "--max-wait" },
      batch = { "--output", "--ledger", "--reuse", "--fresh", "--concurrency", "--rate", "--max-wait", "--strict",
                "--unit-price", "--retry-unknown" },
      sign = { "--date", "--algorithm" },
      ledger = { "list", "show", "forget", "stats", "check" },
      ["ledger list"] = { "--ledger", "--format" },
      ["ledger forget"] = { "--yes", "--ledger" },
      ["ledger stats"] = { "--unit-price", "--format" },
    }
    for name, options in pairs(expected) do
      local words = {}
      for w in name:gmatch("%S+") do words[#words + 1] = w end
      words[#words + 1] = "--help"
      local h = cli.run(words)
      assert.are.equal(0, h.code, name)
      for _, opt in ipairs(options) do assert.truthy(h.out:find(opt, 1, true), name .. " " .. opt) end
      for _, code in ipairs{ 0, 1, 2, 3, 4, 5, 6, 7, 8, 130 } do
        assert.truthy(h.out:find("\n  " .. code .. "  "), name .. " exit " .. code)
      end
      assert.falsy(h.out:find("--secret-key ", 1, true), "no flag for the key itself")
    end
  end)

  it("query orders once, polls and prints the text report", function()
    local r = run{ "query", "--vin", VIN, "--poll-interval", "0.05" }
    assert.are.equal(0, r.code, r.err)
    assert.truthy(r.out:find("已出报告", 1, true))
    for _, label in ipairs{ "火烧", "水泡", "结构件", "重要部件", "外观件", "里程是否正常", "估算当前里程", "年均行驶里程" } do
      assert.truthy(r.out:find(label, 1, true), label)
    end
    assert.falsy(r.out:find("\27", 1, true), "no ANSI escapes when stdout is not a terminal")
    local stats = sb:stats()
    assert.are.equal(1, stats.orders)
    assert.are.equal(1, stats.orders_by_vin[VIN])
    assert.is_true(stats.report_reads >= 2) -- pending, then ready
  end)

  it("query --format json prints the normalized report as one JSON document", function()
    local r = run{ "query", "--vin", VIN, "--poll-interval", "0.05", "--format", "json" }
    assert.are.equal(0, r.code, r.err)
    local doc = cli.json(r.out)
    assert.are.equal("ready", doc.status)
    assert.truthy(doc.order_id:match("^%x+$"))
    assert.is_table(doc.vehicle)
    assert.is_table(doc.flags)
    assert.is_true(#doc.records > 0)
    assert.is_nil(doc.raw)
    assert.falsy(r.out:find("\\/", 1, true))
    assert.falsy(r.out:find("\\u", 1, true))
    local raw = run{ "report", doc.order_id, "--format", "json", "--raw" }
    assert.are.equal(0, raw.code, raw.err)
    assert.are.equal("0", cli.json(raw.out).raw.code) -- the vendor's envelope, as sent
  end)

  it("query --format html writes a page whose chart has one point per dated record", function()
    local dir = cli.tmpdir()
    local page_path = dir .. "/report.html"
    local r = run{ "query", "--vin", VIN, "--poll-interval", "0.05", "--format", "html", "--output", page_path }
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("", r.out)
    local doc = assert(parse_html(assert(cli.read(page_path))))
    local order_id
    for _, el in ipairs(doc.elements) do
      if has_class(el, "order-id") then order_id = el.text end
    end
    assert.truthy(order_id and order_id:match("^%x+$"))
    -- the same order as JSON, read independently (reading is free)
    local j = run{ "report", order_id, "--format", "json" }
    assert.are.equal(0, j.code, j.err)
    local report = cli.json(j.out)
    local dated = 0
    for _, rec in ipairs(report.records) do if rec.date then dated = dated + 1 end end
    local points, badges = 0, {}
    for _, el in ipairs(doc.elements) do
      -- the page has a wide chart and a narrow one (for phones): count the wide one's
      if has_class(el, "point") and has_class(el.parent.parent, "chart-wide") then points = points + 1 end
      if has_class(el, "badge") then badges[el.attrs["data-flag"]] = el end
    end
    assert.is_true(dated > 0)
    assert.are.equal(dated, points)
    for key, value in pairs(report.flags) do
      assert.truthy(badges[key], key)
      local risky = (key == "mileage_normal") ~= (value == true)
      assert.are.equal(risky, has_class(badges[key], "badge-risk"), key)
    end
    assert.are.equal(1, sb:stats().orders)
  end)

  it("highlights risky flags in color only when stdout is a terminal", function()
    if not cli.has_command("script") then
      pending("script(1) is not installed")
      return
    end
    local j = run{ "query", "--vin", VIN, "--poll-interval", "0.05", "--format", "json" }
    local flags = cli.json(j.out).flags
    -- under a pseudo-terminal (script(1)), as a user at a terminal sees it
    local p = io.popen("script -qfec " .. cli.quote(cli.command({ "query", "--vin", VIN, "--poll-interval", "0.05" },
      env)) .. " /dev/null")
    local out = p:read("*a")
    p:close()
    local labels = { fire = "火烧", flood = "水泡", structural = "结构件", major_component = "重要部件",
                     exterior = "外观件", mileage_normal = "里程是否正常" }
    local risky_seen = 0
    for key, label in pairs(labels) do
      local line = out:match("\n  " .. label .. " [^\n]*")
      assert.truthy(line, label)
      local risky = (key == "mileage_normal") ~= (flags[key] == true)
      if risky then risky_seen = risky_seen + 1 end
      assert.are.equal(risky, line:find("\27[1;31m", 1, true) ~= nil, label)
    end
    assert.is_true(risky_seen > 0, "the sample report should have a risky flag")
  end)

  it("query prints 无维修保养记录 and exits 0 for a VIN without records", function()
    local r = run{ "query", "--vin", sandbox.scenario_vin("no_records"), "--poll-interval", "0.05" }
    assert.are.equal(0, r.code, r.err)
    assert.truthy(r.out:find("无维修保养记录", 1, true))
  end)

  it("query at --max-wait exits 6 with the order id and a resume command that works", function()
    local vin = sandbox.scenario_vin("pending_polls", 6)
    local r = run{ "query", "--vin", vin, "--poll-interval", "0.05", "--max-wait", "0.05" }
    assert.are.equal(6, r.code, r.err)
    local order_id = r.out:match("(%x%x%x%x%x%x%x%x+)")
    assert.truthy(order_id, r.out)
    local command = r.err:match("(maintenance%-report report [^\n]+)")
    assert.truthy(command, r.err)
    assert.truthy(command:find(order_id, 1, true))
    assert.truthy(command:find("--wait", 1, true))
    -- run exactly that command (the program name is on PATH once installed)
    local words = {}
    for w in command:gmatch("%S+") do words[#words + 1] = w end
    table.remove(words, 1)
    local resumed = run(words)
    assert.are.equal(0, resumed.code, resumed.err)
    assert.truthy(resumed.out:find("已出报告", 1, true))
    assert.are.equal(1, sb:stats().orders) -- resuming never orders again
  end)

  it("order prints only the order id; --format json prints the order", function()
    local r = run{ "order", "--vin", VIN }
    assert.are.equal(0, r.code, r.err)
    assert.truthy(r.out:match("^%x+\n$"), r.out)
    local j = run{ "order", "--vin", VIN, "--format", "json" }
    assert.are.equal(0, j.code, j.err)
    local order = cli.json(j.out)
    assert.truthy(order.order_id:match("^%x+$"))
    assert.are_not.equal((r.out:gsub("%s", "")), order.order_id)
    assert.are.equal(2, sb:stats().orders)
  end)

  it("report prints the pending state (exit 6), then the report; --wait polls; it never orders", function()
    local order_id = run{ "order", "--vin", VIN }.out:gsub("%s", "")
    local first = run{ "report", order_id }
    assert.are.equal(6, first.code, first.err)
    assert.truthy(first.out:find("报告生成中", 1, true))
    assert.truthy(first.err:find("report " .. order_id .. " --wait", 1, true))
    local second = run{ "report", order_id, "--format", "json" }
    assert.are.equal(0, second.code, second.err)
    assert.are.equal("ready", cli.json(second.out).status)
    local other = run{ "order", "--vin", VIN }.out:gsub("%s", "")
    local waited = run{ "report", other, "--wait", "--poll-interval", "0.05" }
    assert.are.equal(0, waited.code, waited.err)
    assert.truthy(waited.out:find("已出报告", 1, true))
    assert.are.equal(2, sb:stats().orders)
  end)

  it("takes flags over the environment", function()
    local dir = cli.tmpdir()
    cli.write(dir .. "/key", sb.secret_key .. "\n")
    local r = run({ "query", "--vin", VIN, "--poll-interval", "0.05", "--endpoint", sb.base_url,
                    "--secret-id", sb.secret_id, "--secret-key-file", dir .. "/key" },
      { MAINTENANCE_REPORT_ENDPOINT = "http://127.0.0.1:9/release", MAINTENANCE_REPORT_SECRET_ID = "AKIDwrong",
        MAINTENANCE_REPORT_SECRET_KEY = "wrong-key-from-env" })
    assert.are.equal(0, r.code, r.err)
    -- and the environment alone is used when there are no flags
    local e = run({ "order", "--vin", VIN }, { MAINTENANCE_REPORT_SOURCE = "cli-spec" })
    assert.are.equal(0, e.code, e.err)
  end)

  it("sign prints X-Date, X-Source and an Authorization the gateway accepts", function()
    local r = run{ "sign" }
    assert.are.equal(0, r.code, r.err)
    local headers = {}
    for name, value in r.out:gmatch("([%w%-]+): ([^\n]+)") do headers[name] = value end
    assert.truthy(headers["X-Date"]:match("GMT$"))
    assert.are.equal("market", headers["X-Source"])
    assert.truthy(headers.Authorization:find('id="' .. sb.secret_id .. '"', 1, true))
    local curl = "curl -s -o /dev/null -w '%{http_code}' --noproxy '*'"
    for name, value in pairs(headers) do curl = curl .. " -H " .. cli.quote(name .. ": " .. value) end
    local p = io.popen(curl .. " " .. cli.quote(sb.base_url .. "/maintenance_report/get?order_id=x"))
    local status = p:read("*a")
    p:close()
    assert.are.equal("200", status)
    local p2 = io.popen(curl:gsub("signature=\"[^\"]*\"", 'signature="AAAA"') .. " "
      .. cli.quote(sb.base_url .. "/maintenance_report/get?order_id=x"))
    local bad = p2:read("*a")
    p2:close()
    assert.are.equal("401", bad)
  end)

  it("sign --date signs that date, matching an independent HMAC", function()
    local date = "Sun, 06 Nov 1994 08:49:37 GMT"
    for _, alg in ipairs{ { "hmac-sha1", "sha1" }, { "hmac-sha256", "sha256" } } do
      local r = run{ "sign", "--date", date, "--algorithm", alg[1] }
      assert.are.equal(0, r.code, r.err)
      assert.truthy(r.out:find("X-Date: " .. date, 1, true))
      local signing = "x-date: " .. date .. "\nx-source: market"
      local p = io.popen("printf '%s' " .. cli.quote(signing) .. " | openssl dgst -" .. alg[2] .. " -hmac "
        .. cli.quote(sb.secret_key) .. " -binary | base64")
      local expected = p:read("*l")
      p:close()
      assert.truthy(r.out:find('signature="' .. expected .. '"', 1, true), r.out)
      assert.truthy(r.out:find('algorithm="' .. alg[1] .. '"', 1, true))
    end
  end)
  it("sign --verbose prints the very string the signer HMAC'd (checked with openssl)", function()
    local cases = {
      { "hmac-sha1", "sha1", "x-date x-source" }, { "hmac-sha256", "sha256", "x-date x-source" },
      { "hmac-sha512", "sha512", "date source" },
    }
    for _, c in ipairs(cases) do
      local r = run({ "sign", "--verbose", "--algorithm", c[1], "--signed-headers", c[3] },
        { MAINTENANCE_REPORT_SOURCE = "verbose-spec" })
      assert.are.equal(0, r.code, r.err)
      local lines = {}
      for line in r.err:gmatch("%[sign%]   ([^\n]*)") do lines[#lines + 1] = line end
      local signing = table.concat(lines, "\n")
      assert.are.equal(select(2, c[3]:gsub("%S+", "")), #lines, r.err)
      local dir = cli.tmpdir()
      cli.write(dir .. "/sts", signing)
      local p = io.popen("openssl dgst -" .. c[2] .. " -hmac " .. cli.quote(sb.secret_key) .. " -binary "
        .. cli.quote(dir .. "/sts") .. " | base64 -w0")
      local expected = p:read("*a")
      p:close()
      assert.truthy(#expected > 20, expected)
      assert.truthy(r.out:find('signature="' .. expected .. '"', 1, true), c[1] .. "\n" .. signing .. "\n" .. r.out)
      assert.truthy(signing:find("verbose-spec", 1, true), signing)
    end
  end)
end)

describe("sign --verbose", function()
  after_each(function() cli.cleanup() end)

  it("prints the signing string the core returned, not one rebuilt from the headers", function()
    -- Loads the real core, but marks the signing string its sign returns, so that a
    -- copy rebuilt from the headers cannot pass for it.
    local init = [[
package.preload["maintenance_report.core"] = function(name)
  local path = assert(package.searchpath(name, package.cpath))
  local core = assert(package.loadlib(path, "luaopen_maintenance_report_core"))(name, path)
  local real = core.sign
  core.sign = function(o)
    local headers, sts = real(o)
    return headers, sts and (sts .. "\nmarker: from-the-signer")
  end
  return core
end]]
    local r = cli.run({ "sign", "--verbose" }, { LUA_INIT = init, MAINTENANCE_REPORT_SECRET_ID = "id",
      MAINTENANCE_REPORT_SECRET_KEY = "sign-verbose-spec-key" })
    assert.are.equal(0, r.code, r.err)
    assert.truthy(r.err:find("[sign]   x-source: market\n[sign]   marker: from-the-signer\n", 1, true), r.err)
    assert.truthy(r.out:find("^X%-Date: "), r.out)
  end)
end)
