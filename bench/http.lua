-- Benchmarks 1 and 2: client:get_report through the real client and the real
-- curl transport (sign + HTTP + decode + normalize), against the curl CLI
-- fetching the same URL, both against one private nginx on 127.0.0.1 that
-- serves the listing's sample report with keep-alive.
--
--   lua http.lua [sequential|concurrent|breakdown ...]   (default: all three)
--   BENCH_N (requests per run, default 3000), BENCH_ROUNDS (default 5)
--
-- 1 sequential: N blocking client:get_report calls, against `curl -K` with the
--   same N URLs (one process, one keep-alive connection).
-- 2 concurrent: 32 tasks on client:scheduler() (max_in_flight = 32) calling
--   client:get_report, so 32 requests are in flight on the curl multi handle,
--   against `curl --parallel --parallel-max 32 -K` with the same N URLs.
-- Ratio = client throughput / curl throughput, best run against best run;
-- curl's process start-up (a 1-URL run, timed every round) is taken off its
-- time, so curl is not penalised for it. Target: ratio >= 0.8.
local bench_dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = bench_dir .. "/?.lua;" .. package.path
local B = require "benchlib"
local client = require "maintenance_report.client"

local N = math.floor(B.env_number("BENCH_N", 3000))
local ROUNDS = math.floor(B.env_number("BENCH_ROUNDS", 5))
local CONCURRENCY = 32
local TARGET = 0.8

local function new_client(server)
  return assert(client.new{
    secret_id = "AKIDbench", secret_key = "bench-secret", endpoint = server.base_url,
    max_in_flight = CONCURRENCY,
  })
end

local function check(report, err)
  if not report or report.status ~= "ready" then
    error("get_report failed: " .. tostring(err and err.message or (report and report.status)))
  end
end

-- Seconds for a curl CLI run over config, less its start-up.
local function curl_runner(flags, config, one)
  local cmd = "curl -sS --noproxy '*' " .. flags .. " -K "
  return {
    full = function() B.sh(cmd .. B.quote(config)) end,
    startup = function() B.sh(cmd .. B.quote(one)) end,
  }
end

local function compare(name, client_run, curl, note)
  local times = B.rounds(ROUNDS, {
    { "client", client_run },
    { "curl", curl.full },
    { "curl1", curl.startup },
  })
  local curl_net = {}
  for i, t in ipairs(times.curl) do curl_net[i] = math.max(t - times.curl1[i], 1e-6) end
  local client_rate = N / B.min(times.client)
  local curl_rate = (N - 1) / B.min(curl_net)
  local paired = {}
  for i = 1, ROUNDS do paired[i] = (N / times.client[i]) / ((N - 1) / curl_net[i]) end
  local ratio = client_rate / curl_rate
  B.report(name, {
    { "ratio", B.fmt(ratio) }, { "target", ">=" .. TARGET }, { "verdict", B.verdict(ratio >= TARGET) },
    { "client_rps", B.fmt(client_rate, 0) }, { "curl_rps", B.fmt(curl_rate, 0) },
    { "median_paired_ratio", B.fmt(B.median(paired)) }, { "n", N }, { "rounds", ROUNDS },
  })
  B.note(note)
end

local function sequential(server, config, one)
  local c = new_client(server)
  check(c:get_report(B.ORDER_ID)) -- connects; every timed call reuses the connection
  compare("sequential", function()
    for _ = 1, N do check(c:get_report(B.ORDER_ID)) end
  end, curl_runner("", config, one), "client:get_report x N, blocking  vs  curl -K (N URLs, keep-alive)")
  c:close()
end

local function concurrent(server, config, one)
  local c = new_client(server)
  local sched = c:scheduler()
  local failure
  local function done(handle)
    local ok, err = pcall(handle.result, handle)
    if not ok then failure = failure or err end
  end
  local function run()
    for w = 1, CONCURRENCY do
      local share = math.floor(N / CONCURRENCY) + (w <= N % CONCURRENCY and 1 or 0)
      sched:spawn(function()
        for _ = 1, share do check(c:get_report(B.ORDER_ID)) end
      end, done)
    end
    while sched:pending() > 0 do c:step(1) end
    if failure then error(failure, 0) end
  end
  run() -- opens the 32 connections
  compare("concurrent", run, curl_runner("--parallel --parallel-max " .. CONCURRENCY, config, one),
    "32 tasks on client:scheduler() (max_in_flight=32) x client:get_report  vs  curl --parallel --parallel-max 32")
  c:close()
