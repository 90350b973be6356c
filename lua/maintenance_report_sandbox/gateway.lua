-- The API gateway's key-pair HMAC check, with the real gateway's statuses and
-- messages (shared/reference/api.md). Runs only inside nginx.
--
-- Checks run in this order; the first failure answers:
--   1. Authorization header missing            -> id or signature missing
--   2. not `hmac k="v", k=v, ...`              -> authorization format error
--   3. id or signature missing or empty        -> id or signature missing
--   4. algorithm or headers parameter missing  -> authorization format error
--   5. algorithm not one of the four           -> algorithm xxx not supported
--   6. headers= lists x-date: X-Date must be a valid HTTP date, within 900 s
--      of now; headers= lists only date: Date must be present (never
--      time-checked); neither listed           -> a valid date or x-date ...
--   7. every other listed header present       -> a valid xxx header is required
--   8. unknown id                              -> cannot be verified
--   9. signature                               -> does not match
local bit = require "bit"
local hmac = require "maintenance_report_sandbox.hmac"

local M = {}

M.MAX_SKEW = 900

local MSG = {
  missing = "HMAC id or signature missing.",
  format = "HMAC authorization format error.",
  unknown_id = "HMAC signature cannot be verified.",
  mismatch = "HMAC signature does not match.",
  xdate_invalid = "HMAC signature cannot be verified, a valid x-date header is required for HMAC Authentication.",
  xdate_skew = "HMAC signature cannot be verified, the x-date header is out of date for HMAC Authentication.",
  no_date = "HMAC signature cannot be verified, a valid date or x-date header is required.",
}
M.MESSAGES = MSG

-- Parses `hmac id="…", algorithm = "…", headers="…", signature=…`. Values may
-- be quoted or bare and `=` may have spaces around it, as in the vendor's curl
-- sample. Returns a table with lower-case keys, or nil on a format error.
function M.parse_authorization(value)
  local rest = value:match("^%s*[Hh][Mm][Aa][Cc]%s+(.-)%s*$")
  if not rest then return nil end
  local params, i, n = {}, 1, #rest
  while i <= n do
    local _, e, key = rest:find("^%s*([%w_%-]+)%s*=%s*", i)
    if not e then return nil end
    i = e + 1
    local val
    if rest:sub(i, i) == '"' then
      local close = rest:find('"', i + 1, true)
      if not close then return nil end
      val = rest:sub(i + 1, close - 1)
      i = close + 1
    else
      local _, e2 = rest:find("^[^,]*", i)
      val = rest:sub(i, e2):match("^(.-)%s*$")
      i = e2 + 1
    end
    params[key:lower()] = val
    local _, e3, sep = rest:find("^%s*(,?)%s*", i)
    i = e3 + 1
    if sep == "" and i <= n then return nil end
  end
  return params
end

-- Constant-time comparison: xor-accumulate over equal-length strings, so the
-- time taken does not reveal how many leading bytes matched.
local function equal(a, b)
  if #a ~= #b then return false end
  local acc = 0
  for i = 1, #a do
    acc = bit.bor(acc, bit.bxor(a:byte(i), b:byte(i)))
  end
  return acc == 0
end
M.equal = equal

local function header_value(headers, name)
  local v = headers[name]
  if type(v) == "table" then v = table.concat(v, ", ") end
  return v
end

M.MESSAGES.multiple = "HMAC do not support multiple HTTP header."

-- A signed header sent more than once is refused (gateway.md).
local function repeated(headers, names)
  for _, name in ipairs(names) do
    if type(headers[name]) == "table" then return true end
  end
  return false
end

