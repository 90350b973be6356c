-- Typed errors: every runtime failure is `nil, err` with err a table of this kind.
local errors = {}

errors.KINDS = {
  invalid_input = true, auth = true, forbidden = true, not_found = true,
  rate_limited = true, quota_exceeded = true, network = true, tls = true,
  timeout = true, http = true, protocol = true, api = true, pending = true,
}

local Error = {}
Error.__index = Error

-- One readable line: kind, message, then whatever details are known.
function Error:__tostring()
  local parts = { self.kind .. ": " .. tostring(self.message) }
  local details = {}
  if self.http_status then details[#details + 1] = "http " .. tostring(self.http_status) end
  if self.code ~= nil and tostring(self.code) ~= tostring(self.message) then
    details[#details + 1] = "code " .. tostring(self.code)
  end
  if self.order_id then details[#details + 1] = "order " .. tostring(self.order_id) end
  if self.order_outcome then details[#details + 1] = "order outcome " .. self.order_outcome end
  if self.request_id then details[#details + 1] = "request " .. tostring(self.request_id) end
  if #details > 0 then parts[#parts + 1] = "(" .. table.concat(details, ", ") .. ")" end
  return (table.concat(parts, " "):gsub("[\r\n]+", " "))
end

function errors.new(kind, message, fields)
  assert(errors.KINDS[kind], "unknown error kind " .. tostring(kind))
  local err = { kind = kind, message = message, retryable = false }
  for k, v in pairs(fields or {}) do err[k] = v end
  return setmetatable(err, Error)
end

function errors.is(value)
  return getmetatable(value) == Error
end

-- Gateway error messages (api.md) → kind. Matched on the start of the text.
local GATEWAY_MESSAGES = {
  { "HMAC signature does not match", "auth" },
  { "HMAC signature cannot be verified", "auth" },
  { "HMAC id or signature missing", "auth" },
  { "HMAC algorithm", "auth" },
  { "HMAC authorization format error", "auth" },
  { "HMAC apikey is invalid", "auth" },
  { "Found no validate usage plan", "forbidden" },
  { "There is no api match", "not_found" },
  { "API rate limit exceeded", "rate_limited" },
  { "API quota exceeded", "quota_exceeded" },
}

local STATUS_KINDS = { [401] = "auth", [403] = "forbidden", [404] = "not_found", [429] = "rate_limited" }

local function starts_with(s, prefix)
  return s:sub(1, #prefix) == prefix
end

-- Kind for a non-200 gateway answer; the message wins over the status
-- because some gateway versions answer format errors with 403.
function errors.gateway_kind(status, message)
  if type(message) == "string" then
    for _, entry in ipairs(GATEWAY_MESSAGES) do
      if starts_with(message, entry[1]) then return entry[2] end
    end
  end
  if STATUS_KINDS[status] then return STATUS_KINDS[status] end
  return "http"
end

-- A short, printable excerpt of a body that is not what we expected.
function errors.snippet(body, limit)
  limit = limit or 120
  if type(body) ~= "string" or body == "" then return "" end
  local text = body:sub(1, 4096)
  text = text:gsub("<[^>]*>", " ")             -- HTML tags say nothing useful
  text = text:gsub("[%z\1-\31\127]", " ")      -- no control characters
  text = text:gsub("%s+", " "):gsub("^ ", ""):gsub(" $", "")
  if #text > limit then
    local cut = limit
    -- never split a UTF-8 sequence: back off continuation bytes
    while cut > 0 and text:byte(cut + 1) and text:byte(cut + 1) >= 0x80 and text:byte(cut + 1) < 0xC0 do
      cut = cut - 1
    end
    text = text:sub(1, cut) .. "…"
  end
  return text
end

local function scrub(value, secret)
  if type(value) ~= "string" or secret == nil or secret == "" then return value end
  local start = 1
  local out = {}
  while true do
    local i, j = value:find(secret, start, true)
    if not i then break end
    out[#out + 1] = value:sub(start, i - 1)
    out[#out + 1] = "[REDACTED]"
    start = j + 1
  end
  if start == 1 then return value end
  out[#out + 1] = value:sub(start)
  return table.concat(out)
end

errors.scrub = scrub

-- Removes a secret from every string field, whatever produced the error,
-- including nested tables such as err.raw (the decoded answer).
function errors.redact(err, secret, seen)
  seen = seen or {}
  seen[err] = true
  for k, v in pairs(err) do
    if type(v) == "string" then
      err[k] = scrub(v, secret)
    elseif type(v) == "table" and not seen[v] then
      errors.redact(v, secret, seen)
    end
  end
  return err
end

return errors
