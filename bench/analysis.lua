-- The report analysis alone, on the vendor's sample report: microseconds of CPU per
-- analysis.analyze (the work every final report now carries).
--   LUA_PATH='lua/?.lua;lua/?/init.lua;spec/?.lua;;' LUA_CPATH='build/lua5.4/?.so;;' lua5.4 bench/analysis.lua
local core = require "maintenance_report.core"
local normalize = require "maintenance_report.normalize"
local analysis = require "maintenance_report.analysis"

local raw = require("helpers.fixtures").raw("vendor_report_ready.json")
local report = normalize.report(core.json_decode(raw), "ready", "BENCH", { utc_offset_hours = 8 })
local rounds, n = 5, 2000
local times = {}
for r = 1, rounds do
  local t = os.clock()
  for _ = 1, n do analysis.analyze(report) end
  times[r] = (os.clock() - t) / n * 1e6
end
table.sort(times)
local median = times[math.floor((rounds + 1) / 2)]
print(("%s: analysis.analyze %.1f us (min) %.1f us (median) per report, %d rounds of %d"):format(
  _VERSION .. (rawget(_G, "jit") and (" " .. jit.version) or ""), times[1], median, rounds, n))
