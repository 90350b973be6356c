-- Several `batch` processes over one CSV with one Redis ledger (machines of a
-- fleet, or a batch split by hand): every VIN is ordered exactly once, and each
-- process's summary accounts for every row.
local sandbox = require "maintenance_report_sandbox"
local cli = require "helpers.cli_run"
local redis_server = require "helpers.redis_server"

local q = cli.quote
local PROCESSES, VINS = 3, 300

describe("batch over a shared Redis ledger", function()
  local sb, redis, env
  lazy_setup(function()
    redis = redis_server.start{ password = "batch-fleet-redis-pw" }
    sb = assert(sandbox.start{ pending_polls = 1, workers = 2, secret_key = "batch-fleet-spec-key" })
    env = cli.sandbox_env(sb)
    env.MAINTENANCE_REPORT_REDIS_PASSWORD = redis.password
  end)
  lazy_teardown(function()
    if sb then sb:stop() end
    if redis then redis:stop() end
    cli.cleanup()
  end)

  it(PROCESSES .. " processes over one " .. VINS .. "-VIN CSV order each VIN exactly once", function()
    local dir = cli.tmpdir()
    local rows = { "vin" }
    for i = 1, VINS do rows[#rows + 1] = sandbox.scenario_vin("normal", 500 + i) end
    cli.write(dir .. "/in.csv", table.concat(rows, "\n") .. "\n")
    local jobs = {}
    for p = 1, PROCESSES do
      local args = { "batch", dir .. "/in.csv", "--ledger", ("redis://127.0.0.1:%d/0"):format(redis.port),
        "--output", ("%s/out%d.jsonl"):format(dir, p), "--poll-interval", "0.05", "--rate", "500",
        "--concurrency", "16", "--quiet" }
      jobs[p] = ("(%s >%s 2>%s </dev/null; echo $? >%s)"):format(cli.command(args, env),
        q(("%s/stdout%d"):format(dir, p)), q(("%s/stderr%d"):format(dir, p)), q(("%s/code%d"):format(dir, p)))
    end
    os.execute(table.concat(jobs, " & ") .. " & wait")

    local spent = 0
    for p = 1, PROCESSES do
      local err = cli.read(("%s/stderr%d"):format(dir, p)) or ""
      assert.are.equal("0", (cli.read(("%s/code%d"):format(dir, p)) or ""):match("%d+"), err)
      assert.are.equal(VINS, tonumber(err:match("\n%s*ready%s+(%d+)")),
        "process " .. p .. " did not account for every row:\n" .. err)
      local ordered = tonumber(err:match("spent this run: (%d+) orders"))
      assert(ordered, err)
      spent = spent + ordered
      io.stderr:write(("\nbatch process %d ordered %d of %d\n"):format(p, ordered, VINS))
      local lines = cli.json_lines(cli.read(("%s/out%d.jsonl"):format(dir, p)))
      assert.are.equal(VINS, #lines)
      for _, line in ipairs(lines) do assert.are.equal("ready", line.status, line.vin) end
    end
    local stats = assert(sb:stats())
    assert.are.equal(VINS, stats.orders)
    for i = 2, #rows do assert.are.equal(1, stats.orders_by_vin[rows[i]], rows[i]) end
    assert.are.equal(VINS, spent, "the processes' own counts of orders must add up to the VINs")
  end)
end)
