-- Shell and file helpers for specs, over the library's own shell module.
local lib = require "maintenance_report_sandbox.shell"

local shell = { quote = lib.quote }

-- Runs a command; returns its output without the final newline. Raises on failure.
function shell.run(command)
  local out, rc = lib.run(command)
  if rc ~= 0 then
    error("command failed (" .. tostring(rc) .. "): " .. command .. "\n" .. tostring(out), 2)
  end
  return (out:gsub("\n$", ""))
end

-- A file's content, or nil when it cannot be read.
function shell.read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

function shell.write_file(path, content)
  local f = assert(io.open(path, "wb"))
  f:write(content)
  f:close()
end

return shell
