-- `maintenance-report sandbox`: runs the sandbox in the foreground until
-- Ctrl-C or SIGTERM. Lua 5.4 has no signal handling here, so once nginx is
-- up the process replaces itself (maintenance_report_sandbox.process.exec,
-- a C module of the sandbox rock) with a small sh script that
-- traps INT/TERM/HUP, stops nginx and removes the prefix.
local M = {}

M.DEFAULT_PORT = 8089

function M.describe(cmd)
  cmd:summary("Run a local emulator of the API gateway and the vendor's endpoints.")
  cmd:description("Starts nginx with lua-nginx-module on 127.0.0.1, prints the base URL and "
    .. "credentials, and runs until Ctrl-C or SIGTERM. Scenario VINs trigger faults; "
    .. "see docs/sandbox.md.")
  cmd:option("--port", "Port on 127.0.0.1; 0 picks a free one.", tostring(M.DEFAULT_PORT))
    :convert(tonumber)
  cmd:option("--secret-id", "SecretId the gateway accepts.", "AKIDsandbox")
  cmd:option("--secret-key", "SecretKey the gateway accepts.", "sandbox-secret")
  cmd:option("--pending-polls", "Polls answered 1204 (generating) before a report is ready "
    .. "(default 1, or 0 with --latency).")
    :convert(tonumber)
  cmd:option("--latency", "Milliseconds after the order before a report is ready.", "0")
    :convert(tonumber)
  cmd:option("--workers", "nginx worker processes.", "1"):convert(tonumber)
end

-- The foreground script: prints the ready line once its trap is in place
-- (so a signal sent after the line is always handled), then waits on the
-- nginx master; on a signal, or if nginx dies by itself, cleans up.
local function foreground_script(sandbox, sb, ready_line)
  local q = require("maintenance_report_sandbox.shell").quote
  local wd = sb.watchdog_pid and string.format("kill -TERM %d 2>/dev/null; ", sb.watchdog_pid) or ""
  return sandbox.STOP_FN .. string.format([[
trap 'trap "" INT TERM HUP; kill $! 2>/dev/null; %sstop_nginx %d %s; echo "sandbox stopped" >&2; exit 0' INT TERM HUP
printf '%%s\n' %s
while alive %d; do sleep 1 & wait $!; done
%sprintf 'sandbox: nginx exited unexpectedly; last log lines:\n' >&2
tail -n 20 %s >&2 2>/dev/null
rm -rf %s
exit 1
]], wd, sb.pid, q(sb.prefix), q(ready_line), sb.pid, wd, q(sb.prefix .. "/error.log"), q(sb.prefix))
end

function M.run(args)
  local sandbox = require "maintenance_report_sandbox"
  local sb, err = sandbox.start {
    port = args.port,
    secret_id = args.secret_id,
    secret_key = args.secret_key,
    pending_polls = args.pending_polls,
    latency_ms = args.latency,
    workers = args.workers,
  }
  if not sb then
    io.stderr:write("maintenance-report sandbox: ", tostring(err), "\n")
    return 1
  end
  io.stderr:write(string.format("sandbox: nginx pid %d, prefix %s; Ctrl-C to stop\n", sb.pid, sb.prefix))
  -- The secret key is shown because it can only be the sandbox's default or
  -- one typed on this command line, never a real credential from elsewhere.
  local ready = string.format("sandbox ready: %s secret_id=%s secret_key=%s",
    sb.base_url, sb.secret_id, sb.secret_key)
  local script = foreground_script(sandbox, sb, ready)
  io.stdout:flush()
  local ok, process = pcall(require, "maintenance_report_sandbox.process")
  if ok and type(process) == "table" and process.exec then
    local _, exec_err = process.exec({ "/bin/sh", "-c", script })
    -- exec only returns on failure.
    sb:stop()
    io.stderr:write("maintenance-report sandbox: exec failed: ", tostring(exec_err), "\n")
    return 1
  end
  -- Without the C module: run the script as a child. Ctrl-C reaches it (the
  -- foreground process group); a SIGTERM sent to this Lua process alone is
  -- covered by the watchdog, which stops nginx within a second.
  local r1, _, r3 = os.execute(script)
  sb.server.stopped = true -- the script has cleaned up
  if r1 == true or r1 == 0 or r3 == 0 then return 0 end
  return 1
end

return M
