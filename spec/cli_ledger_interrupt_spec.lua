-- Once an order exists, query and order print its id on every way out, and
-- it is in the ledger: Ctrl-C (SIGINT) and SIGTERM after the order is placed,
-- a signal while the order request is in flight (then "order outcome
-- unknown", and a re-run never orders again), and an --output file that
-- cannot be written (before, query exited 2, "no request was sent", with no
-- id). Signals are sent once the sandbox has counted the order and the
-- ledger shows it: conditions observed, never a sleep.
local sandbox = require "maintenance_report_sandbox"
local cli = require "helpers.cli_run"
local ledger = require "maintenance_report.ledger"

local spawn, finish = cli.spawn, cli.finish

-- The ledger entry of a VIN, read as any other process would (nil while there is none).
local function entry_of(path, vin)
  if not cli.read(path) then return nil end
  local L = assert(ledger.file(path))
  local e = L:get{ vin = vin }
  L:close()
  return e
end

describe("the order id on every way out of query and order", function()
  local sb, env
  local start, stop = cli.sandbox_hooks({ pending_polls = 0, secret_key = "interrupt-spec-key" },
    function(s, e) sb, env = s, e end)
  lazy_setup(start)
  lazy_teardown(stop)

  local function orders_of(vin) return (sb:stats().orders_by_vin or {})[vin] or 0 end

  -- query on a report that stays pending; the signal comes once the order is placed.
  local function interrupt_placed_query(signal, variant)
    local vin = sandbox.scenario_vin("pending_polls", 9000 + variant)
    local path = cli.tmpdir() .. "/ledger"
    local p = spawn({ "query", "--vin", vin, "--ledger", path, "--poll-interval", "0.2", "--max-wait", "60" }, env)
    assert.is_true(cli.wait_until(function()
      local e = entry_of(path, vin)
      return orders_of(vin) == 1 and e and e.order_id ~= nil
    end, 20), "the order was not placed")
    local order_id = entry_of(path, vin).order_id
    os.execute("kill -" .. signal .. " " .. p.pid)
    local r = finish(p)
    assert.are.equal(130, r.code, r.err)
    assert.truthy(r.err:find("order " .. order_id .. " was placed", 1, true), r.err)
    assert.truthy(r.err:find("resume with: maintenance-report query --vin " .. vin, 1, true), r.err)
    assert.are.equal(order_id, entry_of(path, vin).order_id, "the id stays in the ledger")
    assert.are.equal(1, orders_of(vin))
    return vin, path, order_id
  end

  it("query prints the order id on Ctrl-C (SIGINT) after the order, and a re-run polls it", function()
    local vin, path, order_id = interrupt_placed_query("INT", 1)
    -- the re-run polls the same order (no new one): still pending at its short deadline
    local again = cli.run({ "query", "--vin", vin, "--ledger", path, "--poll-interval", "0.05",
      "--max-wait", "0.1" }, env)
    assert.are.equal(6, again.code, again.err)
    assert.truthy(again.err:find(order_id, 1, true), again.err)
    assert.are.equal(1, orders_of(vin))
  end)

  it("query prints the order id on SIGTERM after the order", function()
    interrupt_placed_query("TERM", 2)
  end)

  for _, signal in ipairs{ "INT", "TERM" } do
    it("order says 'order outcome unknown' on SIG" .. signal .. " while the order is in flight, and a re-run "
      .. "does not order again", function()
      local vin = sandbox.scenario_vin("order_slow", signal == "INT" and 2 or 2.1)
      local path = cli.tmpdir() .. "/ledger"
      local p = spawn({ "order", "--vin", vin, "--ledger", path }, env)
      assert.is_true(cli.wait_until(function()
        local e = entry_of(path, vin)
        return orders_of(vin) == 1 and e and e.state == "intent"
      end, 20), "the order request did not arrive")
      os.execute("kill -" .. signal .. " " .. p.pid)
      local r = finish(p)
      assert.are.equal(130, r.code, r.err)
      local e = entry_of(path, vin)
      if e.order_id then -- the answer won the race with the signal: then its id must be printed
        assert.truthy(r.err:find(e.order_id, 1, true) or r.out:find(e.order_id, 1, true), r.err)
      else
        assert.truthy(r.err:find("order outcome unknown", 1, true), r.err)
        assert.truthy(r.err:find("do NOT order", 1, true), r.err)
        local again = cli.run({ "order", "--vin", vin, "--ledger", path }, env)
        assert.are.equal(7, again.code, again.err)
      end
      assert.are.equal(1, orders_of(vin))
    end)
  end

  it("query --output to a path that cannot be written prints the order id and exits 1, not 2", function()
    local vin = sandbox.scenario_vin("normal", 77)
    local path = cli.tmpdir() .. "/ledger"
    local r = cli.run({ "query", "--vin", vin, "--ledger", path, "--poll-interval", "0.05",
      "--output", "/nonexistent/dir/x.json" }, env)
    assert.are.equal(1, r.code, r.err)
    local e = entry_of(path, vin)
    assert.are.equal("ready", e.state)
    assert.truthy(r.err:find("order " .. e.order_id, 1, true), r.err)
    assert.truthy(r.err:find("report " .. e.order_id .. " --wait", 1, true), r.err)
    assert.falsy(r.err:find("no request was sent", 1, true), r.err)
    assert.are.equal(1, orders_of(vin))
  end)

  it("order --output to a path that cannot be written prints the order id", function()
    local vin = sandbox.scenario_vin("normal", 78)
    local path = cli.tmpdir() .. "/ledger"
    local r = cli.run({ "order", "--vin", vin, "--ledger", path, "--output", "/nonexistent/dir/x" }, env)
    assert.are.equal(1, r.code, r.err)
    local e = entry_of(path, vin)
    assert.truthy(r.err:find("order " .. e.order_id .. " placed", 1, true), r.err)
  end)
end)
