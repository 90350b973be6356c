-- Typed errors: every runtime failure is `nil, err` with err a table of this kind.
local errors = {}

-- Every error kind. What produces each one is decided in classify.lua.
errors.KINDS = {
  invalid_input = "bad input or options; nothing was sent",
  auth = "the gateway refused the credentials or the signature",
  forbidden = "the gateway refused the call for this key (no usage plan, 403 refusals, 426, the CORS 429)",
  not_found = "the gateway has no API at this path or for this method (404 routing, 405)",
  rate_limited = "the gateway's rate limit; a later retry may work",
  quota_exceeded = "the usage plan's quota is used up",
  network = "DNS, connection, or a connection that broke",
  tls = "TLS handshake or certificate verification failed",
  timeout = "no answer in time",
  http = "an HTTP status the gateway does not document (5xx and others)",
  protocol = "an answer that is not what the API sends",
  api = "a business error from the vendor",
  pending = "the report is still being made; resume with the order id",
  cancelled = "the work was cancelled through its handle",
  ledger = "the order ledger failed or is damaged; no order was decided",
  ledger_busy = "another holder kept the ledger key past the wait",
  store_unavailable = "the shared ledger store (Redis) cannot be reached; no order was sent",
  budget_exceeded = "the spend budget has no room for this order; nothing was sent",
  unknown_outcome = "an earlier order for this vehicle may have been charged; check before ordering again",
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
-- including nested tables such as err.raw (the decoded answer). `secret` is
-- the secret string, or a function that scrubs a string (a signer's scrub,
-- so that the secret itself need not be kept in Lua).
function errors.redact(err, secret, seen)
  seen = seen or {}
  seen[err] = true
  local scrubber = type(secret) == "function" and secret or function(v) return scrub(v, secret) end
  for k, v in pairs(err) do
    if type(v) == "string" then
      err[k] = scrubber(v)
    elseif type(v) == "table" and not seen[v] then
      errors.redact(v, scrubber, seen)
    end
  end
  return err
end

return errors
