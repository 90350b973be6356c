-- Exit 7, "order outcome unknown: do not order again without checking", for
-- every cause of an unknown outcome, on `query` and on `order`: HTTP 500, 502
-- and 504 (sandbox), a timeout (sandbox, slow answer), a reset (raw server),
-- an empty reply and malformed JSON (sandbox), a malformed status line (raw
-- server). Before, a timeout exited 4 ("network"), which a wrapper retries:
-- a new paid order. Each case then runs again on the same ledger and must
-- exit 7 again without sending anything. A batch with one such row exits 7.
local sandbox = require "maintenance_report_sandbox"
local cli = require "helpers.cli_run"
local fm = require "helpers.fault_matrix"

local NORMAL_VIN = fm.NORMAL_VIN

describe("exit 7 for an unknown order outcome", function()
  local sb, server, env
  lazy_setup(function()
    sb = assert(sandbox.start{ pending_polls = 0, secret_key = "unknown-spec-key" })
    server = fm.start_fault_server()
    env = cli.sandbox_env(sb)
  end)
  lazy_teardown(function()
    if sb then sb:stop() end
    if server then server:stop() end
    cli.cleanup()
  end)

  local tag = 0
  -- Each cause: extra CLI words (endpoint, timeout), the VIN, and sends() counting order requests.
  local function sandbox_cause(scenario, variant, extra)
    return function()
      local vin = sandbox.scenario_vin(scenario, variant)
      return { args = extra or {}, vin = vin,
        sends = function() return (sb:stats().orders_by_vin or {})[vin] or 0 end }
    end
  end
  local function raw_cause(fault)
    return function()
      tag = tag + 1
      local path = ("/f/%s/u%d"):format(fault, tag)
      return { args = { "--endpoint", server.base .. path, "--timeout", "0.5" }, vin = NORMAL_VIN,
        sends = function() return math.floor(server:counts()[path .. "/maintenance/order"] or 0) end }
    end
  end

  local CAUSES = {
    { "HTTP 500", sandbox_cause("order_http_500") },
    { "HTTP 502", sandbox_cause("order_http_502") },
    { "HTTP 504", sandbox_cause("order_http_504") },
    { "timeout", sandbox_cause("order_slow", 2, { "--timeout", "0.3" }) },
    { "reset", raw_cause("reset_headers") },
    { "empty reply", sandbox_cause("order_empty_reply") },
    { "malformed JSON", sandbox_cause("order_malformed_json") },
    { "malformed status line", raw_cause("status_garbage") },
  }

  for _, command in ipairs{ "query", "order" } do
    for _, cause in ipairs(CAUSES) do
      it(("%s exits 7 for %s, and a re-run sends nothing and exits 7 again"):format(command, cause[1]), function()
        local case = cause[2]()
        local ledger_path = cli.tmpdir() .. "/ledger"
        local args = { command, "--vin", case.vin, "--ledger", ledger_path, "--poll-interval", "0.05" }
        if command == "order" then table.remove(args) table.remove(args) end
        for _, a in ipairs(case.args) do args[#args + 1] = a end
        local before = case.sends()
        local r = cli.run(args, env)
        assert.are.equal(7, r.code, r.err)
        assert.truthy(r.err:find("do NOT order", 1, true), r.err)
        assert.are.equal(before + 1, case.sends(), "the order request reached the server once")
        local again = cli.run(args, env)
        assert.are.equal(7, again.code, again.err)
        assert.truthy(again.err:find("unknown_outcome", 1, true), again.err)
        assert.are.equal(before + 1, case.sends(), "the re-run sent no order")
      end)
    end
  end

  it("query --retry-unknown orders such a vehicle again (and only then)", function()
    local vin = sandbox.scenario_vin("order_http_500", 1) -- fails once, then works
    local ledger_path = cli.tmpdir() .. "/ledger"
    local args = { "query", "--vin", vin, "--ledger", ledger_path, "--poll-interval", "0.05" }
    assert.are.equal(7, cli.run(args, env).code)
    args[#args + 1] = "--retry-unknown"
    local r = cli.run(args, env)
    assert.are.equal(0, r.code, r.err)
    assert.are.equal(2, sb:stats().orders_by_vin[vin])
  end)

  it("batch exits 7 when any row has an unknown outcome, and counts it as possibly charged", function()
    local dir = cli.tmpdir()
    local unknown = sandbox.scenario_vin("order_http_504", 0)
    local fine = sandbox.scenario_vin("normal", 901)
    local quota = sandbox.scenario_vin("report_quota", 0) -- exit 5 on its own: 7 must win
    cli.write(dir .. "/in.txt", table.concat({ fine, unknown, quota }, "\n") .. "\n")
    local r = cli.run({ "batch", dir .. "/in.txt", "--ledger", dir .. "/ledger", "--output", dir .. "/out.jsonl",
      "--poll-interval", "0.05", "--rate", "50" }, env)
    assert.are.equal(7, r.code, r.err)
    assert.truthy(r.err:find("possibly charged as well: 1 order with an unknown outcome (up to ¥17.00",
      1, true), r.err)
    local statuses = {}
    for _, line in ipairs(cli.json_lines(cli.read(dir .. "/out.jsonl"))) do statuses[line.vin] = line.status end
    assert.are.equal("unknown", statuses[unknown])
    assert.are.equal("ready", statuses[fine])
  end)
end)
