-- The API client: signing, the two endpoints, retries and the polling workflow.
local core = require "maintenance_report.core"
local errors = require "maintenance_report.errors"
local validate = require "maintenance_report.validate"
local normalize = require "maintenance_report.normalize"
local curl_transport = require "maintenance_report.transport.curl"
local ngx_transport = require "maintenance_report.transport.ngx"
local scheduler = require "maintenance_report.scheduler"

local client = {}

client.DEFAULT_ENDPOINT = "https://service-plb7hsqv-1257199080.ap-shanghai.apigateway.myqcloud.com/release"
client.ORDER_PATH = "/maintenance/order"
client.REPORT_PATH = "/maintenance_report/get"

client.DEFAULTS = {
  source = "market",
  endpoint = client.DEFAULT_ENDPOINT,
  algorithm = "hmac-sha1",
  signed_headers = "x-date x-source",
  timeout = 10,
  connect_timeout = 5,
  retries = 2,
  retry_base = 0.5,       -- seconds; full-jitter exponential backoff
  retry_max_delay = 8,
  poll_interval = 3,      -- the longest wait between two polls
  first_poll_delay = 1,   -- the first wait; later waits grow ×1.5 up to poll_interval
  max_wait = 900,
  vin_check_digit = true,
  max_body = 8 * 1024 * 1024,
  insecure = false,
  utc_offset_hours = 8,   -- for epoch-millisecond dates in reports (assumption)
}

-- Report status by detail.resultCode. 1205 and 1206 are the vendor's; 1204 is an assumption.
client.REPORT_STATUS = { [1204] = "pending", [1205] = "ready", [1206] = "no_records" }
-- data.result values that mean "still being generated" (an assumption).
client.PENDING_RESULTS = { ["0"] = true }

local OPTION_TYPES = {
  secret_id = "string", secret_key = "string", source = "string", endpoint = "string",
  algorithm = "string", signed_headers = "string", timeout = "number",
  connect_timeout = "number", retries = "number", retry_base = "number",
  retry_max_delay = "number", poll_interval = "number", first_poll_delay = "number",
  max_wait = "number", cafile = "string", capath = "string", insecure = "boolean",
  max_body = "number", vin_check_digit = "boolean", report_status = "table",
  pending_results = "table", user_agent = "string", on_event = "function",
  transport = "object", sleep = "function", now = "function", random = "function",
  utc_offset_hours = "number", max_in_flight = "number", yield = "function",
}

local ALGORITHMS = { ["hmac-sha1"] = true, ["hmac-sha256"] = true, ["hmac-sha384"] = true, ["hmac-sha512"] = true }
local SIGNED_HEADER_SETS = { ["x-date x-source"] = true, ["date source"] = true }

-- Transport failure kinds (C core or plugged transport) → error kinds.
local TRANSPORT_KINDS = {
  dns = "network", connect = "network", network = "network", out_of_memory = "network",
  tls = "tls", timeout = "timeout", too_large = "protocol",
  invalid_request = "invalid_input", invalid_url = "invalid_input",
}

local warned_insecure = false

local Client = {}
Client.__index = Client

local function check_options(opts)
  if type(opts) ~= "table" then
    error("maintenance_report.new: options must be a table, got " .. type(opts), 3)
  end
  for key, value in pairs(opts) do
    local expected = OPTION_TYPES[key]
    if expected == nil then
      error("maintenance_report.new: unknown option '" .. tostring(key) .. "'", 3)
    end
    local actual = type(value)
    local ok = actual == expected or (expected == "object" and (actual == "table" or actual == "userdata"))
    if not ok then
      error(("maintenance_report.new: option '%s' must be a %s, got %s"):format(
        key, expected == "object" and "table or userdata" or expected, actual), 3)
    end
  end
end

local function invalid(message, fields)
  return errors.new("invalid_input", message, fields)
end

local function has_control(s)
  return s:find("[%z\1-\31\127]") ~= nil
