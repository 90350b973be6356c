-- `maintenance-report sandbox`: runs the sandbox in the foreground until
-- Ctrl-C or SIGTERM. Lua 5.4 has no signal handling here, so once nginx is
-- up the process replaces itself (maintenance_report_sandbox.process.exec,
-- a C module of the sandbox rock) with a small sh script that
-- traps INT/TERM/HUP, stops nginx and removes the prefix. The script keeps
-- the watchdog's pipe open, so nginx stops also when the script is killed.
local M = {}

M.DEFAULT_PORT = 8089

-- Exit codes of this subcommand (the CLI's: see maintenance_report.cli.exit).
M.CODES = { ok = 0, internal = 1, usage = 2, environment = 9 }

M.HELP = [[
Exit codes:
  0  stopped by Ctrl-C, SIGTERM or SIGHUP (nginx stopped, its directory removed)
  1  nginx exited by itself (its last log lines are printed), or an internal error
  2  usage: an option out of range, a TLS file that cannot be read
  9  this machine cannot run the sandbox: the port is already in use, nginx or its lua
     module is missing or does not start]]

local function whole(name, min, max)
  return function(s)
    local n = tonumber(s)
    if not n or n ~= math.floor(n) or n < min or n > max then
      return nil, ("%s must be a whole number from %d to %d, got '%s'"):format(name, min, max, s)
    end
    return math.floor(n)
  end
end

-- An absolute path (nginx would read a relative one from its prefix) to a readable file.
local function readable_file(name)
  return function(s)
    local f = io.open(s, "rb")
    if not f then return nil, ("%s: cannot read '%s'"):format(name, s) end
    f:close()
    if s:sub(1, 1) ~= "/" then
      s = assert(require("maintenance_report_sandbox.shell").capture("pwd")) .. "/" .. s:gsub("^%./", "")
    end
    return s
  end
end

function M.describe(cmd)
  local limits = require("maintenance_report_sandbox").LIMITS
  cmd:summary("Run a local emulator of the API gateway and the vendor's endpoints.")
  cmd:description("Starts nginx with lua-nginx-module on 127.0.0.1, prints the base URL and "
    .. "credentials, and runs until Ctrl-C or SIGTERM. Scenario VINs trigger faults; "
    .. "see docs/sandbox.md. With --tls-cert and --tls-key, a second (https) listener runs on a "
    .. "free port, printed as tls_base_url.")
  cmd:option("--port", "Port on 127.0.0.1; 0 picks a free one.", tostring(M.DEFAULT_PORT))
    :convert(whole("--port", 0, limits.port))
  cmd:option("--secret-id", "SecretId the gateway accepts.", "AKIDsandbox")
  cmd:option("--secret-key", "SecretKey the gateway accepts.", "sandbox-secret")
  cmd:option("--pending-polls", "Polls answered 1204 (generating) before a report is ready "
    .. "(default 1, or 0 with --latency).")
    :convert(whole("--pending-polls", 0, limits.pending_polls))
  cmd:option("--latency", "Milliseconds after the order before a report is ready.", "0")
    :convert(whole("--latency", 0, limits.latency_ms))
  cmd:option("--workers", "nginx worker processes.", "1"):convert(whole("--workers", 1, limits.workers))
  cmd:option("--tls-cert", "PEM certificate for an https listener (with --tls-key)."):argname("<file>")
    :convert(readable_file("--tls-cert"))
  cmd:option("--tls-key", "PEM private key of --tls-cert."):argname("<file>")
    :convert(readable_file("--tls-key"))
  cmd:epilog(M.HELP)
end

-- The foreground script: prints the ready line once its trap is in place
-- (so a signal sent after the line is always handled), then waits on the
-- nginx master; on a signal, or if nginx dies by itself, cleans up. The
-- ready line (it holds the secret key) is read from a 0600 file in the 0700
-- prefix, never passed in the script's argv. Its own watchdog reads a fifo
-- only this script holds open (fd 3, closed in every other child), so that
-- even a kill -9 of the script stops nginx at once.
local function foreground_script(sandbox, sb, ready_file)
  local q = require("maintenance_report_sandbox.shell").quote
  local stop = string.format("stop_nginx %d %s", sb.pid, q(sb.prefix))
  local lifeline = q(sb.prefix .. "/lifeline")
  return sandbox.STOP_FN .. string.format([[
trap 'trap "" INT TERM HUP; kill $! 2>/dev/null; %s; echo "sandbox stopped" >&2; exit 0' INT TERM HUP
if mkfifo -m 600 %s; then
  ( trap '' INT TERM HUP; cat %s; %s ) </dev/null >/dev/null 2>&1 &
  exec 3>%s
fi
cat %s 3>&-
while alive %d; do sleep 1 3>&- & wait $!; done
printf 'sandbox: nginx exited unexpectedly; last log lines:\n' >&2
tail -n 20 %s >&2 2>/dev/null 3>&-
rm -rf %s
exit 1
]], stop, lifeline, lifeline, stop, lifeline, q(ready_file), sb.pid, q(sb.prefix .. "/error.log"), q(sb.prefix))
end

local function write_private(path, text)
  local shell = require "maintenance_report_sandbox.shell"
  assert(shell.capture("umask 077 && : > " .. shell.quote(path)))
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local function fail(code, message)
  io.stderr:write("maintenance-report sandbox: ", message, "\n")
  return code
end

function M.run(args)
  if (args.tls_cert == nil) ~= (args.tls_key == nil) then
    return fail(M.CODES.usage, "--tls-cert and --tls-key go together")
  end
  local sandbox = require "maintenance_report_sandbox"
  local sb, err = sandbox.start {
    port = args.port,
    secret_id = args.secret_id,
    secret_key = args.secret_key,
    pending_polls = args.pending_polls,
    latency_ms = args.latency,
    workers = args.workers,
    tls = args.tls_cert and { cert = args.tls_cert, key = args.tls_key } or nil,
  }
  -- The options were checked above: what is left is this machine (a taken port, no nginx).
  if not sb then return fail(M.CODES.environment, tostring(err)) end
  io.stderr:write(string.format("sandbox: nginx pid %d, prefix %s; Ctrl-C to stop\n", sb.pid, sb.prefix))
  -- The secret key is shown because it can only be the sandbox's default or
  -- one typed on this command line, never a real credential from elsewhere.
  local ready = string.format("sandbox ready: %s secret_id=%s secret_key=%s",
    sb.base_url, sb.secret_id, sb.secret_key)
  if sb.tls_base_url then ready = ready .. " tls_base_url=" .. sb.tls_base_url end
  local ready_file = sb.prefix .. "/ready"
  write_private(ready_file, ready .. "\n")
  local script = foreground_script(sandbox, sb, ready_file)
  io.stdout:flush()
  local ok, process = pcall(require, "maintenance_report_sandbox.process")
  if ok and type(process) == "table" and process.exec then
    local _, exec_err = process.exec({ "/bin/sh", "-c", script })
    -- exec only returns on failure.
    sb:stop()
    return fail(M.CODES.internal, "exec failed: " .. tostring(exec_err))
  end
  -- Without the C module: run the script as a child. Ctrl-C reaches it (the
  -- foreground process group); a SIGTERM sent to this Lua process alone is
  -- covered by the watchdog, which stops nginx when this process ends.
  local r1, _, r3 = os.execute(script)
  sb.server.stopped = true -- the script has cleaned up
  if r1 == true or r1 == 0 or r3 == 0 then return M.CODES.ok end
  return M.CODES.internal
end

return M
