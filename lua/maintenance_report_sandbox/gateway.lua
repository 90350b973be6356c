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

-- headers: request headers keyed by lower-case name (ngx.req.get_headers()).
-- secrets: id -> key. now: epoch seconds.
-- Returns true, id on success; false, status, message otherwise.
function M.check(headers, secrets, now)
  local auth = header_value(headers, "authorization")
  if auth == nil then return false, 401, MSG.missing end
  local p = M.parse_authorization(auth)
  if not p then return false, 401, MSG.format end
  if (p.id or "") == "" or (p.signature or "") == "" then return false, 401, MSG.missing end
  if not p.algorithm or not p.headers then return false, 401, MSG.format end
  if not hmac.algorithms[p.algorithm] then
    return false, 401, "HMAC algorithm " .. p.algorithm .. " not supported."
  end

  local names, listed = {}, {}
  for name in p.headers:gmatch("%S+") do
    name = name:lower()
    names[#names + 1] = name
    listed[name] = true
  end

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

return M
