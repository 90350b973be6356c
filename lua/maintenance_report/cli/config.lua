-- The CLI's configuration: the shared flags, their environment fallbacks,
-- the secret-key file and the client built from them. Flags win over the
-- environment. The secret key is only read (from the environment or a file),
-- registered with the output module so that it is never printed, and handed
-- to the client; no flag carries it, so it never shows in argv.
local mr = require "maintenance_report"
local errors = require "maintenance_report.errors"
local output = require "maintenance_report.cli.output"

local config = {}

config.ENV = {
  secret_id = "MAINTENANCE_REPORT_SECRET_ID",
  secret_key = "MAINTENANCE_REPORT_SECRET_KEY",
  endpoint = "MAINTENANCE_REPORT_ENDPOINT",
  source = "MAINTENANCE_REPORT_SOURCE",
  cafile = "MAINTENANCE_REPORT_CAFILE",
  ledger = "MAINTENANCE_REPORT_LEDGER",
  redis_password = "MAINTENANCE_REPORT_REDIS_PASSWORD",
  budget = "MAINTENANCE_REPORT_BUDGET",
}
config.ENV.auth = "MAINTENANCE_REPORT_AUTH" -- key pair or app-key signing (--auth)

-- The CLI reuses a final report for a day by default: a second query for the
-- same vehicle the same day is almost always a mistake that would cost ¥17.
config.DEFAULT_REUSE = "24h"

--- A typed usage error (exit code 2: nothing was sent).
function config.usage_error(message, fields)
  return errors.new("invalid_input", message, fields)
end
local usage_error = config.usage_error

---------------------------------------------------------------------------
-- Option definitions shared by subcommands
---------------------------------------------------------------------------

--- An argparse converter for a finite number above min (strict) or at least min.
function config.number_converter(name, min, strict)
  return function(s)
    local n = tonumber(s)
    if not n or n ~= n or n == math.huge then return nil, name .. " must be a number, got '" .. s .. "'" end
    if strict and n <= min then return nil, ("%s must be greater than %g"):format(name, min) end
    if not strict and n < min then return nil, ("%s must be at least %g"):format(name, min) end
    return n
  end
end
local number_converter = config.number_converter

--- An argparse converter for a whole number of at least min and at most max (default 10^9:
--- far above any sane count, and below what would overflow a C int or mean infinity).
function config.integer_converter(name, min, max)
  max = max or 1e9
  return function(s)
    local n = tonumber(s)
    if not n or n ~= n or n ~= math.floor(n) or n == math.huge or n == -math.huge then
      return nil, name .. " must be a whole number, got '" .. s .. "'"
    end
    if n < min then return nil, ("%s must be at least %d"):format(name, min) end
    if n > max then return nil, ("%s must be at most %d, got %s"):format(name, max, s) end
    return math.floor(n)
  end
end

--- --secret-id, --secret-key-file, --source, --verbose.
function config.add_credential_options(cmd)
  cmd:option("--secret-id", "SecretId (default: $" .. config.ENV.secret_id .. ").")
  cmd:option("--secret-key-file", "Read the SecretKey from FILE (default: $" .. config.ENV.secret_key
    .. "). There is no flag for the key itself."):argname("<file>")
  cmd:option("--source", "X-Source label (default: $" .. config.ENV.source .. " or 'market').")
  cmd:flag("-v --verbose", "Print request ids, statuses and timings to stderr (never secrets).")
end

--- The credential options and --endpoint, --cafile, --insecure, --timeout, --connect-timeout.
function config.add_connection_options(cmd)
  config.add_credential_options(cmd)
  cmd:option("--auth", "How requests are signed: key (key pair: SecretId/SecretKey) or app (app key: "
    .. "ApiAppKey/ApiAppSecret in the same places) (default: $" .. config.ENV.auth .. " or key).")
    :choices{ "key", "app" }
  cmd:option("--endpoint", "Base URL of the API (default: $" .. config.ENV.endpoint
    .. " or the vendor's).")
  cmd:option("--cafile", "CA bundle to verify the server (default: $" .. config.ENV.cafile .. ").")
    :argname("<file>")
  cmd:flag("--insecure", "Do not verify TLS certificates (dangerous; for debugging only).")
  cmd:option("--timeout", "Seconds allowed for each HTTP request.", "10")
    :convert(number_converter("--timeout", 0, true))
  cmd:option("--connect-timeout", "Seconds allowed to connect.", "5")
    :convert(number_converter("--connect-timeout", 0, true))
