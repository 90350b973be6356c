-- The batch's record is the order ledger: its --output is rebuilt from the
-- ledger (every input row's latest state with its order id) and replaced
-- whole, so that a killed run never truncates an earlier output; Ctrl-C
-- rebuilds it with every id so far; --dry-run reads the ledger without
-- changing a byte of it (nor creating it).
local sandbox = require "maintenance_report_sandbox"
local cli = require "helpers.cli_run"
local ledger = require "maintenance_report.ledger"

local function by_vin(lines)
  local out = {}
  for _, l in ipairs(lines) do if l.vin then out[l.vin] = l end end
  return out
end

-- Order ids in the ledger, by VIN, and how many.
local function placed(path)
  local ids, n = {}, 0
  if not cli.read(path) then return ids, 0 end
  local L = assert(ledger.file(path))
  for _, e in ipairs(assert(L:list())) do
    if e.order_id then ids[e.vin], n = e.order_id, n + 1 end
  end
  L:close()
  return ids, n
end

describe("batch and the ledger", function()
  local sb, env
  local start, stop = cli.sandbox_hooks({ pending_polls = 0, secret_key = "batch-ledger-spec-key" },
    function(s, e) sb, env = s, e end)
  lazy_setup(start)
  lazy_teardown(stop)
  before_each(function() assert(sb:reset()) end)

  local function vins(n, offset)
    local out = {}
    for i = 1, n do out[i] = sandbox.scenario_vin("normal", offset + i) end
    return out
  end

  it("a re-run's output has every row from the ledger, reused ones with their ids and reports", function()
    local dir = cli.tmpdir()
    local first = vins(3, 10)
    local args = { "batch", dir .. "/in.txt", "--ledger", dir .. "/ledger", "--output", dir .. "/out.jsonl",
      "--poll-interval", "0.05", "--rate", "50" }
    cli.write(dir .. "/in.txt", table.concat(first, "\n") .. "\n")
    local r1 = cli.run(args, env)
    assert.are.equal(0, r1.code, r1.err)
    local before = by_vin(cli.json_lines(cli.read(dir .. "/out.jsonl")))
    local added = sandbox.scenario_vin("normal", 20)
    cli.write(dir .. "/in.txt", table.concat(first, "\n") .. "\n" .. added .. "\n")
    local r2 = cli.run(args, env)
    assert.are.equal(0, r2.code, r2.err)
    local rows = by_vin(cli.json_lines(cli.read(dir .. "/out.jsonl")))
    for _, vin in ipairs(first) do
      assert.are.equal(before[vin].order_id, rows[vin].order_id, vin)
      assert.are.equal("ready", rows[vin].status)
      assert.is_true(rows[vin].reused)
      assert.is_table(rows[vin].report)
      assert.is_nil(rows[vin].report.raw)
    end
    assert.are.equal("ready", rows[added].status)
    assert.are.equal(4, sb:stats().orders)
    assert.truthy(r2.err:find("spent this run: 1 order ", 1, true), r2.err)
    assert.truthy(r2.err:find("3 reports reused", 1, true), r2.err)
    assert.is_nil(cli.read(dir .. "/out.jsonl.tmp"))
  end)

  it("writes the lines the ledger's records make, and leaves no spool file behind", function()
    local dir = cli.tmpdir()
    local input = vins(3, 50)
    input[#input + 1] = sandbox.scenario_vin("no_records", 51)
    cli.write(dir .. "/in.txt", table.concat(input, "\n") .. "\n")
    local r = cli.run({ "batch", dir .. "/in.txt", "--ledger", dir .. "/ledger", "--output", dir .. "/out.jsonl",
      "--poll-interval", "0.05", "--rate", "50" }, env)
    assert.are.equal(0, r.code, r.err)
    -- the reference: the same rows rebuilt from the ledger alone, as a later run with no result would
    local batch = require "maintenance_report.cli.batch"
    local csv = require "maintenance_report.cli.csv"
    local L = assert(ledger.file(dir .. "/ledger"))
    local parsed = assert(csv.read_file(dir .. "/in.txt", { stream = true }))
    assert(batch.rebuild(dir .. "/from-ledger.jsonl", L, parsed, {}))
    L:close()
    local out = cli.read(dir .. "/out.jsonl")
    assert.are.equal(cli.read(dir .. "/from-ledger.jsonl"), out)
    local statuses = {}
    for _, l in ipairs(cli.json_lines(out)) do statuses[#statuses + 1] = l.status end
    assert.are.same({ "ready", "ready", "ready", "no_records" }, statuses)
    local p = io.popen("ls -a " .. dir)
    local names = p:read("*a")
    p:close()
    assert.is_nil(names:find("spool", 1, true), names)
  end)

  it("a run killed with SIGKILL leaves the previous output whole; the next run completes it", function()
    local dir = cli.tmpdir()
    local path = dir .. "/ledger"
    local first = vins(2, 30)
    local args = { "batch", dir .. "/in.txt", "--ledger", path, "--output", dir .. "/out.jsonl",
      "--poll-interval", "0.05", "--rate", "50" }
    cli.write(dir .. "/in.txt", table.concat(first, "\n") .. "\n")
    assert.are.equal(0, cli.run(args, env).code)
    local earlier = cli.read(dir .. "/out.jsonl")
    -- reports that stay pending keep the second run busy
    local slow = {}
    for i = 1, 3 do slow[i] = sandbox.scenario_vin("pending_polls", 9000 + i) end
    cli.write(dir .. "/in.txt", table.concat(first, "\n") .. "\n" .. table.concat(slow, "\n") .. "\n")
    local p = cli.spawn(args, env)
    assert.is_true(cli.wait_until(function() return select(2, placed(path)) == 5 end, 20), "not ordered")
    os.execute("kill -KILL " .. p.pid)
    cli.finish(p)
    assert.are.equal(earlier, cli.read(dir .. "/out.jsonl"), "the earlier output was truncated or changed")
    local ids = placed(path)
    args[#args + 1] = "--max-wait"
    args[#args + 1] = "0.3"
    local again = cli.run(args, env)
    assert.are.equal(6, again.code, again.err) -- the slow ones are polled (still pending), not ordered again
    local rows = by_vin(cli.json_lines(cli.read(dir .. "/out.jsonl")))
    for _, vin in ipairs(slow) do assert.are.equal(ids[vin], rows[vin].order_id, vin) end
    assert.are.equal(5, sb:stats().orders)
  end)

  it("Ctrl-C rebuilds the output with every order id placed so far and exits 130", function()
    local dir = cli.tmpdir()
    local path = dir .. "/ledger"
    local slow = {}
    for i = 1, 3 do slow[i] = sandbox.scenario_vin("pending_polls", 9100 + i) end
    cli.write(dir .. "/in.txt", table.concat(slow, "\n") .. "\n")
    local p = cli.spawn({ "batch", dir .. "/in.txt", "--ledger", path, "--output", dir .. "/out.jsonl",
      "--poll-interval", "0.2", "--rate", "50" }, env)
    assert.is_true(cli.wait_until(function() return select(2, placed(path)) == 3 end, 20), "not ordered")
    os.execute("kill -INT " .. p.pid)
    local r = cli.finish(p)
    assert.are.equal(130, r.code, r.err)
    assert.truthy(r.err:find("every order id so far is in the ledger", 1, true), r.err)
    local ids = placed(path)
    local rows = by_vin(cli.json_lines(cli.read(dir .. "/out.jsonl")))
    for _, vin in ipairs(slow) do
      assert.are.equal("pending", rows[vin].status)
      assert.are.equal(ids[vin], rows[vin].order_id)
    end
  end)

  it("--dry-run changes no byte of the ledger, not even an abandoned intent, and creates none", function()
    local dir = cli.tmpdir()
    local path = dir .. "/ledger"
    local abandoned, fresh = vins(2, 40)[1], vins(2, 40)[2]
    local L = assert(ledger.file(path))
    local d = assert(L:begin{ vin = abandoned })
    assert(d.claim:intent())
    d.claim:release() -- its writer "died": the next begin would rewrite it as unknown
    L:close()
    local bytes = cli.read(path)
    cli.write(dir .. "/in.txt", abandoned .. "\n" .. fresh .. "\n")
    local r = cli.run({ "batch", dir .. "/in.txt", "--ledger", path, "--dry-run", "--unit-price", "10" }, env)
    assert.are.equal(0, r.code, r.err)
    assert.truthy(r.err:find("1 to order (up to ¥10.00)", 1, true), r.err)
    assert.truthy(r.err:find("1 with an unknown outcome", 1, true), r.err)
    assert.are.equal(bytes, cli.read(path))
    assert.are.equal(0, sb:stats().orders)
    local none = cli.run({ "batch", dir .. "/in.txt", "--ledger", dir .. "/new/ledger", "--dry-run" }, env)
    assert.are.equal(0, none.code, none.err)
    assert.is_nil(cli.read(dir .. "/new/ledger"))
  end)
end)
