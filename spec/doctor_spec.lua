-- `maintenance-report doctor` against the sandbox: a good key, a wrong key, a
-- skewed clock (injected), a TLS failure and a refused port. One line per
-- check, a non-zero exit on a failure, and never an order.
local sandbox = require "maintenance_report_sandbox"
local cli = require "helpers.cli_run"
local certs = require "helpers.certs"
local doctor = require "maintenance_report.cli.doctor"

local KEY = "doctor-spec-S3CRET"

-- check name → { verdict, detail } from doctor's lines.
local function checks(text)
  local out, order = {}, {}
  for line in text:gmatch("[^\n]+") do
    local name, verdict, detail = line:match("^(%S+)%s+(%S+)%s+(.*)$")
    if name then
      out[name] = { verdict, detail }
      order[#order + 1] = name
    end
  end
  return out, order
end

describe("doctor", function()
  local sb, env, tls
  lazy_setup(function()
    tls = certs.make()
    sb = assert(sandbox.start{ pending_polls = 0, secret_key = KEY, tls = tls.server })
    env = cli.sandbox_env(sb)
  end)
  lazy_teardown(function()
    if sb then sb:stop() end
    if tls then certs.remove(tls) end
    cli.cleanup()
  end)
  before_each(function() assert(sb:reset()) end)

  local function assert_free()
    assert.are.equal(0, sb:stats().orders)
  end

  it("passes every check with a good key, at no cost", function()
    local r = cli.run({ "doctor" }, env)
    assert.are.equal(0, r.code, r.out .. r.err)
    local c, order = checks(r.out)
    assert.are.same({ "dns", "connect", "tls", "clock", "credentials" }, order)
    for _, name in ipairs(order) do assert.are.equal("ok", c[name][1], name .. ": " .. c[name][2]) end
    assert.truthy(c.credentials[2]:find(sb.secret_id, 1, true))
    assert.falsy((r.out .. r.err):find(KEY, 1, true))
    assert_free()
  end)

  it("fails the credentials with a wrong key: exit 3 and the key hint", function()
    local r = cli.run({ "doctor" }, cli.merge(env, { MAINTENANCE_REPORT_SECRET_KEY = "not-the-key" }))
    assert.are.equal(3, r.code)
    local c = checks(r.out)
    assert.are.equal("ok", c.clock[1])
    assert.are.equal("FAIL", c.credentials[1])
    assert.truthy(c.credentials[2]:find("does not match.*check the secret key"), c.credentials[2])
    assert_free()
  end)

  it("fails the clock when it is off by more than 15 minutes, and still checks the key", function()
    local lines = {}
    local key_file = cli.tmpdir() .. "/key"
    cli.write(key_file, KEY)
    local code = doctor.run({ secret_id = sb.secret_id, secret_key_file = key_file, endpoint = sb.base_url },
      { wall_clock = function() return os.time() - 1200 end, write = function(l) lines[#lines + 1] = l end })
    local c = checks(table.concat(lines, "\n"))
    assert.are.equal(3, code)
    assert.are.equal("FAIL", c.clock[1])
    assert.truthy(c.clock[2]:find("the local clock is 1[12]%d%d s behind the gateway's"), c.clock[2])
    assert.are.equal("ok", c.credentials[1], c.credentials[2])
    assert_free()
  end)

  it("fails TLS for a CA it does not know, and passes it with --cafile", function()
    local r = cli.run({ "doctor", "--endpoint", sb.tls_base_url }, env)
    assert.are.equal(4, r.code)
    local c = checks(r.out)
    assert.are.same({ "ok", "ok", "FAIL" }, { c.dns[1], c.connect[1], c.tls[1] })
    assert.truthy(c.tls[2]:find("--cafile", 1, true), c.tls[2])
    assert.are.equal("skip", c.credentials[1])
    r = cli.run({ "doctor", "--endpoint", sb.tls_base_url, "--cafile", tls.ca }, env)
    assert.are.equal(0, r.code, r.out .. r.err)
    assert.are.equal("certificate verified", checks(r.out).tls[2])
    assert_free()
  end)

  it("fails the connection on a refused port", function()
    local r = cli.run({ "doctor", "--endpoint", "http://127.0.0.1:9/release" }, env)
    assert.are.equal(4, r.code)
    local c = checks(r.out)
    assert.are.same({ "ok", "FAIL", "skip", "skip", "skip" },
      { c.dns[1], c.connect[1], c.tls[1], c.clock[1], c.credentials[1] })
  end)

  it("fails DNS for a name that cannot resolve", function()
    local r = cli.run({ "doctor", "--endpoint", "http://" .. ("a"):rep(64) .. ".invalid/release" }, env)
    assert.are.equal(4, r.code)
    assert.are.equal("FAIL", checks(r.out).dns[1])
  end)

  it("says in its help that it costs nothing", function()
    local r = cli.run({ "doctor", "--help" }, env)
    assert.are.equal(0, r.code)
    assert.truthy(r.out:find("free call", 1, true))
  end)
end)