end

function config.add_order_options(cmd)
  cmd:option("--vin", "Vehicle identification number (17 characters)."):count(1)
  cmd:option("--engine-number", "Engine number (optional).")
  cmd:option("--plate-number", "Licence plate, e.g. 京A12345 (optional).")
end

function config.add_poll_options(cmd, default_max_wait)
  -- No default of its own: without the flag the library's adaptive polling applies
  -- (waits growing with the time already waited, up to its poll_interval).
  cmd:option("--poll-interval", ("Longest wait between two polls, in seconds (default: the library's "
    .. "adaptive policy, waits of %g × the time already waited, %g s up to %g s).")
    :format(mr.DEFAULTS.poll_growth, mr.DEFAULTS.first_poll_delay, mr.DEFAULTS.poll_interval))
    :convert(number_converter("--poll-interval", 0, true))
  cmd:option("--max-wait", "Give up waiting after this many seconds (the order id is printed).",
    tostring(default_max_wait or 900))
    :convert(number_converter("--max-wait", 0, false))
end

function config.add_format_options(cmd)
  cmd:option("--format", "Output format: text, json, html or pdf (pdf: through headless Chromium).", "text")
    :choices{ "text", "json", "html", "pdf" }
  cmd:option("-o --output", "Write the output to FILE instead of stdout."):argname("<file>")
  cmd:flag("--raw", "With --format json: include the vendor's response body as \"raw\".")
end

local UNITS = { s = 1, m = 60, h = 3600, d = 86400 }

--- Seconds of a duration such as 24h, 90m, 3600s, 2d or 3600 (seconds); nil, message otherwise.
function config.parse_duration(s, name)
  local n, unit = tostring(s):match("^%s*(%d+%.?%d*)%s*([smhd]?)%s*$")
  if not n then
    return nil, ("%s must be a duration such as 24h, 90m or 3600s, got '%s'"):format(name or "duration", s)
  end
  return tonumber(n) * UNITS[unit ~= "" and unit or "s"]
end

--- --ledger on every command that may order; --reuse and --fresh where a stored report can
--- stand in for a new order (opts.reuse); --retry-unknown where an order can be placed.
function config.add_ledger_options(cmd, opts)
  opts = opts or {}
  cmd:option("--ledger", "Order ledger file (default: $" .. config.ENV.ledger
    .. ", else $XDG_STATE_HOME/maintenance-report/ledger, else ~/.local/state/maintenance-report/ledger)."
    .. " It records every order before and after it is sent. redis://host:port/db shares one ledger"
    .. " between machines (its password goes in $" .. config.ENV.redis_password .. ", not on the command line).")
    :argname("<file|url>")
  cmd:option("--budget", "Spend caps in yuan, kept in the ledger and shared by everyone using it: "
    .. "day=N,month=N (either or both), optional price=N (yuan per order, default 17). "
    .. "An order beyond a cap is refused before it is sent (exit 8). Default: $" .. config.ENV.budget .. ".")
    :argname("<caps>")
  if opts.reuse then
    cmd:option("--reuse", "Reuse a final report from the ledger that is younger than this (no new order): "
      .. "e.g. 24h, 90m, 3600s; 0 never reuses.", config.DEFAULT_REUSE)
      :argname("<duration>"):convert(function(v) return config.parse_duration(v, "--reuse") end)
    cmd:flag("--fresh", "Order a new report even if the ledger has a recent one (paid).")
  end
  if opts.retry_unknown ~= false then
    cmd:flag("--retry-unknown", "Order again a vehicle whose earlier order has an unknown outcome "
      .. "(it may have been charged already: check your orders first).")
  end
end

---------------------------------------------------------------------------
-- Settings
---------------------------------------------------------------------------

local function nonempty(s)
  if type(s) == "string" and s ~= "" then return s end
  return nil
end

