-- The OpenResty example (examples/openresty) on a real nginx + lua-nginx-module,
-- against the sandbox; and the cosocket transport's TLS path.
local core = require "maintenance_report.core"
local nginx = require "maintenance_report_sandbox.nginx_runner"
local sandbox = require "maintenance_report_sandbox"
local shell = require "helpers.shell"
local openresty_example = require "helpers.openresty_example"

local q = shell.quote
local ROOT = shell.run("pwd")
local EXAMPLE = ROOT .. "/examples/openresty"
local LUA_PATH = ("%s/lua/?.lua;%s/lua/?/init.lua;%s/?.lua;"):format(ROOT, ROOT, EXAMPLE)
local LUA_CPATH = ROOT .. "/build/luajit/?.so"

local function read_file(path)
  return assert(shell.read_file(path))
end
local write_file = shell.write_file

-- curl: status, body, seconds.
local function get(url, extra)
  local out = shell.run("curl -sS --noproxy '*' --max-time 30 " .. (extra or "")
    .. " -w '\\n%{http_code} %{time_total}' " .. q(url))
  local body, status, seconds = out:match("^(.*)\n(%d+) ([%d.]+)$")
  return tonumber(status), body, tonumber(seconds)
end

-- Starts nginx with `env` set for the workers, the way a user's shell would.
local function start_with_env(opts, env)
  opts.env = env
  return nginx.start(opts)
end

local example_http = openresty_example.http
local example_env_lines = openresty_example.env_lines

-- Phases that cannot yield, on a second virtual server of the same nginx.
local PHASE_SERVER = [[
  server {
    listen 127.0.0.1:${PORT};
    server_name phases.test;
    location = /set {
      set_by_lua_block $outcome {
        local c = require("maintenance_report").new{ endpoint = "http://127.0.0.1:9",
          secret_id = "id", secret_key = "key" }
        local ok, err = pcall(c.get_report, c, "ORDER1")
        return (ok and "returned: " or "raised: ") .. tostring(err)
      }
      return 200 "$outcome";
    }
    location = /header-filter {
      return 204;
      header_filter_by_lua_block {
        local c = require("maintenance_report").new{ endpoint = "http://127.0.0.1:9",
          secret_id = "id", secret_key = "key" }
        local ok, err = pcall(c.query, c, { vin = "1G4AH59H45G118341" })
        ngx.header["X-Outcome"] = ((ok and "returned: " or "raised: ") .. tostring(err)):gsub("[\r\n]", " ")
      }
    }
    location = /timer {
      content_by_lua_block {
        local shared = ngx.shared.maintenance_report
        shared:delete("timer-test")
        ngx.timer.at(0, function()
          local c = require("maintenance_report").new{ endpoint = os.getenv("MAINTENANCE_REPORT_ENDPOINT"),
            secret_id = os.getenv("MAINTENANCE_REPORT_SECRET_ID"),
            secret_key = os.getenv("MAINTENANCE_REPORT_SECRET_KEY") }
          local report, err = c:get_report("0123456789abcdef0123456789abcdef")
          shared:set("timer-test", report and ("report " .. report.status) or ("error " .. err.kind))
        end)
        for _ = 1, 200 do
          local outcome = shared:get("timer-test")
          if outcome then return ngx.print(outcome) end
          ngx.sleep(0.01)
        end
        ngx.print("no answer from the timer")
      }
    }
    location = /which {
      content_by_lua_block {
        local c = require("maintenance_report").new{ secret_id = "id", secret_key = "key" }
        local t = require "maintenance_report.transport.ngx"
        local s = c:settings()
        ngx.print(tostring(s.sleep == t.sleep and s.transport.submit == nil and s.transport.verify))
      }
    }
  }
]]

local function curl_parallel(config_path)
  return io.popen("curl --parallel --parallel-max 64 -sS --noproxy '*' --max-time 60 "
    .. "-w '%{http_code} %{filename_effective}\\n' -K " .. q(config_path) .. " 2>&1")
end

