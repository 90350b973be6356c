-- What every CLI subcommand shares: configuration (flags over environment),
-- exit codes, one-line errors with hints, --verbose event lines, output
-- files and terminal detection. Nothing here ever prints a secret key: the
-- key is only read (from the environment or a file) and handed to the client,
-- and every line this module writes is scrubbed of it as a last resort.
local mr = require "maintenance_report"
local errors = require "maintenance_report.errors"

local common = {}

common.PROGRAM = "maintenance-report"

common.ENV = {
  secret_id = "MAINTENANCE_REPORT_SECRET_ID",
  secret_key = "MAINTENANCE_REPORT_SECRET_KEY",
  endpoint = "MAINTENANCE_REPORT_ENDPOINT",
  source = "MAINTENANCE_REPORT_SOURCE",
  cafile = "MAINTENANCE_REPORT_CAFILE",
}

common.EXIT = {
  ok = 0,          -- report obtained (ready or no records); order placed; headers signed
  internal = 1,    -- a bug or an unexpected local failure
  usage = 2,       -- usage or invalid input; no request was sent
  auth = 3,        -- 401 / 403
  network = 4,     -- network, TLS or timeout
  api = 5,         -- API or business error, including 429 rate limit and quota
  pending = 6,     -- report still pending at the deadline; the order id is printed
  interrupted = 130,
}

local EXIT_BY_KIND = {
  invalid_input = 2,
  auth = 3, forbidden = 3,
  network = 4, tls = 4, timeout = 4,
  not_found = 5, rate_limited = 5, quota_exceeded = 5, http = 5, protocol = 5, api = 5,
  pending = 6,
}

common.EXIT_HELP = [[
Exit codes:
  0  report obtained (ready or no records); for order: order placed; for sign: headers printed
  1  internal error (a bug; set MAINTENANCE_REPORT_DEBUG=1 for a traceback)
  2  usage or invalid input; no request was sent
  3  authentication or permission (HTTP 401/403): check the key pair
  4  network, TLS or timeout
  5  API or business error, including 429 (rate limit, quota)
  6  report still pending at the deadline; the order id and the command to resume are printed

Environment: MAINTENANCE_REPORT_SECRET_ID, MAINTENANCE_REPORT_SECRET_KEY,
MAINTENANCE_REPORT_ENDPOINT, MAINTENANCE_REPORT_SOURCE, MAINTENANCE_REPORT_CAFILE.
Flags win over the environment. There is no flag for the secret key: use the
environment or --secret-key-file.]]

---------------------------------------------------------------------------
-- Secrets: remembered only to scrub them from output
---------------------------------------------------------------------------

local secrets = {}

function common.add_secret(s)
  if type(s) == "string" and #s >= 4 then secrets[#secrets + 1] = s end
end

--- The text with every known secret replaced by [REDACTED].
function common.scrub(s)
  s = tostring(s)
  for _, secret in ipairs(secrets) do s = errors.scrub(s, secret) end
  return s
end

--- Writes one line to stderr, scrubbed, without control characters inside it.
function common.say(line)
  line = common.scrub(line):gsub("[%z\1-\8\11-\31\127]", " ")
  io.stderr:write(line, "\n")
end

---------------------------------------------------------------------------
-- Terminals
---------------------------------------------------------------------------

local tty_cache = {}

local function execute_ok(command)
  local a, _, c = os.execute(command)
  if type(a) == "number" then return a == 0 end -- Lua 5.1 / LuaJIT without 5.2 compat
  return a == true and (c == nil or c == 0)
end
common.execute_ok = execute_ok

--- Whether file descriptor fd (1 or 2) is a terminal; asked once per fd.
function common.isatty(fd)
  if tty_cache[fd] == nil then
    tty_cache[fd] = execute_ok("test -t " .. tonumber(fd))
  end
  return tty_cache[fd]
end

--- Whether to color stdout: a terminal, NO_COLOR unset, TERM not "dumb".
function common.color_stdout()
  if os.getenv("NO_COLOR") and os.getenv("NO_COLOR") ~= "" then return false end
  if os.getenv("TERM") == "dumb" then return false end
  return common.isatty(1)
end

---------------------------------------------------------------------------
-- Option definitions shared by subcommands
---------------------------------------------------------------------------

