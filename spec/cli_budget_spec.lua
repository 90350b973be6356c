-- The CLI's --budget and Redis --ledger: a cap refuses the order before it is
-- sent (exit 8), `ledger stats` shows what is left, and a Redis password never
-- goes on the command line.
local sandbox = require "maintenance_report_sandbox"
local cli = require "helpers.cli_run"
local redis_server = require "helpers.redis_server"

describe("CLI budgets and the Redis ledger", function()
  local sb, env
  local start, stop = cli.sandbox_hooks({ pending_polls = 0, secret_key = "cli-budget-spec-key" },
    function(s, e) sb, env = s, e end)
  lazy_setup(start)
  lazy_teardown(stop)

  it("refuses the order beyond the day's cap with exit 8 and nothing sent; ledger stats shows the rest", function()
    local ledger = cli.tmpdir() .. "/ledger"
    local function query(i)
      return cli.run({ "query", "--vin", sandbox.scenario_vin("normal", i), "--ledger", ledger,
        "--budget", "day=20", "--poll-interval", "0.05" }, env)
    end
    local first = query(1)
    assert.are.equal(0, first.code, first.err)
    local before = assert(sb:stats()).orders
    local second = query(2)
    assert.are.equal(8, second.code, second.err)
    assert.truthy(second.err:find("budget_exceeded", 1, true), second.err)
    assert.truthy(second.err:find("¥3 left of ¥20", 1, true), second.err)
    assert.are.equal(before, assert(sb:stats()).orders, "the refused order reached the sandbox")
    local stats = cli.run({ "ledger", "stats", "--ledger", ledger, "--budget", "day=20" }, env)
    assert.are.equal(0, stats.code, stats.err)
    assert.truthy(stats.out:match(
      "budget day:%d%d%d%d%-%d%d%-%d%d: ¥3%.00 left of ¥20%.00 %(spent ¥17%.00, 0 more orders%)"), stats.out)
    local bad = cli.run({ "query", "--vin", sandbox.scenario_vin("normal", 3), "--ledger", ledger,
      "--budget", "daily=5" }, env)
    assert.are.equal(2, bad.code, bad.err)
    assert.truthy(bad.err:find("day=N,month=N", 1, true), bad.err)
  end)

  it("a batch stops ordering at the cap, and says which rows were not ordered", function()
    local dir = cli.tmpdir()
    local vins = {}
    for i = 1, 5 do vins[i] = sandbox.scenario_vin("normal", 20 + i) end
    cli.write(dir .. "/in.txt", table.concat(vins, "\n") .. "\n")
    local before = assert(sb:stats()).orders
    local r = cli.run({ "batch", dir .. "/in.txt", "--ledger", dir .. "/ledger", "--budget", "day=34",
      "--output", dir .. "/out.jsonl", "--poll-interval", "0.05", "--concurrency", "1" }, env)
    assert.are_not.equal(0, r.code, r.err)
    assert.are.equal(2, assert(sb:stats()).orders - before)
    assert.truthy(r.err:find("budget_exceeded: .*; no further orders are placed"), r.err)
    assert.truthy(r.err:find("spent this run: 2 orders", 1, true), r.err)
    local statuses = {}
    for _, line in ipairs(cli.json_lines(cli.read(dir .. "/out.jsonl"))) do
      statuses[line.status] = (statuses[line.status] or 0) + 1
    end
    assert.are.equal(2, statuses.ready, r.err)
  end)

  it("refuses a Redis password on the command line and takes it from the environment", function()
    local redis = redis_server.start{ password = "cli-redis-pw" }
    local url = ("redis://:%s@127.0.0.1:%d/0"):format(redis.password, redis.port)
    local r = cli.run({ "query", "--vin", sandbox.scenario_vin("normal", 4), "--ledger", url }, env)
    assert.are.equal(2, r.code, r.err)
    assert.truthy(r.err:find("MAINTENANCE_REPORT_REDIS_PASSWORD", 1, true), r.err)
    assert.is_nil(r.err:find(redis.password, 1, true), "the password was printed")
    local plain = ("redis://127.0.0.1:%d/0"):format(redis.port)
    local ok = cli.run({ "query", "--vin", sandbox.scenario_vin("normal", 4), "--ledger", plain,
      "--poll-interval", "0.05" }, cli.merge(env, { MAINTENANCE_REPORT_REDIS_PASSWORD = redis.password }))
    assert.are.equal(0, ok.code, ok.err)
    local listed = cli.run({ "ledger", "list", "--ledger", plain },
      cli.merge(env, { MAINTENANCE_REPORT_REDIS_PASSWORD = redis.password }))
    assert.are.equal(0, listed.code, listed.err)
    assert.truthy(listed.out:find(sandbox.scenario_vin("normal", 4), 1, true), listed.out)
    -- the whole URL in the environment (not argv) is fine too
    local from_env = cli.run({ "ledger", "stats" }, cli.merge(env, { MAINTENANCE_REPORT_LEDGER = url }))
    assert.are.equal(0, from_env.code, from_env.err)
    assert.truthy(from_env.out:find("orders: 1 ", 1, true), from_env.out)
    local down = cli.run({ "query", "--vin", sandbox.scenario_vin("normal", 5), "--ledger", plain }, env)
    assert.are.equal(8, down.code, down.err)
    assert.truthy(down.err:find("store_unavailable", 1, true), down.err)
    redis:stop()
  end)
end)
