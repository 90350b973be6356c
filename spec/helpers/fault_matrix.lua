-- The fault matrix's run logic, shared by spec/fault_matrix_spec.lua,
-- spec/secrets_spec.lua and tools/fault-matrix.lua (which writes
-- docs/fault-matrix.md): starts the sandbox and the raw fault server
-- (spec/helpers/fault_server.py) on 127.0.0.1, runs create_order and
-- get_report against each fault, and records what came back. It records;
-- it asserts nothing: the expected outcomes live in the specs.
local mr = require "maintenance_report"
local core = require "maintenance_report.core"
local sandbox = require "maintenance_report_sandbox"
local cjson = require "cjson.safe"

local M = {}

M.SECRET_ID = "AKIDfaultmatrix"
M.SECRET_KEY = "fm-secret-key-0d9c8b7a6f5e4d3c2b1a"
M.ORDER_ID = "0123456789abcdef0123456789abcdef" -- what get_report asks the raw server for
M.NORMAL_VIN = "WBAXW1104J0X16755"
M.TIMEOUT = 0.5
M.CONNECT_TIMEOUT = 0.3
M.MAX_BODY = 16 * 1024
M.ORDER_RETRIES = 2  -- only failures that provably never left may use them
M.REPORT_RETRIES = 1 -- reads: a retryable fault shows as two attempts

local shell = require "maintenance_report_sandbox.shell"

local quote = shell.quote
M.quote = quote

-- Runs a shell command; returns its output (stderr merged) and exit status.
local sh = shell.run
M.sh = sh

local function helper_dir()
  local src = debug.getinfo(1, "S").source
  return src:match("^@(.*)/fault_matrix%.lua$") or "spec/helpers"
end

---------------------------------------------------------------------------
-- The raw fault server
---------------------------------------------------------------------------

local Server = {}
Server.__index = Server

--- Starts fault_server.py; waits for its READY line (not a sleep). opts.echo: text
--- the server quotes in every broken body. Returns a server or raises.
function M.start_fault_server(opts)
  opts = opts or {}
  local cmd = "exec python3 " .. quote(helper_dir() .. "/fault_server.py")
  if opts.echo then cmd = cmd .. " --echo " .. quote(opts.echo) end
  local pipe = assert(io.popen(cmd, "r"))
  local line = pipe:read("*l")
  local pid, port, refused, blackhole, confirmed = (line or ""):match(
    "^READY pid=(%d+) port=(%d+) refused_port=(%d+) blackhole_port=(%d+) blackhole=(%d)")
  if not pid then
    pipe:close()
    error("fault server did not start: " .. tostring(line))
  end
  return setmetatable({
    pipe = pipe, pid = tonumber(pid), port = tonumber(port), refused_port = tonumber(refused),
    blackhole_port = tonumber(blackhole), blackhole_ok = confirmed == "1",
    base = "http://127.0.0.1:" .. port,
  }, Server)
end

--- Requests the server has read, by path (without the query).
function Server:counts()
  local out, rc = sh("curl -sS --noproxy '*' --max-time 5 " .. quote(self.base .. "/__stats"))
  assert(rc == 0, "fault server stats: " .. out)
  return assert(cjson.decode(out), "fault server stats: " .. out)
end

function Server:stop()
  if self.stopped then return end
  self.stopped = true
  sh("kill -TERM " .. self.pid .. " 2>/dev/null")
  self.pipe:close() -- waits for the process to exit
end

---------------------------------------------------------------------------
-- The environment: sandbox + fault server
---------------------------------------------------------------------------

local Env = {}
Env.__index = Env

--- opts: secret_key (sandbox and clients), echo (fault server reflects it), sandbox_opts.
function M.start(opts)
  opts = opts or {}
  local env = setmetatable({ secret_id = M.SECRET_ID, secret_key = opts.secret_key or M.SECRET_KEY,
    tag = 0 }, Env)
  local ok, err = pcall(function()
    env.server = M.start_fault_server{ echo = opts.echo }
    local sb_opts = { secret_id = env.secret_id, secret_key = env.secret_key, pending_polls = 0 }
    for k, v in pairs(opts.sandbox_opts or {}) do sb_opts[k] = v end
    env.sandbox = assert(sandbox.start(sb_opts))
  end)
  if not ok then
    env:stop()
    error(err, 0)
  end
  return env