end

-- Checks option values; returns an error for the first bad one.
local function check_values(o)
  for _, key in ipairs{ "secret_id", "secret_key" } do
    if o[key] == nil or o[key] == "" then return invalid(key .. " is required", { field = key }) end
  end
  if o.secret_id:find("[%s\"\\%z\1-\31\127]") then
    return invalid("secret_id contains a space, quote, backslash or control character", { field = "secret_id" })
  end
  for _, key in ipairs{ "source", "endpoint", "cafile", "capath", "user_agent" } do
    if type(o[key]) == "string" and has_control(o[key]) then
      return invalid(key .. " contains CR, LF or another control character", { field = key })
    end
  end
  if o.source == "" then return invalid("source must not be empty", { field = "source" }) end
  if not o.endpoint:match("^https?://[^/%s]+") then
    return invalid("endpoint must be an http:// or https:// URL", { field = "endpoint" })
  end
  if not ALGORITHMS[o.algorithm] then
    return invalid("algorithm must be hmac-sha1, hmac-sha256, hmac-sha384 or hmac-sha512",
      { field = "algorithm" })
  end
  if not SIGNED_HEADER_SETS[o.signed_headers] then
    return invalid("signed_headers must be 'x-date x-source' or 'date source'", { field = "signed_headers" })
  end
  for _, key in ipairs{ "timeout", "connect_timeout", "poll_interval", "max_body" } do
    if o[key] ~= o[key] or o[key] <= 0 then return invalid(key .. " must be greater than 0", { field = key }) end
  end
  for _, key in ipairs{ "retry_base", "retry_max_delay", "first_poll_delay", "max_wait" } do
    if o[key] ~= o[key] or o[key] < 0 then return invalid(key .. " must not be negative", { field = key }) end
  end
  if o.retries < 0 or o.retries ~= math.floor(o.retries) then
    return invalid("retries must be a whole number, 0 or more", { field = "retries" })
  end
  return nil
end

--- Creates a client. Raises on unknown options or wrong types; returns nil, err for bad values.
function client.new(opts)
  check_options(opts)
  local o = {}
  for k, v in pairs(client.DEFAULTS) do o[k] = v end
  for k, v in pairs(opts) do o[k] = v end
  o.endpoint = o.endpoint:gsub("/+$", "")
  local err = check_values(o)
  if err then return nil, errors.redact(err, opts.secret_key) end
  if o.insecure and not warned_insecure then
    warned_insecure = true
    io.stderr:write("maintenance-report: WARNING: TLS certificate checks are OFF (insecure = true); ",
      "anyone on the network path can read your requests and forge answers\n")
  end
  local self = setmetatable(o, Client)
  self.report_status = o.report_status or client.REPORT_STATUS
  self.pending_results = o.pending_results or client.PENDING_RESULTS
  -- Inside nginx-lua (any phase, so a client built in init_by_lua works later in
  -- content), I/O goes through cosockets and ngx.sleep; libcurl would block the worker.
  -- now stays core.monotime: monotonic, and ngx.now() is cached per event-loop turn.
  local in_nginx = ngx_transport.available()
  self.sleep = o.sleep or (in_nginx and ngx_transport.sleep) or core.sleep
  self.now = o.now or core.monotime
  self.random = o.random or math.random
  self.transport = o.transport or (in_nginx and ngx_transport.new(o)) or curl_transport.new(o)
  self.max_in_flight = o.max_in_flight or 8
  return self
end

function Client:close()
  if self.transport.close then self.transport:close() end
end

-- ---- one HTTP exchange ------------------------------------------------

