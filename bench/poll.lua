-- Benchmark 5: polling at scale. 5,000 orders through the client's one
-- scheduler (client:start_query: order, then poll until ready), 200 at a time
-- (200 queries running, max_in_flight = 200), against the sandbox started with
-- latency_ms = 1000 (a report is ready 1 s after its order) and 2 workers.
-- The client polls with first_poll_delay = 0.5 s and poll_interval = 1 s.
--
--   BENCH_POLL_ORDERS (default 5000), BENCH_POLL_CONCURRENCY (default 200),
--   BENCH_POLL_LATENCY_MS (default 1000)
--
-- Reported:
--   ratio   wall time / ideal wall time, ideal = orders / concurrency x
--           (latency + mean poll wait). The mean poll wait is how long after
--           the report is ready the poll that finds it comes, on average, from
--           the client's own poll schedule (its _next_wait, jitter included),
--           simulated 100,000 times. Target <= 1.25.
--   cpu_us_per_exchange   client CPU (os.clock) / HTTP exchanges (on_event "http").
--   peak_rss_mib          VmHWM of this process at the end. Target <= 64 MiB.
--   nginx_cpu_util        sandbox workers' CPU seconds / wall seconds (2 = both cores busy).
local bench_dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = bench_dir .. "/?.lua;" .. package.path
local B = require "benchlib"
local client = require "maintenance_report.client"
local sandbox = require "maintenance_report_sandbox"

local ORDERS = math.floor(B.env_number("BENCH_POLL_ORDERS", 5000))
local CONCURRENCY = math.floor(B.env_number("BENCH_POLL_CONCURRENCY", 200))
local LATENCY = B.env_number("BENCH_POLL_LATENCY_MS", 1000) / 1000
local FIRST_POLL_DELAY, POLL_INTERVAL = 0.5, 1
local RATIO_TARGET, RSS_TARGET_MIB = 1.25, 64

-- Mean time from "ready" to the poll that sees it, for the client's schedule.
local function mean_poll_wait(c)
  local samples, total = 100000, 0
  local s = c:settings()
  local o = { first_poll_delay = s.first_poll_delay, poll_growth = s.poll_growth, random = math.random }
  for _ = 1, samples do
    local elapsed = 0
    repeat
      elapsed = elapsed + client._next_wait(o, elapsed, POLL_INTERVAL)
    until elapsed >= LATENCY
    total = total + (elapsed - LATENCY)
  end
  return total / samples
end

local sb = assert(sandbox.start{ latency_ms = math.floor(LATENCY * 1000), workers = 2 })

B.finally(function()
  local exchanges, http_time, http_errors = 0, 0, 0
  local c = assert(client.new{
    secret_id = sb.secret_id, secret_key = sb.secret_key, endpoint = sb.base_url,
    max_in_flight = CONCURRENCY, first_poll_delay = FIRST_POLL_DELAY, poll_interval = POLL_INTERVAL,
    max_wait = 120,
    on_event = function(e)
      if e.event == "http" then
        exchanges = exchanges + 1
        http_time = http_time + (e.duration or 0)
        if e.error_kind then http_errors = http_errors + 1 end
      end
    end,
  })
  local poll_wait = mean_poll_wait(c)
  local ideal = ORDERS / CONCURRENCY * (LATENCY + poll_wait)

  local started, ready, failures, lifetime = 0, 0, {}, 0
  local start_times = {}
  local function start_next()
    started = started + 1
    local vin = sandbox.scenario_vin("normal", started - 1)
    local handle = c:start_query{ vin = vin, on_done = function(h)
      local report, err = h:result()
      if report and report.status == "ready" then
        ready = ready + 1
      else
        failures[#failures + 1] = tostring(err and (err.kind .. ": " .. err.message) or report.status)
      end
      lifetime = lifetime + (B.now() - start_times[h])
      start_times[h] = nil
      if started < ORDERS then start_next() end
    end }
    start_times[handle] = B.now()
  end

  local workers = B.children(sb.pid)
  local nginx_cpu0 = B.cpu_seconds_of(workers)
  local cpu0, t0 = os.clock(), B.now()
  for _ = 1, math.min(CONCURRENCY, ORDERS) do start_next() end
  local sched = c:scheduler()
  while sched:pending() > 0 do c:step(1) end
  local wall, cpu = B.now() - t0, os.clock() - cpu0
  local nginx_cpu = B.cpu_seconds_of(workers) - nginx_cpu0
  local rss_mib = (B.peak_rss_kib() or 0) / 1024

  if ready ~= ORDERS then
    error(("only %d of %d queries ended ready; first failure: %s"):format(ready, ORDERS, tostring(failures[1])))
  end
  local stats = assert(sb:stats())
  local ratio = wall / ideal
  B.report("poll", {
    { "ratio", B.fmt(ratio) }, { "target", "<=" .. RATIO_TARGET }, { "verdict", B.verdict(ratio <= RATIO_TARGET) },
    { "peak_rss_mib", B.fmt(rss_mib, 1) }, { "rss_target", "<=" .. RSS_TARGET_MIB },
    { "rss_verdict", B.verdict(rss_mib <= RSS_TARGET_MIB) },
    { "cpu_us_per_exchange", B.fmt(cpu / exchanges * 1e6, 0) },
  })
  B.note(("wall=%.1fs ideal=%.1fs (%d orders / %d x (%.2fs latency + %.3fs mean poll wait))"):format(
    wall, ideal, ORDERS, CONCURRENCY, LATENCY, poll_wait))
  B.note(("exchanges=%d (%.2f per order; server saw %d orders, %d report reads) http_errors=%d"):format(
    exchanges, exchanges / ORDERS, stats.orders, stats.report_reads, http_errors))
  B.note(("mean query lifetime=%.3fs (ideal %.3fs)  mean HTTP exchange=%.1fms  client_cpu=%.1fs (%.0f%% of a core)")
    :format(lifetime / ORDERS, LATENCY + poll_wait, http_time / exchanges * 1000, cpu, cpu / wall * 100))
  B.note(("sandbox: 2 nginx workers used %.1f CPU-s = %.2f cores on average (machine: 2 cores, shared)"):format(
    nginx_cpu, nginx_cpu / wall))
  c:close()
end, function() sb:stop() end)
