-- Starts spec/helpers/core_raw_server.py and waits for its READY line (not a sleep).
local M = {}

function M.start()
  local dir = debug.getinfo(1, "S").source:sub(2):match("^(.*)/[^/]*$") or "."
  local pipe = assert(io.popen("exec python3 " .. dir .. "/core_raw_server.py"))
  local line = assert(pipe:read("*l"), "core_raw_server.py printed nothing")
  local server = { pipe = pipe }
  for key, value in line:gmatch("([%w_]+)=(%d+)") do server[key] = tonumber(value) end
  assert(server.port, "no READY line: " .. line)
  server.base = "http://127.0.0.1:" .. server.port
  function server.stop()
    os.execute("kill " .. server.pid)
    pipe:close()
  end
  return server
end

return M
