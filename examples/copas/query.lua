-- Queries VINs next to a copas 1.1.7 echo server (Debian's lua-copas: Lua 5.1/5.2,
-- so run it with LuaJIT), with maintenance_report.loop.copas turning both.
--
--   luajit examples/copas/query.lua          starts its own sandbox (nothing is bought)
--   MAINTENANCE_REPORT_ENDPOINT=… MAINTENANCE_REPORT_SECRET_ID=… MAINTENANCE_REPORT_SECRET_KEY=… \
--     luajit examples/copas/query.lua VIN…   real API: buys one report per VIN given
--
-- It prints "echo port N" first: anything may talk to the echo server meanwhile (the
-- spec pings it). When the queries are done it prints them and exits.
-- Needs LUA_PATH/LUA_CPATH on the checkout (build/luajit), see docs/event-loop.md.
local copas = require "copas"
local socket = require "socket"
local mr = require "maintenance_report"
local copas_loop = require "maintenance_report.loop.copas"

local endpoint = os.getenv("MAINTENANCE_REPORT_ENDPOINT")
local sb, id, key, vins
if endpoint and endpoint ~= "" then
  id, key = os.getenv("MAINTENANCE_REPORT_SECRET_ID"), os.getenv("MAINTENANCE_REPORT_SECRET_KEY")
  vins = { ... }
  if #vins == 0 then
    io.stderr:write("with MAINTENANCE_REPORT_ENDPOINT set, name the VINs to buy on the command line\n")
    os.exit(2)
  end
else
  local sandbox = require "maintenance_report_sandbox"
  sb = assert(sandbox.start{ latency_ms = 1000 })
  endpoint, id, key = sb.base_url, sb.secret_id, sb.secret_key
  vins = {}
  for i = 1, 5 do vins[i] = sandbox.scenario_vin("normal", 840 + i) end
end

-- The other task: a copas echo server, one line back for each line.
local server = assert(socket.bind("127.0.0.1", 0))
copas.addserver(server, function(conn)
  conn = copas.wrap(conn)
  while true do
    local line = conn:receive("*l")
    if not line then break end
    conn:send(line .. "\n")
  end
end)
print("echo port " .. select(2, server:getsockname()))
io.stdout:flush()

local client = assert(mr.new{ endpoint = endpoint, secret_id = id, secret_key = key })
local left = #vins
for _, vin in ipairs(vins) do
  client:start_query{ vin = vin, on_done = function(handle)
    left = left - 1
    local report, err = handle:result()
    print(vin .. ": " .. (report and (report.status .. " " .. report.order_id) or tostring(err)))
  end }
end
local ok, err = pcall(copas_loop.loop, copas, client, { until_done = function() return left == 0 end })
server:close()
client:close()
if sb then sb:stop() end
if not ok then error(err, 0) end
print("done")