end

-- Where a sequential get_report's time goes, each part timed alone here in
-- microseconds per call: the whole call; the same call on a canned transport
-- that returns the fixture without any network ("offline"); core session:request
-- alone (same URL and signed headers); core.sign; json_decode; normalize =
-- (json_decode + normalize.report) - json_decode; analysis.analyze of the
-- normalized report. Derived: http_in_situ = get_report - offline;
-- client_logic = offline - sign - decode - normalize - analysis.
local function breakdown(server)
  local core = require "maintenance_report.core"
  local normalize = require "maintenance_report.normalize"
  local analysis = require "maintenance_report.analysis"
  local c = new_client(server)
  local session = core.session{ timeout = 10, connect_timeout = 5 }
  local req = { method = "GET", url = server.report_url, timeout = 10, connect_timeout = 5,
    max_body = 8 * 1024 * 1024 }
  local canned = assert(session:request(req))
  local body = canned.body
  local offline = assert(client.new{
    secret_id = "AKIDbench", secret_key = "bench-secret", endpoint = server.base_url,
    transport = { request = function() return canned end },
  })
  local sign_opts = { secret_id = "AKIDbench", secret_key = "bench-secret", source = "market",
    algorithm = "hmac-sha1", headers = "x-date x-source" }
  req.headers = core.sign(sign_opts)
  local report = normalize.report(core.json_decode(body), "ready", B.ORDER_ID, { utc_offset_hours = 8 })
  check(c:get_report(B.ORDER_ID))
  local times = B.rounds(ROUNDS, {
    { "get_report", function() for _ = 1, N do check(c:get_report(B.ORDER_ID)) end end },
    { "offline", function() for _ = 1, N do check(offline:get_report(B.ORDER_ID)) end end },
    { "http", function() for _ = 1, N do assert(session:request(req)) end end },
    { "sign", function() for _ = 1, N do core.sign(sign_opts) end end },
    { "decode", function() for _ = 1, N do core.json_decode(body) end end },
    { "decode_normalize", function()
      for _ = 1, N do
        normalize.report(core.json_decode(body), "ready", B.ORDER_ID, { utc_offset_hours = 8 })
      end
    end },
    { "analysis", function() for _ = 1, N do analysis.analyze(report) end end },
  })
  local us = {}
  for k, list in pairs(times) do us[k] = B.min(list) / N * 1e6 end
  us.normalize = us.decode_normalize - us.decode
  B.report("breakdown", {
    { "get_report_us", B.fmt(us.get_report, 1) }, { "offline_us", B.fmt(us.offline, 1) },
    { "http_alone_us", B.fmt(us.http, 1) }, { "http_in_situ_us", B.fmt(us.get_report - us.offline, 1) },
    { "sign_us", B.fmt(us.sign, 1) }, { "decode_us", B.fmt(us.decode, 1) },
    { "normalize_us", B.fmt(us.normalize, 1) }, { "analysis_us", B.fmt(us.analysis, 1) },
    { "client_logic_us", B.fmt(us.offline - us.sign - us.decode_normalize - us.analysis, 1) },
  })
  B.note("one sequential get_report, by part (see bench/http.lua); curl -K needs "
    .. "1e6/curl_rps us per URL")
  session:close()
  c:close()
end

local which = {}
for _, a in ipairs(arg or {}) do which[a] = true end
if not next(which) then which = { sequential = true, concurrent = true, breakdown = true } end

local server = B.start_fixture_server(1)
local config = B.curl_config(server.report_url, N)
local one = B.curl_config(server.report_url, 1)
B.finally(function()
  if which.sequential then sequential(server, config, one) end
  if which.concurrent then concurrent(server, config, one) end
  if which.breakdown then breakdown(server) end
end, function()
  os.remove(config)
  os.remove(one)
  server:stop()
end)
