-- `maintenance-report sign`: prints the signed headers of a request, for
-- debugging authentication with curl or against the gateway's docs. The
-- Authorization signature is printed (it is not a secret); the key never is.
local civil_date = require "maintenance_report.civil_date"
local config = require "maintenance_report.cli.config"
local exit = require "maintenance_report.cli.exit"
local hints = require "maintenance_report.cli.hints"
local output = require "maintenance_report.cli.output"

local M = {}

local MONTHS = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8, Sep = 9, Oct = 10,
                 Nov = 11, Dec = 12 }

--- Epoch seconds for an RFC 1123 date ("Sun, 06 Nov 1994 08:49:37 GMT"), or nil, message.
function M.parse_http_date(s)
  local d, mon, y, hh, mm, ss = tostring(s):match(
    "^%s*%a%a%a, (%d%d?) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT%s*$")
  local m = mon and MONTHS[mon]
  if not m then return nil, "--date must look like 'Sun, 06 Nov 1994 08:49:37 GMT' (RFC 1123, GMT)" end
  d, y, hh, mm, ss = tonumber(d), tonumber(y), tonumber(hh), tonumber(mm), tonumber(ss)
  if not civil_date.valid(y, m, d) or hh > 23 or mm > 59 or ss > 60 then
    return nil, "--date is not a valid date: " .. s
  end
  return civil_date.days_from_civil(y, m, d) * 86400 + hh * 3600 + mm * 60 + ss
end

function M.describe(cmd)
  cmd:summary("Print the signed request headers (for debugging authentication).")
  cmd:description("Prints the X-Date, X-Source and Authorization headers the client would send, "
    .. "one per line, ready for `curl -H`. The signature is printed; the secret key never is. "
    .. "With --verbose, the signing string the signer used goes to stderr.")
  cmd:option("--date", "Sign for this RFC 1123 date instead of now, e.g. 'Sun, 06 Nov 1994 08:49:37 GMT'.")
  cmd:option("--algorithm", "HMAC algorithm.", "hmac-sha1")
    :choices{ "hmac-sha1", "hmac-sha256", "hmac-sha384", "hmac-sha512" }
  cmd:option("--signed-headers", "Headers to sign: 'x-date x-source' or the legacy 'date source'.",
    "x-date x-source"):choices{ "x-date x-source", "date source" }
  config.add_credential_options(cmd)
  cmd:epilog(exit.HELP)
end

local CANONICAL = { ["x-date"] = "X-Date", ["x-source"] = "X-Source", date = "Date", source = "Source" }

function M.run(args)
  local settings, err = config.settings(args)
  if not settings then return hints.fail(err, args) end
  local when
  if args.date then
    local perr
    when, perr = M.parse_http_date(args.date)
    if not when then return hints.fail(config.usage_error(perr), args) end
  end
  local core = require "maintenance_report.core"
  local source = settings.source or require("maintenance_report").DEFAULTS.source
  -- The signer's own signing string: a copy rebuilt here could drift from what was HMAC'd.
  local headers, string_to_sign = core.sign{
    secret_id = settings.secret_id, secret_key = settings.secret_key, source = source,
    algorithm = args.algorithm, headers = args.signed_headers, date = when,
  }
  if not headers then
    return hints.fail(config.usage_error("cannot sign: " .. tostring(string_to_sign)), args)
  end
  local lines = {}
  for name in args.signed_headers:gmatch("%S+") do
    lines[#lines + 1] = CANONICAL[name] .. ": " .. tostring(headers[CANONICAL[name]])
  end
  lines[#lines + 1] = "Authorization: " .. headers.Authorization
  if args.verbose then
    output.say("[sign] signing string (lines joined by \\n, no final newline):")
    for line in (string_to_sign .. "\n"):gmatch("([^\n]*)\n") do output.say("[sign]   " .. line) end
  end
  io.stdout:write(output.scrub(table.concat(lines, "\n")), "\n")
  return exit.CODES.ok
end

return M
