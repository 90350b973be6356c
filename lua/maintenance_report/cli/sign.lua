-- `maintenance-report sign`: prints the signed headers of a request, for
-- debugging authentication with curl or against the gateway's docs. The
-- Authorization signature is printed (it is not a secret); the key never is.
local common = require "maintenance_report.cli.common"

local M = {}

local MONTHS = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8, Sep = 9, Oct = 10,
                 Nov = 11, Dec = 12 }
local DAYS_IN_MONTH = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }

local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local doy = math.floor((153 * ((m + 9) % 12) + 2) / 5) + d - 1
  return era * 146097 + yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy - 719468
end

--- Epoch seconds for an RFC 1123 date ("Sun, 06 Nov 1994 08:49:37 GMT"), or nil, message.
function M.parse_http_date(s)
  local d, mon, y, hh, mm, ss = tostring(s):match(
    "^%s*%a%a%a, (%d%d?) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT%s*$")
  local m = mon and MONTHS[mon]
  if not m then return nil, "--date must look like 'Sun, 06 Nov 1994 08:49:37 GMT' (RFC 1123, GMT)" end
  d, y, hh, mm, ss = tonumber(d), tonumber(y), tonumber(hh), tonumber(mm), tonumber(ss)
  local leap = y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0)
  if d < 1 or d > DAYS_IN_MONTH[m] or (m == 2 and d == 29 and not leap) or hh > 23 or mm > 59 or ss > 60 then
    return nil, "--date is not a valid date: " .. s
  end
  return days_from_civil(y, m, d) * 86400 + hh * 3600 + mm * 60 + ss
end

function M.describe(cmd)
  cmd:summary("Print the signed request headers (for debugging authentication).")
  cmd:description("Prints the X-Date, X-Source and Authorization headers the client would send, "
    .. "one per line, ready for `curl -H`. The signature is printed; the secret key never is. "
    .. "With --verbose, the signing string goes to stderr.")
  cmd:option("--date", "Sign for this RFC 1123 date instead of now, e.g. 'Sun, 06 Nov 1994 08:49:37 GMT'.")
  cmd:option("--algorithm", "HMAC algorithm.", "hmac-sha1")
    :choices{ "hmac-sha1", "hmac-sha256", "hmac-sha384", "hmac-sha512" }
  cmd:option("--signed-headers", "Headers to sign: 'x-date x-source' or the legacy 'date source'.",
    "x-date x-source"):choices{ "x-date x-source", "date source" }
  common.add_credential_options(cmd)
  cmd:epilog(common.EXIT_HELP)
end

function M.run(args)
  local settings, err = common.settings(args)
  if not settings then return common.fail(err, args) end
  local when
  if args.date then
    local perr
    when, perr = M.parse_http_date(args.date)
    if not when then return common.fail(common.usage_error(perr), args) end
  end
  local core = require "maintenance_report.core"
  local source = settings.source or require("maintenance_report").DEFAULTS.source
  local headers, serr = core.sign{
    secret_id = settings.secret_id, secret_key = settings.secret_key, source = source,
    algorithm = args.algorithm, headers = args.signed_headers, date = when,
  }
  if not headers then return common.fail(common.usage_error("cannot sign: " .. tostring(serr)), args) end
  local lines, signing = {}, {}
  for name in args.signed_headers:gmatch("%S+") do
    local canonical = name == "x-date" and "X-Date" or name == "x-source" and "X-Source"
      or name == "date" and "Date" or "Source"
    local value = headers[canonical]
    lines[#lines + 1] = canonical .. ": " .. tostring(value)
    signing[#signing + 1] = name .. ": " .. tostring(value)
  end
  lines[#lines + 1] = "Authorization: " .. headers.Authorization
  if args.verbose then
    common.say("[sign] signing string (lines joined by \\n, no final newline):")
    for _, l in ipairs(signing) do common.say("[sign]   " .. l) end
  end
  io.stdout:write(common.scrub(table.concat(lines, "\n")), "\n")
  return common.EXIT.ok
end

return M