-- The sandbox (report latency in ms), the example service in front of it with
-- its credentials in the environment, and a scratch directory.
local function start_example(latency_ms, workers, extra_http, settings)
  local sb = assert(sandbox.start{ latency_ms = latency_ms })
  local server = assert(start_with_env({
    http = example_http(settings) .. (extra_http or ""), workers = workers, main = example_env_lines(),
    lua_path = LUA_PATH, lua_cpath = LUA_CPATH,
  }, {
    MAINTENANCE_REPORT_SECRET_ID = sb.secret_id, MAINTENANCE_REPORT_SECRET_KEY = sb.secret_key,
    MAINTENANCE_REPORT_ENDPOINT = sb.base_url,
  }))
  return sb, server, shell.run("mktemp -d")
end

local function stop_example(sb, server, dir)
  if server then server:stop() end
  if sb then sb:stop() end
  if dir then shell.run("rm -rf " .. q(dir)) end
end

describe("examples/openresty", function()
  local sb, server, base, dir
  lazy_setup(function()
    sb, server, dir = start_example(1000, 1, PHASE_SERVER)
    base = "http://127.0.0.1:" .. server.port
  end)
  lazy_teardown(function() stop_example(sb, server, dir) end)

  it("buys each VIN once under 60 concurrent requests, while /health stays fast", function()
    local vins, shared_vin = {}, sandbox.scenario_vin("normal", 9000)
    local config = {}
    for i = 1, 60 do
      vins[i] = i <= 50 and sandbox.scenario_vin("normal", i) or shared_vin
      config[#config + 1] = ('url = "%s/vehicles/%s/report"\noutput = "%s/%d.json"'):format(base, vins[i], dir, i)
    end
    write_file(dir .. "/curl.cfg", table.concat(config, "\n") .. "\n")
    local batch = assert(curl_parallel(dir .. "/curl.cfg"))

    -- In flight: every order placed, no report can be ready before 1 s.
    local stats
    local give_up = core.monotime() + 10
    repeat stats = assert(sb:stats()) until stats.orders >= 51 or core.monotime() > give_up
    assert.are.equal(51, stats.orders)
    local times = {}
    for i = 1, 5 do
      local status, body, seconds = get(base .. "/health")
      assert.are.equal(200, status)
      local health = core.json_decode(body)
      assert.are.equal("ok", health.status)
      assert.is_true(health.in_flight >= 1, "queries must still be in flight")
      times[i] = seconds
      assert.is_true(seconds < 0.1, "/health took " .. seconds .. " s")
    end
    io.stderr:write(("\n/health during 60 in-flight queries: %s s\n"):format(table.concat(times, ", ")))

    local out = batch:read("*a")
    batch:close()
    local statuses = {}
    for status, file in out:gmatch("(%d+) (%S+)") do statuses[file] = tonumber(status) end
    local shared_orders = {}
    for i = 1, 60 do
      local file = ("%s/%d.json"):format(dir, i)
      assert.are.equal(200, statuses[file], "request " .. i .. ": " .. out)
      local report = assert(core.json_decode(read_file(file)))
      assert.are.equal("ready", report.status)
      assert.is_nil(report.raw)
      assert.are.equal("table", type(report.records))
      if i > 50 then shared_orders[report.order_id] = true end
    end
    local distinct = 0
    for _ in pairs(shared_orders) do distinct = distinct + 1 end
    assert.are.equal(1, distinct, "the 10 requests for one VIN must share one order")
    stats = assert(sb:stats())
    assert.are.equal(51, stats.orders)
    assert.are.equal(1, stats.orders_by_vin[shared_vin])
    local status, _, _ = get(base .. "/health")
    assert.are.equal(200, status)
  end)

  it("serves a finished report from the cache without a new order", function()
    local vin = sandbox.scenario_vin("normal", 9001)
    local before = assert(sb:stats()).orders
    local status, body = get(base .. "/vehicles/" .. vin .. "/report")
    assert.are.equal(200, status)
    local out = shell.run("curl -sS --noproxy '*' -D - -o /dev/null " .. q(base .. "/vehicles/" .. vin .. "/report"))
    assert.truthy(out:lower():find("x-cache: hit", 1, true))
    assert.are.equal(before + 1, assert(sb:stats()).orders)
    assert.are.equal("ready", core.json_decode(body).status)
  end)

  it("answers 400 with a JSON error for a bad VIN, without calling the API", function()
    local before = assert(sb:stats()).orders
    for _, vin in ipairs{ "SBL666666BM9D933", "1G4AH59H55G118341" } do
      local status, body = get(base .. "/vehicles/" .. vin .. "/report")
      assert.are.equal(400, status)
      local err = core.json_decode(body).error
      assert.are.equal("invalid_input", err.kind)
      assert.truthy(err.message:find("VIN", 1, true))
    end
    assert.are.equal(before, assert(sb:stats()).orders)
  end)

  it("maps an order the gateway refused (nothing bought) to 502 with the error kind", function()
    local vin = sandbox.scenario_vin("order_rate_limit", 0)
    local status, body = get(base .. "/vehicles/" .. vin .. "/report")
    assert.are.equal(502, status)
    local err = core.json_decode(body).error
    assert.are.equal("rate_limited", err.kind)
    assert.are.equal("not_placed", err.order_outcome)
    assert.are.equal(vin, err.vin)
    assert.truthy(err.message:find("rate limit", 1, true))
  end)

  it("uses the cosocket transport and ngx.sleep inside nginx", function()
    local status, body = get(base .. "/which", "-H 'Host: phases.test'")
    assert.are.equal(200, status)
    assert.are.equal("true", body)
  end)

  it("talks to the API from an ngx.timer.at callback", function()
    local status, body = get(base .. "/timer", "-H 'Host: phases.test'")
    assert.are.equal(200, status)
    -- An unknown order: the sandbox answers with an API error, so the round trip happened.
    assert.truthy(body:find("^error api") or body:find("^report "), body)
  end)

  it("raises a clear error in phases that cannot yield", function()
    local status, body = get(base .. "/set", "-H 'Host: phases.test'")
    assert.are.equal(200, status)
    assert.truthy(body:find("^raised: "))
    assert.truthy(body:find("'set' phase, which cannot yield", 1, true))
    local headers = shell.run("curl -sS --noproxy '*' -D - -o /dev/null -H 'Host: phases.test' "
      .. q(base .. "/header-filter"))
    assert.truthy(headers:find("X-Outcome: raised: ", 1, true))
    assert.truthy(headers:find("'header_filter' phase, which cannot yield", 1, true))
  end)

  it("has a health location and answers 404 JSON elsewhere", function()
    local status, body = get(base .. "/nope")
    assert.are.equal(404, status)
    assert.are.equal("not_found", core.json_decode(body).error.kind)
  end)
end)

describe("examples/openresty across workers", function()
  local sb, server, dir
  lazy_setup(function() sb, server, dir = start_example(300, 4) end)
  lazy_teardown(function() stop_example(sb, server, dir) end)

  it("collapses 20 concurrent requests for one VIN into one order with 4 workers", function()
    local vin = sandbox.scenario_vin("normal", 7)
    local config = {}
    for i = 1, 20 do
      config[i] = ('url = "http://127.0.0.1:%d/vehicles/%s/report"\noutput = "%s/%d.json"'):format(
        server.port, vin, dir, i)
    end
    write_file(dir .. "/curl.cfg", table.concat(config, "\n") .. "\n")
    -- New connections for each request, so the kernel spreads them over workers.
    local batch = assert(curl_parallel(dir .. "/curl.cfg"))
    local out = batch:read("*a")
    batch:close()
    local ok = select(2, out:gsub("200 ", ""))
    assert.are.equal(20, ok, out)
    assert.are.equal(1, assert(sb:stats()).orders)
    local order_ids, distinct = {}, 0
    for i = 1, 20 do
      local report = core.json_decode(read_file(("%s/%d.json"):format(dir, i)))
      assert.are.equal("ready", report.status)
      if not order_ids[report.order_id] then distinct = distinct + 1 end
      order_ids[report.order_id] = true
    end
    assert.are.equal(1, distinct, "all 20 answers carry the one order's report")
  end)
end)

-- curl -i: status, lower-cased headers, body.
local function get_with_headers(url)
  local out = shell.run("curl -sS -i --noproxy '*' --max-time 30 " .. q(url))
  local head, body = out:match("^(.-)\r\n\r\n(.*)$")
  local headers = {}
  for name, value in head:gmatch("\n([^:\r\n]+):%s*([^\r\n]*)") do headers[name:lower()] = value end
  return tonumber(head:match("^HTTP/[%d.]+ (%d+)")), headers, body
end

-- The buy-once rules on shortened settings: a 1 s API timeout (below the 2 s of
-- order_slow), no polling past the first answer (max_wait = 0) and no report reuse
-- (cache_ttl = 0), so nothing but the ledger's record of an order can stop a new one;
-- retry_after = 3, so that Retry-After shows it is the setting's.
describe("examples/openresty after an order of unknown outcome or a pending report", function()
  local sb, server, dir
  local ADMIN = [[
    server {
      listen 127.0.0.1:${PORT};
      server_name admin.test;
      location = /forget {
        content_by_lua_block {
          local ok, err = require("vehicle_report").forget(ngx.var.arg_vin)
          ngx.print(ok and "forgotten" or ("error " .. tostring(err.kind)))
        }
      }
    }
  ]]
  lazy_setup(function()
    sb, server, dir = start_example(0, 2, ADMIN, "{ timeout = 1, max_wait = 0, cache_ttl = 0, retry_after = 3 }")
  end)
  lazy_teardown(function() stop_example(sb, server, dir) end)

  local function report_url(vin)
    return ("http://127.0.0.1:%d/vehicles/%s/report"):format(server.port, vin)
  end

  -- The first answer reports the failure itself, every later one the ledger's refusal;
  -- all of them 409 with order_outcome "unknown", and one order at the sandbox.
  local function never_buys_again(vin, first_kind)
    for i = 1, 4 do
      local status, body = get(report_url(vin))
      assert.are.equal(409, status, "request " .. i .. ": " .. body)
      assert.are.equal(1, assert(sb:stats()).orders_by_vin[vin], "orders after request " .. i)
      local err = core.json_decode(body).error
      assert.are.equal(i == 1 and first_kind or "unknown_outcome", err.kind, "request " .. i)
      assert.are.equal("unknown", err.order_outcome)
      assert.are.equal(vin, err.vin)
      assert.truthy(err.message:find("check your orders", 1, true), err.message)
    end
  end

  it("never buys again after a 500 on the order", function()
    never_buys_again(sandbox.scenario_vin("order_http_500", 0), "http")
  end)

  it("never buys again after the order timed out once it had arrived", function()
    never_buys_again(sandbox.scenario_vin("order_slow", 2), "timeout")
  end)

  it("never buys again after an empty reply to the order", function()
    never_buys_again(sandbox.scenario_vin("order_empty_reply", 0), "network")
  end)

  it("orders again only once an operator forgets the VIN", function()
    local vin = sandbox.scenario_vin("order_http_500", 1) -- the second order works
    assert.are.equal(409, (get(report_url(vin))))
    assert.are.equal(409, (get(report_url(vin))))
    assert.are.equal(1, assert(sb:stats()).orders_by_vin[vin])
    local forget = ("http://127.0.0.1:%d/forget?vin=%s"):format(server.port, vin)
    local status, body = get(forget, "-H 'Host: admin.test'")
    assert.are.equal(200, status)
    assert.are.equal("forgotten", body)
    -- max_wait = 0: the new order answers pending, and the next request polls it
    status, body = get(report_url(vin))
    assert.are.equal(504, status, body)
    assert.are.equal(2, assert(sb:stats()).orders_by_vin[vin])
    status, body = get(report_url(vin))
    assert.are.equal(200, status, body)
    assert.are.equal(2, assert(sb:stats()).orders_by_vin[vin])
  end)

  it("answers a pending order with 504 and its id, and the next requests poll it", function()
    local vin = sandbox.scenario_vin("pending_polls", 2) -- pending for 2 polls
    local order_id
    for i = 1, 2 do
      local status, headers, body = get_with_headers(report_url(vin))
      assert.are.equal(504, status, "request " .. i .. ": " .. body)
      assert.are.equal("3", headers["retry-after"])
      local err = core.json_decode(body).error
      assert.are.equal("pending", err.kind)
      assert.are.equal("placed", err.order_outcome)
      assert.truthy(err.order_id:match("^%x+$"), err.order_id)
      order_id = order_id or err.order_id
      assert.are.equal(order_id, err.order_id, "request " .. i .. " polls the same order")
      assert.are.equal(1, assert(sb:stats()).orders_by_vin[vin])
    end
    local status, headers, body = get_with_headers(report_url(vin))
    assert.are.equal(200, status, body)
    assert.are.equal("MISS", headers["x-cache"])
    local report = core.json_decode(body)
    assert.are.equal("ready", report.status)
    assert.are.equal(order_id, report.order_id)
    assert.are.equal(1, assert(sb:stats()).orders_by_vin[vin])
  end)
end)

describe("examples/openresty/nginx.conf", function()
  it("passes nginx -t once the checkout path is filled in", function()
    local dir = shell.run("mktemp -d")
    finally(function() shell.run("rm -rf " .. q(dir)) end)
    local conf = read_file(EXAMPLE .. "/nginx.conf"):gsub("/path/to/maintenance%-report", function() return ROOT end)
    write_file(dir .. "/nginx.conf", conf)
    write_file(dir .. "/maintenance_report.conf", read_file(EXAMPLE .. "/maintenance_report.conf"))
    local out = shell.run(q(nginx.find_binary()) .. " -t -p " .. q(dir) .. " -c " .. q(dir .. "/nginx.conf")
      .. " -e " .. q(dir .. "/error.log") .. " 2>&1")
    assert.truthy(out:find("test is successful", 1, true))
  end)
end)

-- TLS through cosockets: a TLS nginx with a throw-away self-signed certificate,
-- and a client nginx that trusts it (or another one) via lua_ssl_trusted_certificate.
describe("ngx transport TLS", function()
  local dir, tls_server, clients = nil, nil, {}

  local function make_cert(name)
    shell.run(("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
      .. "-subj /CN=127.0.0.1 -addext 'subjectAltName=DNS:127.0.0.1,IP:127.0.0.1' "
      .. "-keyout %s -out %s 2>&1"):format(q(dir .. "/" .. name .. ".key"), q(dir .. "/" .. name .. ".pem")))
  end

  local function client_nginx(trusted)
    local server = assert(nginx.start{
      lua_path = LUA_PATH, lua_cpath = LUA_CPATH,
      http = ([[
        lua_ssl_trusted_certificate %s;
        server {
          listen 127.0.0.1:${PORT};
          location = /fetch {
            content_by_lua_block {
              local t = require("maintenance_report.transport.ngx").new{ insecure = ngx.var.arg_insecure == "1" }
              local url = "https://127.0.0.1:" .. ngx.var.arg_port .. "/hello"
              local first, err = t:request{ url = url }
              if not first then
                local sent = require("maintenance_report.classify").transport(err).sent
                return ngx.print("error ", err.kind, " ", tostring(sent), " ", err.message)
              end
              local second = assert(t:request{ url = url })
              ngx.print(first.status, " ", first.body, " ", tostring(first.reused), " ", tostring(second.reused))
            }
          }
        }
      ]]):format(dir .. "/" .. trusted .. ".pem"),
    })
    clients[#clients + 1] = server
    return server
  end

  lazy_setup(function()
    dir = shell.run("mktemp -d")
    make_cert("served")
    make_cert("other")
    tls_server = assert(nginx.start{ http = ([[
      server {
        listen 127.0.0.1:${PORT} ssl;
        ssl_certificate %s/served.pem;
        ssl_certificate_key %s/served.key;
        keepalive_requests 1000;
        location = /hello { return 200 'hello'; }
      }
    ]]):format(dir, dir) })
  end)
  lazy_teardown(function()
    for _, c in ipairs(clients) do c:stop() end
    if tls_server then tls_server:stop() end
    if dir then shell.run("rm -rf " .. q(dir)) end
  end)

  it("verifies the certificate and reuses the TLS connection", function()
    local c = client_nginx("served")
    local status, body = get(("http://127.0.0.1:%d/fetch?port=%d"):format(c.port, tls_server.port))
    assert.are.equal(200, status)
    assert.are.equal("200 hello false true", body)
  end)

  it("fails an untrusted certificate as tls, not sent; insecure = true skips the check", function()
    local c = client_nginx("other")
    local _, body = get(("http://127.0.0.1:%d/fetch?port=%d"):format(c.port, tls_server.port))
    assert.truthy(body:find("^error tls false TLS handshake"), body .. c:error_log())
    _, body = get(("http://127.0.0.1:%d/fetch?port=%d&insecure=1"):format(c.port, tls_server.port))
    assert.are.equal("200 hello false true", body)
  end)
end)

-- The cosocket transport's HTTP handling, driven from a location of the same nginx.
describe("ngx transport HTTP", function()
  local server, base
  local HTTP = [[
    server {
      listen 127.0.0.1:${PORT};
      keepalive_requests 1000;
      location = /run {
        content_by_lua_block {
          local t = require("maintenance_report.transport.ngx").new{}
          -- The first request may find a connection an earlier test left in the pool,
          -- so only later requests show whether this response's connection was kept.
          local first = true
          local function show(resp, err)
            -- the classifier's decision from the transport's facts
            local sent = not resp and require("maintenance_report.classify").transport(err).sent
            if not resp then return "error " .. err.kind .. " " .. tostring(sent) end
            local line = table.concat({ resp.status, resp.headers["x-te"] or "-", #resp.body, resp.body:sub(1, 8),
              first and "" or tostring(resp.reused) }, " ")
            first = false
            return line
          end
          local req = { url = "http://127.0.0.1:" .. ngx.var.server_port .. ngx.var.arg_path,
            timeout = tonumber(ngx.var.arg_timeout), max_body = tonumber(ngx.var.arg_max),
            headers = ngx.var.arg_bad and { ["X-Bad"] = "a\r\nX-Injected: 1" } or { ["X-Te"] = "1" } }
          for _ = 1, 3 do ngx.say(show(t:request(req))) end
        }
      }
      location = /rules {
        content_by_lua_block {
          -- One header case per line (name TAB value, \t and \r written as escapes):
          -- "refused" when the transport refuses to build the request.
          local t = require("maintenance_report.transport.ngx").new{}
          ngx.req.read_body()
          local body = ngx.req.get_body_data() or ""
          for line in body:gmatch("[^\n]+") do
            local name, value, method = line:match("^(.-)\t(.-)\t(.*)$")
            local function unescape(x) return (x:gsub("\\t", "\t"):gsub("\\r", "\r"):gsub("\\0", "\0")) end
            local resp, err = t:request{ url = "http://127.0.0.1:" .. ngx.var.server_port .. "/length",
              method = method ~= "" and method or nil, headers = { [unescape(name)] = unescape(value) } }
            ngx.say(not resp and err.kind == "invalid_request" and "refused" or "sent")
          end
        }
      }
      location = /length { add_header X-Te length; return 200 'fixed'; }
      location = /chunked {
        add_header X-Te chunked;
        content_by_lua_block { ngx.print("ab") ngx.flush(true) ngx.print("cd") }
      }
      location = /until-close {
        chunked_transfer_encoding off;
        add_header X-Te close;
        content_by_lua_block { ngx.print("ab") ngx.flush(true) ngx.print("cde") }
      }
      location = /conn-close { keepalive_timeout 0; return 200 'bye'; }
      location = /big { content_by_lua_block { ngx.print(string.rep("x", 9 * 1024 * 1024)) } }
      location = /big-length {
        content_by_lua_block {
          ngx.header.content_length = 9 * 1024 * 1024
          ngx.print(string.rep("x", 9 * 1024 * 1024))
        }
      }
      location = /slow { content_by_lua_block { ngx.sleep(1) ngx.print("late") } }
      location = /no-host {
        content_by_lua_block {
          local t = require("maintenance_report.transport.ngx").new{}
          local _, err = t:request{ url = "http://" .. string.rep("a", 64) .. ".invalid/" }
          local _, err2 = t:request{ url = "http://127.0.0.1:" .. ngx.var.arg_closed .. "/" }
          local classify = require "maintenance_report.classify"
          ngx.print(err.kind, " ", tostring(classify.transport(err).sent), " ", err2.kind, " ",
            tostring(classify.transport(err2).sent))
        }
      }
    }
  ]]
  lazy_setup(function()
    server = assert(nginx.start{ http = HTTP, lua_path = LUA_PATH, lua_cpath = LUA_CPATH })
    base = "http://127.0.0.1:" .. server.port
  end)
  lazy_teardown(function() if server then server:stop() end end)

  local function run(query)
    local status, body = get(base .. "/run?" .. query)
    assert.are.equal(200, status)
    return body
  end

  it("reads Content-Length and chunked bodies and keeps the connection", function()
    assert.are.equal("200 length 5 fixed \n200 length 5 fixed true\n200 length 5 fixed true\n", run("path=/length"))
    assert.are.equal("200 chunked 4 abcd \n200 chunked 4 abcd true\n200 chunked 4 abcd true\n", run("path=/chunked"))
  end)

  it("reads a body without length until the close, and does not pool that connection", function()
    assert.are.equal("200 close 5 abcde \n200 close 5 abcde false\n200 close 5 abcde false\n", run("path=/until-close"))
    assert.are.equal("200 - 3 bye \n200 - 3 bye false\n200 - 3 bye false\n", run("path=/conn-close"))
  end)

  it("caps the body at 8 MiB by default and at max_body when given", function()
    assert.are.equal(("error too_large true\n"):rep(3), run("path=/big"))
    assert.are.equal(("error too_large true\n"):rep(3), run("path=/big-length"))
    assert.are.equal(("error too_large true\n"):rep(3), run("path=/length&max=4"))
  end)

  it("maps a read timeout to timeout, sent", function()
    assert.are.equal(("error timeout true\n"):rep(3), run("path=/slow&timeout=0.2"))
  end)

  -- Header names, values and methods, each sent or refused alike by the C core
  -- and the cosocket transport.
  local RULE_CASES = {
    { "X-Ok", "plain" }, { "X!#$%&'*+.^_`|~-", "tchars" }, { "X Space", "v" }, { "X:Colon", "v" },
    { "", "empty name" }, { string.rep("n", 256), "v" }, { string.rep("n", 257), "v" },
    { "X-Tab", "a\\tb" }, { "X-Cr", "a\\rb" }, { "X-Nul", "a\\0b" }, { "X-Utf8", "值" },
    { "X-Ok", "v", "PATCH" }, { "X-Ok", "v", "GE T" }, { "X-Ok", "v", "get" },
  }

  it("sends and refuses the same headers and methods as the C core", function()
    local function unescape(x) return (x:gsub("\\t", "\t"):gsub("\\r", "\r"):gsub("\\0", "\0")) end
    local session = core.session{}
    local lines, from_c = {}, {}
    for i, case in ipairs(RULE_CASES) do
      lines[i] = case[1] .. "\t" .. case[2] .. "\t" .. (case[3] or "")
      local resp, err = session:request{ url = base .. "/length", method = case[3],
        headers = { [unescape(case[1])] = unescape(case[2]) } }
      from_c[i] = not resp and err.kind == "invalid_request" and "refused" or "sent"
    end
    session:close()
    local file = os.tmpname()
    write_file(file, table.concat(lines, "\n") .. "\n")
    local status, body = get(base .. "/rules", "--data-binary @" .. q(file))
    os.remove(file)
    assert.are.equal(200, status)
    local from_ngx = {}
    for line in body:gmatch("[^\n]+") do from_ngx[#from_ngx + 1] = line end
    assert.are.same(from_c, from_ngx)
    -- and the rules are the documented ones
    assert.are.same({ "sent", "sent", "refused", "refused", "refused", "sent", "refused", "sent", "refused",
      "refused", "sent", "sent", "refused", "sent" }, from_c)
  end)

  it("refuses CR/LF in headers without sending anything", function()
    assert.are.equal(("error invalid_request false\n"):rep(3), run("path=/length&bad=1"))
  end)

  it("reports DNS and refused connections as never sent", function()
    local closed = assert(nginx.start{ http = "server { listen 127.0.0.1:${PORT}; return 204; }" })
    closed:stop()
    local status, body = get(base .. "/no-host?closed=" .. closed.port)
    assert.are.equal(200, status)
    assert.are.equal("dns false connect false", body)
  end)
end)

describe("examples/openresty/vehicle_report (plain Lua parts)", function()
  local saved_path = package.path
  local handler, json
  lazy_setup(function()
    package.path = EXAMPLE .. "/?.lua;" .. package.path
    handler = require "vehicle_report"
    json = require "maintenance_report.json"
  end)
  lazy_teardown(function() package.path = saved_path end)

  it("maps unknown outcomes to 409, whatever the kind; the rest by kind", function()
    for _, kind in ipairs{ "unknown_outcome", "http", "timeout", "network", "protocol", "api" } do
      assert.are.equal(409, handler.status_for{ kind = kind, order_outcome = "unknown" }, kind)
    end
    assert.are.equal(504, handler.status_for{ kind = "timeout", order_id = "ORDER1" })
    assert.are.equal(504, handler.status_for{ kind = "pending", order_id = "ORDER1" })
    assert.are.equal(400, handler.status_for{ kind = "invalid_input" })
    assert.are.equal(503, handler.status_for{ kind = "ledger_busy" })
    assert.are.equal(500, handler.status_for{ kind = "ledger", order_outcome = "not_placed" })
    for _, kind in ipairs{ "network", "tls", "dns", "connect", "http", "auth", "rate_limited", "api" } do
      assert.are.equal(502, handler.status_for{ kind = kind, order_outcome = "not_placed" }, kind)
    end
    local body = core.json_decode(handler.error_body{ kind = "pending", message = "still pending",
      order_id = "ORDER1", vin = "V", request_id = "R1", retryable = true })
    assert.are.same({ error = { kind = "pending", message = "still pending", order_id = "ORDER1",
      order_outcome = "placed", vin = "V", request_id = "R1" } }, body)
    -- a refusal names the request id of the order that went unanswered
    body = core.json_decode(handler.error_body{ kind = "unknown_outcome", message = "m", vin = "V",
      order_outcome = "unknown", reason = { kind = "http", request_id = "R0" } })
    assert.are.same({ error = { kind = "unknown_outcome", message = "m", order_outcome = "unknown",
      vin = "V", request_id = "R0" } }, body)
  end)

  it("encodes empty report lists as [] and keeps key order stable", function()
    assert.are.equal('{"vehicle":{},"items":[],"materials":[],"records":[{"items":["a"]}]}',
      json.encode{ records = { { items = { "a" } } }, items = {}, materials = {}, vehicle = {} })
    -- shortest round-trip numbers, not %.17g
    assert.are.equal('{"n":1.6}', json.encode{ n = 1.6 })
    assert.are.equal('{"a":"\\"\\n\\u0001","n":1.5,"z":3}', json.encode{ z = 3, n = 1.5, a = '"\n\1' })
  end)
end)
