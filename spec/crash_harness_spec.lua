-- The crash harness: `query` and `batch` runs of the CLI, sharing one file
-- ledger, are killed with SIGKILL at random moments (seeded, so a run can be
-- replayed with MR_CRASH_SEED), then everything is re-run to completion.
-- Measured against the sandbox's own record of the orders it took and the
-- ids it issued: duplicate paid orders, order ids lost, and vehicles left
-- "unknown" although no request of theirs ever reached the server.
-- The CLI always runs under lua5.4, so the harness runs once, under lua5.4.
local cli = require "helpers.cli_run"
local sandbox = require "maintenance_report_sandbox"
local ledger = require "maintenance_report.ledger"

local SEED = tonumber(os.getenv("MR_CRASH_SEED") or "") or 20261201
local KILLS = tonumber(os.getenv("MR_CRASH_KILLS") or "") or 50
local POOL = 300 -- distinct vehicles, at most

describe("crash harness", function()
  if rawget(_G, "jit") then
    it("runs under lua5.4 only (the CLI's interpreter)", function() end)
    return
  end

  local sb, dir
  lazy_setup(function()
    -- Every order and report read takes 150 ms, so a kill lands mostly while
    -- requests are in flight, and the report is pending for two polls.
    sb = assert(sandbox.start{ latency_ms = 150, pending_polls = 0, workers = 2 })
    dir = cli.tmpdir()
  end)
  lazy_teardown(function()
    if sb then sb:stop() end
    cli.cleanup()
  end)

  local function vins(n)
    local out = {}
    for i = 1, n do out[i] = sandbox.scenario_vin("normal", 7000 + i) end
    return out
  end

  it("places no duplicate order and loses no order id over " .. KILLS .. " SIGKILLs", function()
    math.randomseed(SEED)
    local pool = vins(POOL)
    local ledger_path = dir .. "/ledger"
    local env = cli.sandbox_env(sb, { MAINTENANCE_REPORT_LEDGER = ledger_path })
    local common = { "--poll-interval", "0.05", "--timeout", "5" }

    -- One CLI run in the background; returns its pid and its exit-status file.
    local function start(args, n)
      local words = {}
      for _, a in ipairs(args) do words[#words + 1] = a end
      for _, a in ipairs(common) do words[#words + 1] = a end
      local rc_file = ("%s/rc.%d"):format(dir, n)
      local cmd = ("%s >%s/out.%d 2>&1 & echo $!"):format(cli.command(words, env), dir, n)
      local p = assert(io.popen("(" .. cmd .. ") ; true"))
      local pid = tonumber(p:read("*l"))
      p:close()
      return pid, rc_file
    end

    -- Mostly vehicles nobody touched yet (so a run has orders in flight to be
    -- killed in), some touched before (placed, final or unknown: resumed).
    local used = 0
    local function pick()
      if used == 0 or (used < POOL and math.random() < 0.7) then
        used = used + 1
        return pool[used]
      end
      return pool[math.random(used)]
    end

    local kills, runs, by_kind = 0, 0, { query = 0, batch = 0 }
    local finished = {} -- exit codes of the runs that ended before their kill
    while kills < KILLS and runs < 10 * KILLS do
      runs = runs + 1
      local args
      if math.random() < 0.5 then
        args = { "query", "--vin", pick(), "--format", "json",
          "--output", dir .. "/q" .. runs .. ".json" }
        by_kind.query = by_kind.query + 1
      else
        local rows = {}
        for i = 1, 8 do rows[i] = pick() end
        cli.write(dir .. "/b" .. runs .. ".txt", table.concat(rows, "\n") .. "\n")
        args = { "batch", dir .. "/b" .. runs .. ".txt", "--output", dir .. "/b" .. runs .. ".jsonl",
          "--rate", "50", "--concurrency", "4" }
        by_kind.batch = by_kind.batch + 1
      end
      local pid = start(args, runs)
      -- The kill's moment is the experiment's random input, not a synchronisation.
      -- A run takes about 0.3–0.6 s (start-up, an order and a poll at 150 ms each):
      -- later moments mostly find it finished, and kill nothing.
      os.execute(("sleep %.3f"):format(0.05 + math.random() * 0.5))
      if cli.alive(pid) then
        os.execute("kill -KILL " .. pid .. " 2>/dev/null")
        kills = kills + 1
      else
        finished[#finished + 1] = runs
      end
      cli.wait_until(function() return not cli.alive(pid) end, 10)
    end
    assert.are.equal(KILLS, kills, ("only %d of %d runs were still running at their kill; see %s/out.%d")
      :format(kills, runs, dir, finished[1] or 0))

    -- Re-run everything to completion: one batch over every vehicle touched.
    local touched = {}
    for i = 1, used do touched[i] = pool[i] end
    pool = touched
    cli.write(dir .. "/all.txt", table.concat(pool, "\n") .. "\n")
    local final
    for _ = 1, 3 do
      final = cli.run({ "batch", dir .. "/all.txt", "--output", dir .. "/all.jsonl", "--rate", "50",
        "--poll-interval", "0.05", "--max-wait", "30" }, env)
      if final.code == 0 or final.code == 7 then break end
    end
    assert.truthy(final.code == 0 or final.code == 7, final.err)

    local stats = assert(sb:stats())
    local L = assert(ledger.file(ledger_path))
    local duplicates, lost, false_unknown, unknown, ordered = 0, 0, 0, 0, 0
    local problems = {}
    for _, vin in ipairs(pool) do
      local count = stats.orders_by_vin[vin] or 0
      local ids = stats.order_ids_by_vin[vin] or {}
      local entry = L:get{ vin = vin }
      if count > 0 then ordered = ordered + 1 end
      if count > 1 then
        duplicates = duplicates + (count - 1)
        problems[#problems + 1] = vin .. ": " .. count .. " orders"
      end
      local state = entry and entry.state
      if state == "unknown" then
        unknown = unknown + 1
        if count == 0 then
          false_unknown = false_unknown + 1
          problems[#problems + 1] = vin .. ": unknown, but the server never saw its order"
        end
      end
      for _, id in ipairs(ids) do
        if not (entry and entry.order_id == id) then
          lost = lost + 1
          problems[#problems + 1] = vin .. ": order " .. id .. " is not in the ledger (" .. tostring(state) .. ")"
        end
      end
      if count == 0 and state ~= "unknown" then
        problems[#problems + 1] = vin .. ": never ordered, state " .. tostring(state)
      end
    end
    io.write(("\n# crash harness (seed %d): %d runs (%d query, %d batch), %d SIGKILLs; %d vehicles, "
      .. "%d ordered, %d orders at the server; duplicates %d, order ids lost %d, unknown %d "
      .. "(of which the server never saw the order: %d)\n"):format(SEED, runs, by_kind.query, by_kind.batch,
      kills, #pool, ordered, stats.orders, duplicates, lost, unknown, false_unknown))
    -- The money rule holds whatever the moment of the kill: no second order,
    -- and "unknown" only where the request had been armed, i.e. was about to
    -- be written or written.
    assert.are.equal(0, duplicates, table.concat(problems, "\n"))
    assert.are.equal(0, false_unknown, table.concat(problems, "\n"))
    -- One window no client can close is measured instead: a kill after the
    -- answer arrived and before its id was written (a millisecond or two of
    -- locking and writing) loses the id; the vehicle stays unknown, is never
    -- re-ordered, and the id is in the vendor's console. README says so.
    assert.is_true(lost <= KILLS / 10, table.concat(problems, "\n"))
    -- every vehicle ended with a report or a recorded unknown outcome
    assert.are.equal(#pool, ordered + false_unknown, table.concat(problems, "\n"))
    for _, vin in ipairs(pool) do
      local entry = L:get{ vin = vin }
      local state = entry and entry.state
      assert.truthy(state == "ready" or state == "no_records" or state == "unknown", vin .. ": " .. tostring(state))
    end
  end)
end)
