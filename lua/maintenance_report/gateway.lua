-- What a client keeps about the gateway between calls, and how it signs for it:
-- key-pair or app-key auth (gateway.md), the clock offset it signs with, the
-- clock skew and rate limit the gateway's answers reveal, and the pacing that
-- keeps requests below a known limit. One per client.
local classify = require "maintenance_report.classify"
local core = require "maintenance_report.core"

local gateway = {}

gateway.AUTH_MODES = { key = true, app = true }
gateway.APP_ALGORITHMS = { ["hmac-sha1"] = true, ["hmac-sha256"] = true }
-- The environment segment the gateway strips from PathAndParameters (gateway.md).
gateway.STAGES = { release = true, test = true, prepub = true }
-- Pacing runs at this fraction of X-RateLimit-Limit, so that jitter in the
-- gateway's one-second windows never tips a burst over the limit.
gateway.PACE_FRACTION = 0.9
gateway.MAX_SKEW = 900 -- seconds the gateway accepts between X-Date and its clock

gateway.OPTION_RULES = {
  auth = { type = "string", check = function(v)
    if not gateway.AUTH_MODES[v] then return "must be 'key' (key pair) or 'app' (ApiAppKey/ApiAppSecret)" end
  end },
  -- seconds added to the local clock when signing, or "auto": measured from the gateway's Date header
  clock_offset = { type = "any", check = function(v)
    if v == "auto" then return nil end
    if type(v) ~= "number" or v ~= v or v < -86400 * 366 or v > 86400 * 366 then
      return "must be \"auto\" or a number of seconds within a year"
    end
  end },
  wall_clock = { type = "function" },
  accept = { type = "string", check = function(v)
    if v == "" or v:find("[%z\1-\31\127-\255]") then return "must be a non-empty printable ASCII media type" end
  end },
  pace = { type = "boolean" },
  -- the usage plan's limit when it is known in advance (requests per second); answers may refine it
  plan_rate_limit = { type = "number", min = 0.01, max = 1e6 },
}

local Gateway = {}
Gateway.__index = Gateway