--- The key from a file: the first non-blank line, surrounding whitespace removed.
function config.read_secret_key_file(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, usage_error("cannot read --secret-key-file: " .. tostring(err)) end
  local data = f:read("*a") or ""
  f:close()
  local key
  for line in data:gmatch("[^\r\n]+") do
    key = line:match("^%s*(.-)%s*$")
    if key ~= "" then break end
  end
  if key == nil or key == "" then
    return nil, usage_error("--secret-key-file " .. path .. " is empty")
  end
  return key
end

-- Secrets taken out of the environment by take_secret_from_environment: name -> value.
local taken = {}

--- Reads the secret variables ($MAINTENANCE_REPORT_SECRET_KEY, $MAINTENANCE_REPORT_REDIS_PASSWORD)
--- once and removes them from the process environment (core.unsetenv), so that no child process
--- the CLI starts inherits them; config.getenv still answers them. Called by the CLI's main
--- before anything else runs.
function config.take_secret_from_environment()
  local core = require "maintenance_report.core"
  for _, name in ipairs{ config.ENV.secret_key, config.ENV.redis_password } do
    local value = os.getenv(name)
    if value ~= nil then
      taken[name] = value
      output.add_secret(value)
      if core.unsetenv then assert(core.unsetenv(name)) end
    end
  end
end

--- os.getenv, with the secrets taken from the environment still known.
function config.getenv(name)
  if taken[name] ~= nil then return taken[name] end
  return os.getenv(name)
end

--- Resolved settings: credentials and connection options, flags over environment.
--- getenv defaults to config.getenv. Returns a table or nil, err (kind invalid_input).
function config.settings(args, getenv)
  getenv = getenv or config.getenv
  local s = {}
  s.secret_id = nonempty(args.secret_id) or nonempty(getenv(config.ENV.secret_id))
  if args.secret_key_file then
    local key, err = config.read_secret_key_file(args.secret_key_file)
    if not key then return nil, err end
    s.secret_key, s.key_origin = key, "--secret-key-file"
  else
    s.secret_key, s.key_origin = nonempty(getenv(config.ENV.secret_key)), "$" .. config.ENV.secret_key
  end
  output.add_secret(s.secret_key)
  if not s.secret_id or not s.secret_key then
    local missing = not s.secret_id and "secret id" or "secret key"
    return nil, usage_error("no " .. missing .. " configured", { hint = "set " .. config.ENV.secret_id .. " and "
      .. config.ENV.secret_key .. ", or pass --secret-id and --secret-key-file FILE" })
  end
  s.source = nonempty(args.source) or nonempty(getenv(config.ENV.source))
  s.endpoint = nonempty(args.endpoint) or nonempty(getenv(config.ENV.endpoint))
  s.cafile = nonempty(args.cafile) or nonempty(getenv(config.ENV.cafile))
  if s.cafile then
    local f = io.open(s.cafile, "rb")
    if not f then return nil, usage_error("cannot read the CA bundle " .. s.cafile) end
    f:close()
  end
  s.insecure = args.insecure and true or nil
  s.auth = nonempty(args.auth) or nonempty(getenv(config.ENV.auth))
  if s.auth and s.auth ~= "key" and s.auth ~= "app" then
    return nil, usage_error("$" .. config.ENV.auth .. " must be key or app, got '" .. s.auth .. "'")
  end
  return s
end

--- The ledger path: --ledger, else $MAINTENANCE_REPORT_LEDGER, else the XDG state directory.
--- Returns the path or nil, err (kind invalid_input) when no home directory is known.
function config.ledger_path(args, getenv)
  getenv = getenv or os.getenv
  local path = nonempty(args.ledger) or nonempty(getenv(config.ENV.ledger))
  if path then return path end
  local state = nonempty(getenv("XDG_STATE_HOME"))
  if not state then
    local home = nonempty(getenv("HOME"))
    if not home then
      return nil, usage_error("no place for the order ledger: set $HOME, $XDG_STATE_HOME or $"
        .. config.ENV.ledger .. ", or pass --ledger FILE")
    end
    state = home .. "/.local/state"
  end
  return state .. "/maintenance-report/ledger"
end

--- Whether a --ledger value names a Redis ledger rather than a file.
function config.is_ledger_url(value)
  return type(value) == "string" and value:match("^rediss?://") ~= nil
end

--- --budget (or its environment variable) as ledger budget options; nil when none is set.
function config.budget(args, getenv)
  local spec = nonempty(args.budget) or nonempty((getenv or os.getenv)(config.ENV.budget))
  if not spec then return nil end
  local out = {}
  for item in spec:gmatch("[^,]+") do
    local name, value = item:match("^%s*(%a+)%s*=%s*([%d.]+)%s*$")
    if not (name == "day" or name == "month" or name == "price") or not tonumber(value) then
      return nil, usage_error(("--budget takes day=N,month=N[,price=N] in yuan, got '%s'"):format(spec))
    end
    out[name] = tonumber(value)
  end
  if not (out.day or out.month) then return nil, usage_error("--budget needs day=N or month=N (yuan)") end
  return out
end

-- A Redis ledger from a URL: the password from the environment, never argv.
local function open_redis_ledger(url, from_argv, budget, getenv)
  local redis_client = require "maintenance_report.ledger.redis_client"
  local parsed, message = redis_client.parse_url(url)
  if not parsed then return nil, usage_error("--ledger: " .. message) end
  if parsed.password and from_argv then
    return nil, usage_error("--ledger: a password in the URL would be visible to every user in the process "
      .. "list; put it in $" .. config.ENV.redis_password .. " (or the whole URL in $" .. config.ENV.ledger .. ")")
  end
  parsed.password = parsed.password or nonempty(getenv(config.ENV.redis_password))
  local L, err = require("maintenance_report.ledger").redis(parsed, { budget = budget })
  if not L then return nil, err end
  return L, redis_client.describe(parsed)
end

--- The command's ledger: a file (its directory created 0700), or Redis for a redis:// URL.
--- Returns L, where (the path, or the URL without credentials) or nil, err.
function config.open_ledger(args, getenv)
  getenv = getenv or config.getenv
  local budget, berr = config.budget(args, getenv)
  if berr then return nil, berr end
  local path, err = config.ledger_path(args, getenv)
  if not path then return nil, err end
  if config.is_ledger_url(path) then return open_redis_ledger(path, nonempty(args.ledger) ~= nil, budget, getenv) end
  local dir = path:match("^(.*)/[^/]+$")
  if dir and dir ~= "" and not os.rename(dir, dir) then
    -- umask 077: every directory mkdir -p makes (the ledger's own included) is 0700.
    os.execute("umask 077 && mkdir -p " .. require("maintenance_report.cli.terminal").shell_word(dir)
      .. " 2>/dev/null")
  end
  local L, lerr = require("maintenance_report.ledger").file(path, { budget = budget })
  if not L then return nil, lerr end
  return L, path
end

--- Client options from the settings and the command's flags; extra is merged in.
function config.client_options(settings, args, extra)
  local o = { secret_id = settings.secret_id, secret_key = settings.secret_key }
  for _, k in ipairs{ "source", "endpoint", "cafile", "insecure", "auth" } do o[k] = settings[k] end
  o.timeout = args.timeout
  o.connect_timeout = args.connect_timeout
  o.poll_interval = args.poll_interval
  if args.poll_interval then o.first_poll_delay = math.min(mr.DEFAULTS.first_poll_delay, args.poll_interval) end
  o.max_wait = args.max_wait
  if args.verbose then o.on_event = output.event_printer() end
  for k, v in pairs(extra or {}) do
    if k ~= "ledger_path" then o[k] = v end
  end
  return o
end

--- A client for the command's flags and environment: client, nil, settings or nil, err.
--- extra: client options over the flags' (ledger = L from config.open_ledger, and its ledger_path).
function config.client(args, extra, getenv)
  if args.format == "pdf" then
    -- before any request: a paid report must not arrive with nothing to print it
    local chromium, perr = require("maintenance_report.render.pdf").chromium(getenv)
    if not chromium then return nil, perr end
  end
  local settings, err = config.settings(args, getenv)
  if not settings then return nil, err end
  local opts = config.client_options(settings, args, extra)
  if args.verbose then
    output.say(string.format("[config] endpoint %s, source %s, secret id %s, key from %s%s",
      opts.endpoint or mr.DEFAULT_ENDPOINT, opts.source or mr.DEFAULTS.source, settings.secret_id,
      settings.key_origin, (opts.cafile and (", CA bundle " .. opts.cafile) or "")
        .. (opts.auth == "app" and ", app-key auth" or "")))
    if extra and extra.ledger_path then output.say("[config] ledger " .. extra.ledger_path) end
  end
  local client, cerr = mr.new(opts)
  if not client then return nil, cerr end
  return client, nil, settings
end

return config
