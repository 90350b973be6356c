-- The API client: signing, the two endpoints, retries and the polling workflow.
local core = require "maintenance_report.core"
local defaults = require "maintenance_report.defaults"
local classify = require "maintenance_report.classify"
local options = require "maintenance_report.options"
local backoff = require "maintenance_report.backoff"
local errors = require "maintenance_report.errors"
local ledger_mod = require "maintenance_report.ledger"
local analysis = require "maintenance_report.analysis"
local validate = require "maintenance_report.validate"
local normalize = require "maintenance_report.normalize"
local curl_transport = require "maintenance_report.transport.curl"
local ngx_transport = require "maintenance_report.transport.ngx"
local scheduler = require "maintenance_report.scheduler"
local gateway = require "maintenance_report.gateway"

local client = {}

client.DEFAULT_ENDPOINT = defaults.ENDPOINT
client.ORDER_PATH = defaults.ORDER_PATH
client.REPORT_PATH = defaults.REPORT_PATH
client.DEFAULTS = defaults.CLIENT
client.REPORT_STATUS = defaults.REPORT_STATUS
client.PENDING_RESULTS = defaults.PENDING_RESULTS

local number = options.number

local ALGORITHMS = { ["hmac-sha1"] = true, ["hmac-sha256"] = true, ["hmac-sha384"] = true, ["hmac-sha512"] = true }
local SIGNED_HEADER_SETS = { ["x-date x-source"] = true, ["date source"] = true }

local function has_control(s)
  return s:find("[%z\1-\31\127]") ~= nil
end

local function no_control(value)
  if has_control(value) then return "contains CR, LF or another control character" end
end

-- The polling options, shared by mr.new and the per-call options: a poll
-- interval of 0 would read the report in a tight loop after a paid order.
local POLL_RULES = {
  poll_interval = number(0.05, 3600),
  max_wait = number(0, 7 * 86400),
}

local OPTION_RULES = {
  secret_id = { type = "string", check = function(v)
    if v:find("[%s\"\\%z\1-\31\127]") then return "contains a space, quote, backslash or control character" end
  end },
  secret_key = { type = "string" },
  source = { type = "string", check = function(v)
    local ok, msg = validate.source(v)
    if not ok then return (msg:gsub("^source ", "")) end
  end },
  endpoint = { type = "string", check = function(v)
    if has_control(v) then return "contains CR, LF or another control character" end
    if not v:match("^https?://[^/%s]+") then return "must be an http:// or https:// URL" end
  end },
  algorithm = { type = "string", check = function(v)
    if not ALGORITHMS[v] then return "must be hmac-sha1, hmac-sha256, hmac-sha384 or hmac-sha512" end
  end },
  signed_headers = { type = "string", check = function(v)
    if not SIGNED_HEADER_SETS[v] then return "must be 'x-date x-source' or 'date source'" end
  end },
  timeout = number(0.01, 3600),
  connect_timeout = number(0.01, 600),
  retries = number(0, 10, true),
  retry_base = number(0, 60),
  retry_max_delay = number(0, 3600),
  poll_interval = POLL_RULES.poll_interval,
  first_poll_delay = number(0.01, 3600),
  poll_growth = number(0, 10),
  max_wait = POLL_RULES.max_wait,
  -- below 16 KiB an order answer could be cut, and every order would end "unknown"
  max_body = number(16384, 1024 * 1024 * 1024, true),
  max_in_flight = number(1, 100000, true),
  -- CPU seconds one step/socket_action may spend resuming tasks (scheduler.BUDGET)
  step_budget = number(0, 1),
  -- the normalizer takes zones in quarter hours; anything else would raise after a paid order
  utc_offset_hours = { type = "number", min = -12, max = 14, check = function(v)
    if (v * 4.0) % 1 ~= 0 then return "must be in steps of 0.25 hours (such as 5.5 or 5.75)" end
  end },
  cafile = { type = "string", check = no_control },
  capath = { type = "string", check = no_control },
  user_agent = { type = "string", check = no_control },
  insecure = { type = "boolean" },
  vin_check_digit = { type = "boolean" },
  report_status = { type = "table" },
  pending_results = { type = "table" },
  on_event = { type = "function" },
  transport = { type = "object" },
  sleep = { type = "function" },
  now = { type = "function" },
  random = { type = "function" },
  yield = { type = "function" },
  ledger = { type = "table" },
  rate_limit = { type = "table" },
  reuse = number(0, 1e12),
  ledger_wait = number(0, 7 * 86400),
}

for k, v in pairs(gateway.OPTION_RULES) do OPTION_RULES[k] = v end

local warned_insecure = false

local Client = {}
Client.__index = Client

-- client → its private state: the validated options, the signer, the
-- transport. Weak keys, so a dropped client is collected; nothing outside
-- this file can reach it.
local state_of = setmetatable({}, { __mode = "k" })