end

function Env:stop()
  if self.sandbox then self.sandbox:stop() end
  if self.server then self.server:stop() end
end

-- A fresh path tag so each case's requests are counted apart.
function Env:next_tag()
  self.tag = self.tag + 1
  return ("c%d"):format(self.tag)
end

---------------------------------------------------------------------------
-- The faults
---------------------------------------------------------------------------
-- Each fault: id, label, via (what produces it), and a setup(env, op, opts)
-- returning { endpoint=, vin=, order_id=, client_opts=, sends=function() }.
-- sends() is how many order requests reached the server (nil: not countable).
-- Sandbox setups reset its counters first, unless opts.no_reset.

local function raw(name)
  return function(env)
    local path = "/f/" .. name .. "/" .. env:next_tag()
    return {
      endpoint = env.server.base .. path,
      vin = M.NORMAL_VIN,
      order_id = M.ORDER_ID,
      sends = function() return math.floor(env.server:counts()[path .. "/maintenance/order"] or 0) end,
    }
  end
end

local function address(make_url)
  return function(env)
    return { endpoint = make_url(env), vin = M.NORMAL_VIN, order_id = M.ORDER_ID,
      sends = function() return nil end }
  end
end

-- A sandbox scenario; report-phase scenarios need an order first (not a fault).
local SCENARIOS = {} -- setup function -> { order = name, report = name }
local function scenario(order_scenario, report_scenario)
  local function fn(env, op, opts)
    local sb = env.sandbox
    if not (opts and opts.no_reset) then assert(sb:reset()) end
    local setup = { endpoint = sb.base_url }
    if op == "create_order" then
      setup.vin = sandbox.scenario_vin(order_scenario)
    else
      setup.vin = sandbox.scenario_vin(report_scenario)
      local c = assert(mr.new{ secret_id = env.secret_id, secret_key = env.secret_key, endpoint = sb.base_url,
        timeout = 5, retries = 0 })
      local order = assert(c:create_order{ vin = setup.vin })
      c:close()
      setup.order_id = order.order_id
    end
    setup.sends = function() return (sb:stats().orders_by_vin or {})[setup.vin] or 0 end
    return setup
  end
  SCENARIOS[fn] = { order = order_scenario, report = report_scenario }
  return fn
end

-- The sandbox's real gateway check with bad credentials.
local function bad_credentials(field, value)
  return function(env, op, opts)
    local sb = env.sandbox
    if not (opts and opts.no_reset) then assert(sb:reset()) end
    local setup = { endpoint = sb.base_url, vin = M.NORMAL_VIN, client_opts = { [field] = value } }
    if op == "get_report" then
      local c = assert(mr.new{ secret_id = env.secret_id, secret_key = env.secret_key, endpoint = sb.base_url,
        timeout = 5, retries = 0 })
      setup.order_id = assert(c:create_order{ vin = M.NORMAL_VIN }).order_id
      c:close()
    end
    setup.sends = function() return (sb:stats().orders_by_vin or {})[M.NORMAL_VIN] or 0 end
    return setup
  end
end

M.AUTH_MESSAGES = { -- the 401 table of api.md, in its order; the server sends the same list
  "HMAC signature does not match.",
  "HMAC signature cannot be verified.",
  "HMAC signature cannot be verified, the x-date header is out of date for HMAC Authentication.",
  "HMAC signature cannot be verified, a valid x-date header is required for HMAC Authentication.",
  "HMAC signature cannot be verified, a valid date or x-date header is required.",
  "HMAC id or signature missing.",
  "HMAC algorithm hmac-md5 not supported.",
  "HMAC authorization format error.",
  "HMAC signature cannot be verified, a valid x-source header is required.",
  "HMAC apikey is invalid for API.",
}

