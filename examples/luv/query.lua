-- Queries VINs from a libuv loop (luv): the loop sleeps until a socket is ready or
-- the client's next timer is due, and never polls.
--
--   lua5.4 examples/luv/query.lua            starts its own sandbox (nothing is bought)
--   MAINTENANCE_REPORT_ENDPOINT=… MAINTENANCE_REPORT_SECRET_ID=… MAINTENANCE_REPORT_SECRET_KEY=… \
--     lua5.4 examples/luv/query.lua VIN…     real API: buys one report per VIN given
--
-- Needs LUA_PATH/LUA_CPATH on the checkout (see docs/event-loop.md) and Debian's lua-luv.
local uv = require "luv"
local mr = require "maintenance_report"
local luv_loop = require "maintenance_report.loop.luv"

local endpoint = os.getenv("MAINTENANCE_REPORT_ENDPOINT")
local sb, id, key, vins
if endpoint and endpoint ~= "" then
  id, key = os.getenv("MAINTENANCE_REPORT_SECRET_ID"), os.getenv("MAINTENANCE_REPORT_SECRET_KEY")
  vins = { ... } -- every report costs money: only the VINs the user names
  if #vins == 0 then
    io.stderr:write("with MAINTENANCE_REPORT_ENDPOINT set, name the VINs to buy on the command line\n")
    os.exit(2)
  end
else
  local sandbox = require "maintenance_report_sandbox"
  sb = assert(sandbox.start{ latency_ms = 1000 })
  endpoint, id, key = sb.base_url, sb.secret_id, sb.secret_key
  vins = {}
  for i = 1, 5 do vins[i] = sandbox.scenario_vin("normal", i) end
end

local client = assert(mr.new{ endpoint = endpoint, secret_id = id, secret_key = key })
local attached = luv_loop.attach(client, { uv = uv })
for _, vin in ipairs(vins) do
  client:start_query{ vin = vin, on_done = function(handle) -- runs on the loop's thread
    local report, err = handle:result()
    print(vin .. ": " .. (report and (report.status .. " " .. report.order_id) or tostring(err)))
  end }
end
local ok, err = pcall(uv.run) -- returns once every query is done
attached:close()
uv.run("nowait") -- lets libuv finish closing the handles (luv under LuaJIT crashes at exit otherwise)
client:close()
if sb then sb:stop() end
if not ok then error(err, 0) end
print(("%d queries, %d loop wake-ups"):format(#vins, attached.wakeups))
