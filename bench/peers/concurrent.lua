-- Benchmark: the report read with 32 in flight against the peers that can do
-- it (issue 13, target 4). The same work per read as bench/peers/sequential.lua
-- (sign, GET the fixture, decode, normalize.report, analysis.analyze).
--
--   ours      32 tasks on client:scheduler() (max_in_flight = 32) calling
--             client:get_report, as bench/http.lua's "concurrent"
--   lua-http  32 coroutines on one cqueues loop, each calling http.request:go
--             (a connection per request); LuaJIT only (Debian: Lua 5.1-5.3)
-- socket.http blocks and luacurl has no multi interface: neither can keep 32
-- requests in flight in one process without another library.
--
-- BENCH_N reads per run (default 3000), BENCH_ROUNDS (default 5), alternating.
local bench_dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = bench_dir .. "/../?.lua;" .. package.path
local B = require "benchlib"
local client = require "maintenance_report.client"
-- BENCH_PEER_NORMALIZER=reference gives the peers the pure-Lua reference normalizer
-- (spec/helpers/normalize_reference.lua), as a peer without ours would have.
local PEER_NORMALIZER = os.getenv("BENCH_PEER_NORMALIZER") == "reference" and "reference" or "library"
package.path = B.ROOT .. "/spec/helpers/?.lua;" .. package.path
local normalize = require(PEER_NORMALIZER == "reference" and "normalize_reference" or "maintenance_report.normalize")
local analysis = require "maintenance_report.analysis"
local cjson = require "cjson"
local hmac = require "openssl.hmac"
local mime = require "mime"

local N = math.floor(B.env_number("BENCH_N", 3000))
local ROUNDS = math.floor(B.env_number("BENCH_ROUNDS", 5))
local CONCURRENCY = 32
local ID, KEY = "AKIDbench", "bench-secret"

local function share(w)
  return math.floor(N / CONCURRENCY) + (w <= N % CONCURRENCY and 1 or 0)
end

local function signed_headers()
  local date = os.date("!%a, %d %b %Y %H:%M:%S GMT")
  local signature = mime.b64(hmac.new(KEY, "sha1"):final("x-date: " .. date .. "\nx-source: market"))
  return {
    ["x-date"] = date, ["x-source"] = "market",
    authorization = ('hmac id="%s", algorithm="hmac-sha1", headers="x-date x-source", signature="%s"')
      :format(ID, signature),
  }
end

local function ours_runner(server)
  local c = assert(client.new{ secret_id = ID, secret_key = KEY, endpoint = server.base_url,
    max_in_flight = CONCURRENCY })
  local sched = c:scheduler()
  return function()
    local failure
    for w = 1, CONCURRENCY do
      sched:spawn(function()
        for _ = 1, share(w) do assert(c:get_report(B.ORDER_ID)) end
      end, function(h)
        local ok, err = pcall(h.result, h)
        if not ok then failure = failure or err end
      end)
    end
    while sched:pending() > 0 do c:step(1) end
    if failure then error(failure, 0) end
  end
end

local function lua_http_runner(server)
  local ok, request = pcall(require, "http.request")
  if not ok then return nil, "lua-http not loadable here (Debian ships it for Lua 5.1-5.3)" end
  local cqueues = require "cqueues"
  return function()
    local cq = cqueues.new()
    for w = 1, CONCURRENCY do
      cq:wrap(function()
        for _ = 1, share(w) do
          local req = request.new_from_uri(server.report_url)
          for name, value in pairs(signed_headers()) do req.headers:upsert(name, value) end
          local headers, stream = req:go(10)
          assert(headers and headers:get(":status") == "200", "lua-http: " .. tostring(stream))
          local report = normalize.report(cjson.decode(assert(stream:get_body_as_string())), "ready", B.ORDER_ID)
          report.analysis = analysis.analyze(report)
        end
      end)
    end
    assert(cq:loop())
  end
end

local server = B.start_fixture_server(1)
B.finally(function()
  local contenders = { { "ours", ours_runner(server) } }
  local peer, why = lua_http_runner(server)
  if peer then contenders[2] = { "lua-http", peer } end
  for _, k in ipairs(contenders) do k[2]() end -- warm: connections, JIT
  local times = B.rounds(ROUNDS, contenders)
  print(("peers/concurrent %s: %d reads per run, %d in flight, %d rounds, peers' normalizer: %s, load average %s")
    :format(B.interpreter, N, CONCURRENCY, ROUNDS, PEER_NORMALIZER, B.sh("cut -d' ' -f1-3 /proc/loadavg")))
  for _, k in ipairs(contenders) do
    local t = times[k[1]]
    local paired = {}
    for i = 1, ROUNDS do paired[i] = t[i] / times.ours[i] end
    print(("  %-10s %6.0f reads/s best, %6.0f median; ours / it: x%.2f best against best, x%.2f median of rounds")
      :format(k[1], N / B.min(t), N / B.median(t), B.min(t) / B.min(times.ours), B.median(paired)))
  end
  if why then print("  skipped lua-http: " .. why) end
end, function() server:stop() end)
