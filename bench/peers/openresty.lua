-- Benchmark: the report read inside OpenResty against a minimal hand-written
-- cosocket client (issue 13, target 4, the fourth peer). One nginx worker with
-- two locations, each doing one report read per request against the fixture
-- nginx (bench/benchlib.lua) and answering "ready":
--
--   /ours  client:get_report, one client per worker (the cosocket transport,
--          C-core signing and decoding)
--   /peer  ngx.socket.tcp by hand: ngx.hmac_sha1 + ngx.encode_base64 for the
--          signature, a keep-alive GET, the status line, headers and a
--          Content-Length body read, setkeepalive; lua-cjson decode
-- Both normalize with normalize.report and analyze with analysis.analyze, as
-- get_report does. wrk -t1 drives each: -c1 (sequential) and -c32 (32 in
-- flight), BENCH_ROUNDS rounds (default 5) of BENCH_WRK_SECONDS (2) each,
-- alternating; the worker's CPU per request from /proc. Target: ours >= 1.2x.
local bench_dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = bench_dir .. "/../?.lua;" .. package.path
local B = require "benchlib"
local nginx = require "maintenance_report_sandbox.nginx_runner"
local shell = require "maintenance_report_sandbox.shell"

local ROUNDS = math.floor(B.env_number("BENCH_ROUNDS", 5))
-- BENCH_PEER_NORMALIZER=reference: the peer normalizes with the pure-Lua reference
-- (spec/helpers/normalize_reference.lua), as a client without ours would.
local PEER_NORMALIZER = os.getenv("BENCH_PEER_NORMALIZER") == "reference" and "reference" or "library"
local SECONDS = math.floor(B.env_number("BENCH_WRK_SECONDS", 2))
local q = shell.quote

local HTTP = [[
  server {
    listen 127.0.0.1:${PORT};
    keepalive_requests 1000000;
    access_log off;
    location = /ours {
      content_by_lua_block {
        local c = package.loaded.bench_client
        if not c then
          c = assert(require("maintenance_report").new{ secret_id = "AKIDbench", secret_key = "bench-secret",
            endpoint = "${BASE}" })
          package.loaded.bench_client = c
        end
        local report = assert(c:get_report("${ORDER_ID}"))
        ngx.print(report.status)
      }
    }
    location = /peer {
      content_by_lua_block {
        local cjson = require "cjson"
        local normalize = require "${NORMALIZER}"
        local analysis = require "maintenance_report.analysis"
        local date = ngx.http_time(ngx.time())
        local signature = ngx.encode_base64(ngx.hmac_sha1("bench-secret", "x-date: " .. date .. "\nx-source: market"))
        local sock = ngx.socket.tcp()
        sock:settimeout(10000)
        assert(sock:connect("127.0.0.1", ${FIXTURE_PORT}))
        assert(sock:send("GET /release/maintenance_report/get?order_id=${ORDER_ID} HTTP/1.1\r\n"
          .. "Host: 127.0.0.1\r\nX-Date: " .. date .. "\r\nX-Source: market\r\n"
          .. 'Authorization: hmac id="AKIDbench", algorithm="hmac-sha1", headers="x-date x-source", signature="'
          .. signature .. '"\r\n\r\n'))
        local status = assert(sock:receive("*l"))
        assert(status:find(" 200 ", 1, true), status)
        local length
        while true do
          local line = assert(sock:receive("*l"))
          if line == "" then break end
          local name, value = line:match("^([^:]+):%s*(.*)$")
          if name and name:lower() == "content-length" then length = tonumber(value) end
        end
        assert(length, "no Content-Length")
        local body = assert(sock:receive(length))
        sock:setkeepalive(60000, 64)
        local report = normalize.report(cjson.decode(body), "ready", "${ORDER_ID}")
        report.analysis = analysis.analyze(report)
        ngx.print(report.status)
      }
    }
  }
]]

local function wrk(url, connections)
  local out = B.sh(("wrk -t1 -c%d -d%ds %s"):format(connections, SECONDS, q(url)))
  assert(not out:find("Non-2xx", 1, true), "non-2xx answers from " .. url .. "\n" .. out)
  return assert(tonumber(out:match("Requests/sec:%s*([%d.]+)")), out), tonumber(out:match("(%d+) requests in"))
end

local fixture = B.start_fixture_server(1)
local node
B.finally(function()
  local http = HTTP:gsub("%${(%u[%u_]*)}", {
    ROOT = B.ROOT, BASE = fixture.base_url, ORDER_ID = B.ORDER_ID, FIXTURE_PORT = tostring(fixture.port),
    NORMALIZER = PEER_NORMALIZER == "reference" and "normalize_reference" or "maintenance_report.normalize" })
  node = assert(nginx.start{ http = http, workers = 1,
    lua_path = ("%s/lua/?.lua;%s/lua/?/init.lua;%s/spec/helpers/?.lua;"):format(B.ROOT, B.ROOT, B.ROOT),
    lua_cpath = B.ROOT .. "/build/luajit/?.so;/usr/lib/x86_64-linux-gnu/lua/5.1/?.so" })
  local workers = B.children(node.pid)
  local base = "http://127.0.0.1:" .. node.port
  for _, path in ipairs{ "/ours", "/peer" } do
    local body = B.sh("curl -sS --noproxy '*' " .. q(base .. path))
    assert(body == "ready", path .. ": " .. body .. "\n" .. tostring(node:error_log()))
  end
  print(("peers/openresty: 1 nginx worker, wrk -t1 -d%ds, %d rounds, peer's normalizer: %s, load average %s")
    :format(SECONDS, ROUNDS, PEER_NORMALIZER, B.sh("cut -d' ' -f1-3 /proc/loadavg")))
  for _, connections in ipairs{ 1, 32 } do
    local rps, cpu = { ours = {}, peer = {} }, { ours = {}, peer = {} }
    for _ = 1, ROUNDS do
      for _, name in ipairs{ "ours", "peer" } do
        local cpu0 = B.cpu_seconds_of(workers)
        local r, requests = wrk(base .. "/" .. name, connections)
        rps[name][#rps[name] + 1] = r
        cpu[name][#cpu[name] + 1] = (B.cpu_seconds_of(workers) - cpu0) / requests * 1e6
      end
    end
    local paired = {}
    for i = 1, ROUNDS do paired[i] = rps.ours[i] / rps.peer[i] end
    local best = function(list) local m = 0 for _, v in ipairs(list) do m = math.max(m, v) end return m end
    print(("  -c%-2d ours %6.0f req/s best (CPU %5.0f us/req least), peer %6.0f (CPU %5.0f): ours / peer x%.2f"
      .. " best against best, x%.2f median of rounds, CPU x%.2f")
      :format(connections, best(rps.ours), B.min(cpu.ours), best(rps.peer), B.min(cpu.peer),
        best(rps.ours) / best(rps.peer), B.median(paired), B.min(cpu.peer) / B.min(cpu.ours)))
  end
end, function()
  if node then node:stop() end
  fixture:stop()
end)
