-- query, order and batch share one order ledger: where it lives by default
-- (0700 under $XDG_STATE_HOME or ~/.local/state), flags over the environment,
-- --reuse (24 h by default, stated in --help), --fresh, and order returning
-- the placed order instead of buying a second one. Order counts are the
-- sandbox's, not the CLI's.
local sandbox = require "maintenance_report_sandbox"
local cli = require "helpers.cli_run"

-- args with more words after them (a new list).
local function with(args, ...)
  local out = {}
  for i, a in ipairs(args) do out[i] = a end
  for _, a in ipairs{ ... } do out[#out + 1] = a end
  return out
end

local function mode_of(path)
  local p = assert(io.popen("stat -c %a " .. cli.quote(path) .. " 2>/dev/null"))
  local mode = p:read("*l")
  p:close()
  return mode
end

describe("the shared order ledger", function()
  local sb, env
  local start, stop = cli.sandbox_hooks({ pending_polls = 0, secret_key = "reuse-spec-key" },
    function(s, e) sb, env = s, e end)
  lazy_setup(start)
  lazy_teardown(stop)

  local function orders_of(vin) return (sb:stats().orders_by_vin or {})[vin] or 0 end

  it("lives in $XDG_STATE_HOME/maintenance-report/ledger, in a 0700 directory", function()
    local state = cli.tmpdir() .. "/xdg"
    local vin = sandbox.scenario_vin("normal", 1)
    local r = cli.run({ "order", "--vin", vin }, cli.merge(env, { XDG_STATE_HOME = state }))
    assert.are.equal(0, r.code, r.err)
    assert.truthy(cli.read(state .. "/maintenance-report/ledger"), "no ledger")
    assert.are.equal("700", mode_of(state .. "/maintenance-report"))
    assert.are.equal("600", mode_of(state .. "/maintenance-report/ledger"))
    -- the same default on the next run: the placed order is found, not bought again
    local again = cli.run({ "order", "--vin", vin }, cli.merge(env, { XDG_STATE_HOME = state }))
    assert.are.equal(0, again.code, again.err)
    assert.are.equal(r.out, again.out)
    assert.truthy(again.err:find("already has order", 1, true), again.err)
    assert.are.equal(1, orders_of(vin))
  end)

  it("falls back to ~/.local/state/maintenance-report/ledger", function()
    local home = cli.tmpdir()
    -- an empty XDG_STATE_HOME counts as unset
    local r = cli.run({ "order", "--vin", sandbox.scenario_vin("normal", 2) },
      cli.merge(env, { XDG_STATE_HOME = "", HOME = home }))
    assert.are.equal(0, r.code, r.err)
    assert.truthy(cli.read(home .. "/.local/state/maintenance-report/ledger"))
    assert.are.equal("700", mode_of(home .. "/.local/state/maintenance-report"))
  end)

  it("takes --ledger over $MAINTENANCE_REPORT_LEDGER", function()
    local dir = cli.tmpdir()
    local from_env = cli.merge(env, { MAINTENANCE_REPORT_LEDGER = dir .. "/env-ledger" })
    assert.are.equal(0, cli.run({ "order", "--vin", sandbox.scenario_vin("normal", 3) }, from_env).code)
    assert.truthy(cli.read(dir .. "/env-ledger"))
    assert.are.equal(0, cli.run({ "order", "--vin", sandbox.scenario_vin("normal", 4), "--ledger",
      dir .. "/flag-ledger" }, from_env).code)
    assert.truthy(cli.read(dir .. "/flag-ledger"):find(sandbox.scenario_vin("normal", 4), 1, true))
    assert.falsy(cli.read(dir .. "/env-ledger"):find(sandbox.scenario_vin("normal", 4), 1, true))
  end)

  it("query reuses a report younger than --reuse (default 24h), --fresh and --reuse 0 order again", function()
    local vin = sandbox.scenario_vin("normal", 5)
    local run_env = cli.merge(env, { MAINTENANCE_REPORT_LEDGER = cli.tmpdir() .. "/ledger" })
    local args = { "query", "--vin", vin, "--poll-interval", "0.05", "--format", "json" }
    local first = cli.run(args, run_env)
    assert.are.equal(0, first.code, first.err)
    local order_id = cli.json(first.out).order_id
    local second = cli.run(args, run_env)
    assert.are.equal(0, second.code, second.err)
    assert.are.equal(order_id, cli.json(second.out).order_id)
    assert.truthy(second.err:find("order " .. order_id .. ": the ledger's report from", 1, true), second.err)
    assert.truthy(second.err:find("UTC+8", 1, true), second.err)
    assert.are.equal(1, orders_of(vin))
    local third = cli.run(with(args, "--fresh"), run_env)
    assert.are.equal(0, third.code, third.err)
    assert.are_not.equal(order_id, cli.json(third.out).order_id)
    assert.are.equal(2, orders_of(vin))
    assert.are.equal(0, cli.run(with(args, "--reuse", "0"), run_env).code)
    assert.are.equal(3, orders_of(vin))
    assert.are.equal(0, cli.run(with(args, "--reuse", "90m"), run_env).code)
    assert.are.equal(3, orders_of(vin))
  end)

  it("batch reuses the report query stored, in the same ledger", function()
    local dir = cli.tmpdir()
    local vin = sandbox.scenario_vin("normal", 6)
    local run_env = cli.merge(env, { MAINTENANCE_REPORT_LEDGER = dir .. "/ledger" })
    local q = cli.run({ "query", "--vin", vin, "--poll-interval", "0.05", "--format", "json" }, run_env)
    assert.are.equal(0, q.code, q.err)
    cli.write(dir .. "/in.txt", vin .. "\n")
    local b = cli.run({ "batch", dir .. "/in.txt", "--poll-interval", "0.05" }, run_env)
    assert.are.equal(0, b.code, b.err)
    local line = cli.json_lines(b.out)[1]
    assert.are.equal(cli.json(q.out).order_id, line.order_id)
    assert.is_true(line.reused)
    assert.truthy(b.err:find("spent this run: 0 orders", 1, true), b.err)
    assert.are.equal(1, orders_of(vin))
  end)

  it("states the defaults in --help and rejects a duration it cannot read (exit 2)", function()
    for _, command in ipairs{ "query", "batch" } do
      local h = cli.run{ command, "--help" }
      assert.truthy(h.out:find("--reuse", 1, true), command)
      assert.truthy(h.out:find("(default: 24h)", 1, true), command .. "\n" .. h.out)
      assert.truthy(h.out:find("MAINTENANCE_REPORT_LEDGER", 1, true), command)
    end
    local r = cli.run({ "query", "--vin", sandbox.scenario_vin("normal", 7), "--reuse", "soon" }, env)
    assert.are.equal(2, r.code, r.err)
    assert.are.equal(0, orders_of(sandbox.scenario_vin("normal", 7)))
  end)
end)
