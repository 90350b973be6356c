-- Runs an example that prints "echo port N" and then serves an echo server next to its
-- queries (examples/copas, examples/cqueues), and pings that server from this process
-- every 20 ms until the example exits. Returns the round trips (seconds) and the
-- example's whole output.
local socket = require "socket"

local M = {}

function M.run(cmd)
  local child = assert(io.popen(cmd))
  local first = child:read("*l")
  local port = tonumber(first and first:match("^echo port (%d+)$"))
  if not port then
    local rest = child:read("*a")
    child:close()
    error("the example did not start: " .. tostring(first) .. "\n" .. tostring(rest), 2)
  end
  local conn = assert(socket.connect("127.0.0.1", port))
  conn:settimeout(5)
  local rtts = {}
  while true do -- until the example exits, which closes the connection
    local sent = socket.gettime()
    if not conn:send("ping\n") then break end
    local line = conn:receive("*l")
    if not line then break end
    assert(line == "ping", "the echo server answered " .. line)
    rtts[#rtts + 1] = socket.gettime() - sent
    socket.sleep(0.02) -- the pace of the pings, not a synchronisation
  end
  conn:close()
  local out = child:read("*a")
  child:close()
  return rtts, out
end

--- The longest of the round trips.
function M.slowest(rtts)
  local max = 0
  for _, t in ipairs(rtts) do max = math.max(max, t) end
  return max
end

return M