local function number_converter(name, min, strict)
  return function(s)
    local n = tonumber(s)
    if not n or n ~= n or n == math.huge then return nil, name .. " must be a number, got '" .. s .. "'" end
    if strict and n <= min then return nil, ("%s must be greater than %g"):format(name, min) end
    if not strict and n < min then return nil, ("%s must be at least %g"):format(name, min) end
    return n
  end
end
common.number_converter = number_converter

function common.integer_converter(name, min)
  return function(s)
    local n = tonumber(s)
    if not n or n ~= math.floor(n) then return nil, name .. " must be a whole number, got '" .. s .. "'" end
    if n < min then return nil, ("%s must be at least %d"):format(name, min) end
    return n
  end
end

--- --secret-id, --secret-key-file, --endpoint, --source, --cafile, --insecure, --verbose.
function common.add_credential_options(cmd)
  cmd:option("--secret-id", "SecretId (default: $" .. common.ENV.secret_id .. ").")
  cmd:option("--secret-key-file", "Read the SecretKey from FILE (default: $" .. common.ENV.secret_key
    .. "). There is no flag for the key itself."):argname("<file>")
  cmd:option("--source", "X-Source label (default: $" .. common.ENV.source .. " or 'market').")
  cmd:flag("-v --verbose", "Print request ids, statuses and timings to stderr (never secrets).")
end

function common.add_connection_options(cmd)
  common.add_credential_options(cmd)
  cmd:option("--endpoint", "Base URL of the API (default: $" .. common.ENV.endpoint
    .. " or the vendor's).")
  cmd:option("--cafile", "CA bundle to verify the server (default: $" .. common.ENV.cafile .. ").")
    :argname("<file>")
  cmd:flag("--insecure", "Do not verify TLS certificates (dangerous; for debugging only).")
  cmd:option("--timeout", "Seconds allowed for each HTTP request.", "10")
    :convert(number_converter("--timeout", 0, true))
  cmd:option("--connect-timeout", "Seconds allowed to connect.", "5")
    :convert(number_converter("--connect-timeout", 0, true))
end

function common.add_order_options(cmd)
  cmd:option("--vin", "Vehicle identification number (17 characters)."):count(1)
  cmd:option("--engine-number", "Engine number (optional).")
  cmd:option("--plate-number", "Licence plate, e.g. 京A12345 (optional).")
end

function common.add_poll_options(cmd, default_max_wait)
  cmd:option("--poll-interval", "Longest wait between two polls, in seconds.", "3")
    :convert(number_converter("--poll-interval", 0, true))
  cmd:option("--max-wait", "Give up waiting after this many seconds (the order id is printed).",
    tostring(default_max_wait or 900))
    :convert(number_converter("--max-wait", 0, false))
end

function common.add_format_options(cmd)
  cmd:option("--format", "Output format: text, json or html.", "text"):choices{ "text", "json", "html" }
  cmd:option("-o --output", "Write the output to FILE instead of stdout."):argname("<file>")
  cmd:flag("--raw", "With --format json: include the vendor's response body as \"raw\".")
end

---------------------------------------------------------------------------
-- Configuration
---------------------------------------------------------------------------

local function usage_error(message, fields)
  return errors.new("invalid_input", message, fields)
end
common.usage_error = usage_error

local function nonempty(s)
  if type(s) == "string" and s ~= "" then return s end
  return nil
end

--- The key from a file: the first non-blank line, surrounding whitespace removed.
function common.read_secret_key_file(path)
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

--- Resolved settings: credentials and connection options, flags over environment.
--- getenv defaults to os.getenv. Returns a table or nil, err (kind invalid_input).
function common.settings(args, getenv)
  getenv = getenv or os.getenv
  local s = {}
  s.secret_id = nonempty(args.secret_id) or nonempty(getenv(common.ENV.secret_id))
  if args.secret_key_file then
    local key, err = common.read_secret_key_file(args.secret_key_file)
    if not key then return nil, err end
    s.secret_key, s.key_origin = key, "--secret-key-file"
  else
    s.secret_key, s.key_origin = nonempty(getenv(common.ENV.secret_key)), "$" .. common.ENV.secret_key
  end
  common.add_secret(s.secret_key)
  if not s.secret_id or not s.secret_key then
    local missing = not s.secret_id and "secret id" or "secret key"
    return nil, usage_error("no " .. missing .. " configured", { hint = "set " .. common.ENV.secret_id .. " and "
      .. common.ENV.secret_key .. ", or pass --secret-id and --secret-key-file FILE" })
  end
  s.source = nonempty(args.source) or nonempty(getenv(common.ENV.source))
  s.endpoint = nonempty(args.endpoint) or nonempty(getenv(common.ENV.endpoint))
  s.cafile = nonempty(args.cafile) or nonempty(getenv(common.ENV.cafile))
  if s.cafile then
    local f = io.open(s.cafile, "rb")
    if not f then return nil, usage_error("cannot read the CA bundle " .. s.cafile) end
    f:close()
  end
  s.insecure = args.insecure and true or nil
  return s