-- headers: request headers keyed by lower-case name (ngx.req.get_headers()).
-- secrets: id -> key. now: epoch seconds.
-- Returns true, id on success; false, status, message otherwise.
-- The Authorization header both auth modes share: its fields, and the signed header
-- names (lower-case) in order and as a set; or false, status, message.
local function signed_header_list(headers, algorithms)
  local auth = header_value(headers, "authorization")
  if auth == nil then return false, 401, MSG.missing end
  local p = M.parse_authorization(auth)
  if not p then return false, 401, MSG.format end
  if (p.id or "") == "" or (p.signature or "") == "" then return false, 401, MSG.missing end
  if not p.algorithm or not p.headers then return false, 401, MSG.format end
  if not algorithms[p.algorithm] then
    return false, 401, "HMAC algorithm " .. p.algorithm .. " not supported."
  end
  local names, listed = {}, {}
  for name in p.headers:gmatch("%S+") do
    name = name:lower()
    names[#names + 1] = name
    listed[name] = true
  end
  return p, names, listed
end

function M.check(headers, secrets, now)
  local p, names, listed = signed_header_list(headers, hmac.algorithms)
  if not p then return false, names, listed end

  if listed["x-date"] then
    local xdate = header_value(headers, "x-date")
    local t = xdate and ngx.parse_http_time(xdate)
    if not t then return false, 401, MSG.xdate_invalid end
    if math.abs(now - t) > M.MAX_SKEW then return false, 401, MSG.xdate_skew end
  elseif listed["date"] then
    if header_value(headers, "date") == nil then return false, 401, MSG.no_date end
  else
    return false, 401, MSG.no_date
  end

  if repeated(headers, names) then return false, 401, MSG.multiple end
  local lines = {}
  for i, name in ipairs(names) do
    local v = header_value(headers, name)
    if v == nil then
      return false, 401, "HMAC signature cannot be verified, a valid " .. name .. " header is required."
    end
    lines[i] = name .. ": " .. v
  end

  local key = secrets[p.id]
  if not key then return false, 401, MSG.unknown_id end

  local expected = ngx.encode_base64(hmac.digest(p.algorithm, key, table.concat(lines, "\n")))
  if not equal(expected, p.signature) then return false, 401, MSG.mismatch end
  return true, p.id
end

-- ---- app auth (应用认证, gateway.md) --------------------------------------
-- Written from gateway.md on its own, not from the client's code: the signed
-- headers as "name: value\n", then the method, Accept, Content-Type and
-- Content-MD5 each with "\n", then the path without the stage and the query
-- parameters sorted by key ("k=v", a bare key for an empty value).

M.APP_ALGORITHMS = { ["hmac-sha1"] = true, ["hmac-sha256"] = true }

local function path_and_parameters(path, args)
  local keys = {}
  for k in pairs(args) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do
    local v = args[k]
    if type(v) == "table" then v = v[1] end
    if v == true or v == "" then parts[#parts + 1] = k else parts[#parts + 1] = k .. "=" .. tostring(v) end
  end
  if #parts == 0 then return path end
  return path .. "?" .. table.concat(parts, "&")
end

-- headers: lower-case request headers; method; path: below the stage; args:
-- decoded query arguments. Returns true, id, or false, status, message (a
-- mismatch echoes the server's string to sign with # for each newline).
function M.check_app(headers, method, path, args, secrets, now)
  local p, names, listed = signed_header_list(headers, M.APP_ALGORITHMS)
  if not p then return false, names, listed end
  if not listed["x-date"] then return false, 401, MSG.xdate_invalid end
  if repeated(headers, names) then return false, 401, MSG.multiple end
  local t = headers["x-date"] and ngx.parse_http_time(headers["x-date"])
  if not t then return false, 401, MSG.xdate_invalid end
  if math.abs(now - t) > M.MAX_SKEW then return false, 401, MSG.xdate_skew end
  local parts = {}
  for _, name in ipairs(names) do
    local v = headers[name]
    if v == nil then
      return false, 401, "HMAC signature cannot be verified, a valid " .. name .. " header is required."
    end
    parts[#parts + 1] = name .. ": " .. v .. "\n"
  end
  for _, name in ipairs{ "accept", "content-type", "content-md5" } do
    if type(headers[name]) == "table" then return false, 401, MSG.multiple end
  end
  parts[#parts + 1] = method .. "\n" .. (headers["accept"] or "") .. "\n" .. (headers["content-type"] or "")
    .. "\n" .. (headers["content-md5"] or "") .. "\n" .. path_and_parameters(path, args)
  local sts = table.concat(parts)
  local key = secrets[p.id]
  if not key then return false, 401, MSG.unknown_id end
  local expected = ngx.encode_base64(hmac.digest(p.algorithm, key, sts))
  if not equal(expected, p.signature) then
    return false, 401, "HMAC signature does not match, Server StringToSign:" .. sts:gsub("\n", "#")
  end
  return true, p.id
end

-- ---- every published text (gateway.md), for the admin switch -------------
-- id -> status, text. Verbatim, typos included; "xxx" parts filled in. The
-- second status of a text the signing guide gives differently is in alt.
M.TEXTS = {
  apikey_invalid = { 401, "HMAC apikey is invalid for API." },
  xdate_required = { 401, MSG.xdate_invalid },
  xdate_skew = { 401, MSG.xdate_skew },
  date_required = { 401, MSG.no_date,
    alt = { 403, "HMAC signature cannot be verified, a valid date header is required" } },
  id_or_signature_missing = { 401, MSG.missing, alt = { 403, "id or signature missing" } },
  multiple_header = { 401, MSG.multiple },
  header_required = { 401, "HMAC signature cannot be verified, a valid x-source header is required.",
    alt = { 403, "HMAC signature cannot be verified, a valid x-source header is required" } },
  algorithm = { 401, "HMAC algorithm hmac-md5 not supported." },
  format = { 401, MSG.format },
  headers_invalid = { 401, "HMAC authorization headers is invalidate.",
    alt = { 403, "authorization headers is invalidate" } },
  cannot_verify = { 401, MSG.unknown_id, alt = { 403, "HMAC signature cannot be verified" } },
  mismatch = { 401, MSG.mismatch, alt = { 403, "HMAC signature does not match" } },
  auth_header_required = { 401, "HMAC signature cannot be verified, a validate authorization header is required" },
  oauth = { 401, "Oauth token is invalid." },
  no_usage_plan = { 403, "Found no validate usage plan." },
  client_ip = { 403, "Cannot identify the client IP address, unix domain sockets are not supported." },
  ip_denied = { 403, "Endpoint IP address is not allowed." },
  params_fail = { 403, "Get vin params fail." },
  header_param = { 403, "header x-custom is required." },
  path_param = { 403, "path variable id is required." },
  query_param = { 403, "querystring vin is required." },
  body_param = { 403, "body param vin is required." },
  form_content_type = { 403, "req content type need application/x-www-form-urlencoded." },
  no_micro_service = { 404, "Not found micro service with key." },
  no_host = { 404, "Not Found Host." },
  get_host_fail = { 404, "Get Host Fail." },
  method_unsupported = { 404, "Could not support method." },
  no_api = { 404, "Found no api." },
  no_match_host = { 404, "There is no api match host[127.0.0.1]." },
  no_match_env = { 404, "There is no api match env_mapping[release]." },
  no_match_default_env = { 404, "There is no api match default env_mapping[release]." },
  no_match_uri = { 404, "There is no api match uri[/maintenance/order]." },
  no_match_method = { 404, "There is no api match method[POST]." },
  method_not_allowed = { 405, "Method Not Allowed." },
  https_not_allowed = { 426, "Not allow use HTTPS protocol." },
  http_not_allowed = { 426, "Not allow use HTTP protocol." },
  rate_limit = { 429, "API rate limit exceeded." },
  quota = { 429, "API quota exceeded." },
  cors = { 429, "req is cross origin, api service-plb7hsqv need open cors flag on qcloud apigateway." },
  api_config = { 481, "API config error." },
  tsf_config = { 481, "TSF config error." },
  mock_config = { 481, "Mock config error." },
  cors_config = { 481, "Found no valid cors config." },
  client_closed = { 499, "Client closed connetion." },
  query_params_error = { 500, "Error occurred during query params." },
  internal_error = { 500, "Internal Server Error." },
  bad_gateway = { 502, "Bad Gateway." },
  gateway_timeout = { 504, "Gateway Time-out." },
}

return M
