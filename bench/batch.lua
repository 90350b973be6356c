-- Benchmark 9: `maintenance-report batch` over 1,000 / 10,000 / 100,000 VINs
-- against the sandbox (issue 13, target 3). The CLI runs as a child process
-- under the same interpreter as this script, the way a user runs it; GNU time
-- reads its getrusage at exit (wait4), so memory and CPU are the batch
-- process's own, not this driver's or the sandbox's.
--
--   BENCH_BATCH_N            VIN counts, default "1000 10000 100000"
--   BENCH_BATCH_IN_FLIGHT    --concurrency and --max-active, default 1000
--   BENCH_BATCH_LATENCY_MS   the sandbox's report latency, default 800 (the client's first
--                            poll, 0.9-1 s after the order, finds the report ready)
--   BENCH_BATCH_WORKERS      sandbox nginx workers, default 2
--   BENCH_BATCH_BACKLOG, BENCH_BATCH_CONNECTIONS   the sandbox's listen backlog and
--                            worker_connections (default: the sandbox's, 4096 and 4096;
--                            511 and 1024 were nginx's and the sandbox's before issue 13)
--   BENCH_BATCH_ROOT         the checkout whose bin/maintenance-report runs (default this
--                            one): another tree's CLI against the same sandbox, for before/after
--   BENCH_BATCH_PROFILE      a command prefix for the CLI instead of the interpreter alone,
--                            e.g. "luajit -jp=F" (the profile goes to the CLI's stderr, printed)
--
-- Reported per N:
--   peak_rss_mib   ru_maxrss of the batch process (= its VmHWM). Target <= 64 MiB, flat in N.
--   cpu_ms_per_vin (user + sys of the batch process) / N. Target <= 1 ms.
--   ratio          wall time of the batch process / ideal. Target <= 1.25 at 1,000 in flight.
--                  ideal = ceil(N / in_flight) x lifetime: with in_flight VINs in progress at
--                  once, each VIN takes at least `lifetime`, the time from its order to the poll
--                  that finds the report ready: latency + the mean poll wait of the client's
--                  default poll schedule (its _next_wait, jitter included, simulated 100,000
--                  times). Nothing else (start-up, reading the input, writing the output, HTTP
--                  round trips, the ledger's fsyncs) counts as ideal.
--   load           /proc/loadavg (1 min) before and after the run.
-- The run checks what the batch did: every VIN ready in the output, exactly N orders at the
-- sandbox and no VIN ordered twice.
local bench_dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = bench_dir .. "/?.lua;" .. package.path
local B = require "benchlib"
local client = require "maintenance_report.client"
local sandbox = require "maintenance_report_sandbox"

local COUNTS = {}
for n in (os.getenv("BENCH_BATCH_N") or "1000 10000 100000"):gmatch("%d+") do COUNTS[#COUNTS + 1] = tonumber(n) end
local IN_FLIGHT = math.floor(B.env_number("BENCH_BATCH_IN_FLIGHT", 1000))
local LATENCY = B.env_number("BENCH_BATCH_LATENCY_MS", 800) / 1000
local BACKLOG = os.getenv("BENCH_BATCH_BACKLOG") and math.floor(B.env_number("BENCH_BATCH_BACKLOG", 4096))
local CONNECTIONS = os.getenv("BENCH_BATCH_CONNECTIONS") and math.floor(B.env_number("BENCH_BATCH_CONNECTIONS", 4096))
local CLI_ROOT = os.getenv("BENCH_BATCH_ROOT") or B.ROOT
local PROFILE = os.getenv("BENCH_BATCH_PROFILE")
local WORKERS = math.floor(B.env_number("BENCH_BATCH_WORKERS", 2))
local RSS_TARGET_MIB, CPU_TARGET_MS, RATIO_TARGET = 64, 1, 1.25
local q = B.quote
local lua = rawget(_G, "jit") and "luajit" or "lua5.4"

-- Mean time from an order to the poll that finds its report ready, under the
-- client's default schedule.
local function lifetime()
  local c = assert(client.new{ secret_id = "x", secret_key = "y" })
  local s = c:settings()
  local o = { first_poll_delay = s.first_poll_delay, poll_growth = s.poll_growth, random = math.random }
  local samples, total = 100000, 0
  for _ = 1, samples do
    local elapsed = 0
    repeat elapsed = elapsed + client._next_wait(o, elapsed, s.poll_interval) until elapsed >= LATENCY
    total = total + elapsed
  end
  c:close()
  return total / samples
end

local function loadavg()
  local f = io.open("/proc/loadavg", "r")
  local s = f and f:read("*l") or "?"
  if f then f:close() end
  return s:match("^(%S+)") or "?"
end

-- N distinct valid VINs, one per line.
local function write_input(path, n, offset)
  local f = assert(io.open(path, "wb"))
  for i = 1, n do f:write(sandbox.scenario_vin("normal", offset + i), "\n") end
  f:close()
end

local function count_ready(path, n)
  local ready, lines = 0, 0
  for line in io.lines(path) do
    lines = lines + 1
    if line:find('"status":"ready"', 1, true) then ready = ready + 1 end
  end
  return ready, lines == n
end

local sb = assert(sandbox.start{ latency_ms = math.floor(LATENCY * 1000), workers = WORKERS, backlog = BACKLOG,
  connections = CONNECTIONS })
local dir = B.sh("mktemp -d \"${TMPDIR:-/tmp}/mr-bench-batch.XXXXXX\""):gsub("%s+$", "")

B.finally(function()
  local life = lifetime()
  local offset = 0
  for _, n in ipairs(COUNTS) do
    assert(sb:reset())
    local input, out = dir .. "/in-" .. n .. ".txt", dir .. "/out-" .. n .. ".jsonl"
    local ledger_file = dir .. "/ledger-" .. n
    write_input(input, n, offset)
    offset = offset + n
    local env = ("env MAINTENANCE_REPORT_ENDPOINT=%s MAINTENANCE_REPORT_SECRET_ID=%s MAINTENANCE_REPORT_SECRET_KEY=%s "
      .. "MAINTENANCE_REPORT_LEDGER=%s"):format(q(sb.base_url), q(sb.secret_id), q(sb.secret_key), q(ledger_file))
    local cmd = ("%s /usr/bin/time -f '%%M %%U %%S %%e' -o %s %s %s batch %s --output %s --concurrency %d "
      .. "--max-active %d --rate 1000000 --quiet 2>%s"):format(env, q(dir .. "/time"), PROFILE or lua,
      q(CLI_ROOT .. "/bin/maintenance-report"), q(input), q(out), IN_FLIGHT, IN_FLIGHT, q(dir .. "/err"))
    local load0 = loadavg()
    local _, rc = require("maintenance_report_sandbox.shell").run(cmd)
    local load1 = loadavg()
    local rss_kib, user, sys, wall = B.read_file(dir .. "/time"):match("(%d+) ([%d.]+) ([%d.]+) ([%d.]+)%s*$")
    if not rss_kib then error("batch did not run (exit " .. tostring(rc) .. "): " .. B.read_file(dir .. "/time")
      .. B.read_file(dir .. "/err")) end
    local ready, complete = count_ready(out, n)
    local counts = assert(sb:counts())
    local ideal = math.ceil(n / IN_FLIGHT) * life
    local cpu_ms = (tonumber(user) + tonumber(sys)) / n * 1000
    local rss = tonumber(rss_kib) / 1024
    local ratio = tonumber(wall) / ideal
    B.report("batch", {
      { "n", n }, { "peak_rss_mib", B.fmt(rss, 1) }, { "rss_verdict", B.verdict(rss <= RSS_TARGET_MIB) },
      { "cpu_ms_per_vin", B.fmt(cpu_ms, 3) }, { "cpu_verdict", B.verdict(cpu_ms <= CPU_TARGET_MS) },
      { "ratio", B.fmt(ratio) }, { "ratio_verdict", B.verdict(ratio <= RATIO_TARGET) },
      { "load", load0 .. "/" .. load1 },
    })
    B.note(("wall=%.1fs ideal=%.1fs (ceil(%d / %d) x %.3fs lifetime: %.2fs latency + poll wait) user=%ss sys=%ss "
      .. "exit=%s"):format(tonumber(wall), ideal, n, IN_FLIGHT, life, LATENCY, user, sys, tostring(rc)))
    B.note(("output: %d of %d ready%s; sandbox: %d orders for %d VINs, %d VINs ordered twice, %d report reads")
      :format(ready, n, complete and "" or " (LINES MISSING)", counts.orders, counts.vins, counts.repeat_vins,
        counts.report_reads))
    B.note(("sandbox: backlog %s, worker_connections %s, %d workers; CLI from %s"):format(BACKLOG or "default",
      CONNECTIONS or "default", WORKERS, CLI_ROOT))
    if PROFILE then print(B.read_file(dir .. "/err")) end
    if ready ~= n or counts.orders ~= n or counts.repeat_vins ~= 0 then
      error("the batch did not do its job:\n" .. B.read_file(dir .. "/err"):sub(1, 2000))
    end
    os.remove(out)
    os.remove(input)
  end
end, function()
  sb:stop()
  B.sh("rm -rf " .. q(dir))
end)
