-- guard.run, what query and order do when a Lua error or an interrupt
-- escapes them: the vehicle's ledger entry is read again and printed (the
-- order id, or "order outcome unknown", or that nothing was placed), and the
-- error goes on to the program's top level unchanged.
local guard = require "maintenance_report.cli.guard"
local ledger = require "maintenance_report.ledger"
local output = require "maintenance_report.cli.output"

local VIN = "WBAXW1104J0X16755"

describe("guard.run", function()
  local said, real_say
  before_each(function()
    said = {}
    real_say = output.say
    output.say = function(line) said[#said + 1] = line end
  end)
  after_each(function() output.say = real_say end)

  local function ledger_with(state_fn)
    local L = ledger.memory()
    local d = assert(L:begin{ vin = VIN })
    if state_fn then state_fn(d.claim) end
    d.claim:release()
    return L
  end

  local function run(L, raised)
    return pcall(guard.run, { args = { vin = VIN:lower() }, command = "query", ledger = L }, function()
      error(raised, 0)
    end)
  end

  it("prints the order id and the command that resumes after a Lua error once the order is placed", function()
    local L = ledger_with(function(c)
      assert(c:intent())
      assert(c:placed("abc123"))
    end)
    local ok, err = run(L, "simulated bug")
    assert.is_false(ok)
    assert.are.equal("simulated bug", err)
    local text = table.concat(said, "\n")
    assert.truthy(text:find("internal error: order abc123 was placed", 1, true), text)
    assert.truthy(text:find("resume with: maintenance-report query --vin " .. VIN:lower(), 1, true), text)
  end)

  it("says the outcome is unknown when an interrupt comes while the order request may be out", function()
    local L = ledger_with(function(c) assert(c:intent()) end)
    local ok, err = run(L, "interrupted! (order request in flight)")
    assert.is_false(ok)
    assert.are.equal("interrupted!", err)
    local text = table.concat(said, "\n")
    assert.truthy(text:find("interrupted: order outcome unknown for " .. VIN:lower(), 1, true), text)
    assert.truthy(text:find("do NOT order", 1, true), text)
  end)

  it("says no order was placed when the ledger has none", function()
    local ok = run(ledger_with(nil), "interrupted!")
    assert.is_false(ok)
    assert.truthy(said[1]:find("no order was placed", 1, true), said[1])
  end)

  it("returns the body's exit code when nothing is raised", function()
    assert.are.equal(6, guard.run({ args = { vin = VIN } }, function() return 6 end))
    assert.are.equal(0, #said)
  end)
end)
