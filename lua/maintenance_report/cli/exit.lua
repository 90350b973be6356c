-- The CLI's exit codes, which error kind maps to which, the help text that
-- documents them, and the one switch for debugging output.
local exit = {}

exit.CODES = {
  ok = 0,          -- report obtained (ready or no records); order placed; headers signed
  internal = 1,    -- a bug or an unexpected local failure
  usage = 2,       -- usage or invalid input; no request was sent
  auth = 3,        -- 401 / 403
  network = 4,     -- network, TLS or timeout
  api = 5,         -- API or business error, including 429 rate limit and quota
  pending = 6,     -- report still pending at the deadline; the order id is printed
  unknown = 7,     -- an order's outcome is unknown: it may have been charged; do not order again unchecked
  ledger = 8,      -- the order ledger cannot be read or written, or another process holds the vehicle
  environment = 9, -- this machine cannot run the command: a module that does not load, a port in use, no nginx
  interrupted = 130,
}

local BY_KIND = {
  invalid_input = 2,
  auth = 3, forbidden = 3,
  network = 4, tls = 4, timeout = 4,
  not_found = 5, rate_limited = 5, quota_exceeded = 5, http = 5, protocol = 5, api = 5,
  pending = 6,
  unknown_outcome = 7,
  ledger = 8, ledger_busy = 8, store_unavailable = 8, budget_exceeded = 8,
}

exit.HELP = [[
Exit codes:
  0  report obtained (ready or no records); for order: order placed; for sign: headers printed
  1  internal error (a bug; set MAINTENANCE_REPORT_DEBUG=1 for a traceback), or an output file that
     cannot be written after an order (the order id and a free way to read the report are printed)
  2  usage or invalid input; no request was sent
  3  authentication or permission (HTTP 401/403): check the key pair
  4  network, TLS or timeout (on an order request that may have arrived: 7 instead)
  5  API or business error, including 429 (rate limit, quota)
  6  report still pending at the deadline; the order id and the command to resume are printed
  7  order outcome unknown (HTTP 5xx, timeout, reset, bad reply after the order was sent): it may
     have been charged; do NOT order again without checking your orders (a re-run will not)
  8  the order ledger cannot be read or written (or its Redis store is unreachable), another
     process is ordering this vehicle, or the spend budget is used up; nothing was sent,
     unless an order id is printed (then that order exists)
  9  this machine cannot run the command: a Lua module or the C core cannot be loaded (see the
     hint: `luarocks path`, the right interpreter), a port already in use, nginx missing
  130  interrupted (Ctrl-C, SIGTERM); any order id already known is printed

Environment: MAINTENANCE_REPORT_SECRET_ID, MAINTENANCE_REPORT_SECRET_KEY,
MAINTENANCE_REPORT_ENDPOINT, MAINTENANCE_REPORT_SOURCE, MAINTENANCE_REPORT_CAFILE,
MAINTENANCE_REPORT_AUTH, MAINTENANCE_REPORT_BUDGET, MAINTENANCE_REPORT_REDIS_PASSWORD,
MAINTENANCE_REPORT_LEDGER (the order ledger; default $XDG_STATE_HOME/maintenance-report/ledger).
Flags win over the environment. There is no flag for the secret key: use the
environment or --secret-key-file.]]

--- The exit code for an error (a typed error table; anything else is a bug). An order that
--- may have been charged is 7 whatever the cause, so that no wrapper retries it as a network error.
function exit.code(err)
  if type(err) ~= "table" then return exit.CODES.internal end
  if err.order_outcome == "unknown" or err.kind == "unknown_outcome" then return exit.CODES.unknown end
  return BY_KIND[err.kind] or exit.CODES.api
end

--- Whether a raised Lua error is the interpreter's SIGINT (or the core's SIGTERM) "interrupted!";
--- the client may have wrapped it with the order id it knew, so it is looked for anywhere.
function exit.is_interrupt(raised)
  return type(raised) ~= "table" and tostring(raised):find("interrupted!", 1, true) ~= nil
end

exit.DEBUG_ENV = "MAINTENANCE_REPORT_DEBUG"

local DEBUG_OFF = { [""] = true, ["0"] = true, ["false"] = true, ["no"] = true, ["off"] = true }

--- Whether MAINTENANCE_REPORT_DEBUG asks for tracebacks: unset, "", "0", "false", "no"
--- and "off" (any case, surrounding blanks ignored) mean no. getenv defaults to os.getenv.
function exit.debug_enabled(getenv)
  local value = (getenv or os.getenv)(exit.DEBUG_ENV)
  if value == nil then return false end
  return not DEBUG_OFF[value:lower():match("^%s*(.-)%s*$")]
end

return exit
