-- What the CLI tells the user after an error: one line with the error, then a
-- hint that says what to do next (and, when money is at stake, what NOT to
-- do), then the exit code.
local config = require "maintenance_report.cli.config"
local exit = require "maintenance_report.cli.exit"
local output = require "maintenance_report.cli.output"
local terminal = require "maintenance_report.cli.terminal"

local hints = {}

local ENV = config.ENV
local shell_word = terminal.shell_word

--- The exact command that resumes waiting for order_id with the same settings.
function hints.resume_command(order_id, args)
  local words = { output.PROGRAM, "report", shell_word(order_id), "--wait" }
  args = args or {}
  local function add(flag, value)
    if value ~= nil and value ~= false then
      words[#words + 1] = flag
      if value ~= true then words[#words + 1] = shell_word(value) end
    end
  end
  if args.format and args.format ~= "text" then add("--format", args.format) end
  if args.output then add("--output", args.output) end
  add("--endpoint", args.endpoint)
  add("--secret-id", args.secret_id)
  add("--secret-key-file", args.secret_key_file)
  add("--source", args.source)
  add("--cafile", args.cafile)
  add("--insecure", args.insecure)
  if args.poll_interval and args.poll_interval ~= 3 then add("--poll-interval", args.poll_interval) end
  return table.concat(words, " ")
end
local resume_command = hints.resume_command

--- A hint for an error, or nil. args: the command's flags (for resume commands).
function hints.hint(err, args)
  if type(err) ~= "table" then return nil end
  if err.hint then return err.hint end
  local msg = tostring(err.message or "")
  local kind = err.kind
  if kind == "unknown_outcome" then
    return "an earlier order for this vehicle may have been charged and has no order id: check your orders "
      .. "in the API marketplace console; `" .. output.PROGRAM .. " ledger show VIN` has the details, and "
      .. "--retry-unknown (or `ledger forget VIN --yes`) orders it again"
  elseif kind == "ledger_busy" then
    return "another process is ordering or polling this vehicle right now: wait for it, then run the "
      .. "command again (it will poll that order or reuse its report, not order again)"
  elseif kind == "ledger" and err.order_id then
    return "order " .. tostring(err.order_id) .. " exists but the ledger could not record it: keep this id "
      .. "(read the report free with: " .. resume_command(err.order_id, args) .. "); the ledger treats the "
      .. "vehicle as unknown, so it is never ordered again by itself"
  elseif kind == "ledger" then
    return "nothing was sent; check the ledger file and its disk (`" .. output.PROGRAM .. " ledger check`), "
      .. "or pass --ledger FILE"
  end
  if err.order_outcome == "unknown" then
    return "the order may have been placed and charged: do NOT order this VIN again until you have checked "
      .. "your orders in the API marketplace console (quote the request id, if any, to the vendor)"
  end
  if kind == "pending" and err.order_id then
    return "no new order is needed; resume with: " .. resume_command(err.order_id, args)
  end
  if kind == "auth" then
    if msg:find("x-date", 1, true) or msg:find("date header", 1, true) or msg:find("out of date", 1, true) then
      return "the gateway rejects requests whose date is more than 15 minutes off: check the system clock "
        .. "(e.g. timedatectl status) and the time zone"
    elseif msg:find("does not match", 1, true) then
      return "the signature does not match: check the secret key ($" .. ENV.secret_key
        .. " or --secret-key-file) and that it belongs to the secret id"
    elseif msg:find("cannot be verified", 1, true) then
      return "the gateway does not know this secret id: check $" .. ENV.secret_id .. " or --secret-id"
    elseif msg:find("apikey is invalid", 1, true) then
      return "this key pair is not bound to this API: check the key in the API marketplace console"
    end
    return "check the secret id and key"
  elseif kind == "forbidden" then
    return "the key has no usage plan for this API: subscribe or bind it in the API marketplace console"
  elseif kind == "quota_exceeded" then
    return "the API quota is used up: buy more quota in the API marketplace console"
      .. (err.order_id and ("; the order exists, read it later with: " .. resume_command(err.order_id, args))
        or "")
  elseif kind == "rate_limited" then
    return "the gateway's rate limit was hit: wait a little and retry (batch: lower --rate)"
  elseif kind == "tls" then
    return "TLS verification failed: for a private CA pass --cafile FILE (or set $" .. ENV.cafile .. ")"
  elseif kind == "not_found" then
    return "the endpoint has no such API: check --endpoint / $" .. ENV.endpoint
      .. " (the vendor's ends in /release)"
  end
  if err.order_id then
    return "reading a report is free and never orders again: retry later with "
      .. resume_command(err.order_id, args) .. " (and check the order id if this persists)"
  end
  if kind == "network" then
    return "check the network connection and the endpoint (--endpoint or $" .. ENV.endpoint .. ")"
  elseif kind == "timeout" then
    return "the server did not answer in time: retry later or raise --timeout"
  elseif kind == "http" then
    return "the API or its gateway failed: retry later"
  end
  return nil
end

--- Prints "maintenance-report: error: …" and the hint to stderr; returns the exit code.
function hints.fail(err, args)
  output.say(output.PROGRAM .. ": " .. tostring(err))
  local hint = hints.hint(err, args)
  if hint then output.say("hint: " .. hint) end
  return exit.code(err)
end

return hints
