-- What the CLI tells the user after an error: one line with the error, then a
-- hint that says what to do next (and, when money is at stake, what NOT to
-- do), then the exit code.
local config = require "maintenance_report.cli.config"
local exit = require "maintenance_report.cli.exit"
local output = require "maintenance_report.cli.output"
local terminal = require "maintenance_report.cli.terminal"

local hints = {}

local classify = require "maintenance_report.classify"
local gateway = require "maintenance_report.gateway"

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
  add("--poll-interval", args.poll_interval)
  return table.concat(words, " ")
end
local resume_command = hints.resume_command

local KEY_FLAGS = "$" .. ENV.secret_key .. " or --secret-key-file"

-- One line per published gateway text (classify.GATEWAY_TEXTS ids): what to check.
hints.GATEWAY = {
  xdate_skew = "the gateway refuses an X-Date more than 15 minutes off its clock: fix the system clock "
    .. "(timedatectl status; enable NTP), or sign with clock_offset = \"auto\"",
  xdate_required = "the gateway got no valid X-Date header: a proxy may have dropped it; compare with "
    .. "`" .. output.PROGRAM .. " sign --verbose`",
  date_required = "the gateway got neither Date nor X-Date: a proxy may have dropped them; compare with "
    .. "`" .. output.PROGRAM .. " sign --verbose`",
  auth_header_required = "the gateway got no Authorization header: check any proxy on the way",
  header_required = "a signed header did not arrive: check --source ($" .. ENV.source
    .. ") and any proxy between here and the gateway",
  cannot_verify = "the gateway does not know this secret id, or it is not bound to this API: check $"
    .. ENV.secret_id .. " or --secret-id, and its binding in the API marketplace console",
  mismatch = "the signature does not match: check the secret key (" .. KEY_FLAGS .. ") belongs to the "
    .. "secret id, the auth mode (--auth key or app) and that the system clock is right",
  apikey_invalid = "this key pair is not bound to this API: bind it in the API marketplace console",
  id_or_signature_missing = "the Authorization header arrived without id or signature: a proxy may "
    .. "have changed it; compare with `" .. output.PROGRAM .. " sign --verbose`",
  multiple_header = "a signed header arrived twice (a proxy may add its own Date or X-Date): send each once",
  algorithm = "the gateway does not support this HMAC algorithm: use hmac-sha1 or hmac-sha256",
  format = "the Authorization header arrived malformed: check any proxy on the way; compare with `"
    .. output.PROGRAM .. " sign --verbose`",
  headers_invalid = "the headers= list of the Authorization header is not valid for the gateway: use the "
    .. "default signed headers",
  oauth = "this API uses OAuth, not key-pair signing: this client cannot call it",
  no_usage_plan = "the key has no usage plan for this API: subscribe or bind it in the API marketplace console",
  client_ip = "the gateway cannot see the client's IP address: call it over TCP, not a unix socket",
  ip_denied = "the API's IP allowlist refuses this machine's address: ask the provider to allow it",
  params_fail = "the API expects a parameter this client does not send: check that --endpoint is this "
    .. "vendor's API",
  header_param = "the API expects a header this client does not send: check that --endpoint is this "
    .. "vendor's API",
  path_param = "the API expects a path variable: check that --endpoint is this vendor's API",
  query_param = "the API expects a query parameter this client does not send: check --endpoint",
  body_param = "the API expects a body parameter: check that --endpoint is this vendor's API",
  form_content_type = "the API expects a form body: check that --endpoint is this vendor's API",
  no_micro_service = "the gateway has no such service: check --endpoint / $" .. ENV.endpoint,
  no_host = "the gateway does not serve this host name: check --endpoint / $" .. ENV.endpoint,
  get_host_fail = "the gateway could not read the host name: check --endpoint / $" .. ENV.endpoint,
  method_unsupported = "the API does not take this HTTP method: check that --endpoint is this vendor's API",
  no_api = "the gateway has no API here: check --endpoint / $" .. ENV.endpoint .. " (the vendor's ends in /release)",
  no_match_host = "no API on this host name: check --endpoint / $" .. ENV.endpoint,
  no_match_env = "no API in this environment: the endpoint should end in /release (or /test, /prepub)",
  no_match_default_env = "no API in the default environment: the endpoint should end in /release",
  no_match_uri = "the endpoint has no such API: check --endpoint / $" .. ENV.endpoint
    .. " (the vendor's ends in /release)",
  no_match_method = "the API does not take this HTTP method: check that --endpoint is this vendor's API",
  method_not_allowed = "the API does not take this HTTP method: check that --endpoint is this vendor's API",
  https_not_allowed = "this API is published for HTTP only: use an http:// endpoint",
  http_not_allowed = "this API is published for HTTPS only: use an https:// endpoint",
  rate_limit = "the gateway's rate limit was hit: wait a little and retry (batch: lower --rate)",
  quota = "the API quota is used up: buy more quota in the API marketplace console",
  cors = "the API refuses cross-origin calls: call it from a server, not a browser page",
  api_config = "the API's gateway configuration is broken: nothing was ordered; tell the API provider",
  tsf_config = "the API's gateway configuration is broken: nothing was ordered; tell the API provider",
  mock_config = "the API's gateway configuration is broken: nothing was ordered; tell the API provider",
  cors_config = "the API's gateway configuration is broken: nothing was ordered; tell the API provider",
  client_closed = "the gateway saw this side close the connection: check the network and --timeout",
  query_params_error = "the gateway failed reading the parameters: retry later; tell the provider if it persists",
  internal_error = "the API or its gateway failed: retry later",
  bad_gateway = "the vendor's backend refused or is overloaded: retry later",
  gateway_timeout = "the vendor's backend timed out: retry later",
}

