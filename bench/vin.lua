-- Benchmark: VIN validation per call, this tree's validate.vin against the one
-- on git branch BENCH_VIN_BASE (default main), side by side: BENCH_ROUNDS
-- rounds (default 5) alternating the two, BENCH_VIN_N calls each (default
-- 200000), over 64 distinct valid VINs with a correct check digit (the
-- cached OpenResty path validates every request). CPU time (os.clock).
local bench_dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = bench_dir .. "/?.lua;" .. package.path
local B = require "benchlib"
local current = require "maintenance_report.validate"

local BASE = os.getenv("BENCH_VIN_BASE") or "main"
local N = math.floor(B.env_number("BENCH_VIN_N", 200000))
local ROUNDS = math.floor(B.env_number("BENCH_ROUNDS", 5))

local source = B.sh("git show " .. BASE .. ":lua/maintenance_report/validate.lua")
local base = assert(load(source, "=" .. BASE .. ":validate.lua"))()

local vins = {}
local alphabet = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
math.randomseed(13)
while #vins < 64 do
  local chars = {}
  for i = 1, 17 do
    local k = math.random(#alphabet)
    chars[i] = alphabet:sub(k, k)
  end
  chars[9] = "0"
  local candidate = table.concat(chars)
  local check = assert(base.vin_check_digit(candidate))
  candidate = candidate:sub(1, 8) .. check .. candidate:sub(10)
  assert(current.vin(candidate) == candidate and base.vin(candidate) == candidate)
  vins[#vins + 1] = candidate
end

local function run(v)
  local opts = { check_digit = true }
  local started = os.clock()
  for i = 1, N do v.vin(vins[i % 64 + 1], opts) end
  return (os.clock() - started) / N * 1e6
end

local times = { base = {}, current = {} }
for _ = 1, ROUNDS do
  times.base[#times.base + 1] = run(base)
  times.current[#times.current + 1] = run(current)
end
local function min_median(list)
  table.sort(list)
  return list[1], list[math.floor((#list + 1) / 2)]
end
local b_min, b_med = min_median(times.base)
local c_min, c_med = min_median(times.current)
print(("vin %s: validate.vin CPU per call, %s %.2f/%.2f us, this tree %.2f/%.2f us (min/median of %d rounds):"
  .. " x%.1f faster (min), x%.1f (median)"):format(B.interpreter, BASE, b_min, b_med, c_min, c_med, ROUNDS,
  b_min / c_min, b_med / c_med))