local function invalid(message, fields)
  return errors.new("invalid_input", message, fields)
end

-- A user's clock or random hook that returns garbage would surface later,
-- possibly after a paid order; it is checked once here instead.
local function check_hook(name, fn, low, high)
  local ok, value = pcall(fn)
  if not ok then error(("maintenance_report.new: option '%s' raised: %s"):format(name, tostring(value)), 4) end
  if type(value) ~= "number" or value ~= value or value < low or value > high then
    error(("maintenance_report.new: option '%s' must return a finite number, got %s"):format(
      name, tostring(value)), 4)
  end
end

--- Creates a client. Raises on unknown options or wrong types; returns nil, err for bad values.
function client.new(opts)
  local ok, err = options.check("maintenance_report.new", opts, OPTION_RULES, 2)
  if not ok then return nil, errors.redact(err, opts.secret_key) end
  for _, key in ipairs{ "secret_id", "secret_key" } do
    if opts[key] == nil or opts[key] == "" then return nil, invalid(key .. " is required", { field = key }) end
  end
  if opts.now then check_hook("now", opts.now, -math.huge, math.huge) end
  if opts.random then check_hook("random", opts.random, 0, 1) end
  local o = {}
  for k, v in pairs(client.DEFAULTS) do o[k] = v end
  for k, v in pairs(opts) do o[k] = v end
  o.endpoint = o.endpoint:gsub("/+$", "")
  local signer, sign_err = core.signer{
    secret_id = o.secret_id, secret_key = o.secret_key, source = o.source,
    algorithm = o.algorithm, headers = o.signed_headers,
  }
  if not signer then
    return nil, errors.redact(invalid("cannot sign requests: " .. tostring(sign_err)), o.secret_key)
  end
  o.secret_key = nil -- from here on only the signer holds it
  local gw, gw_err = gateway.new(o, signer)
  if not gw then
    signer:close()
    return nil, invalid(gw_err, { field = "algorithm" })
  end
  if o.insecure and not warned_insecure then
    warned_insecure = true
    io.stderr:write("maintenance-report: WARNING: TLS certificate checks are OFF (insecure = true); ",
      "anyone on the network path can read your requests and forge answers\n")
  end
  o.report_status = o.report_status or client.REPORT_STATUS
  o.pending_results = o.pending_results or client.PENDING_RESULTS
  -- Inside nginx-lua (any phase, so a client built in init_by_lua works later in
  -- content), I/O goes through cosockets and ngx.sleep; libcurl would block the worker.
  -- now stays core.monotime: monotonic, and ngx.now() is cached per event-loop turn.
  local in_nginx = ngx_transport.available()
  o.sleep = o.sleep or (in_nginx and ngx_transport.sleep) or core.sleep
  o.now = o.now or core.monotime
  o.random = o.random or math.random
  o.transport = o.transport or (in_nginx and ngx_transport.new(o)) or curl_transport.new(o)
  -- Buy-once within this client at least; share a file or shm ledger to go wider.
  o.ledger = o.ledger or ledger_mod.memory()
  o.reuse = o.reuse or 0
  o.ledger_wait = o.ledger_wait or o.max_wait
  local self = setmetatable({}, Client)
  state_of[self] = { o = o, signer = signer, gateway = gw, scrub = function(s) return signer:scrub(s) end }
  return self
end

--- The client's order ledger (list, get, forget, stats: see maintenance_report.ledger).
function Client:ledger()
  return state_of[self].o.ledger
end

--- A copy of the client's settings (defaults applied), without the secret key.
function Client:settings()
  local copy = {}
  for k, v in pairs(state_of[self].o) do copy[k] = v end
  return copy
end

function Client:close()
  local st = state_of[self]
  if st.o.transport.close then st.o.transport:close() end
  st.signer:close()
end

-- ---- one HTTP exchange ------------------------------------------------

