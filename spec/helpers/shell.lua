-- Shell helpers for specs: quoting and capturing a command's output.
local shell = {}

function shell.quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- Runs a command; returns its stdout without the final newline. Raises on failure.
function shell.run(command)
  local pipe = assert(io.popen(command .. "; echo \"::exit=$?\""))
  local out = pipe:read("*a")
  pipe:close()
  local body, code = out:match("^(.-)\n?::exit=(%d+)\n?$")
  if tonumber(code) ~= 0 then
    error("command failed (" .. tostring(code) .. "): " .. command .. "\n" .. tostring(body), 2)
  end
  return body
end

return shell
