-- Queries VINs inside a cqueues controller (Debian's lua-cqueues: Lua 5.1 to 5.4, LuaJIT)
-- next to an echo server in the same controller, with maintenance_report.loop.cqueues
-- turning the client.
--
--   lua5.4 examples/cqueues/query.lua          starts its own sandbox (nothing is bought)
--   MAINTENANCE_REPORT_ENDPOINT=… MAINTENANCE_REPORT_SECRET_ID=… MAINTENANCE_REPORT_SECRET_KEY=… \
--     lua5.4 examples/cqueues/query.lua VIN…   real API: buys one report per VIN given
--
-- It prints "echo port N" first: anything may talk to the echo server meanwhile (the
-- spec pings it). When the queries are done it prints them and exits.
-- Needs LUA_PATH/LUA_CPATH on the checkout (build/lua5.4 or build/luajit), see docs/event-loop.md.
local cqueues = require "cqueues"
local csocket = require "cqueues.socket"
local mr = require "maintenance_report"
local cq_loop = require "maintenance_report.loop.cqueues"

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
  for i = 1, 5 do vins[i] = sandbox.scenario_vin("normal", 820 + i) end
end

local cq = cqueues.new()
local left = #vins

-- The other task: an echo server, one line back for each line, a coroutine per connection,
-- until the queries are done.
local server = assert(csocket.listen{ host = "127.0.0.1", port = 0 })
local _, _, port = server:localname()
print("echo port " .. port)
io.stdout:flush()
cq:wrap(function()
  while left > 0 do
    local conn = server:accept(0.05) -- a short wait, so that the server notices the end
    if conn then
      cq:wrap(function()
        for line in conn:lines("*l") do
          if not conn:write(line, "\n") then break end
        end
        conn:close()
      end)
    end
  end
  server:close()
end)

local client = assert(mr.new{ endpoint = endpoint, secret_id = id, secret_key = key })
local pump = cq_loop.attach(cq, client)
for _, vin in ipairs(vins) do
  client:start_query{ vin = vin, on_done = function(handle)
    left = left - 1
    local report, err = handle:result()
    print(vin .. ": " .. (report and (report.status .. " " .. report.order_id) or tostring(err)))
    io.stdout:flush()
  end }
end
-- Until the queries are done: an echo connection that stays open would keep the controller busy.
local ok, err = true, nil
while left > 0 and ok do ok, err = cq:step(1) end
pump:close()
client:close()
if sb then sb:stop() end
if not ok then error(err, 0) end
print(("done, %d pump wake-ups"):format(pump.wakeups))
