-- Two CLI errors that misled (issue 15, issue 16 item 6): the TLS hint said
-- "pass --cafile" for every TLS failure, and a non-ASCII --source was sent and
-- refused as a bad key. Each case here failed before the fix.
local mr = require "maintenance_report"
local sandbox = require "maintenance_report_sandbox"
local cli = require "helpers.cli_run"
local certs = require "helpers.certs"

local VIN = "WBAXW1104J0X16755"

local function hint_of(r)
  return r.err:match("\nhint: ([^\n]*)") or ""
end

describe("the TLS hint matches the cause", function()
  local sb, env, tls
  lazy_setup(function()
    tls = certs.make()
    -- a certificate for other.example only, from a CA the specs can hand over with --cafile
    sb = assert(sandbox.start{ pending_polls = 0, tls = tls.other })
    env = cli.sandbox_env(sb)
  end)
  lazy_teardown(function()
    if sb then sb:stop() end
    if tls then certs.remove(tls) end
    cli.cleanup()
  end)

  it("names the host-name mismatch when --cafile is already given", function()
    local r = cli.run({ "report", "abc123", "--endpoint", sb.tls_base_url, "--cafile", tls.ca }, env)
    assert.are.equal(4, r.code)
    local hint = hint_of(r)
    assert.truthy(hint:find("does not name the host", 1, true), r.err)
    assert.falsy(hint:find("pass --cafile", 1, true), r.err)
  end)

  it("says the port speaks plain HTTP for https:// to it", function()
    local r = cli.run({ "report", "abc123", "--endpoint", (sb.base_url:gsub("^http:", "https:")) }, env)
    assert.are.equal(4, r.code)
    local hint = hint_of(r)
    assert.truthy(hint:find("does not speak TLS", 1, true), r.err)
    assert.truthy(hint:find("http://", 1, true), r.err)
  end)

  it("points at --cafile for a CA it does not know", function()
    local r = cli.run({ "report", "abc123", "--endpoint", sb.tls_base_url }, env)
    assert.are.equal(4, r.code)
    assert.truthy(hint_of(r):find("--cafile FILE", 1, true), r.err)
  end)
end)

describe("source must be printable ASCII", function()
  local sb
  lazy_setup(function() sb = assert(sandbox.start{ pending_polls = 0 }) end)
  lazy_teardown(function()
    if sb then sb:stop() end
    cli.cleanup()
  end)

  it("refuses --source 市场 before sending anything (exit 2, not a 401 'check the key')", function()
    local dir = cli.tmpdir()
    local r = cli.run({ "query", "--vin", VIN, "--source", "市场" },
      cli.sandbox_env(sb, { MAINTENANCE_REPORT_LEDGER = dir .. "/ledger" }))
    assert.are.equal(2, r.code, r.err)
    assert.truthy(r.err:find("source contains a non-ASCII character", 1, true), r.err)
    assert.falsy(r.err:find("secret key", 1, true), r.err)
    local stats = sb:stats()
    assert.are.same({ 0, 0 }, { stats.orders, stats.report_reads })
  end)

  it("refuses control characters and edge spaces, takes printable ASCII", function()
    for _, bad in ipairs{ "市场", "a\tb", "line\r\nX-Evil: 1", " market", "market ", "caf\xC3\xA9", "" } do
      local c, err = mr.new{ secret_id = "AKIDx", secret_key = "k", source = bad }
      assert.is_nil(c, bad)
      assert.are.same({ "invalid_input", "source" }, { err.kind, err.field })
    end
    for _, good in ipairs{ "market", "my-app/1.0 (fleet)", "~!@#$%^&*()" } do
      local c = assert(mr.new{ secret_id = "AKIDx", secret_key = "k", source = good })
      c:close()
    end
  end)
end)
