-- Raw HTTP for the sandbox specs: curl for requests, the openssl CLI for
-- signatures. Deliberately shares no code with the sandbox's handlers or the
-- project's C signer, so the specs check them rather than repeat them.
local cjson = require "cjson.safe"

local shell = require "maintenance_report_sandbox.shell" -- plain popen, no sandbox code

local M = {}

M.quote = shell.quote
local q = M.quote

-- Runs a shell command; returns stdout+stderr and the exit status.
M.sh = shell.run

local function read_file(path)
  return assert(require("helpers.shell").read_file(path))
end
M.read_file = read_file

function M.json(s) return cjson.decode(s) end
M.null = cjson.null

-- Wall-clock seconds with sub-second precision (os.time has whole seconds).
function M.now()
  return tonumber((M.sh("date +%s.%N")))
end

function M.http_date(t)
  return os.date("!%a, %d %b %Y %H:%M:%S GMT", t or os.time())
end

-- base64(HMAC(key, data)) via `openssl dgst`; algorithm like "hmac-sha256".
function M.sign(algorithm, key, data)
  local digest = assert(algorithm:match("^hmac%-(sha%d+)$"), algorithm)
  local out, rc = M.sh(string.format("printf '%%s' %s | openssl dgst -%s -hmac %s -binary | base64 | tr -d '\\n'",
    q(data), digest, q(key)))
  assert(rc == 0, out)
  return out
end

-- Signed request headers in the vendor's style.
-- opts: id, key, algorithm (hmac-sha1), date (epoch; now), source ("market"),
-- signed ({"x-date", "x-source"}), values (override header values used both
-- for signing and sending), signature (override), auth (whole header).
-- Returns a list of "Name: value" strings.
function M.signed_headers(opts)
  local algorithm = opts.algorithm or "hmac-sha1"
  local signed = opts.signed or { "x-date", "x-source" }
  local values = {
    ["x-date"] = M.http_date(opts.date),
    ["x-source"] = opts.source or "market",
  }
  for k, v in pairs(opts.values or {}) do values[k] = v end
  local lines, headers = {}, {}
  for _, name in ipairs(signed) do
    lines[#lines + 1] = name .. ": " .. (values[name] or "")
  end
  local signature = opts.signature or M.sign(algorithm, opts.key, table.concat(lines, "\n"))
  local auth = opts.auth or string.format('hmac id="%s", algorithm="%s", headers="%s", signature="%s"',
    opts.id, algorithm, table.concat(signed, " "), signature)
  for name, v in pairs(values) do
    if v ~= false then headers[#headers + 1] = name .. ": " .. v end
  end
  table.sort(headers)
  if auth ~= false then headers[#headers + 1] = "Authorization: " .. auth end
  return headers
end

-- GET (or opts.method) url with a list of "Name: value" headers.
-- Returns {status=, headers={lower-name=value}, body=, rc= (curl exit),
-- time= (seconds)}.
function M.request(url, headers, opts)
  opts = opts or {}
  local body_file, head_file = os.tmpname(), os.tmpname()
  local args = { "curl -sS --noproxy '*' -o", q(body_file), "-D", q(head_file),
    "-w", q("%{http_code} %{time_total}"), "--max-time", tostring(opts.max_time or 20) }
  if opts.method then args[#args + 1] = "-X " .. opts.method end
  for _, h in ipairs(headers or {}) do
    args[#args + 1] = "-H " .. q(h)
  end
  args[#args + 1] = q(url)
  local out, rc = M.sh(table.concat(args, " "))
  local code, time = out:match("(%d%d%d) ([%d%.]+)%s*$")
  local res = { status = tonumber(code), time = tonumber(time), rc = rc, out = out, headers = {} }
  res.body = read_file(body_file)
  res.raw_headers = read_file(head_file)
  for name, value in res.raw_headers:gmatch("([%w%-]+):%s*([^\r\n]*)\r?\n") do
    res.headers[name:lower()] = value
  end
  os.remove(body_file)
  os.remove(head_file)
  return res
end

-- Signed GET against a sandbox object: path is below the base URL, e.g.
-- "/maintenance/order?vin=...". opts as for signed_headers; id/key default
-- to the sandbox's.
function M.get(sb, path, opts)
  opts = opts or {}
  local h = {}
  for k, v in pairs(opts) do h[k] = v end
  h.id = h.id or sb.secret_id
  h.key = h.key or sb.secret_key
  return M.request(sb.base_url .. path, M.signed_headers(h), opts)
end

function M.order(sb, vin, opts)
  return M.get(sb, "/maintenance/order?vin=" .. vin .. "&engine_number=&plate_number=", opts)
end

-- Creates an order and returns its id (asserting success).
function M.order_id(sb, vin)
  local res = M.order(sb, vin)
  assert(res.status == 200, res.body)
  local doc = assert(cjson.decode(res.body), res.body)
  return assert(doc.data and doc.data.detail and doc.data.detail.orderId, res.body)
end

function M.report(sb, id, opts)
  return M.get(sb, "/maintenance_report/get?order_id=" .. id, opts)
end

-- Reads the report until it is no longer pending (bounded); returns the last
-- response and the number of pending answers seen.
function M.report_ready(sb, id)
  local pending = 0
  for _ = 1, 20 do
    local res = M.report(sb, id)
    local doc = cjson.decode(res.body)
    if not (doc and doc.data and doc.data.result == "0") then return res, pending end
    pending = pending + 1
  end
  error("report still pending after " .. pending .. " polls")
end

-- Deep comparison of decoded JSON shapes: same keys, same Lua types.
function M.same_shape(a, b, path)
  path = path or "$"
  if type(a) ~= type(b) then return false, path .. ": " .. type(a) .. " vs " .. type(b) end
  if type(a) ~= "table" then return true end
  for k, v in pairs(a) do
    if b[k] == nil then return false, path .. "." .. tostring(k) .. " missing" end
    if type(k) == "string" then
      local ok, err = M.same_shape(v, b[k], path .. "." .. k)
      if not ok then return false, err end
    end
  end
  return true
end

return M
