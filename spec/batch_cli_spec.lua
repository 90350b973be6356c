-- `maintenance-report batch` against the sandbox: output lines, summary and cost,
-- --strict, the rate limit and the concurrency cap measured at the sandbox, and
-- the order ledger surviving a SIGKILL without any VIN ever being ordered twice.
local sandbox = require "maintenance_report_sandbox"
local cli = require "helpers.cli_run"
local ledger = require "maintenance_report.ledger"

local function normal_vins(n, offset)
  local out = {}
  for i = 1, n do out[i] = sandbox.scenario_vin("normal", (offset or 0) + i) end
  return out
end

local function by_vin(lines)
  local out = {}
  for _, l in ipairs(lines) do if l.vin then out[l.vin] = l end end
  return out
end

-- The most arrivals inside any window of `width` seconds.
local function max_in_window(times, width)
  local sorted = {}
  for i, t in ipairs(times) do sorted[i] = t end
  table.sort(sorted)
  local best, j = 0, 1
  for i = 1, #sorted do
    while sorted[i] - sorted[j] >= width do j = j + 1 end
    best = math.max(best, i - j + 1)
  end
  return best
end

describe("batch against the sandbox", function()
  local sb, env
  local start, stop = cli.sandbox_hooks({ pending_polls = 1, secret_key = "batch-spec-key" },
    function(s, e) sb, env = s, e end)
  lazy_setup(start)
  lazy_teardown(stop)
  before_each(function() assert(sb:reset()) end)

  -- Every test gets its own ledger (so re-runs inside a test share it).
  local ledger_path
  before_each(function() ledger_path = cli.tmpdir() .. "/state/ledger" end)

  local function run(args, extra_env)
    return cli.run(args, cli.merge(cli.merge(env, { MAINTENANCE_REPORT_LEDGER = ledger_path }), extra_env))
  end

  it("writes one JSON line per VIN, skips invalid rows and duplicates, and sums up the cost", function()
    local dir = cli.tmpdir()
    local good = normal_vins(3)
    local no_records = sandbox.scenario_vin("no_records")
    cli.write(dir .. "/in.csv", table.concat({
      "vin,engine_number,plate_number", "# comment", good[1] .. ",E-1,京A12345", good[2], "",
      good[1]:lower(), "SBL666666BM9D933", good[3], no_records,
    }, "\r\n") .. "\r\n")
    local r = run{ "batch", dir .. "/in.csv", "--output", dir .. "/out.jsonl", "--poll-interval", "0.05",
                   "--rate", "50", "--unit-price", "2.5" }
    assert.are.equal(2, r.code, r.err) -- every VIN finished; an invalid row was skipped
    local lines = cli.json_lines(cli.read(dir .. "/out.jsonl"))
    assert.are.equal(5, #lines) -- 4 distinct VINs + 1 invalid row
    local rows = by_vin(lines)
    for _, vin in ipairs(good) do
      assert.are.equal("ready", rows[vin].status)
      assert.truthy(rows[vin].order_id:match("^%x+$"))
      assert.are.equal("ready", rows[vin].report.status)
      assert.is_table(rows[vin].report.records)
      assert.is_nil(rows[vin].report.raw)
    end
    assert.are.equal("京A12345", rows[good[1]].input.plate_number)
    assert.are.equal(3, rows[good[1]].line)
    assert.are.equal("no_records", rows[no_records].status)
    local invalid
    for _, l in ipairs(lines) do if l.status == "invalid" then invalid = l end end
    assert.are.equal(7, invalid.line)
    assert.are.equal("invalid_input", invalid.error.kind)
    assert.truthy(r.err:find("line 7:", 1, true), r.err)
    assert.truthy(r.err:find("line 6: duplicate of line 3", 1, true), r.err)
    -- the sandbox saw each distinct VIN once
    local stats = sb:stats()
    assert.are.equal(4, stats.orders)
    for _, n in pairs(stats.orders_by_vin) do assert.are.equal(1, n) end
    -- summary: counts by outcome and money spent
    assert.truthy(r.err:find("ready%s+3"), r.err)
    assert.truthy(r.err:find("no_records%s+1"), r.err)
    assert.truthy(r.err:find("4 orders × ¥2.50 = ¥10.00", 1, true), r.err)
    -- progress goes to stderr as plain lines when stderr is not a terminal
    assert.truthy(r.err:find("progress: 4/4 done", 1, true), r.err)
  end)

  it("draws a live progress bar when stderr is a terminal", function()
    if not cli.has_command("script") then
      pending("script(1) is not installed")
      return
    end
    local dir = cli.tmpdir()
    cli.write(dir .. "/in.txt", table.concat(normal_vins(4, 50), "\n") .. "\n")
    local cmd = cli.command({ "batch", dir .. "/in.txt", "--output", dir .. "/out.jsonl", "--poll-interval", "0.05",
                              "--rate", "20", "--ledger", ledger_path }, env)
    local p = io.popen("script -qfec " .. cli.quote(cmd) .. " /dev/null")
    local out = p:read("*a")
    p:close()
    assert.truthy(out:find("\r%[[#%-]+%] %d+/4"), out)
    assert.truthy(out:find("\27[K", 1, true))
    assert.truthy(out:find("%] 4/4"), out)
    assert.falsy(out:find("progress: ", 1, true))
    assert.are.equal(4, #cli.json_lines(cli.read(dir .. "/out.jsonl")))
  end)

  it("with --strict, stops before any order when a row is invalid", function()
    local dir = cli.tmpdir()
    cli.write(dir .. "/in.txt", table.concat(normal_vins(3), "\n") .. "\nNOT-A-VIN\n")
    local r = run{ "batch", dir .. "/in.txt", "--strict", "--output", dir .. "/out.jsonl" }
    assert.are.equal(2, r.code, r.err)
    assert.truthy(r.err:find("line 4:", 1, true), r.err)
    assert.are.equal(0, sb:stats().orders)
    assert.is_nil(cli.read(ledger_path), "the ledger was not even created")
  end)

  it("with --dry-run, prints the plan and the cost and sends nothing", function()
    local dir = cli.tmpdir()
    cli.write(dir .. "/in.txt", table.concat(normal_vins(3, 700), "\n") .. "\n")
    local r = run{ "batch", dir .. "/in.txt", "--dry-run", "--unit-price", "10" }
    assert.are.equal(0, r.code, r.err)
    assert.truthy(r.err:find("3 to order (up to ¥30.00)", 1, true), r.err)
    assert.are.equal("", r.out)
    local stats = sb:stats()
    assert.are.equal(0, stats.orders)
    assert.are.equal(0, stats.report_reads)
  end)

  it("respects --rate, measured at the sandbox", function()
    local dir = cli.tmpdir()
    local n, rate = 20, 10
    cli.write(dir .. "/in.txt", table.concat(normal_vins(n, 100), "\n") .. "\n")
    local r = run{ "batch", dir .. "/in.txt", "--rate", tostring(rate), "--concurrency", "8",
                   "--poll-interval", "0.05", "--output", dir .. "/out.jsonl" }
    assert.are.equal(0, r.code, r.err)
    local times = sb:stats().order_times
    assert.are.equal(n, #times)
    assert.is_true(max_in_window(times, 1.0) <= rate + 1, "more than rate+1 orders in one second")
    table.sort(times)
    local span = times[#times] - times[1]
    assert.is_true(span >= (n - 1) / rate - 0.2, "orders came too fast: " .. span .. " s")
  end)

  it("keeps at most --concurrency requests in flight", function()
    local dir = cli.tmpdir()
    -- orders the sandbox answers after 0.5-1.0 s; each holds a slot that long
    local vins = {}
    for i = 0, 5 do vins[#vins + 1] = sandbox.scenario_vin("order_slow", 0.5 + i / 10) end
    cli.write(dir .. "/in.txt", table.concat(vins, "\n") .. "\n")
    local r = run{ "batch", dir .. "/in.txt", "--concurrency", "2", "--rate", "100", "--poll-interval", "0.05",
                   "--output", dir .. "/out.jsonl" }
    assert.are.equal(0, r.code, r.err)
    local times = sb:stats().order_times
    table.sort(times)
    assert.are.equal(6, #times)
    assert.is_true(max_in_window(times, 0.45) <= 2, "more than 2 orders in flight")
    assert.is_true(times[2] - times[1] < 0.3, "the first two orders should run side by side")
    assert.is_true(times[3] - times[1] >= 0.45, "the third order started before a slot was free")
  end)

  it("stops ordering after an authentication error and exits 3", function()
    local dir = cli.tmpdir()
    cli.write(dir .. "/in.txt", table.concat(normal_vins(5, 200), "\n") .. "\n")
    local r = run({ "batch", dir .. "/in.txt", "--rate", "2", "--output", dir .. "/out.jsonl" },
      { MAINTENANCE_REPORT_SECRET_KEY = "not-the-key" })
    assert.are.equal(3, r.code, r.err)
    local statuses = {}
    for _, l in ipairs(cli.json_lines(cli.read(dir .. "/out.jsonl"))) do
      statuses[l.status] = (statuses[l.status] or 0) + 1
    end
    assert.are.equal(5, (statuses.failed or 0) + (statuses.skipped or 0))
    assert.is_true((statuses.skipped or 0) >= 3, r.err)
    assert.truthy(r.err:find("hint: .*secret key"), r.err)
  end)

  it("reports a VIN still pending at --max-wait (exit 6) and resumes it later without ordering", function()
    local dir = cli.tmpdir()
    -- about 0.05 s between reads: the first run reads at most ~12 times in 0.6 s
    local slow = sandbox.scenario_vin("pending_polls", 30)
    local quick = normal_vins(1, 300)[1]
    cli.write(dir .. "/in.txt", slow .. "\n" .. quick .. "\n")
    local args = { "batch", dir .. "/in.txt", "--output", dir .. "/out.jsonl", "--poll-interval", "0.05",
                   "--max-wait", "0.6", "--rate", "50" }
    local r = run(args)
    assert.are.equal(6, r.code, r.err)
    local rows = by_vin(cli.json_lines(cli.read(dir .. "/out.jsonl")))
    assert.are.equal("pending", rows[slow].status)
    assert.truthy(rows[slow].order_id)
    assert.are.equal("ready", rows[quick].status)
    args[8] = "20"
    local again = run(args)
    assert.are.equal(0, again.code, again.err)
    local rows2 = by_vin(cli.json_lines(cli.read(dir .. "/out.jsonl")))
    assert.are.equal("ready", rows2[slow].status)
    assert.are.equal(rows[slow].order_id, rows2[slow].order_id)
    assert.are.equal(rows[quick].order_id, rows2[quick].order_id)
    assert.are.equal(2, sb:stats().orders)
    assert.truthy(again.err:find("0 to order", 1, true), again.err)
  end)

  it("never re-orders an unknown outcome, unless --retry-unknown says so", function()
    local dir = cli.tmpdir()
    local unknown = sandbox.scenario_vin("order_http_500", 1) -- fails once, then works
    -- a 429 is provably not placed; the batch tries an order 4 times (3 retries) per run,
    -- so this one fails the first run and works on the second
    local failed = sandbox.scenario_vin("order_rate_limit", 4)
    local fine = normal_vins(1, 400)[1]
    cli.write(dir .. "/in.txt", table.concat({ unknown, failed, fine }, "\n") .. "\n")
    local args = { "batch", dir .. "/in.txt", "--output", dir .. "/out.jsonl", "--poll-interval", "0.05",
                   "--rate", "50" }
    local r = run(args)
    assert.are.equal(7, r.code, r.err)
    local rows = by_vin(cli.json_lines(cli.read(dir .. "/out.jsonl")))
    assert.are.equal("unknown", rows[unknown].status)
    assert.are.equal("unknown", rows[unknown].error.order_outcome)
    assert.are.equal("failed", rows[failed].status)
    assert.truthy(r.err:find(unknown, 1, true), "the summary lists the unknown VIN")
    assert.truthy(r.err:find("--retry-unknown", 1, true))
    -- re-run: the provably failed order is tried again, the unknown one is not
    local again = run(args)
    assert.are.equal(7, again.code, again.err)
    local stats = sb:stats()
    assert.are.equal(1, stats.orders_by_vin[unknown])
    assert.are.equal(5, stats.orders_by_vin[failed])
    assert.are.equal(1, stats.orders_by_vin[fine])
    assert.are.equal("ready", by_vin(cli.json_lines(cli.read(dir .. "/out.jsonl")))[failed].status)
    -- explicitly asked: ordered again
    args[#args + 1] = "--retry-unknown"
    local retried = run(args)
    assert.are.equal(0, retried.code, retried.err)
    assert.are.equal(2, sb:stats().orders_by_vin[unknown])
    assert.are.equal(1, sb:stats().orders_by_vin[fine])
  end)

  it("loses no order id and orders no VIN twice when killed with SIGKILL mid-batch", function()
    local dir = cli.tmpdir()
    local vins = normal_vins(30, 500)
    local input, out = dir .. "/in.csv", dir .. "/out.jsonl"
    cli.write(input, "vin\n" .. table.concat(vins, "\n") .. "\n")
    local args = { "batch", input, "--output", out, "--rate", "15", "--poll-interval", "0.05",
                   "--ledger", ledger_path }
    local p = io.popen("sh -c " .. cli.quote(cli.command(args, env) .. " >" .. cli.quote(dir .. "/log")
      .. " 2>&1 & echo $!"))
    local pid = tonumber(p:read("*l"))
    p:close()
    assert.truthy(pid)
    -- order ids the ledger holds, by VIN (read with the library, as any reader would)
    local function placed()
      local ids, n = {}, 0
      if not cli.read(ledger_path) then return ids, 0 end
      local L = assert(ledger.file(ledger_path))
      for _, e in ipairs(assert(L:list())) do
        if e.order_id then ids[e.vin], n = e.order_id, n + 1 end
      end
      L:close()
      return ids, n
    end
    local function ordered_lines() return select(2, placed()) end
    assert.is_true(cli.wait_until(function() return ordered_lines() >= 3 end, 20), "no order ids in the ledger")
    os.execute("kill -KILL " .. pid)
    assert.is_true(cli.wait_until(function() return not cli.alive(pid) end, 10), "the batch did not die")
    local killed_at = ordered_lines()
    assert.is_true(killed_at < #vins, "the batch finished before it was killed")

    -- order ids known at the kill
    local before = placed()

    local r = run(args)
    local rows = by_vin(cli.json_lines(cli.read(out)))
    local unknown = {}
    for _, vin in ipairs(vins) do
      local row = rows[vin]
      assert.truthy(row, vin .. "\n" .. r.err)
      if row.status == "unknown" then
        unknown[vin] = true
      else
        assert.are.equal("ready", row.status, vin)
      end
      if before[vin] then assert.are.equal(before[vin], row.order_id, "order id lost for " .. vin) end
    end
    local n_unknown = 0
    for _ in pairs(unknown) do n_unknown = n_unknown + 1 end
    assert.are.equal(n_unknown == 0 and 0 or 7, r.code, r.err)

    local stats = sb:stats()
    local never_arrived = 0
    for _, vin in ipairs(vins) do
      local n = stats.orders_by_vin[vin]
      if unknown[vin] then
        assert.is_true(n == nil or n == 1, vin)
        if n == nil then never_arrived = never_arrived + 1 end
      else
        assert.are.equal(1, n, vin)
      end
    end
    for _, n in pairs(stats.orders_by_vin) do assert.are.equal(1, n) end
    assert.are.equal(#vins - never_arrived, stats.orders)
    assert.is_true(n_unknown <= 8, "at most --concurrency orders can be in flight at the kill")
  end)
end)
