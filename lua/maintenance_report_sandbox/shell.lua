-- Running shell commands from plain Lua 5.1/LuaJIT/5.4 without luaposix:
-- quoting, and capturing output plus exit status in a way that does not
-- depend on which Lua's io.popen/os.execute conventions are in effect.
local M = {}

-- Single-quotes a string for /bin/sh.
function M.quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- Runs a command (stderr merged into stdout). Returns output, exit status.
function M.run(cmd)
  local p = assert(io.popen("( " .. cmd .. "\n) 2>&1; echo \"__rc=$?\"", "r"))
  local out = p:read("*a")
  p:close()
  local body, rc = out:match("^(.-)\n?__rc=(%d+)%s*$")
  if not body then return out, 255 end
  return body, tonumber(rc)
end

-- Runs a command and returns its trimmed output, or nil, message on failure.
function M.capture(cmd)
  local out, rc = M.run(cmd)
  if rc ~= 0 then return nil, out end
  return (out:gsub("%s+$", ""))
end

-- sh function: is a pid alive? A zombie counts as dead: a daemonised nginx
-- master is re-parented to PID 1, which may never reap it.
M.ALIVE_FN = [[
alive() {
  if [ -r "/proc/$1/stat" ]; then
    read -r _s < "/proc/$1/stat" 2>/dev/null || return 1
    case "$_s" in *") Z "*) return 1 ;; esac
    return 0
  fi
  kill -0 "$1" 2>/dev/null
}
]]

-- sh function stop_nginx PID PREFIX: TERM (fast shutdown), wait for the master
-- to go, then remove the prefix. After 10 s it kills the master and workers.
M.STOP_FN = M.ALIVE_FN .. [[
stop_nginx() {
  if [ -n "$1" ] && alive "$1"; then
    kill -TERM "$1" 2>/dev/null
    _i=0
    while alive "$1" && [ "$_i" -lt 1000 ]; do sleep 0.01; _i=$((_i + 1)); done
    if alive "$1"; then
      kill -KILL $(ps -o pid= --ppid "$1" 2>/dev/null) "$1" 2>/dev/null
    fi
  fi
  rm -rf "$2"
}
]]

-- Whether a program is on PATH.
function M.has_command(name)
  local _, rc = M.run("command -v " .. M.quote(name) .. " >/dev/null")
  return rc == 0
end

-- Random integer in [lo, hi] from /dev/urandom: math.random is seeded the
-- same way in every LuaJIT process, so parallel runs would collide.
function M.random_int(lo, hi)
  local f = io.open("/dev/urandom", "rb")
  local n = 0
  if f then
    local bytes = f:read(4)
    f:close()
    for i = 1, #bytes do n = n * 256 + bytes:byte(i) end
  else
    n = math.floor(os.clock() * 1e6) + os.time()
  end
  return lo + n % (hi - lo + 1)
end

return M
