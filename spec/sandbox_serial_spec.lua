-- Serial scenario VINs reach 299,999 (a batch of 100,000 VINs, bench/poll.lua past
-- 9,999 orders): every one distinct, a normal scenario, with the check digit that
-- /work/shared/reference/api.md's rule gives (computed here on its own, from the
-- published letter values and weights), and the last four characters digits.
local sandbox = require "maintenance_report_sandbox"

local VALUES = { A = 1, B = 2, C = 3, D = 4, E = 5, F = 6, G = 7, H = 8, J = 1, K = 2, L = 3, M = 4, N = 5,
  P = 7, R = 9, S = 2, T = 3, U = 4, V = 5, W = 6, X = 7, Y = 8, Z = 9 }
local WEIGHTS = { 8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2 }

local function check_char(vin)
  local sum = 0
  for i = 1, 17 do
    local c = vin:sub(i, i)
    sum = sum + (tonumber(c) or VALUES[c]) * WEIGHTS[i]
  end
  local r = sum % 11
  return r == 10 and "X" or tostring(r)
end

describe("sandbox serial VINs", function()
  it("gives 300,000 distinct valid normal VINs, the first 10,000 as before", function()
    assert.are.equal("LSANDB0X5L0NM0000", sandbox.scenario_vin("normal", 0))
    assert.are.equal("LSANDB0XXL0NM9999", sandbox.scenario_vin("normal", 9999))
    local seen = {}
    for i = 0, 299999, 7 do
      local vin = sandbox.scenario_vin("normal", i)
      assert.is_nil(seen[vin], vin)
      seen[vin] = true
      assert.truthy(vin:match("^[A-HJ-NPR-Z0-9]+$") and #vin == 17, vin)
      assert.truthy(vin:match("%d%d%d%d$"), vin)
      assert.are.equal(check_char(vin), vin:sub(9, 9), vin)
      assert.are.equal("normal", sandbox.scenario_of(vin).name)
    end
    assert.has_error(function() sandbox.scenario_vin("normal", 300000) end)
    assert.has_error(function() sandbox.scenario_vin("order_http_500", 10000) end) -- times: 4 digits only
  end)
end)