end

local function fmt_seconds(d)
  if type(d) ~= "number" then return "?" end
  if d < 1 then return string.format("%d ms", math.floor(d * 1000 + 0.5)) end
  return string.format("%.2f s", d)
end

--- An on_event hook printing one line per event to stderr.
function common.event_printer()
  return function(ev)
    if ev.event == "http" then
      local outcome = ev.status and tostring(ev.status) or ("failed: " .. tostring(ev.error_kind))
      if ev.status and ev.error_kind then outcome = outcome .. " (" .. ev.error_kind .. ")" end
      common.say(string.format("[http] %s GET %s attempt %d -> %s in %s%s", tostring(ev.op), tostring(ev.path),
        ev.attempt or 1, outcome, fmt_seconds(ev.duration),
        ev.request_id and (", request " .. tostring(ev.request_id)) or ""))
    elseif ev.event == "retry" then
      common.say(string.format("[retry] %s attempt %d failed; retrying in %s", tostring(ev.op), ev.attempt or 0,
        fmt_seconds(ev.delay)))
    elseif ev.event == "poll" then
      common.say(string.format("[poll] order %s: %s", tostring(ev.order_id), tostring(ev.status)))
    end
  end
end

--- Client options from the settings and the command's flags; extra is merged in.
function common.client_options(settings, args, extra)
  local o = { secret_id = settings.secret_id, secret_key = settings.secret_key }
  for _, k in ipairs{ "source", "endpoint", "cafile", "insecure" } do o[k] = settings[k] end
  o.timeout = args.timeout
  o.connect_timeout = args.connect_timeout
  o.poll_interval = args.poll_interval
  if args.poll_interval then o.first_poll_delay = math.min(1, args.poll_interval) end
  o.max_wait = args.max_wait
  if args.verbose then o.on_event = common.event_printer() end
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

--- A client for the command's flags and environment, or nil, err.
function common.client(args, extra, getenv)
  local settings, err = common.settings(args, getenv)
  if not settings then return nil, err end
  local opts = common.client_options(settings, args, extra)
  if args.verbose then
    common.say(string.format("[config] endpoint %s, source %s, secret id %s, key from %s%s",
      opts.endpoint or mr.DEFAULT_ENDPOINT, opts.source or mr.DEFAULTS.source, settings.secret_id,
      settings.key_origin, opts.cafile and (", CA bundle " .. opts.cafile) or ""))
  end
  local client, cerr = mr.new(opts)
  if not client then return nil, cerr end
  return client, nil, settings
end

---------------------------------------------------------------------------
-- Errors
---------------------------------------------------------------------------

function common.exit_code(err)
  if type(err) ~= "table" then return common.EXIT.internal end
  return EXIT_BY_KIND[err.kind] or common.EXIT.api
end

local function shell_word(s)
  s = tostring(s)
  if s:find("^[%w@%%+=:,./_-]+$") then return s end -- readable when it needs no quotes
  return require("maintenance_report_sandbox.shell").quote(s)
end
common.shell_word = shell_word

--- The exact command that resumes waiting for order_id with the same settings.
function common.resume_command(order_id, args)
  local words = { common.PROGRAM, "report", shell_word(order_id), "--wait" }
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

