-- json.encode (the C writer, core.json_encode) against cjson.encode on the
-- listing's sample report, normalized and analyzed as the client returns it:
-- what each final ledger record and each batch output line costs.
--
--   BENCH_ENCODE_N (encodes per round, default 2000), BENCH_ROUNDS (default 5)
-- Ratio = json.encode time / cjson.encode time, best round against best round,
-- wall time of a single-threaded loop. No target: the writer does more than
-- cjson (sorted keys, '/' unescaped, [] told from {}), so this is a profile
-- figure. The Lua writer it replaced (json.encode_lua) is timed alongside.
local bench_dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = bench_dir .. "/?.lua;" .. package.path
local B = require "benchlib"
local core = require "maintenance_report.core"
local json = require "maintenance_report.json"
local normalize = require "maintenance_report.normalize"
local analysis = require "maintenance_report.analysis"
local cjson = require "cjson"

local N = math.floor(B.env_number("BENCH_ENCODE_N", 2000))
local ROUNDS = math.floor(B.env_number("BENCH_ROUNDS", 5))

local report = normalize.report(core.json_decode(B.read_file(B.FIXTURE)), "ready", B.ORDER_ID,
  { utc_offset_hours = 8 })
report.analysis = analysis.analyze(report)
assert(json.encode(report) == json.encode_lua(report), "the C and Lua writers disagree on the report")

local times = B.rounds(ROUNDS, {
  { "cjson", function() for _ = 1, N do cjson.encode(report) end end },
  { "ours", function() for _ = 1, N do json.encode(report) end end },
  { "lua_writer", function() for _ = 1, N do json.encode_lua(report) end end },
})
local c, o, l = B.min(times.cjson), B.min(times.ours), B.min(times.lua_writer)
B.report("json_encode", {
  { "ratio", B.fmt(o / c) }, { "lua_writer_ratio", B.fmt(l / c) },
  { "cjson_us", B.fmt(c / N * 1e6, 1) }, { "ours_us", B.fmt(o / N * 1e6, 1) },
  { "bytes", #json.encode(report) }, { "n", N }, { "rounds", ROUNDS },
})
B.note("json.encode (C writer)  vs  cjson.encode, on the sample report as get_report returns it")
