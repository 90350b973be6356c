-- Benchmark 3: decode + normalize of the listing's sample report
-- (core.json_decode + normalize.report, as the client does for every report),
-- against cjson.decode alone on the same text.
--
--   BENCH_DECODE_N (documents per run, default 5000), BENCH_ROUNDS (default 5)
-- Ratio = (json_decode + normalize) time / cjson.decode time, best run against
-- best run. Target: <= 1.5. Also printed, for the profile: json_decode alone.
local bench_dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = bench_dir .. "/?.lua;" .. package.path
local B = require "benchlib"
local core = require "maintenance_report.core"
local normalize = require "maintenance_report.normalize"
local cjson = require "cjson"

local N = math.floor(B.env_number("BENCH_DECODE_N", 5000))
local ROUNDS = math.floor(B.env_number("BENCH_ROUNDS", 5))
local TARGET = 1.5

local text = B.read_file(B.FIXTURE)
local OPTS = { utc_offset_hours = 8 }

local function ours()
  local decoded = core.json_decode(text)
  return normalize.report(decoded, "ready", B.ORDER_ID, OPTS)
end

local check = assert(ours())
assert(check.vehicle.brand and #check.records > 0, "the sample report did not normalize")

local times = B.rounds(ROUNDS, {
  { "cjson", function() for _ = 1, N do cjson.decode(text) end end },
  { "ours", function() for _ = 1, N do ours() end end },
  { "json_decode", function() for _ = 1, N do core.json_decode(text) end end },
})
local c, o, j = B.min(times.cjson), B.min(times.ours), B.min(times.json_decode)
local ratio = o / c
B.report("decode", {
  { "ratio", B.fmt(ratio) }, { "target", "<=" .. TARGET }, { "verdict", B.verdict(ratio <= TARGET) },
  { "cjson_us", B.fmt(c / N * 1e6, 1) }, { "decode_normalize_us", B.fmt(o / N * 1e6, 1) },
  { "json_decode_only_ratio", B.fmt(j / c) }, { "n", N }, { "rounds", ROUNDS },
})
B.note(("core.json_decode + normalize.report  vs  cjson.decode, on the %d-byte sample report"):format(#text))
