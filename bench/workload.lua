-- The hot loops of the benchmarks, alone, for profilers (bench/profile.sh):
--   lua workload.lua sequential N   N blocking client:get_report calls (fixture nginx)
--   lua workload.lua concurrent N   N get_report calls by 32 tasks on client:scheduler()
--   lua workload.lua normalize N    N x (core.json_decode + normalize.report) of the sample
local bench_dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = bench_dir .. "/?.lua;" .. package.path
local B = require "benchlib"
local client = require "maintenance_report.client"
local core = require "maintenance_report.core"
local normalize = require "maintenance_report.normalize"

local mode, n = arg[1], math.floor(tonumber(arg[2]) or 2000)

local function check(report, err)
  if not report then error("get_report failed: " .. tostring(err and err.message)) end
end

if mode == "normalize" then
  local text = B.read_file(B.FIXTURE)
  for _ = 1, n do normalize.report(core.json_decode(text), "ready", B.ORDER_ID, { utc_offset_hours = 8 }) end
elseif mode == "sequential" or mode == "concurrent" then
  local server = B.start_fixture_server(1)
  B.finally(function()
    local c = assert(client.new{ secret_id = "AKIDbench", secret_key = "bench-secret",
      endpoint = server.base_url, max_in_flight = 32 })
    if mode == "sequential" then
      for _ = 1, n do check(c:get_report(B.ORDER_ID)) end
    else
      local sched = c:scheduler()
      for w = 1, 32 do
        local share = math.floor(n / 32) + (w <= n % 32 and 1 or 0)
        sched:spawn(function() for _ = 1, share do check(c:get_report(B.ORDER_ID)) end end)
      end
      while sched:pending() > 0 do c:step(1) end
    end
    c:close()
  end, function() server:stop() end)
else
  error("usage: workload.lua sequential|concurrent|normalize [N]")
end