M.FAULTS = {
  { id = "refused", label = "connection refused", via = "bound, non-listening port",
    setup = address(function(env) return ("http://127.0.0.1:%d/release"):format(env.server.refused_port) end) },
  -- A label over 63 bytes: the resolver refuses it locally, so no DNS query leaves the machine.
  { id = "dns", label = "DNS failure", via = "an unresolvable `.invalid` name",
    setup = address(function() return "http://" .. string.rep("a", 64) .. ".invalid/release" end) },
  { id = "connect_timeout", label = "connect timeout", via = "full accept queue, never accepts",
    requires = "blackhole",
    setup = address(function(env) return ("http://127.0.0.1:%d/release"):format(env.server.blackhole_port) end) },
  { id = "read_timeout", label = "read timeout", via = "raw: reads, never answers", setup = raw("read_timeout") },
  { id = "reset_early", label = "reset before any byte", via = "raw: RST", setup = raw("reset_early") },
  { id = "reset_headers", label = "reset mid-headers", via = "raw: RST", setup = raw("reset_headers") },
  { id = "reset_body", label = "reset mid-body", via = "raw: SO_LINGER 0, close", setup = raw("reset_body") },
  { id = "truncated", label = "truncated body, Content-Length too big", via = "raw: FIN",
    setup = raw("truncated") },
  { id = "too_large", label = "body over the cap (Content-Length)", via = "raw: 64 KiB, cap 16 KiB",
    setup = raw("too_large") },
  { id = "too_large_chunked", label = "body over the cap (chunked)", via = "raw: 64 KiB, cap 16 KiB",
    setup = raw("too_large_chunked") },
  { id = "http_500", label = "500 HTML page", via = "sandbox", setup = scenario("order_http_500", "report_http_500") },
  { id = "http_502", label = "502 HTML page", via = "sandbox", setup = scenario("order_http_502", "report_http_502") },
  { id = "http_504", label = "504 HTML page", via = "sandbox", setup = scenario("order_http_504", "report_http_504") },
  { id = "rate_limit", label = "429 API rate limit exceeded.", via = "sandbox",
    setup = scenario("order_rate_limit", "report_rate_limit") },
  { id = "quota", label = "429 API quota exceeded.", via = "sandbox", setup = scenario("order_quota", "report_quota") },
  { id = "auth_wrong_key", label = "401 wrong secret key", via = "sandbox gateway",
    setup = bad_credentials("secret_key", "sk-WRONG-KEY-9a8b7c6d5e4f") },
  { id = "auth_unknown_id", label = "401 unknown secret id", via = "sandbox gateway",
    setup = bad_credentials("secret_id", "AKIDnobody") },
}
for i, message in ipairs(M.AUTH_MESSAGES) do
  M.FAULTS[#M.FAULTS + 1] = { id = "auth_" .. i, label = "401 " .. message, via = "raw", setup = raw("auth_" .. i) }
end
for _, f in ipairs{
  { id = "forbidden_403_format", label = "403 HMAC authorization format error.", via = "raw",
    setup = raw("forbidden_403_format") },
  { id = "malformed_json", label = "malformed JSON (half a body + `<br/>`)", via = "sandbox",
    setup = scenario("order_malformed_json", "report_malformed_json") },
  { id = "malformed_raw", label = "malformed JSON (cut object)", via = "raw", setup = raw("malformed") },
  { id = "shape_data_missing", label = "JSON shape: no `data`", via = "raw", setup = raw("shape_data_missing") },
  { id = "shape_data_string", label = "JSON shape: `data` a string", via = "raw", setup = raw("shape_data_string") },
  { id = "shape_detail_array", label = "JSON shape: `detail` an array", via = "raw",
    setup = raw("shape_detail_array") },
  { id = "shape_detail_string", label = "JSON shape: `detail` a string", via = "raw",
    setup = raw("shape_detail_string") },
  { id = "shape_top_array", label = "JSON shape: top level an array", via = "raw", setup = raw("shape_top_array") },
  { id = "shape_code_missing", label = "JSON shape: no `code`", via = "raw", setup = raw("shape_code_missing") },
  { id = "shape_code_object", label = "JSON shape: `code` an object", via = "raw", setup = raw("shape_code_object") },
  { id = "shape_ids_wrong_type", label = "JSON shape: `orderId`/`resultCode` objects", via = "raw",
    setup = raw("shape_ids_wrong_type") },
  { id = "slow_drip", label = "slow drip (1 byte / 50 ms)", via = "raw", setup = raw("slow_drip") },
  { id = "truncated_sandbox", label = "truncated body (sandbox)", via = "sandbox",
    setup = scenario("order_truncated_body", "report_truncated_body") },
  { id = "closed_mid_headers", label = "closed mid-headers (FIN)", via = "sandbox",
    setup = scenario("order_connection_closed", "report_connection_closed") },
  { id = "empty_reply", label = "closed before any byte (FIN)", via = "sandbox",
    setup = scenario("order_empty_reply", "report_empty_reply") },
} do M.FAULTS[#M.FAULTS + 1] = f end

-- Status lines libcurl cannot read as HTTP, sent after the request arrived,
-- in front of an "order placed" answer (fault_server.py STATUS_LINES).
M.STATUS_LINES = {
  { "http09", "no status line (HTTP/0.9)" }, { "000", "`HTTP/1.1 000`" }, { "099", "`HTTP/1.1 099`" },
  { "1000", "`HTTP/1.1 1000`" }, { "short", "`HTTP/1.1 20`" }, { "http30", "`HTTP/3.0 200`" },
  { "http17", "`HTTP/1.7 200`" }, { "icy", "`ICY 200`" }, { "rtsp", "`RTSP/1.0 200`" },
  { "garbage", "`HELLO THERE`" },
}
for _, shape in ipairs(M.STATUS_LINES) do
  M.FAULTS[#M.FAULTS + 1] = { id = "status_" .. shape[1], label = "malformed status line: " .. shape[2],
    via = "raw", setup = raw("status_" .. shape[1]) }
end

-- Every text of gateway.md's tables, as the sandbox sends it (its /__text/ID/STATUS/
-- prefix answers that request with it): id, status, text. A text both documents
-- list appears once per status. Kept apart from M.FAULTS: the sandbox answers
-- these before any signature check, so they add nothing to the secrets runs.
M.GATEWAY_TEXTS = {
  { "apikey_invalid", 401, "HMAC apikey is invalid for API." },
  { "xdate_required", 401,
    "HMAC signature cannot be verified, a valid x-date header is required for HMAC Authentication." },
  { "xdate_skew", 401, "HMAC signature cannot be verified, the x-date header is out of date for HMAC Authentication." },
  { "date_required", 401, "HMAC signature cannot be verified, a valid date or x-date header is required." },
  { "date_required", 403, "HMAC signature cannot be verified, a valid date header is required" },
  { "id_or_signature_missing", 401, "HMAC id or signature missing." },
  { "id_or_signature_missing", 403, "id or signature missing" },
  { "multiple_header", 401, "HMAC do not support multiple HTTP header." },
  { "header_required", 401, "HMAC signature cannot be verified, a valid x-source header is required." },
  { "header_required", 403, "HMAC signature cannot be verified, a valid x-source header is required" },
  { "algorithm", 401, "HMAC algorithm hmac-md5 not supported." },
  { "format", 401, "HMAC authorization format error." },
  { "headers_invalid", 401, "HMAC authorization headers is invalidate." },
  { "headers_invalid", 403, "authorization headers is invalidate" },
  { "cannot_verify", 401, "HMAC signature cannot be verified." },
  { "cannot_verify", 403, "HMAC signature cannot be verified" },
  { "mismatch", 401, "HMAC signature does not match." },
  { "mismatch", 403, "HMAC signature does not match" },
  { "auth_header_required", 401, "HMAC signature cannot be verified, a validate authorization header is required" },
  { "oauth", 401, "Oauth token is invalid." },
  { "no_usage_plan", 403, "Found no validate usage plan." },
  { "client_ip", 403, "Cannot identify the client IP address, unix domain sockets are not supported." },
  { "ip_denied", 403, "Endpoint IP address is not allowed." },
  { "params_fail", 403, "Get vin params fail." },
  { "header_param", 403, "header x-custom is required." },
  { "path_param", 403, "path variable id is required." },
  { "query_param", 403, "querystring vin is required." },
  { "body_param", 403, "body param vin is required." },
  { "form_content_type", 403, "req content type need application/x-www-form-urlencoded." },
  { "no_micro_service", 404, "Not found micro service with key." },
  { "no_host", 404, "Not Found Host." },
  { "get_host_fail", 404, "Get Host Fail." },
  { "method_unsupported", 404, "Could not support method." },
  { "no_api", 404, "Found no api." },
  { "no_match_host", 404, "There is no api match host[127.0.0.1]." },
  { "no_match_env", 404, "There is no api match env_mapping[release]." },
  { "no_match_default_env", 404, "There is no api match default env_mapping[release]." },
  { "no_match_uri", 404, "There is no api match uri[/maintenance/order]." },
  { "no_match_method", 404, "There is no api match method[POST]." },
  { "method_not_allowed", 405, "Method Not Allowed." },
  { "https_not_allowed", 426, "Not allow use HTTPS protocol." },
  { "http_not_allowed", 426, "Not allow use HTTP protocol." },
  { "rate_limit", 429, "API rate limit exceeded." },
  { "quota", 429, "API quota exceeded." },
  { "cors", 429, "req is cross origin, api service-plb7hsqv need open cors flag on qcloud apigateway." },
  { "api_config", 481, "API config error." },
  { "tsf_config", 481, "TSF config error." },
  { "mock_config", 481, "Mock config error." },
  { "cors_config", 481, "Found no valid cors config." },
  { "client_closed", 499, "Client closed connetion." },
  { "query_params_error", 500, "Error occurred during query params." },
  { "internal_error", 500, "Internal Server Error." },
  { "bad_gateway", 502, "Bad Gateway." },
  { "gateway_timeout", 504, "Gateway Time-out." },
}

M.GATEWAY_FAULTS = {}
for _, t in ipairs(M.GATEWAY_TEXTS) do
  local id, status, text = t[1], t[2], t[3]
  M.GATEWAY_FAULTS[#M.GATEWAY_FAULTS + 1] = {
    id = "text_" .. id .. "_" .. status, text_id = id, status = status, text = text,
    label = status .. " " .. text, via = "sandbox gateway (`/__text/`)",
    setup = function(env)
      local sb = env.sandbox
      assert(sb:reset())
      local vin = M.NORMAL_VIN
      return {
        endpoint = ("http://127.0.0.1:%d/__text/%s/%d/release"):format(sb.port, id, status),
        vin = vin, order_id = M.ORDER_ID,
        -- the gateway answers itself: a text case must never reach the vendor's order handler
        sends = function() return (sb:stats().orders_by_vin or {})[vin] or 0 end,
      }
    end,
  }
end

M.BY_ID = {}
for _, f in ipairs(M.GATEWAY_FAULTS) do M.BY_ID[f.id] = f end
for _, f in ipairs(M.FAULTS) do
  M.BY_ID[f.id] = f
  f.scenarios = SCENARIOS[f.setup] -- sandbox faults: their scenario names
end

M.OPS = { "create_order", "get_report" }

---------------------------------------------------------------------------
-- Running one case
---------------------------------------------------------------------------

-- A deterministic, cycle-safe dump of a value (for event logs and leak scans).
local function serialize(v, seen)
  seen = seen or {}
  local t = type(v)
  if t == "string" then return ("%q"):format(v) end
  if t ~= "table" then return tostring(v) end
  if seen[v] then return "<cycle>" end
  seen[v] = true
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = tostring(k) .. "=" .. serialize(v[k], seen) end
  seen[v] = nil
  return "{" .. table.concat(parts, ",") .. "}"
end
M.serialize = serialize

--- Client options for a case; extra wins.
function M.client_options(env, endpoint, op, extra)
  local o = {
    secret_id = env.secret_id, secret_key = env.secret_key, endpoint = endpoint,
    timeout = M.TIMEOUT, connect_timeout = M.CONNECT_TIMEOUT, max_body = M.MAX_BODY,
    retries = op == "create_order" and M.ORDER_RETRIES or M.REPORT_RETRIES,
    retry_base = 0.001, retry_max_delay = 0.002,
  }
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

--- Runs op against fault on env. Returns a result table:
--- { fault=, op=, ok= (no Lua error), lua_error=, value=, err=, kind=, retryable=,
---   outcome=, transport=, attempts=, sends=, events=, event_log=, err_string=,
---   elapsed=, order_id=, vin=, secret_key= (the one the client used) }
--- extra: client options over the fault's own (e.g. another secret_key).
function M.run_case(env, fault, op, extra)
  local setup = fault.setup(env, op)
  local events = {}
  local opts = M.client_options(env, setup.endpoint, op, setup.client_opts)
  for k, v in pairs(extra or {}) do opts[k] = v end
  opts.on_event = function(ev) events[#events + 1] = ev end
  local result = { fault = fault, op = op, events = events, order_id = setup.order_id, vin = setup.vin,
    secret_key = opts.secret_key }
  local started = core.monotime()
  local ok, value, err = pcall(function()
    local c, cerr = mr.new(opts)
    if not c then return nil, cerr end
    local v, e
    if op == "create_order" then
      v, e = c:create_order{ vin = setup.vin }
    else
      v, e = c:get_report(setup.order_id)
    end
    c:close()
    return v, e
  end)
  result.ok = ok
  result.elapsed = core.monotime() - started
  if not ok then
    result.lua_error = tostring(value)
    return result
  end
  result.value, result.err = value, err
  if err then
    result.kind, result.retryable, result.outcome = err.kind, err.retryable, err.order_outcome
    result.transport, result.err_string = err.transport, tostring(err)
  end
  local attempts = 0
  for _, ev in ipairs(events) do
    if ev.event == "http" then attempts = attempts + 1 end
  end
  result.attempts = attempts
  result.event_log = serialize(events)
  if op == "create_order" then result.sends = setup.sends() end
  return result
end

--- Whether a fault can run here (the connect timeout needs a confirmed blackhole).
function M.available(env, fault)
  if fault.requires == "blackhole" then return env.server.blackhole_ok end
  return true
end

--- Runs every fault × op (faults: M.FAULTS by default); returns the results in order.
function M.run_all(env, faults)
  local results = {}
  for _, fault in ipairs(faults or M.FAULTS) do
    for _, op in ipairs(M.OPS) do
      if M.available(env, fault) then
        results[#results + 1] = M.run_case(env, fault, op)
      else
        results[#results + 1] = { fault = fault, op = op, skipped = "no reliable connect timeout on loopback" }
      end
    end
  end
  return results
end

---------------------------------------------------------------------------
-- The table
---------------------------------------------------------------------------

local function cell(r)
  if not r then return "" end
  if r.skipped then return "not run: " .. r.skipped end
  if not r.ok then return "LUA ERROR" end
  if not r.err then return "success (no error)" end
  local parts = { "`" .. tostring(r.kind) .. "`" }
  parts[#parts + 1] = r.retryable and "retryable" or "final"
  if r.op == "create_order" then
    parts[#parts + 1] = r.outcome == "unknown" and "outcome **unknown**" or "not placed"
    parts[#parts + 1] = "sent " .. (r.sends and tostring(r.sends) or "0 (never connected)")
      .. (r.attempts > 1 and (", " .. r.attempts .. " attempts") or "")
  elseif r.attempts > 1 then
    parts[#parts + 1] = r.attempts .. " attempts"
  end
  return table.concat(parts, ", ")
end

-- Rows: { label, via, order cell, report cell } in fault order.
local function rows(results)
  local by_fault, order = {}, {}
  for _, r in ipairs(results) do
    local id = r.fault.id
    if not by_fault[id] then
      by_fault[id] = {}
      order[#order + 1] = r.fault
    end
    by_fault[id][r.op] = r
  end
  local out = {}
  for _, f in ipairs(order) do
    out[#out + 1] = { f.label, f.via, cell(by_fault[f.id].create_order), cell(by_fault[f.id].get_report) }
  end
  return out
end

--- A Markdown table of fault × operation → outcome.
function M.markdown(results)
  local lines = {
    "| fault | produced by | `create_order` | `get_report` |",
    "|---|---|---|---|",
  }
  for _, row in ipairs(rows(results)) do
    lines[#lines + 1] = "| " .. table.concat(row, " | "):gsub("\n", " ") .. " |"
  end
  return table.concat(lines, "\n") .. "\n"
end

--- The same as fixed-width text, for the spec output.
function M.text(results)
  local all = rows(results)
  table.insert(all, 1, { "fault", "produced by", "create_order", "get_report" })
  local widths = { 0, 0, 0, 0 }
  local function width(s) return #s:gsub("[\128-\191]", "") end -- UTF-8 characters
  for _, row in ipairs(all) do
    for i, s in ipairs(row) do widths[i] = math.max(widths[i], width(s)) end
  end
  local lines = {}
  for _, row in ipairs(all) do
    local cells = {}
    for i, s in ipairs(row) do cells[i] = s .. (" "):rep(widths[i] - width(s)) end
    lines[#lines + 1] = table.concat(cells, " | ")
  end
  return table.concat(lines, "\n") .. "\n"
end

return M
