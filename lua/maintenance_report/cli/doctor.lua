-- `maintenance-report doctor`: checks, at no cost, what a first call needs:
-- name resolution, the connection, TLS, the clock against the gateway's, and
-- whether the gateway accepts the credentials. One free call does it all: a
-- report read for an order id nobody has. The gateway checks the signature
-- before the vendor sees the request, so a refused key shows as a 401, and an
-- accepted one as the vendor's own "no such order" answer.
local config = require "maintenance_report.cli.config"
local exit = require "maintenance_report.cli.exit"
local hints = require "maintenance_report.cli.hints"
local output = require "maintenance_report.cli.output"
local gateway = require "maintenance_report.gateway"

local M = {}

-- Well-formed, never issued (the vendor's ids are 32 hex digits): reading it is free.
M.PROBE_ORDER_ID = "maintenance-report-doctor-probe"
M.CLOCK_WARN = 60 -- seconds; the gateway refuses beyond gateway.MAX_SKEW

function M.describe(cmd)
  cmd:summary("Check DNS, TLS, the clock and the credentials, at no cost.")
  cmd:description("Makes one free call (a report read for an order id that does not exist) and prints "
    .. "one line per check: dns, connect, tls, clock (skew against the gateway's Date header) and "
    .. "credentials. Exits 0 when every check passes, else with the exit code of the first failure. "
    .. "Never places an order.")
  config.add_connection_options(cmd)
  cmd:epilog(exit.HELP)
end

local function host_of(endpoint)
  return (endpoint or ""):match("^%a+://%[?([^/%]:]+)") or "?"
end

local function is_address(host)
  return host:match("^%d+%.%d+%.%d+%.%d+$") ~= nil or host:find(":", 1, true) ~= nil
end

-- The free probe with the given extra client options: err (nil when the
-- vendor answered the probe with data, which it never should), the skew
-- (seconds, local minus gateway; nil without a Date header), and the first
-- HTTP status (nil: no answer).
local function probe(args, extra)
  local skew, status
  local opts = { retries = 0, on_event = function(ev)
    if ev.event == "http" then skew, status = ev.clock_skew, ev.status end
  end }
  for k, v in pairs(extra) do opts[k] = v end
  local client, err = config.client(args, opts)
  if not client then return nil, nil, nil, err end
  local report
  report, err = client:get_report(M.PROBE_ORDER_ID)
  client:close()
  if err then err.order_id = nil end -- the probe's id is nobody's order: no resume hint for it
  return err, skew, status, nil, report
end

--- Runs the checks. deps (for specs): wall_clock (the local clock to sign
--- with), write (one line of output). Returns the exit code.
function M.run(args, deps)
  deps = deps or {}
  local write = deps.write or function(line) io.stdout:write(line, "\n") end
  local failure
  local function line(check, verdict, detail, err)
    write(("%-12s %-5s %s"):format(check, verdict, output.scrub(detail)))
    if verdict == "FAIL" and not failure then failure = err end
  end
  local settings, serr = config.settings(args)
  if not settings then return hints.fail(serr, args) end
  local endpoint = settings.endpoint or require("maintenance_report").DEFAULT_ENDPOINT
  local host = host_of(endpoint)
  local tls = endpoint:match("^https:") ~= nil
  local extra = { wall_clock = deps.wall_clock }
  local err, skew, status, cerr = probe(args, extra)
  if cerr then return hints.fail(cerr, args) end

  local transport = err and err.transport
  if transport == "dns" then
    line("dns", "FAIL", host .. ": " .. err.message, err)
  else
    line("dns", "ok", is_address(host) and (host .. " (an address, nothing to resolve)") or (host .. " resolved"))
  end
  local unreached = transport == "connect" or transport == "connect_timeout"
  if transport == "dns" then
    line("connect", "skip", "no address to connect to")
  elseif unreached then
    line("connect", "FAIL", err.message .. "; hint: " .. (hints.hint(err, args) or ""), err)
  else
    line("connect", "ok", "reached " .. host)
  end
  if transport == "tls" then
    line("tls", "FAIL", err.message .. "; hint: " .. hints.tls(err, args), err)
  elseif transport == "dns" or unreached then
    line("tls", "skip", "no connection")
  else
    line("tls", "ok", tls and "certificate verified" or "not used (http:// endpoint)")
  end
  if status == nil then
    if transport and transport ~= "dns" and transport ~= "connect" and transport ~= "connect_timeout"
      and transport ~= "tls" then
      line("answer", "FAIL", err.message .. "; hint: " .. (hints.hint(err, args) or ""), err)
    end
    for _, check in ipairs{ "clock", "credentials" } do line(check, "skip", "no answer from the gateway") end
    return failure and exit.code(failure) or exit.CODES.ok
  end

  if skew == nil then
    line("clock", "skip", "the answer has no Date header")
  elseif math.abs(skew) > gateway.MAX_SKEW then
    line("clock", "FAIL", gateway.describe_skew(skew) .. " (the gateway allows " .. gateway.MAX_SKEW
      .. " s): fix the system clock, or sign with clock_offset = \"auto\"")
    failure = failure or { kind = "auth" }
    -- Check the credentials anyway, signing with the gateway's time.
    err = probe(args, { wall_clock = deps.wall_clock, clock_offset = -math.floor(skew + 0.5) })
  elseif math.abs(skew) > M.CLOCK_WARN then
    line("clock", "warn", gateway.describe_skew(skew) .. " (allowed: " .. gateway.MAX_SKEW .. " s)")
  else
    line("clock", "ok", gateway.describe_skew(skew))
  end

  if err == nil or err.kind == "api" then
    -- The vendor answered: the gateway passed the request on, so it accepted the signature.
    line("credentials", "ok", ("the gateway accepted secret id %s (%s auth)"):format(settings.secret_id,
      settings.auth or "key"))
  else
    line("credentials", "FAIL", tostring(err.message) .. (err.http_status and (" (HTTP " .. err.http_status .. ")")
      or "") .. "; hint: " .. (hints.hint(err, args) or "check the endpoint"), err)
  end
  return failure and exit.code(failure) or exit.CODES.ok
end

return M