--- The hint for a TLS failure, by its cause: a certificate that names another
--- host, https to a port that speaks plain HTTP, or an unknown CA.
function hints.tls(err, args)
  local msg = tostring(err.message or ""):lower()
  local cafile = (args and args.cafile) or os.getenv(ENV.cafile)
  if msg:find("subject name", 1, true) or msg:find("does not match target host", 1, true)
    or msg:find("hostname mismatch", 1, true) or msg:find("host name mismatch", 1, true) then
    return "the server's certificate does not name the host in --endpoint: use the host name it was issued "
      .. "for" .. (cafile and (" (the CA in " .. cafile .. " is not the problem)") or "")
  end
  if msg:find("wrong version number", 1, true) or msg:find("packet length too long", 1, true)
    or msg:find("record layer failure", 1, true) or msg:find("http request", 1, true) then
    return "the port does not speak TLS (plain HTTP?): use an http:// endpoint, or the server's TLS port"
  end
  if cafile then
    return "TLS verification failed: the certificate is not signed by the CA in " .. cafile
      .. " (or has expired): check the file, or pass the right --cafile"
  end
  return "TLS verification failed: for a private CA pass --cafile FILE (or set $" .. ENV.cafile .. ")"
end

--- A hint for an error, or nil. args: the command's flags (for resume commands).
function hints.hint(err, args)
  if type(err) ~= "table" then return nil end
  if err.hint then return err.hint end
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
  -- an error made elsewhere (a plugged transport, an older caller) may carry only the text
  local text_id = err.gateway_text or (err.http_status and (classify.gateway_text(err.code)
    or classify.gateway_text(err.message)) or {}).id
  local text = text_id and hints.GATEWAY[text_id]
  -- a failed read of an existing order: the free resume command below says more than the text
  if text and not (err.order_id and (kind == "http" or kind == "network")) then
    if text_id == "xdate_skew" and err.clock_skew then
      return text .. " (measured: " .. gateway.describe_skew(err.clock_skew) .. ")"
    end
    if kind == "quota_exceeded" and err.order_id then
      return text .. "; the order exists, read it later with: " .. resume_command(err.order_id, args)
    end
    return text
  end
  if kind == "auth" then
    return "check the secret id and key"
  elseif kind == "forbidden" then
    return hints.GATEWAY.no_usage_plan
  elseif kind == "rate_limited" then
    return hints.GATEWAY.rate_limit
  elseif kind == "tls" then
    return hints.tls(err, args)
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