local function url_escape(s)
  return (s:gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

-- Parameters in a fixed order, as the vendor's samples send them.
local function encode_query(params)
  local out = {}
  for i = 1, #params, 2 do
    out[#out + 1] = params[i] .. "=" .. url_escape(params[i + 1] or "")
  end
  return table.concat(out, "&")
end

-- Business codes arrive as "0", 0 or 0.0; compare them as canonical strings.
local function code_string(v)
  if type(v) == "number" and v == math.floor(v) and v > -2^53 and v < 2^53 then
    return ("%d"):format(v)
  elseif type(v) == "string" then
    return v
  end
  return nil
end

function Client:_emit(event)
  if self.on_event then
    local ok = pcall(self.on_event, event)
    if not ok then self.on_event = nil end -- a broken hook must not break the call
  end
end

function Client:_fail(kind, message, fields)
  return errors.redact(errors.new(kind, message, fields), self.secret_key)
end

-- Turns a transport failure into an error; keeps whether the request may have left.
function Client:_transport_error(terr)
  local kind = TRANSPORT_KINDS[terr.kind] or "network"
  return self:_fail(kind, tostring(terr.message or terr.kind), {
    transport = terr.kind, sent = terr.sent ~= false,
    -- an oversized body comes back the same on a retry, like any other protocol error
    retryable = kind ~= "invalid_input" and kind ~= "tls" and kind ~= "protocol",
  })
end

-- Decodes an answer: the gateway's {"message"} errors, then the vendor's envelope.
function Client:_interpret(resp)
  local request_id = resp.headers and resp.headers["x-api-requestid"]
  local status = resp.status
  local decoded = type(resp.body) == "string" and core.json_decode(resp.body) or nil
  -- Scrub before cutting: a snippet can end inside an echoed key, which redaction would then miss.
  local body = errors.scrub(resp.body, self.secret_key)
  if status ~= 200 then
    local message = type(decoded) == "table" and type(decoded.message) == "string" and decoded.message or nil
    local kind = errors.gateway_kind(status, message)
    return nil, self:_fail(kind, message or ("HTTP " .. tostring(status) .. ": " .. errors.snippet(body)), {
      http_status = status, code = message, request_id = request_id,
      retryable = kind == "rate_limited" or (kind == "http" and status >= 500),
    })
  end
  if decoded == nil then
    return nil, self:_fail("protocol", "response is not JSON: " .. errors.snippet(body), {
      http_status = status, request_id = request_id, snippet = errors.snippet(body),
    })
  end
  local code = type(decoded) == "table" and code_string(decoded.code)
  if not code then
    return nil, self:_fail("protocol", "response has no business code: " .. errors.snippet(body), {
      http_status = status, request_id = request_id, snippet = errors.snippet(body),
    })
  end
  if code ~= "0" then
    local message = type(decoded.message) == "string" and decoded.message or "business error " .. code
    return nil, self:_fail("api", message, {
      http_status = status, code = code, request_id = request_id, raw = decoded,
    })
  end
  return decoded, request_id
end

-- One signed GET; returns the decoded envelope and request id, or nil, err.
-- Orders always go out on a new connection: on a reused one that dies
-- unanswered, libcurl would silently send the request again and buy twice.
function Client:_exchange(op, path, params, attempt)
  local url = self.endpoint .. path .. "?" .. encode_query(params)
  local headers, sign_err = core.sign{
    secret_id = self.secret_id, secret_key = self.secret_key, source = self.source,
    algorithm = self.algorithm, headers = self.signed_headers,
  }
  if not headers then return nil, self:_fail("invalid_input", "cannot sign the request: " .. sign_err) end
  local started = self.now()
  local resp, terr = self:_request{
    method = "GET", url = url, headers = headers,
    timeout = self.timeout, connect_timeout = self.connect_timeout, max_body = self.max_body,
    fresh_connect = op == "create_order",
  }
  local decoded, request_id, err
  if resp then
    decoded, request_id = self:_interpret(resp)
    if not decoded then err = request_id end
  else
    err = self:_transport_error(terr)
  end
  self:_emit{
    event = "http", op = op, path = path, attempt = attempt, duration = self.now() - started,
    status = resp and resp.status, request_id = (resp and resp.headers and resp.headers["x-api-requestid"]),
    error_kind = err and err.kind,
  }
  if err then return nil, err end
  return decoded, request_id
end

-- Inside a scheduler task, I/O yields to the scheduler; elsewhere it blocks.
function Client:_request(req)
  if scheduler.current() then return scheduler.request(req) end
  return self.transport:request(req)
end

function Client:_sleep(seconds)
  if scheduler.current() then return scheduler.sleep(seconds) end
  return self.sleep(seconds)
end

function Client:_backoff(attempt, op)
  local cap = math.min(self.retry_max_delay, self.retry_base * 2 ^ (attempt - 1))
  local delay = cap * self.random()
  self:_emit{ event = "retry", op = op, attempt = attempt, delay = delay }
  self:_sleep(delay)
end

-- ---- create_order -----------------------------------------------------

local ORDER_FIELDS = { vin = true, engine_number = true, plate_number = true }

local function check_call_table(name, args, allowed)
  if type(args) ~= "table" then
    error(name .. ": argument must be a table, got " .. type(args), 3)
  end
  for key in pairs(args) do
    if not allowed[key] then error(name .. ": unknown field '" .. tostring(key) .. "'", 3) end
  end
end

-- Validates an order request; returns the query parameters or nil, err.
function Client:_order_params(args)
  local vin, msg = validate.vin(args.vin, { check_digit = self.vin_check_digit })
  if not vin then return nil, self:_fail("invalid_input", msg, { field = "vin" }) end
  local engine, plate = "", ""
  if args.engine_number ~= nil and args.engine_number ~= "" then
    engine, msg = validate.engine_number(args.engine_number)
    if not engine then return nil, self:_fail("invalid_input", msg, { field = "engine_number" }) end
  end
  if args.plate_number ~= nil and args.plate_number ~= "" then
    plate, msg = validate.plate(args.plate_number)
    if not plate then return nil, self:_fail("invalid_input", msg, { field = "plate_number" }) end
  end
  return { "vin", vin, "engine_number", engine, "plate_number", plate }
end

local UNKNOWN_OUTCOME = "the order request may have reached the server, so it may have been charged; "
  .. "check your orders before buying again"

-- Whether a failed order call may have placed (and charged) an order.
local function order_may_exist(err)
  if err.transport then return err.sent end
  return err.kind == "http" or err.kind == "protocol"
end

function Client:_parse_order(decoded, request_id)
  local data = type(decoded.data) == "table" and decoded.data or nil
  local detail = data and type(data.detail) == "table" and data.detail or nil
  local order_id = detail and (type(detail.orderId) == "string" and detail.orderId
    or code_string(detail.orderId))
  if order_id == nil or order_id == "" then
    if detail and detail.resultMsg then
      return nil, self:_fail("api", tostring(detail.resultMsg), {
        code = code_string(detail.resultCode), request_id = request_id, raw = decoded,
      })
    end
    return nil, self:_fail("protocol", "order response has no data.detail.orderId; " .. UNKNOWN_OUTCOME, {
      request_id = request_id, raw = decoded, order_outcome = "unknown",
    })
  end
  return {
    order_id = order_id, code = normalize.number(detail.resultCode),
    message = detail.resultMsg, request_id = request_id, raw = decoded,
  }
end

--- Places a paid order. Retried only when the request provably never left.
function Client:create_order(args)
  check_call_table("create_order", args, ORDER_FIELDS)
  local params, err = self:_order_params(args)
  if not params then return nil, err end
  local attempt = 1
  while true do
    local decoded, request_id = self:_exchange("create_order", client.ORDER_PATH, params, attempt)
    if decoded then return self:_parse_order(decoded, request_id) end
    err = request_id
    local never_sent = err.transport and not err.sent
      and (err.transport == "dns" or err.transport == "connect")
    if never_sent and attempt <= self.retries then
      self:_backoff(attempt, "create_order")
      attempt = attempt + 1
    else
      break
    end
  end
  if order_may_exist(err) then
    err.order_outcome = "unknown"
    err.retryable = false
    err.message = err.message .. "; " .. UNKNOWN_OUTCOME
  elseif err.transport then
    err.retryable = not err.sent and err.retryable
  end
  return nil, err
end

-- ---- get_report -------------------------------------------------------

function Client:_classify(decoded, order_id, request_id)
  local data = decoded.data
  local detail = type(data) == "table" and type(data.detail) == "table" and data.detail or nil
  local pending_result = type(data) == "table" and self.pending_results[code_string(data.result) or ""]
  if not detail and not pending_result then
    return nil, self:_fail("protocol", "report response has no data.detail object", {
      order_id = order_id, request_id = request_id, raw = decoded,
    })
  end
  detail = detail or {}
  local result_code = normalize.number(detail.resultCode)
  local status = result_code and self.report_status[result_code]
  if not status and pending_result then status = "pending" end
  if not status and code_string(detail.resultCode) == nil then
    -- detail an array, resultCode missing or not a scalar: a malformed answer, not a business error
    return nil, self:_fail("protocol", "report response has no usable data.detail.resultCode", {
      order_id = order_id, request_id = request_id, raw = decoded,
    })
  end
  if not status then
    local raw_code = code_string(detail.resultCode) or code_string(data.result)
    return nil, self:_fail("api", tostring(detail.resultMsg or data.description or "unexpected report result"), {
      code = raw_code, order_id = order_id, request_id = request_id, raw = decoded,
    })
  end
  local report = normalize.report(decoded, status, order_id, { utc_offset_hours = self.utc_offset_hours })
  if report then report.request_id = request_id end
  return report
end

-- Reads one report, retrying what is safe to retry. The id is not re-validated:
-- ids the server issued must stay readable, whatever their shape.
function Client:_read_report(order_id)
  local attempt = 1
  while true do
    local decoded, request_id = self:_exchange("get_report", client.REPORT_PATH, { "order_id", order_id }, attempt)
    if decoded then return self:_classify(decoded, order_id, request_id) end
    local err = request_id
    err.order_id = order_id
    if not (err.retryable and attempt <= self.retries) then return nil, err end
    self:_backoff(attempt, "get_report")
    attempt = attempt + 1
  end
end

--- Reads a report (free, idempotent): retried on network errors, 5xx and 429.
function Client:get_report(order_id)
  if type(order_id) ~= "string" then
    error("get_report: order_id must be a string, got " .. type(order_id), 2)
  end
  local id, msg = validate.order_id(order_id)
  if not id then return nil, self:_fail("invalid_input", msg, { field = "order_id" }) end
  return self:_read_report(id)
end

-- ---- query: order, then poll ------------------------------------------

local QUERY_FIELDS = { vin = true, engine_number = true, plate_number = true, poll_interval = true, max_wait = true }

-- The next poll wait: grows gently up to poll_interval, with ±20% jitter.
function Client:_next_wait(previous, poll_interval)
  local base = previous and math.min(previous * 1.5, poll_interval) or math.min(self.first_poll_delay, poll_interval)
  return base, base * (0.8 + 0.4 * self.random())
end

-- In a user's coroutine with the `yield` option, run fn as a task and give
-- control back to the user's scheduler between steps instead of blocking.
local function in_user_coroutine()
  local co, is_main = coroutine.running()
  return co ~= nil and not is_main and not scheduler.current()
end

function Client:_cooperatively(fn)
  local handle = self:scheduler():spawn(fn)
  while true do
    self:step(0)
    if handle:done() then return handle:result() end
    self.yield()
  end
end

-- Polls until the report is final or max_wait runs out; wait_first for a fresh order.
function Client:_poll(order_id, opts, wait_first)
  local poll_interval = opts.poll_interval or self.poll_interval
  local max_wait = opts.max_wait or self.max_wait
  local deadline = self.now() + max_wait
  local base
  local waiting = wait_first
  while true do
    if waiting then
      local delay
      base, delay = self:_next_wait(base, poll_interval)
      self:_sleep(math.max(0, math.min(delay, deadline - self.now())))
    end
    waiting = true
    local report, err = self:_read_report(order_id)
    if not report then return nil, err end
    self:_emit{ event = "poll", order_id = order_id, status = report.status }
    if report.status ~= "pending" then return report end
    if self.now() >= deadline then
      local message = "report still pending after %gs; resume with wait_report('%s'), no new order needed"
      return nil, self:_fail("pending", message:format(max_wait, order_id),
        { order_id = order_id, retryable = true, code = report.code })
    end
  end
end

--- Polls an existing order until its report is final or max_wait runs out.
function Client:wait_report(order_id, opts)
  if type(order_id) ~= "string" then
    error("wait_report: order_id must be a string, got " .. type(order_id), 2)
  end
  local id, msg = validate.order_id(order_id)
  if not id then return nil, self:_fail("invalid_input", msg, { field = "order_id" }) end
  if self.yield and in_user_coroutine() then
    return self:_cooperatively(function() return self:_poll(id, opts or {}) end)
  end
  return self:_poll(id, opts or {})
end

--- Orders a report and waits for it. On a deadline, err.kind == "pending" and err.order_id resumes it.
function Client:query(args)
  check_call_table("query", args, QUERY_FIELDS)
  if self.yield and in_user_coroutine() then
    return self:_cooperatively(function() return self:query(args) end)
  end
  for _, key in ipairs{ "poll_interval", "max_wait" } do
    if args[key] ~= nil and (type(args[key]) ~= "number" or args[key] < 0) then
      error("query: " .. key .. " must be a non-negative number", 2)
    end
  end
  local order, err = self:create_order{
    vin = args.vin, engine_number = args.engine_number, plate_number = args.plate_number,
  }
  if not order then return nil, err end
  return self:_poll(order.order_id, args, true) -- a fresh order is never ready at once
end

-- ---- non-blocking API: handles advanced by client:step ---------------------

--- The client's scheduler (created on first use), shared by every handle.
function Client:scheduler()
  if not self._scheduler then
    if not self.transport.submit then
      error("this transport has no submit/perform; start_query and step need one that has", 2)
    end
    self._scheduler = scheduler.new{ transport = self.transport, now = self.now, sleep = self.sleep,
      max_in_flight = self.max_in_flight }
  end
  return self._scheduler
end

local START_QUERY_FIELDS = { on_done = true }
for k in pairs(QUERY_FIELDS) do START_QUERY_FIELDS[k] = true end

--- Starts a query and returns a handle at once; client:step() advances it.
--- handle:done(), handle:result() → report | nil, err; args.on_done(handle) when it ends.
function Client:start_query(args)
  check_call_table("start_query", args, START_QUERY_FIELDS)
  if args.on_done ~= nil and type(args.on_done) ~= "function" then
    error("start_query: on_done must be a function", 2)
  end
  local query_args = {}
  for k, v in pairs(args) do
    if k ~= "on_done" then query_args[k] = v end
  end
  return self:scheduler():spawn(function() return self:query(query_args) end, args.on_done)
end

--- Starts polling an existing order (see wait_report) and returns a handle at once.
function Client:start_report(order_id, opts)
  if type(order_id) ~= "string" then
    error("start_report: order_id must be a string, got " .. type(order_id), 2)
  end
  opts = opts or {}
  return self:scheduler():spawn(function() return self:wait_report(order_id, opts) end, opts.on_done)
end

--- Advances all started work, waiting at most timeout seconds (0: just poll).
--- Returns how many handles are still running.
function Client:step(timeout)
  if type(timeout) ~= "nil" and type(timeout) ~= "number" then
    error("step: timeout must be a number of seconds", 2)
  end
  return self:scheduler():step(timeout or 0)
end

return client