--- A hint for an error, or nil. args: the command's flags (for resume commands).
function common.hint(err, args)
  if type(err) ~= "table" then return nil end
  if err.hint then return err.hint end
  local msg = tostring(err.message or "")
  local kind = err.kind
  if err.order_outcome == "unknown" then
    return "the order may have been placed and charged: do NOT order this VIN again until you have checked "
      .. "your orders in the API marketplace console (quote the request id, if any, to the vendor)"
  end
  if kind == "pending" and err.order_id then
    return "no new order is needed; resume with: " .. common.resume_command(err.order_id, args)
  end
  if kind == "auth" then
    if msg:find("x-date", 1, true) or msg:find("date header", 1, true) or msg:find("out of date", 1, true) then
      return "the gateway rejects requests whose date is more than 15 minutes off: check the system clock "
        .. "(e.g. timedatectl status) and the time zone"
    elseif msg:find("does not match", 1, true) then
      return "the signature does not match: check the secret key ($" .. common.ENV.secret_key
        .. " or --secret-key-file) and that it belongs to the secret id"
    elseif msg:find("cannot be verified", 1, true) then
      return "the gateway does not know this secret id: check $" .. common.ENV.secret_id .. " or --secret-id"
    elseif msg:find("apikey is invalid", 1, true) then
      return "this key pair is not bound to this API: check the key in the API marketplace console"
    end
    return "check the secret id and key"
  elseif kind == "forbidden" then
    return "the key has no usage plan for this API: subscribe or bind it in the API marketplace console"
  elseif kind == "quota_exceeded" then
    return "the API quota is used up: buy more quota in the API marketplace console"
      .. (err.order_id and ("; the order exists, read it later with: " .. common.resume_command(err.order_id, args))
        or "")
  elseif kind == "rate_limited" then
    return "the gateway's rate limit was hit: wait a little and retry (batch: lower --rate)"
  elseif kind == "tls" then
    return "TLS verification failed: for a private CA pass --cafile FILE (or set $" .. common.ENV.cafile .. ")"
  elseif kind == "not_found" then
    return "the endpoint has no such API: check --endpoint / $" .. common.ENV.endpoint
      .. " (the vendor's ends in /release)"
  end
  if err.order_id then
    return "reading a report is free and never orders again: retry later with "
      .. common.resume_command(err.order_id, args) .. " (and check the order id if this persists)"
  end
  if kind == "network" then
    return "check the network connection and the endpoint (--endpoint or $" .. common.ENV.endpoint .. ")"
  elseif kind == "timeout" then
    return "the server did not answer in time: retry later or raise --timeout"
  elseif kind == "http" then
    return "the API or its gateway failed: retry later"
  end
  return nil
end

--- Prints "maintenance-report: error: …" and the hint to stderr; returns the exit code.
function common.fail(err, args)
  if type(err) == "table" then
    common.say(common.PROGRAM .. ": " .. tostring(err))
    local hint = common.hint(err, args)
    if hint then common.say("hint: " .. hint) end
    return common.exit_code(err)
  end
  common.say(common.PROGRAM .. ": " .. tostring(err))
  return common.EXIT.internal
end

---------------------------------------------------------------------------
-- Output
---------------------------------------------------------------------------

--- Writes text to args.output (replacing the file) or stdout. Returns true or nil, err.
function common.write(args, content)
  content = common.scrub(content)
  if args.output and args.output ~= "-" then
    local tmp = args.output .. ".tmp"
    local f, err = io.open(tmp, "wb")
    if not f then return nil, usage_error("cannot write " .. args.output .. ": " .. tostring(err)) end
    local ok, werr = f:write(content)
    f:close()
    if not ok then
      os.remove(tmp)
      return nil, usage_error("cannot write " .. args.output .. ": " .. tostring(werr))
    end
    local renamed, rerr = os.rename(tmp, args.output)
    if not renamed then
      os.remove(tmp)
      return nil, usage_error("cannot write " .. args.output .. ": " .. tostring(rerr))
    end
    return true
  end
  io.stdout:write(content)
  io.stdout:flush()
  return true
end

--- The report rendered in args.format.
function common.render(report, args)
  local format = args.format or "text"
  if format == "json" then
    return require("maintenance_report.render.json").report(report, { indent = "  ", raw = args.raw }) .. "\n"
  elseif format == "html" then
    return require("maintenance_report.render.html").render(report, {
      generated_at = os.date("!%Y-%m-%d %H:%M UTC"),
    })
  end
  local to_terminal = not args.output or args.output == "-"
  return require("maintenance_report.render.text").render(report, { color = to_terminal and common.color_stdout() })
end

--- Prints a report; returns the exit code (0 final, 6 pending) or the write error's.
function common.emit_report(report, args)
  local ok, err = common.write(args, common.render(report, args))
  if not ok then return common.fail(err, args) end
  if args.output and args.output ~= "-" and args.verbose then common.say("[output] wrote " .. args.output) end
  if report.status == "pending" then return common.EXIT.pending end
  return common.EXIT.ok
end

return common
