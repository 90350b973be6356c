-- TLS: the client verifies the server's certificate and host name by default
-- (api.md: the vendor samples switch the checks off; this project must not).
-- The sandbox serves HTTPS on 127.0.0.1 with certificates made at test time
-- (spec/helpers/certs.lua): a throwaway CA, a server certificate for
-- localhost/127.0.0.1, one for another host name and a self-signed one.
local mr = require "maintenance_report"
local sandbox = require "maintenance_report_sandbox"
local certs_lib = require "helpers.certs"

local VIN = "WBAXW1104J0X16755"
local LUA = os.getenv("MR_SPEC_LUA") or "lua5.4"

describe("TLS", function()
  local certs, sb, other, selfsigned
  lazy_setup(function()
    certs = certs_lib.make()
    sb = assert(sandbox.start{ tls = certs.server, pending_polls = 0 })
    other = assert(sandbox.start{ tls = certs.other })
    selfsigned = assert(sandbox.start{ tls = certs.selfsigned })
  end)
  lazy_teardown(function()
    for _, s in ipairs{ sb, other, selfsigned } do s:stop() end
    certs_lib.remove(certs)
  end)
  before_each(function()
    for _, s in ipairs{ sb, other, selfsigned } do assert(s:reset()) end
  end)

  local function client(server, extra)
    local opts = { secret_id = server.secret_id, secret_key = server.secret_key, endpoint = server.tls_base_url,
      timeout = 5, connect_timeout = 2, retries = 2, retry_base = 0.001 }
    for k, v in pairs(extra or {}) do opts[k] = v end
    return assert(mr.new(opts))
  end

  -- The request must fail in the handshake: kind tls, final, nothing sent, no order.
  -- reason: a pattern for the refusal's cause, so a broken CA file cannot pass for it.
  local function assert_refused(server, extra, reason)
    local c = client(server, extra)
    local order, err = c:create_order{ vin = VIN }
    assert.is_nil(order)
    assert.are.equal("tls", err.kind)
    assert.matches(reason, err.message)
    assert.is_false(err.retryable)
    assert.is_false(err.sent)
    assert.are.equal("not_placed", err.order_outcome) -- provably never sent: nothing was bought
    local report
    report, err = c:get_report("0123456789abcdef0123456789abcdef")
    assert.is_nil(report)
    assert.are.equal("tls", err.kind)
    assert.is_false(err.retryable)
    c:close()
    local stats = assert(server:stats())
    assert.are.equal(0, stats.orders)
    assert.are.equal(0, stats.report_reads)
  end

  it("listens for TLS on 127.0.0.1 only, next to plain HTTP", function()
    assert.is_number(sb.tls_port)
    assert.are_not.equal(sb.port, sb.tls_port)
    assert.are.equal("https://127.0.0.1:" .. sb.tls_port .. "/release", sb.tls_base_url)
    -- /proc/net/tcp: the LISTEN (0A) entry for the port is 127.0.0.1 (0100007F), nothing else
    local hex = (":%04X"):format(sb.tls_port)
    local listeners = {}
    for _, file in ipairs{ "/proc/net/tcp", "/proc/net/tcp6" } do
      local f = io.open(file)
      if f then
        for line in f:lines() do
          local laddr, st = line:match("^%s*%d+:%s+(%S+)%s+%S+%s+(%x%x)")
          if st == "0A" and laddr:sub(-5) == hex then listeners[#listeners + 1] = laddr end
        end
        f:close()
      end
    end
    assert.are.same({ "0100007F" .. hex }, listeners)
    -- plain HTTP still works on the other port
    assert(client(sb, { endpoint = sb.base_url }):create_order{ vin = VIN })
  end)

  it("refuses a certificate from an unknown CA by default, as tls", function()
    assert_refused(sb, nil, "issuer")
  end)

  it("refuses a self-signed certificate by default, as tls", function()
    assert_refused(selfsigned, nil, "self%-signed")
  end)

  it("accepts the server with cafile, at 127.0.0.1 and at localhost (both in the SAN)", function()
    local c = client(sb, { cafile = certs.ca })
    local order = assert(c:create_order{ vin = VIN })
    local report = assert(c:get_report(order.order_id))
    assert.are.equal("ready", report.status)
    local by_name = client(sb, { cafile = certs.ca, endpoint = "https://localhost:" .. sb.tls_port .. "/release" })
    assert(by_name:create_order{ vin = VIN })
    assert.are.equal(2, sb:stats().orders)
  end)

  it("refuses a certificate for another host name even with the right CA", function()
    assert_refused(other, { cafile = certs.ca }, "host name")
  end)

  it("refuses the right server when cafile names another CA", function()
    assert_refused(sb, { cafile = certs.selfsigned.cert }, "issuer")
  end)

  -- Runs two clients with insecure = true in a fresh interpreter; returns stdout, stderr.
  local function run_two_clients(opts_source)
    local code = ([[
local mr = require "maintenance_report"
for _, target in ipairs{ { %q, %q, %q }, { %q, %q, %q } } do
  local c = assert(mr.new{ secret_id = target[2], secret_key = target[3], endpoint = target[1],
    retries = 0, timeout = 5, %s })
  local order, err = c:create_order{ vin = %q }
  io.write(order and "ok" or ("error " .. tostring(err)), "\n")
  c:close()
end
]]):format(sb.tls_base_url, sb.secret_id, sb.secret_key, other.tls_base_url, other.secret_id, other.secret_key,
      opts_source, VIN)
    local err_file = os.tmpname()
    -- Under `make asan` the child loads the sanitized core too, so it needs the runtime preloaded.
    local preload = os.getenv("MR_ASAN_LD_PRELOAD")
    local env = preload and ("LD_PRELOAD=" .. certs_lib.quote(preload) .. " ") or ""
    local p = assert(io.popen(env .. certs_lib.quote(LUA) .. " -e " .. certs_lib.quote(code) .. " 2>"
      .. certs_lib.quote(err_file)))
    local out = p:read("*a")
    p:close()
    local f = assert(io.open(err_file, "rb"))
    local err = f:read("*a")
    f:close()
    os.remove(err_file)
    return out, err
  end

  it("with insecure = true skips the checks and warns on stderr exactly once per process", function()
    -- the first client meets an unknown CA, the second a certificate for another host
    local out, err = run_two_clients("insecure = true")
    assert.are.equal("ok\nok\n", out, "stderr:\n" .. err)
    local lines = {}
    for line in err:gmatch("[^\n]+") do lines[#lines + 1] = line end
    assert.are.equal(1, #lines, "stderr:\n" .. err)
    assert.matches("WARNING", lines[1])
    assert.matches("insecure", lines[1])
    assert.are.equal(1, sb:stats().orders)
    assert.are.equal(1, other:stats().orders)
  end)

  it("prints no warning and refuses both servers without insecure", function()
    local out, err = run_two_clients("insecure = false")
    assert.are.equal(2, select(2, out:gsub("error tls: ", "")), "stdout:\n" .. out .. "\nstderr:\n" .. err)
    assert.are.equal("", err)
    assert.are.equal(0, sb:stats().orders + other:stats().orders)
  end)
end)