local function url_escape(s)
  if not s:find("[^%w%-%._~]") then return s end -- an order id, a VIN: nothing to escape
  return (s:gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

-- Parameters in a fixed order, as the vendor's samples send them.
local function encode_query(params)
  if #params == 2 then return params[1] .. "=" .. url_escape(params[2] or "") end -- get_report's one
  local out = {}
  for i = 1, #params, 2 do
    out[#out + 1] = params[i] .. "=" .. url_escape(params[i + 1] or "")
  end
  return table.concat(out, "&")
end

local code_string = classify.code_string
local json_decode = core.json_decode
-- normalize.report without its opts table: utc_offset_hours was checked by client.new
local normalize_report = core.normalize_report

local function emit(st, event)
  if st.o.on_event then
    local ok = pcall(st.o.on_event, event)
    if not ok then st.o.on_event = nil end -- a broken hook must not break the call
  end
end

local function fail(st, kind, message, fields)
  return errors.redact(errors.new(kind, message, fields), st.scrub)
end

-- Decodes an answer: the gateway's {"message"} errors, then the vendor's envelope.
-- Returns the decoded envelope, or nil, err.
--
-- The body is scrubbed of the secret only on the paths that quote it (the
-- snippets below). That is all of its text that reaches an error: every other
-- error value, the decoded body as `raw` included, goes through fail(), whose
-- errors.redact scrubs each string in it. A successful answer is not quoted
-- anywhere by the client; what it returns is the vendor's data, which it never
-- scrubbed (a secret echoed in a 200 report would be the vendor's doing, and
-- scrubbing its text here would not reach the decoded table either).
local function interpret(st, resp)
  local request_id = resp.headers and resp.headers["x-api-requestid"]
  local status = resp.status
  -- json.decode's error is not needed: an answer that is not JSON is quoted below
  local decoded = type(resp.body) == "string" and json_decode(resp.body) or nil
  local kind, code, message
  if status == 200 and decoded ~= nil then
    kind, code, message = classify.envelope(decoded)
    if kind == nil then return decoded, nil, request_id end -- the success path: nothing quoted
  end
  -- Scrub before cutting: a snippet can end inside an echoed key, which redaction would then miss.
  if status ~= 200 then
    local gateway_message = type(decoded) == "table" and type(decoded.message) == "string" and decoded.message or nil
    local http_kind, retryable, text = classify.http(status, gateway_message)
    return nil, fail(st, http_kind,
      gateway_message or ("HTTP " .. tostring(status) .. ": " .. errors.snippet(st.scrub(resp.body))), {
        http_status = status, code = gateway_message, request_id = request_id, retryable = retryable,
        gateway_text = text and text.id,
      })
  end
  if decoded == nil then
    local scrubbed = st.scrub(resp.body)
    return nil, fail(st, "protocol", "response is not JSON: " .. errors.snippet(scrubbed), {
      http_status = status, request_id = request_id, snippet = errors.snippet(scrubbed),
    })
  end
  if kind == "protocol" then
    local scrubbed = st.scrub(resp.body)
    return nil, fail(st, "protocol", "response has no business code: " .. errors.snippet(scrubbed), {
      http_status = status, request_id = request_id, snippet = errors.snippet(scrubbed),
    })
  elseif kind then
    return nil, fail(st, kind, message, { http_status = status, code = code, request_id = request_id, raw = decoded })
  end
  return decoded, nil, request_id
end

-- Inside a task of this client's scheduler, I/O yields to it; anywhere else
-- (including another client's task) it blocks on this client's own transport.
-- hooks (a paid order's, optional): hooks.slot() once a transport slot is free
-- (in a task, when the scheduler hands the request over), hooks.send() at the
-- last moment before the first byte: called by a transport that says it can
-- (transport.before_send), else right after slot(). Either may refuse with
-- nil, err: then nothing is sent.
local function request(st, req, hooks)
  local on_slot
  if hooks then
    if st.o.transport.before_send then
      req.before_send = hooks.send
      on_slot = hooks.slot
    else
      on_slot = function()
        local ok, err = hooks.slot()
        if not ok then return nil, err end
        return hooks.send()
      end
    end
  end
  local sched = st.scheduler
  if sched and sched:running() then return sched:request(req, on_slot) end
  if on_slot then
    local ok, err = on_slot()
    if not ok then return nil, { not_sent_because = err, request_bytes = 0 } end
  end
  return st.o.transport:request(req)
end

local function sleep(st, seconds)
  local sched = st.scheduler
  if sched and sched:running() then return sched:sleep(seconds) end
  return st.o.sleep(seconds)
end

-- In a scheduler task, the heavy steps of a report (decode, normalize, the ledger's
-- copy) may land in different calls of the host's loop; elsewhere a no-op.
local function checkpoint(st)
  local sched = st.scheduler
  if sched and sched:running() then sched:checkpoint() end
end

-- checkpoint(st) as a function, made once per client: the analysis pauses at it between its parts.
local function pauser_of(st)
  local fn = st.pauser
  if not fn then
    fn = function() return checkpoint(st) end
    st.pauser = fn
  end
  return fn
end

-- sleep(st, seconds) as a function of seconds, made once per client: every request passes it on.
local function sleeper_of(st)
  local fn = st.sleeper
  if not fn then
    fn = function(s) return sleep(st, s) end
    st.sleeper = fn
  end
  return fn
end

-- One signed GET. Returns the decoded envelope, nil, the request id; or nil, err.
-- Orders always go out on a new connection: on a reused one that dies
-- unanswered, libcurl would silently send the request again and buy twice.
local function exchange(st, op, path, params, attempt, hooks)
  local o = st.o
  if o.rate_limit then
    -- before signing: a wait here must not age the x-date header
    local waited, rerr = o.rate_limit:acquire(sleeper_of(st))
    if not waited then
      emit(st, { event = "http", op = op, path = path, attempt = attempt, duration = 0, error_kind = rerr.kind })
      return nil, fail(st, rerr.kind, rerr.message, { sent = false, retryable = true })
    end
    if waited > 0 then emit(st, { event = "rate_limit", op = op, waited = waited }) end
  end
  local url = o.endpoint .. path .. "?" .. encode_query(params)
  local started = o.now()
  local gw = st.gateway
  gw:pace(sleeper_of(st), o.now)
  local headers, sts = gw:sign(path, params)
  local resp, terr = request(st, {
    method = "GET", url = url, headers = headers,
    timeout = o.timeout, connect_timeout = o.connect_timeout, max_body = o.max_body,
    fresh_connect = op == "create_order",
  }, hooks)
  local decoded, err, request_id
  local rate_limit = gw:observe(resp)
  if resp then
    decoded, err, request_id = interpret(st, resp)
    if err then gateway.explain(gw, err, sts, rate_limit) end
  elseif type(terr) == "table" and terr.not_sent_because ~= nil then
    -- before_send refused (the ledger could not record the intent): nothing was written
    err = terr.not_sent_because
    if not errors.is(err) then
      err = fail(st, "ledger", "the order's intent could not be recorded: " .. tostring(err),
        { order_outcome = "not_placed" })
    end
  else
    local t = classify.transport(terr)
    err = fail(st, t.kind, t.message, {
      transport = t.transport, sent = t.sent, retryable = t.retryable, curl_code = t.curl_code,
    })
  end
  if o.on_event then -- the event table only for a listener: this is every request's path
    emit(st, {
      event = "http", op = op, path = path, attempt = attempt, duration = o.now() - started,
      status = resp and resp.status, request_id = resp and resp.headers and resp.headers["x-api-requestid"],
      error_kind = err and err.kind, rate_limit = rate_limit, clock_skew = resp and gw.skew,
    })
  end
  if err then return nil, err end
  return decoded, nil, request_id
end

local function wait_before_retry(st, attempt, op)
  local o = st.o
  local delay = backoff.delay(attempt, o.retry_base, o.retry_max_delay, o.random)
  emit(st, { event = "retry", op = op, attempt = attempt, delay = delay })
  sleep(st, delay)
end

-- ---- create_order -----------------------------------------------------

local ORDER_FIELDS = {
  vin = { type = "string" }, engine_number = { type = "string" }, plate_number = { type = "string" },
  -- whose spend budget the order draws on (a ledger budget's tenant_day / tenant_month)
  tenant = { type = "string" },
}

-- Validates an order request; returns the query parameters or nil, err.
local function order_params(st, args)
  local vin, msg = validate.vin(args.vin, { check_digit = st.o.vin_check_digit })
  if not vin then return nil, fail(st, "invalid_input", msg, { field = "vin" }) end
  local engine, plate = "", ""
  if args.engine_number ~= nil and args.engine_number ~= "" then
    engine, msg = validate.engine_number(args.engine_number)
    if not engine then return nil, fail(st, "invalid_input", msg, { field = "engine_number" }) end
  end
  if args.plate_number ~= nil and args.plate_number ~= "" then
    plate, msg = validate.plate(args.plate_number)
    if not plate then return nil, fail(st, "invalid_input", msg, { field = "plate_number" }) end
  end
  return { "vin", vin, "engine_number", engine, "plate_number", plate }
end

local UNKNOWN_OUTCOME = "the order request may have reached the server, so it may have been charged; "
  .. "check your orders before buying again"

local function parse_order(st, decoded, request_id)
  local data = type(decoded.data) == "table" and decoded.data or nil
  local detail = data and type(data.detail) == "table" and data.detail or nil
  local order_id = detail and (type(detail.orderId) == "string" and detail.orderId
    or code_string(detail.orderId))
  if order_id == nil or order_id == "" then
    if detail and detail.resultMsg then
      return nil, fail(st, "api", tostring(detail.resultMsg), {
        code = code_string(detail.resultCode), request_id = request_id, raw = decoded,
      })
    end
    return nil, fail(st, "protocol", "order response has no data.detail.orderId", {
      request_id = request_id, raw = decoded,
    })
  end
  return {
    order_id = order_id, code = normalize.number(detail.resultCode),
    message = detail.resultMsg, request_id = request_id, raw = decoded,
  }
end

-- Marks a failed order with its outcome (classify.order_outcome); an order that
-- may have been placed is never retried here, whatever its kind.
local function order_failure(err)
  err.order_outcome = classify.order_outcome(err)
  if err.order_outcome == "unknown" then
    err.retryable = false
    err.message = err.message .. "; " .. UNKNOWN_OUTCOME
  elseif err.transport then
    err.retryable = classify.order_retryable(err)
  end
  return nil, err
end

local function create_order(st, params, hooks)
  local attempt = 1
  while true do
    local decoded, err, request_id = exchange(st, "create_order", defaults.ORDER_PATH, params, attempt,
      hooks)
    if decoded then
      local order
      order, err = parse_order(st, decoded, request_id)
      if order then return order end
      return order_failure(err)
    end
    -- a refusal before sending (the ledger, its store, a budget) comes with its outcome decided
    if err.order_outcome then return nil, err end
    if not (classify.order_retryable(err) and attempt <= st.o.retries) then return order_failure(err) end
    wait_before_retry(st, attempt, "create_order")
    attempt = attempt + 1
  end
end

-- ---- the ledger: one record of every paid order -------------------------

local function fields_of(params)
  return { vin = params[2], engine_number = params[4], plate_number = params[6] }
end

local function ledger_failure(st, err, extra)
  if not errors.is(err) then
    err = errors.new("ledger", tostring(err and err.message or err), { key = err and err.key })
  end
  for k, v in pairs(extra or {}) do err[k] = v end
  return nil, errors.redact(err, st.scrub)
end

-- What the ledger knows of an earlier order whose outcome is unknown.
local function unknown_outcome(st, entry)
  local reason = type(entry.reason) == "table" and entry.reason or {}
  local when = entry.updated_at and os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(entry.updated_at)) or "?"
  return nil, fail(st, "unknown_outcome", ("an earlier order for %s may have been charged (%s, %s%s); "
    .. "check your orders, then pass retry_unknown = true to order again"):format(
    entry.vin, when, tostring(reason.message or reason.kind or "no answer"),
    entry.request_id and (", request " .. entry.request_id) or ""), {
    vin = entry.vin, request_id = entry.request_id, reason = reason, at = entry.updated_at,
    order_outcome = "unknown", order_id = entry.order_id,
  })
end

local BEGIN_KEYS = { "reuse", "retry_unknown", "fresh", "tenant" }

-- The ledger's decision for a validated order; waits cooperatively for another holder.
local function begin(st, params, args)
  local opts = { reuse = st.o.reuse, wait = st.o.ledger_wait, sleep = sleeper_of(st) }
  for _, k in ipairs(BEGIN_KEYS) do
    if args[k] ~= nil then opts[k] = args[k] end
  end
  local decision, err = st.o.ledger:begin(fields_of(params), opts)
  emit(st, { event = "ledger", action = decision and decision.action, vin = params[2],
    error_kind = err and err.kind, joined = decision and decision.joined,
    taken_over = decision and decision.taken_over })
  if not decision then return ledger_failure(st, err) end
  return decision
end

-- Places the order under an "order" claim: the intent is recorded durably once
-- a transport slot is free, armed at the last moment before the request's first
-- byte (once the connection stands), the order id the moment it arrives, and a
-- failure as unknown or not placed.
local function place(st, params, claim)
  local intent_written = false
  local function refused(err)
    local _, lerr = ledger_failure(st, err, { order_outcome = "not_placed" })
    return nil, lerr
  end
  local function record_intent()
    if intent_written then return true end
    local ok, err = claim:intent()
    if not ok then return refused(err) end
    intent_written = true
    return true
  end
  local function arm()
    local ok, err = claim:arm()
    if not ok then return refused(err) end
    return true
  end
  local order, err = create_order(st, params, { slot = record_intent, send = arm })
  emit(st, { event = "order", vin = params[2], outcome = order and "placed" or err.order_outcome,
    order_id = order and order.order_id, error_kind = err and err.kind })
  if order then
    local ok, lerr = claim:placed(order.order_id, order.request_id)
    if not ok then
      -- The order exists and its id must not be lost: it is in the error.
      return ledger_failure(st, lerr, { order_id = order.order_id, request_id = order.request_id,
        message = ("order %s was placed, but the ledger could not record it (%s); "
          .. "resume it with wait_report, no new order needed"):format(order.order_id, tostring(lerr.message)) })
    end
    return order
  end
  if err.order_outcome == "unknown" then
    -- Unknown stays unknown everywhere: recorded even when the failure came
    -- before the transport asked for the intent or its arming.
    if (intent_written or record_intent()) and arm() then claim:unknown(err) end
  elseif intent_written then
    claim:not_placed(err)
  end
  return nil, err
end

-- A report from the ledger, marked as reused (nothing was bought for it).
local function reused_report(entry)
  local report = entry.report or {}
  report.reused = true
  report.order_id = report.order_id or entry.order_id
  report.ordered_at = entry.placed_at
  return report
end

local ORDER_RULES = { retry_unknown = { type = "boolean" } }
for k, v in pairs(ORDER_FIELDS) do ORDER_RULES[k] = v end

-- The order the ledger already has for the vehicle: no new charge.
local function existing_order(entry)
  return { order_id = entry.order_id, request_id = entry.request_id, existing = true }
end

--- Places a paid order, through the ledger: a vehicle with an order already
--- placed gets that order back (order.existing = true), not a second charge.
--- Retried only when the request provably never left. On failure
--- err.order_outcome is "not_placed" or "unknown".
function Client:create_order(args)
  local ok, err = options.check("create_order", args, ORDER_RULES, 2)
  if not ok then return nil, err end
  local st = state_of[self]
  local params
  params, err = order_params(st, args)
  if not params then return nil, err end
  local decision
  decision, err = begin(st, params, { retry_unknown = args.retry_unknown, reuse = 0, tenant = args.tenant })
  if not decision then return nil, err end
  if decision.action == "unknown" then return unknown_outcome(st, decision.entry) end
  if decision.action ~= "order" then
    -- poll: placed and not final; reuse: another call's order, finished while this one waited
    if decision.claim then decision.claim:release() end
    return existing_order(decision.entry)
  end
  local claim = decision.claim
  local done, order
  done, order, err = pcall(place, st, params, claim)
  claim:release()
  if not done then error(order, 0) end
  return order, err
end

-- ---- get_report -------------------------------------------------------

local function report_of(st, decoded, order_id, request_id)
  local o = st.o
  local status, kind, code = classify.report_status(decoded, o.report_status, o.pending_results)
  if kind == "protocol" then
    return nil, fail(st, "protocol", "report response has no usable data.detail", {
      order_id = order_id, request_id = request_id, raw = decoded,
    })
  elseif kind then
    local data = decoded.data
    local detail = type(data.detail) == "table" and data.detail or {}
    return nil, fail(st, kind, tostring(detail.resultMsg or data.description or "unexpected report result"), {
      code = code, order_id = order_id, request_id = request_id, raw = decoded,
    })
  end
  checkpoint(st)
  local report = normalize_report(decoded, status, order_id, o.utc_offset_hours)
  if report then
    report.request_id = request_id
    -- the findings a buyer reads first; a pending report has nothing to analyse yet
    if report.status ~= "pending" then
      checkpoint(st) -- pieces of their own, so that one call stays within the scheduler's CPU budget
      report.analysis = analysis.analyze(report, nil, pauser_of(st))
    end
  end
  return report
end

-- Reads one report, retrying what is safe to retry. The id is not re-validated:
-- ids the server issued must stay readable, whatever their shape.
local function read_report(st, order_id)
  local attempt = 1
  while true do
    local decoded, err, request_id = exchange(st, "get_report", defaults.REPORT_PATH, { "order_id", order_id },
      attempt)
    if decoded then return report_of(st, decoded, order_id, request_id) end
    err.order_id = order_id
    if not (err.retryable and attempt <= st.o.retries) then return nil, err end
    wait_before_retry(st, attempt, "get_report")
    attempt = attempt + 1
  end
end

local function check_order_id(call, st, order_id)
  if type(order_id) ~= "string" then
    error(call .. ": order_id must be a string, got " .. type(order_id), 3)
  end
  local id, msg = validate.order_id(order_id)
  if not id then return nil, fail(st, "invalid_input", msg, { field = "order_id" }) end
  return id
end

--- Reads a report (free, idempotent): retried on network errors, 5xx and 429.
function Client:get_report(order_id)
  local st = state_of[self]
  local id, err = check_order_id("get_report", st, order_id)
  if not id then return nil, err end
  return read_report(st, id)
end

-- ---- query: order, then poll ------------------------------------------

local QUERY_RULES = { poll_interval = POLL_RULES.poll_interval, max_wait = POLL_RULES.max_wait,
  reuse = number(0, 1e12), retry_unknown = { type = "boolean" }, fresh = { type = "boolean" } }
for k, v in pairs(ORDER_FIELDS) do QUERY_RULES[k] = v end
local START_QUERY_RULES = { on_done = { type = "function" } }
for k, v in pairs(QUERY_RULES) do START_QUERY_RULES[k] = v end
local WAIT_RULES = { poll_interval = POLL_RULES.poll_interval, max_wait = POLL_RULES.max_wait }
local START_REPORT_RULES = { on_done = { type = "function" } }
for k, v in pairs(WAIT_RULES) do START_REPORT_RULES[k] = v end

-- The next poll wait after `elapsed` seconds of polling: poll_growth × elapsed,
-- at least first_poll_delay, at most poll_interval. A report not ready after a
-- minute will likely take minutes, so waits grow with the time already waited:
-- the reads stay few (about log(T) / log(1 + poll_growth)) and a report is seen
-- at most poll_growth × T after it is ready. The jitter (up to 10% shorter) keeps
-- many orders placed together from polling in step, and never lengthens a wait.
local function next_wait(o, elapsed, poll_interval)
  local base = math.min(math.max(o.first_poll_delay, o.poll_growth * elapsed), poll_interval)
  return base * (0.9 + 0.1 * o.random())
end
client._next_wait = next_wait -- for bench/poll_policy.lua and spec/poll_policy_spec.lua

-- Sleeps `delay`, refreshing the claim at least every third of its ttl, so a
-- long wait does not let it expire while this node still polls.
local function wait_holding(st, delay, claim)
  local slice = claim and claim.ledger and claim.ledger.claim_ttl and claim.ledger.claim_ttl / 3 or delay
  while delay > slice do
    sleep(st, slice)
    delay = delay - slice
    claim:refresh()
  end
  sleep(st, delay)
end

-- Polls until the report is final or max_wait runs out; wait_first for a fresh order.
-- claim (optional): the ledger claim of the order, kept alive while polling.
local function poll(st, order_id, opts, wait_first, claim)
  local o = st.o
  local poll_interval = opts.poll_interval or o.poll_interval
  local max_wait = opts.max_wait or o.max_wait
  local started = o.now()
  local deadline = started + max_wait
  local waiting = wait_first
  while true do
    if waiting then
      local now = o.now()
      wait_holding(st, math.max(0, math.min(next_wait(o, now - started, poll_interval), deadline - now)), claim)
    end
    waiting = true
    if claim then claim:refresh() end -- a lost claim only lets another node poll too
    local report, err = read_report(st, order_id)
    if not report then return nil, err end
    if o.on_event then emit(st, { event = "poll", order_id = order_id, status = report.status }) end
    if report.status ~= "pending" then return report end
    if o.now() >= deadline then
      local message = "report still pending after %gs; resume with wait_report('%s'), no new order needed"
      return nil, fail(st, "pending", message:format(max_wait, order_id),
        { order_id = order_id, retryable = true, code = report.code })
    end
  end
end

-- Polls a placed order under its claim and records a final report. A Lua
-- error after a paid order (a user's hook, an out-of-memory) must not lose the
-- order id: it is raised again with the id in the message.
local function poll_placed(st, order_id, opts, wait_first, claim)
  local ok, report, err = pcall(poll, st, order_id, opts, wait_first, claim)
  if not ok then
    error(("%s (order %s was placed: resume it with wait_report, no new order needed)"):format(
      tostring(report), order_id), 0)
  end
  if report and (report.status == "ready" or report.status == "no_records") then
    checkpoint(st)
    local recorded, lerr = claim:final(report.status, report)
    if not recorded then
      emit(st, { event = "ledger", action = "final", order_id = order_id, error_kind = lerr.kind })
    end
  end
  if err then err.order_id = err.order_id or order_id end
  return report, err
end

-- The buy-once rule: consult the ledger, then order, poll, reuse or refuse.
-- progress (start_query's) learns the order id the moment it exists, so a
-- cancelled handle can still name the order it paid for.
local function query(st, args, progress)
  progress = progress or {}
  local params, err = order_params(st, args)
  if not params then return nil, err end
  local decision
  decision, err = begin(st, params, args)
  if not decision then return nil, err end
  if decision.action == "reuse" then return reused_report(decision.entry) end
  if decision.action == "unknown" then return unknown_outcome(st, decision.entry) end
  local claim = decision.claim
  progress.claim = claim -- a cancelled task never reaches the release below
  -- The ledger's decision and the order (building and signing it, recording its
  -- intent) are separate pieces: each alone fits a frame's share. Nothing is sent yet.
  checkpoint(st)
  local done, report
  done, report, err = pcall(function()
    local order_id = decision.order_id
    if decision.action == "order" then
      progress.ordering = true
      local order, oerr = place(st, params, claim)
      progress.ordering = false
      if not order then return nil, oerr end
      order_id = order.order_id
    else
      local held, herr = claim:polling()
      if not held then return ledger_failure(st, herr, { order_id = order_id }) end
    end
    progress.order_id = order_id
    -- a fresh order is never ready at once; a resumed one may be
    local final, perr = poll_placed(st, order_id, args, decision.action == "order", claim)
    if final then
      local placed_at = claim.entry and claim.entry.placed_at
      emit(st, { event = "report", order_id = order_id, status = final.status, vin = params[2],
        source = decision.action == "order" and "bought" or (decision.taken_over and "taken_over" or "resumed"),
        since_order = placed_at and math.max(0, st.o.ledger.now() - placed_at) or nil })
    end
    return final, perr
  end)
  claim:release()
  if not done then error(report, 0) end
  return report, err
end

-- In a user's coroutine with the `yield` option, run fn as a task and give
-- control back to the user's scheduler between steps instead of blocking.
-- Not inside any scheduler's task: a scheduler resumes a foreign yield at once, so
-- yielding there would spin; this client blocks on its own transport instead.
local function in_user_coroutine()
  local co, is_main = coroutine.running()
  return co ~= nil and not is_main and not scheduler.current()
end

local function cooperatively(self, st, fn)
  local handle = self:scheduler():spawn(fn)
  while true do
    self:step(0)
    if handle:done() then return handle:result() end
    st.o.yield()
  end
end

--- Polls an existing order until its report is final or max_wait runs out.
function Client:wait_report(order_id, opts)
  local st = state_of[self]
  local id, err = check_order_id("wait_report", st, order_id)
  local ok, opts_err = options.check("wait_report", opts or {}, WAIT_RULES, 2)
  if not id then return nil, err end
  if not ok then return nil, opts_err end
  if st.o.yield and in_user_coroutine() then
    return cooperatively(self, st, function() return poll(st, id, opts or {}) end)
  end
  return poll(st, id, opts or {})
end

--- Orders a report and waits for it. On a deadline, err.kind == "pending" and err.order_id resumes it.
function Client:query(args)
  local st = state_of[self]
  local ok, err = options.check("query", args, QUERY_RULES, 2)
  if not ok then return nil, err end
  if st.o.yield and in_user_coroutine() then
    return cooperatively(self, st, function() return query(st, args) end)
  end
  return query(st, args)
end
-- ---- non-blocking API: handles advanced by client:step ---------------------

local function scheduler_of(st, level)
  if not st.scheduler then
    local o = st.o
    if not o.transport.submit then
      error("this transport has no submit/perform; start_query and step need one that has", level + 1)
    end
    st.scheduler = scheduler.new{ transport = o.transport, now = o.now, sleep = o.sleep,
      max_in_flight = o.max_in_flight, budget = o.step_budget }
  end
  return st.scheduler
end

--- The client's own scheduler (created on first use), shared by every handle.
function Client:scheduler()
  return scheduler_of(state_of[self], 2)
end

-- Wraps on_done: a cancelled handle's error gets what the task knew about its order
-- (before any on_done, and before cancel() returns), so no order id is lost.
local function completing_cancel(progress, on_done)
  return function(handle)
    local err
    if handle:error() == nil then err = select(2, handle:result()) end
    if type(err) == "table" and err.kind == "cancelled" then
      if progress.claim then progress.claim:release() end -- a later query resumes the order
      if progress.order_id then
        err.order_id = progress.order_id
        err.message = err.message .. "; the order was placed: resume it with wait_report, no new order needed"
      elseif progress.ordering and err.sent then
        err.order_outcome = "unknown"
        err.message = err.message .. "; " .. UNKNOWN_OUTCOME
      elseif progress.ordering then
        err.order_outcome = "not_placed"
      end
    end
    if on_done then return on_done(handle) end
  end
end

local function without_on_done(args)
  local copy = {}
  for k, v in pairs(args) do
    if k ~= "on_done" then copy[k] = v end
  end
  return copy
end

--- Starts a query and returns a handle at once; client:step() advances it.
--- handle:done(), handle:result() → report | nil, err; args.on_done(handle) when it ends.
--- Returns nil, err (nothing started) for an out-of-range option.
function Client:start_query(args)
  local st = state_of[self]
  local ok, err = options.check("start_query", args, START_QUERY_RULES, 2)
  if not ok then return nil, err end
  local query_args = without_on_done(args)
  local progress = {}
  return scheduler_of(st, 2):spawn(function() return query(st, query_args, progress) end,
    completing_cancel(progress, args.on_done))
end

--- Starts polling an existing order (see wait_report) and returns a handle at once.
function Client:start_report(order_id, opts)
  local st = state_of[self]
  local id, err = check_order_id("start_report", st, order_id)
  local ok, opts_err = options.check("start_report", opts or {}, START_REPORT_RULES, 2)
  if not id then return nil, err end
  if not ok then return nil, opts_err end
  local wait_opts = without_on_done(opts or {})
  return scheduler_of(st, 2):spawn(function() return poll(st, id, wait_opts) end,
    completing_cancel({ order_id = id }, (opts or {}).on_done))
end

local STEP_TIMEOUT = number(0, 86400)

--- Advances all started work, waiting at most timeout seconds (0: just poll).
--- Returns how many handles are still running.
function Client:step(timeout)
  if timeout ~= nil then options.check_number("step", "timeout", timeout, STEP_TIMEOUT, 2) end
  return scheduler_of(state_of[self], 2):step(timeout or 0)
end

-- For hosts that own the loop (docs/event-loop.md): the scheduler's socket interface.
function Client:watch() return scheduler_of(state_of[self], 2):watch() end
function Client:timeout() return scheduler_of(state_of[self], 2):timeout() end
function Client:socket_action(fd, events) return scheduler_of(state_of[self], 2):socket_action(fd, events) end
function Client:set_wakeup(fn) return scheduler_of(state_of[self], 2):set_wakeup(fn) end

return client
