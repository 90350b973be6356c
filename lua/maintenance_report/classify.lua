-- The one place that decides what a failure means: its error kind, whether a
-- retry may help, and, for a paid order, whether it may have been placed.
--
-- Transports report facts (a libcurl code and how many request bytes were
-- written, or a cosocket failure with the step it failed in). Everything that
-- turns those facts, an HTTP status with the gateway's text, or the vendor's
-- envelope into a decision is here, so that the client, the CLI, the batch and
-- the OpenResty example all read the same answer off the error.
--
-- The money rule: a failure counts as "nothing left this machine" only when it
-- is on NEVER_SENT (it provably happens before the first request byte is
-- written) and the transport reports no request byte written. Anything else,
-- including a code nobody listed and a reply that cannot be parsed, may have
-- reached the server, and an order that may have reached it may have been charged.
local civil_date = require "maintenance_report.civil_date"

local classify = {}

-- Every transport failure kind, for transports and the README alike. A
-- transport (the C core, the cosocket transport, or a user's) reports one of
-- these; spec/classify_spec.lua checks that no transport emits another.
classify.TRANSPORT_KINDS = {
  dns = "the host name could not be resolved",
  connect = "the connection was refused or the host is unreachable",
  connect_timeout = "no connection (TCP or TLS) within connect_timeout",
  tls = "the TLS handshake or certificate verification failed",
  timeout = "no complete answer within timeout, after the connection was made",
  network = "the connection broke: reset, closed early, empty or truncated reply",
  protocol = "the reply is not HTTP as expected (malformed status line, framing)",
  too_large = "the response body is larger than max_body",
  invalid_request = "the transport refused to build the request (bad URL or header); no I/O was done",
}

-- Failures that happen before the first request byte leaves. Only these can
-- ever give sent = false, and only with no request byte written.
classify.NEVER_SENT = { dns = true, connect = true, connect_timeout = true, tls = true, invalid_request = true }

-- Transport kind → error kind (errors.KINDS) and whether a read may retry it.
local TRANSPORT_ERRORS = {
  dns = { "network", true }, connect = { "network", true }, connect_timeout = { "timeout", true },
  tls = { "tls", false }, timeout = { "timeout", true }, network = { "network", true },
  -- the same malformed or oversized answer comes back on a retry
  protocol = { "protocol", false }, too_large = { "protocol", false },
  invalid_request = { "invalid_input", false },
}

-- libcurl codes (curl/curl.h; stable across libcurl 7 and 8) → transport kind.
-- A code not listed is "network": it may have happened after sending.
local CURL_KINDS = {
  [5] = "dns",         -- CURLE_COULDNT_RESOLVE_PROXY
  [6] = "dns",         -- CURLE_COULDNT_RESOLVE_HOST
  [7] = "connect",     -- CURLE_COULDNT_CONNECT
  [1] = "protocol",    -- CURLE_UNSUPPORTED_PROTOCOL: also a malformed status line, after sending
  [8] = "protocol",    -- CURLE_WEIRD_SERVER_REPLY
  [63] = "too_large",  -- CURLE_FILESIZE_EXCEEDED
  [28] = "timeout",    -- CURLE_OPERATION_TIMEDOUT: connect_timeout before the transfer began
  [35] = "tls",        -- CURLE_SSL_CONNECT_ERROR
  [53] = "tls", [54] = "tls", [66] = "tls", -- SSL engine not found / set failed / init failed
  [58] = "tls",        -- CURLE_SSL_CERTPROBLEM
  [59] = "tls",        -- CURLE_SSL_CIPHER
  [60] = "tls",        -- CURLE_PEER_FAILED_VERIFICATION
  [64] = "tls",        -- CURLE_USE_SSL_FAILED
  [77] = "tls",        -- CURLE_SSL_CACERT_BADFILE
  [80] = "network",    -- CURLE_SSL_SHUTDOWN_FAILED: after the exchange
  [82] = "tls",        -- CURLE_SSL_CRL_BADFILE
  [83] = "tls",        -- CURLE_SSL_ISSUER_ERROR
  [90] = "tls",        -- CURLE_SSL_PINNEDPUBKEYNOTMATCH
  [91] = "tls",        -- CURLE_SSL_INVALIDCERTSTATUS
}

-- The transport kind of a failure report: from the libcurl facts, or as the
-- transport named it; an unknown name counts as "network" (may have been sent).
local function transport_kind(failure)
  if failure.too_large then return "too_large" end
  local code = failure.curl_code
  if type(code) == "number" and failure.kind == nil then
    local kind = CURL_KINDS[code] or "network"
    -- libcurl never reached "pretransfer" (where the request starts to go out):
    -- the time ran out connecting, resolving or in the TLS handshake
    if kind == "timeout" and failure.pretransfer == false then kind = "connect_timeout" end
    return kind
  end
  if classify.TRANSPORT_KINDS[failure.kind] then return failure.kind end
  return "network"
end

--- Whether a transport failure proves that no request byte left: an allowlisted
--- kind, and no byte written (request_bytes == 0, or a transport that does not
--- count bytes but says sent = false).
function classify.never_sent(kind, failure)
  if not classify.NEVER_SENT[kind] then return false end
  if failure.request_bytes ~= nil then return failure.request_bytes == 0 end
  return failure.sent == false
end

--- A transport failure → { kind, transport, sent, retryable, message, curl_code }.
function classify.transport(failure)
  local kind = transport_kind(failure)
  local error_kind, retryable = TRANSPORT_ERRORS[kind][1], TRANSPORT_ERRORS[kind][2]
  local sent = not classify.never_sent(kind, failure)
  return {
    kind = error_kind, transport = kind, sent = sent, retryable = retryable,
    message = tostring(failure.message or kind), curl_code = failure.curl_code,
  }
end

-- ---- answers from the gateway ------------------------------------------

-- Every text the gateway publishes (gateway.md: its error-code FAQ and its
-- signing guide), matched on the text without its trailing period. Each entry:
-- id (hints and the sandbox's admin switch use it), a Lua pattern anchored at
-- the start (one that ends in "$" must match the whole text; one without may be
-- followed by more, such as the "Server StringToSign:" echo), the statuses the
-- two documents give, the kind, whether a read may retry it, and refused: the
-- gateway answered itself, before the vendor saw anything, so no order was
-- placed. Longer, more specific patterns come before shorter ones.
classify.GATEWAY_TEXTS = {
  { id = "xdate_skew", statuses = { 401 }, kind = "auth",
    pattern = "^HMAC signature cannot be verified, the x%-date header is out of date" },
  { id = "xdate_required", statuses = { 401 }, kind = "auth",
    pattern = "^HMAC signature cannot be verified, a valid x%-date header is required for HMAC Authentication$" },
  { id = "date_required", statuses = { 401, 403 }, kind = "auth",
    pattern = "^HMAC signature cannot be verified, a valid date or x%-date header is required$",
    alt_pattern = "^HMAC signature cannot be verified, a valid date header is required$" }, -- the guide's 403
  { id = "auth_header_required", statuses = { 401 }, kind = "auth",
    pattern = "^HMAC signature cannot be verified, a validate authorization header is required$" },
  { id = "header_required", statuses = { 401, 403 }, kind = "auth",
    pattern = "^HMAC signature cannot be verified, a valid %S+ header is required$" },
  { id = "cannot_verify", statuses = { 401, 403 }, kind = "auth",
    pattern = "^HMAC signature cannot be verified$" },
  { id = "mismatch", statuses = { 401, 403 }, kind = "auth", pattern = "^HMAC signature does not match" },
  { id = "apikey_invalid", statuses = { 401 }, kind = "auth", pattern = "^HMAC apikey is invalid" },
  { id = "id_or_signature_missing", statuses = { 401, 403 }, kind = "auth",
    pattern = "^H?M?A?C? ?id or signature missing$" },
  { id = "multiple_header", statuses = { 401 }, kind = "auth",
    pattern = "^HMAC do not support multiple HTTP header$" },
  { id = "algorithm", statuses = { 401 }, kind = "auth", pattern = "^HMAC algorithm .* not supported$" },
  { id = "format", statuses = { 401, 403 }, kind = "auth", pattern = "^HMAC authorization format error$" },
  { id = "headers_invalid", statuses = { 401, 403 }, kind = "auth",
    pattern = "^H?M?A?C? ?authorization headers is invalidate$" },
  { id = "oauth", statuses = { 401 }, kind = "auth", pattern = "^Oauth" },
  { id = "no_usage_plan", statuses = { 403 }, kind = "forbidden", pattern = "^Found no validate usage plan$" },
  { id = "client_ip", statuses = { 403 }, kind = "forbidden",
    pattern = "^Cannot identify the client IP address" },
  { id = "ip_denied", statuses = { 403 }, kind = "forbidden", pattern = "^Endpoint IP address is not allowed$" },
  { id = "params_fail", statuses = { 403 }, kind = "forbidden", pattern = "^Get .* params fail$" },
  { id = "header_param", statuses = { 403 }, kind = "forbidden", pattern = "^header .* is required$" },
  { id = "path_param", statuses = { 403 }, kind = "forbidden", pattern = "^path variable .* is required$" },
  { id = "query_param", statuses = { 403 }, kind = "forbidden", pattern = "^querystring .* is required$" },
  { id = "body_param", statuses = { 403 }, kind = "forbidden", pattern = "^body param .* is required$" },
  { id = "form_content_type", statuses = { 403 }, kind = "forbidden",
    pattern = "^req content type need application/x%-www%-form%-urlencoded$" },
  { id = "no_micro_service", statuses = { 404 }, kind = "not_found", pattern = "^Not found micro service with key$" },
  { id = "no_host", statuses = { 404 }, kind = "not_found", pattern = "^Not Found Host$" },
  { id = "get_host_fail", statuses = { 404 }, kind = "not_found", pattern = "^Get Host Fail$" },
  { id = "method_unsupported", statuses = { 404 }, kind = "not_found", pattern = "^Could not support method$" },
  { id = "no_api", statuses = { 404 }, kind = "not_found", pattern = "^Found no api$" },
  { id = "no_match_host", statuses = { 404 }, kind = "not_found", pattern = "^There is no api match host%[" },
  { id = "no_match_default_env", statuses = { 404 }, kind = "not_found",
    pattern = "^There is no api match default env_mapping%[" },
  { id = "no_match_env", statuses = { 404 }, kind = "not_found", pattern = "^There is no api match env_mapping%[" },
  { id = "no_match_uri", statuses = { 404 }, kind = "not_found", pattern = "^There is no api match uri%[" },
  { id = "no_match_method", statuses = { 404 }, kind = "not_found", pattern = "^There is no api match method%[" },
  { id = "method_not_allowed", statuses = { 405 }, kind = "not_found", pattern = "^Method Not Allowed$" },
  { id = "https_not_allowed", statuses = { 426 }, kind = "forbidden", pattern = "^Not allow use HTTPS protocol$" },
  { id = "http_not_allowed", statuses = { 426 }, kind = "forbidden", pattern = "^Not allow use HTTP protocol$" },
  { id = "rate_limit", statuses = { 429 }, kind = "rate_limited", retryable = true,
    pattern = "^API rate limit exceeded$" },
  { id = "quota", statuses = { 429 }, kind = "quota_exceeded", pattern = "^API quota exceeded$" },
  { id = "cors", statuses = { 429 }, kind = "forbidden", pattern = "^req is cross origin" },
  { id = "api_config", statuses = { 481 }, kind = "http", refused = true, pattern = "^API config error$" },
  { id = "tsf_config", statuses = { 481 }, kind = "http", refused = true, pattern = "^TSF config error$" },
  { id = "mock_config", statuses = { 481 }, kind = "http", refused = true, pattern = "^Mock config error$" },
  { id = "cors_config", statuses = { 481 }, kind = "http", refused = true, pattern = "^Found no valid cors config$" },
  -- The gateway saw this side close early; it may have forwarded the request already.
  { id = "client_closed", statuses = { 499 }, kind = "network", retryable = true,
    pattern = "^Client closed connetion$" },
  { id = "query_params_error", statuses = { 500 }, kind = "http", retryable = true,
    pattern = "^Error occurred during query params$" },
  { id = "internal_error", statuses = { 500 }, kind = "http", retryable = true, pattern = "^Internal Server Error$" },
  { id = "bad_gateway", statuses = { 502 }, kind = "http", retryable = true, pattern = "^Bad Gateway$" },
  { id = "gateway_timeout", statuses = { 504 }, kind = "http", retryable = true, pattern = "^Gateway Time%-out$" },
}

local STATUS_KINDS = { [401] = "auth", [403] = "forbidden", [404] = "not_found", [405] = "not_found",
  [426] = "forbidden", [429] = "rate_limited" }

-- Kinds whose answer comes from the gateway itself, which refuses the request
-- before it reaches the vendor: an order refused this way was not placed.
local GATEWAY_REFUSALS = { auth = true, forbidden = true, not_found = true, rate_limited = true,
  quota_exceeded = true }

classify.GATEWAY_BY_ID = {}
for _, entry in ipairs(classify.GATEWAY_TEXTS) do
  entry.retryable = entry.retryable or false
  entry.refused = entry.refused or GATEWAY_REFUSALS[entry.kind] or false
  classify.GATEWAY_BY_ID[entry.id] = entry
end

--- The published gateway text a message is, or nil: the entry of GATEWAY_TEXTS.
function classify.gateway_text(text)
  if type(text) ~= "string" then return nil end
  local bare = text:gsub("%s+$", ""):gsub("%.$", "")
  for _, entry in ipairs(classify.GATEWAY_TEXTS) do
    if bare:find(entry.pattern) or (entry.alt_pattern and bare:find(entry.alt_pattern)) then return entry end
  end
  return nil
end

--- A non-200 answer → kind, retryable, and the published text's entry (or nil).
--- The text wins over the status: the gateway's documents give 401 or 403 for
--- the same text.
function classify.http(status, text)
  local entry = classify.gateway_text(text)
  if entry then return entry.kind, entry.retryable, entry end
  local kind = STATUS_KINDS[status] or "http"
  return kind, kind == "rate_limited" or (kind == "http" and type(status) == "number" and status >= 500), nil
end

-- ---- facts in the gateway's response headers -----------------------------

local function header(headers, name)
  local v = type(headers) == "table" and headers[name] or nil
  return type(v) == "string" and v or nil
end

--- X-RateLimit-Limit ("500") and X-RateLimit-Used ("100/125", used/limit) →
--- { limit=, used=, used_limit= } with what could be read, or nil when neither is there.
function classify.rate_limit(headers)
  local limit_text, used_text = header(headers, "x-ratelimit-limit"), header(headers, "x-ratelimit-used")
  if not limit_text and not used_text then return nil end -- most answers: no pattern to run
  local limit = tonumber((limit_text or ""):match("^%s*(%d+)%s*$") or "")
  local used, of = (used_text or ""):match("^%s*(%d+)%s*/%s*(%d+)%s*$")
  if not limit and not used then return nil end
  return { limit = limit, used = tonumber(used), used_limit = tonumber(of) }
end

local MONTHS = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8, Sep = 9, Oct = 10,
  Nov = 11, Dec = 12 }

--- The response's Date header (RFC 9110 IMF-fixdate) as epoch seconds, or nil.
function classify.server_time(headers)
  local d, mon, y, hh, mm, ss = (header(headers, "date") or ""):match(
    "^%a%a%a, (%d%d) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT$")
  if not d or not MONTHS[mon] then return nil end
  return civil_date.days_from_civil(tonumber(y), MONTHS[mon], tonumber(d)) * 86400 + tonumber(hh) * 3600
    + tonumber(mm) * 60 + tonumber(ss)
end

-- ---- the vendor's envelope -----------------------------------------------

-- Business codes arrive as "0", 0 or 0.0; compare them as canonical strings.
function classify.code_string(v)
  if type(v) == "number" and v == math.floor(v) and v > -2^53 and v < 2^53 then
    return ("%d"):format(v)
  elseif type(v) == "string" then
    return v
  end
  return nil
end

-- Order answers whose code says the vendor refused before buying (api.md:
-- 20704 "车架号不能为空"). Any other code, -1 "服务或其它异常" included, does not
-- say whether the order was placed, so its outcome is unknown.
classify.ORDER_REFUSAL_CODES = { ["20704"] = true }

--- A decoded 200 answer → nil (the business code is 0) or kind, code, message.
function classify.envelope(decoded)
  local code = type(decoded) == "table" and classify.code_string(decoded.code)
  if not code then return "protocol" end
  if code == "0" then return nil end
  local message = type(decoded.message) == "string" and decoded.message or ("business error " .. code)
  return "api", code, message
end

--- Report status of a decoded report answer: "pending", "ready", "no_records",
--- or nil, kind ("protocol" for a malformed answer, "api" for a business result
--- nobody documented), code.
function classify.report_status(decoded, report_status, pending_results)
  local data = decoded.data
  local detail = type(data) == "table" and type(data.detail) == "table" and data.detail or nil
  local pending = type(data) == "table" and pending_results[classify.code_string(data.result) or ""]
  if not detail and not pending then return nil, "protocol" end
  local raw = detail and classify.code_string(detail.resultCode)
  local status = raw and report_status[tonumber(raw)]
  if status then return status end
  if pending then return "pending" end
  if raw == nil then return nil, "protocol" end -- detail an array, resultCode missing or not a scalar
  return nil, "api", raw
end

-- ---- paid orders ----------------------------------------------------------

--- The outcome of a failed order call: "not_placed" when the failure proves the
--- order was not bought, "unknown" otherwise. `err` is a client error.
function classify.order_outcome(err)
  if err.transport then return err.sent and "unknown" or "not_placed" end
  if err.kind == "invalid_input" then return "not_placed" end
  if GATEWAY_REFUSALS[err.kind] then return "not_placed" end
  if err.gateway_text and classify.GATEWAY_BY_ID[err.gateway_text]
    and classify.GATEWAY_BY_ID[err.gateway_text].refused then return "not_placed" end
  if err.kind == "api" and classify.ORDER_REFUSAL_CODES[tostring(err.code)] then return "not_placed" end
  return "unknown"
end

--- Whether a failed order may be sent again by the client itself: only when
--- nothing left and the failure is one a retry may cure.
function classify.order_retryable(err)
  return err.transport ~= nil and not err.sent and err.retryable
end

return classify