--- o: the client's options (auth, clock_offset, wall_clock, accept, pace, endpoint,
--- algorithm); signer: its core.signer. Returns a gateway state, or nil, message.
function gateway.new(o, signer)
  local auth = o.auth or "key"
  if auth == "app" and not gateway.APP_ALGORITHMS[o.algorithm] then
    return nil, "app auth signs with hmac-sha1 or hmac-sha256, not " .. tostring(o.algorithm)
  end
  local path = o.endpoint:match("^https?://[^/]+(/.*)$") or ""
  local last = path:match("/([^/]+)$")
  if last and gateway.STAGES[last] then path = path:sub(1, #path - #last - 1) end
  return setmetatable({
    auth = auth, signer = signer, algorithm = o.algorithm, secret_id = o.secret_id,
    accept = o.accept or "application/json", api_prefix = path,
    auto = o.clock_offset == "auto", offset = type(o.clock_offset) == "number" and o.clock_offset or 0,
    wall_clock = o.wall_clock or os.time, pace_enabled = o.pace ~= false,
    skew = nil, rate_limit = o.plan_rate_limit and { limit = o.plan_rate_limit } or nil, last_slot = nil,
  }, Gateway)
end

--- The time to sign with: the local clock plus the offset.
function Gateway:date()
  return math.floor(self.wall_clock() + self.offset + 0.5)
end

-- PathAndParameters: the API path without the stage, then "?" and the
-- parameters sorted by key as k=v (a bare key for an empty value), values as
-- they are before URL encoding.
function gateway.path_and_parameters(api_path, params)
  local pairs_list = {}
  for i = 1, #params, 2 do pairs_list[#pairs_list + 1] = { params[i], params[i + 1] or "" } end
  if #pairs_list == 0 then return api_path end
  table.sort(pairs_list, function(a, b) return a[1] < b[1] end)
  local parts = {}
  for i, kv in ipairs(pairs_list) do parts[i] = kv[2] == "" and kv[1] or (kv[1] .. "=" .. kv[2]) end
  return api_path .. "?" .. table.concat(parts, "&")
end

--- The app-auth string to sign (gateway.md, 应用认证): signed headers as
--- "name: value\n", then method, Accept, Content-Type, Content-MD5 each with
--- "\n", then PathAndParameters. headers: { {name, value}, ... } in order.
function gateway.app_string_to_sign(headers, method, accept, content_type, content_md5, path_and_parameters)
  local out = {}
  for _, h in ipairs(headers) do out[#out + 1] = h[1]:lower() .. ": " .. h[2] .. "\n" end
  out[#out + 1] = method .. "\n" .. accept .. "\n" .. content_type .. "\n" .. content_md5 .. "\n"
  out[#out + 1] = path_and_parameters
  return table.concat(out)
end

--- Headers for one GET of path (below the endpoint) with params (a flat k, v
--- list). Returns headers, string_to_sign; or nil, message.
function Gateway:sign(path, params)
  local when = self:date()
  if self.auth == "key" then return self.signer:sign(when) end
  local date = core.http_date(when)
  local sts = gateway.app_string_to_sign({ { "x-date", date } }, "GET", self.accept, "", "",
    gateway.path_and_parameters(self.api_prefix .. path, params))
  local authorization = ('hmac id="%s", algorithm="%s", headers="x-date", signature="%s"'):format(
    self.secret_id, self.algorithm, self.signer:mac(sts))
  -- Accept is sent explicitly: a client default of */* would not be what was signed.
  return { ["X-Date"] = date, Accept = self.accept, Authorization = authorization }, sts
end

--- Waits (with sleep(seconds), the caller's) until a request may go: evenly
--- spaced below a known limit (the plan_rate_limit option, or the last
--- X-RateLimit-Limit). now: seconds, monotonic. A request made before the limit
--- was known counts too: the answer that names the limit is one of the
--- window's requests, so the next one goes an interval after it, not at once.
function Gateway:pace(sleep, now)
  if not self.pace_enabled then return end
  local t = now()
  local limit = self.rate_limit and self.rate_limit.limit
  if not limit or limit <= 0 then
    self.last_slot = t
    return
  end
  local interval = 1 / (limit * gateway.PACE_FRACTION)
  local slot = self.last_slot and math.max(t, self.last_slot + interval) or t
  self.last_slot = slot
  if slot > t then sleep(slot - t) end
end

--- Learns from an answer (resp nil: the request failed without one): the
--- rate limit, the clock skew (local minus the gateway's Date, seconds), and
--- under clock_offset = "auto" the offset that cancels it.
function Gateway:observe(resp)
  if not resp then return end
  local headers = resp.headers
  local rl = classify.rate_limit(headers)
  if rl and rl.limit then self.rate_limit = rl end
  -- The Date header changes once a second: its parse is kept for the next answers.
  local date = type(headers) == "table" and headers.date or nil
  local server
  if date ~= nil and date == self.date_header then
    server = self.date_server
  else
    server = classify.server_time(headers)
    self.date_header, self.date_server = date, server
  end
  if server then
    -- Both clocks read in whole seconds (Date and os.time truncate alike): ±1 s.
    self.skew = self.wall_clock() - server
    if self.auto then self.offset = -math.floor(self.skew + 0.5) end
  end
  return rl, server
end

--- "ahead of" / "behind" the gateway's clock, in whole seconds, for messages.
function gateway.describe_skew(skew)
  local s = math.floor(math.abs(skew) + 0.5)
  if s == 0 then return "the local clock agrees with the gateway's (to the second)" end
  return ("the local clock is %d s %s the gateway's"):format(s, skew >= 0 and "ahead of" or "behind")
end

--- For the echo "HMAC signature does not match, Server StringToSign:…" (# for each
--- newline): where the server's string to sign first differs from ours, as one line.
function gateway.first_difference(ours, echoed)
  local server = echoed:gsub("#", "\n")
  local i = 1
  while i <= #ours and i <= #server and ours:byte(i) == server:byte(i) do i = i + 1 end
  if i > #ours and i > #server then return "the server's string to sign equals ours" end
  local function show(str)
    local piece = str:sub(i, i + 29):gsub("\n", "#")
    if piece == "" then return "(end)" end
    return '"' .. piece .. (i + 29 < #str and '…"' or '"')
  end
  local line = select(2, ours:sub(1, i - 1):gsub("\n", "")) + 1
  return ("the server's string to sign (# for newline) differs from ours at byte %d, line %d: "
    .. "server %s, ours %s"):format(i, line, show(server), show(ours))
end

--- Adds what the gateway's answer tells about a failed call to err: the rate
--- limit on rate_limited errors, the measured skew on an out-of-date X-Date, and
--- the first difference from the echoed string to sign on a mismatch.
function gateway.explain(gw, err, sts, rate_limit)
  if err.kind == "rate_limited" and rate_limit then
    err.rate_limit = rate_limit
    err.message = err.message .. (" (X-RateLimit-Limit %s, X-RateLimit-Used %s/%s)"):format(
      tostring(rate_limit.limit or "?"), tostring(rate_limit.used or "?"), tostring(rate_limit.used_limit or "?"))
  end
  if err.gateway_text == "xdate_skew" and gw.skew then
    err.clock_skew = math.floor(gw.skew + 0.5)
    err.message = err.message .. "; " .. gateway.describe_skew(gw.skew) .. " (from its Date header)"
  end
  local echoed = err.gateway_text == "mismatch" and type(err.code) == "string"
    and err.code:match("Server StringToSign:(.*)$")
  if echoed and sts then
    err.string_to_sign_diff = gateway.first_difference(sts, echoed)
    err.message = "HMAC signature does not match; " .. err.string_to_sign_diff
  end
end

return gateway
