-- Request entry points inside nginx: the gateway in front, then the vendor's
-- two endpoints; plus the loopback-only admin endpoints.
local faults = require "maintenance_report_sandbox.faults"
local gateway = require "maintenance_report_sandbox.gateway"
local json = require "maintenance_report_sandbox.json"
local reports = require "maintenance_report_sandbox.reports"
local scenarios = require "maintenance_report_sandbox.scenarios"
local state = require "maintenance_report_sandbox.state"

local M = {}

local STAGE = "/release"
local reply = faults.reply

local settings = {
  secrets = {},
  pending_polls = 1,
  latency_ms = 0,
}

-- Called once from init_by_lua (in the master, before the workers fork).
function M.configure(s)
  settings.secrets = { [s.secret_id] = s.secret_key }
  settings.pending_polls = s.pending_polls or 1
  settings.latency_ms = s.latency_ms or 0
end

local MISSING_VIN = '{"code":"20704","message":"车架号不能为空","result":{}}'
local MISSING_ORDER_ID = '{"code":"20804","message":"订单号不能为空","result":{}}'

local function first(v)
  if type(v) == "table" then v = v[1] end
  if type(v) ~= "string" or v == "" then return nil end
  return v
end

local function order_json(id)
  return '{"code":"0","message":"成功","data":{"result":"1","description":"查询成功,有数据",'
    .. '"detail":{"resultCode":1200,"resultMsg":"购买成功","orderId":"' .. id .. '"}}}'
end

-- A fresh order id: 32 lowercase hex, from nginx's random $request_id mixed
-- with the time, so it never equals the request id it came with.
local function new_order_id()
  return ngx.md5(ngx.var.request_id .. ngx.now() .. "order")
end

local function report_json(vin)
  return state.cached_report(vin, reports.ready_json)
end

local function order()
  local vin = first(ngx.req.get_uri_args().vin)
  if not vin then return reply(200, MISSING_VIN) end
  -- Counted on arrival, before any deliberate delay or fault: from the
  -- client's side any of these may have been billed.
  state.count_order(vin)

  local sc = scenarios.decode(vin:upper())
  if sc and sc.phase == "order" then
    if sc.fault == "slow" then
      ngx.sleep(sc.delay)
    elseif state.fire("order:" .. vin, sc.times) then
      -- The order is not stored: the client never learns a usable id.
      return faults.respond(sc.fault, order_json(new_order_id()))
    end
  end

  local id = new_order_id()
  ngx.update_time()
  local ok, err = state.create_order(id, vin, ngx.now())
  if not ok then
    ngx.log(ngx.ERR, "cannot store order: ", err)
    return reply(200, faults.SERVICE_ERROR)
  end
  return reply(200, order_json(id))
end

local function report()
  state.count_report_read()
  local id = first(ngx.req.get_uri_args().order_id)
  if not id then return reply(200, MISSING_ORDER_ID) end
  local vin, created = state.get_order(id)
  if not vin then return reply(200, faults.SERVICE_ERROR) end

  local polls = settings.pending_polls
  local sc = scenarios.decode(vin:upper())
  if sc and sc.phase == "report" then
    if sc.fault == "slow" then
      ngx.sleep(sc.delay)
    elseif sc.fault and state.fire("report:" .. id, sc.times) then
      return faults.respond(sc.fault, report_json(vin))
    end
    polls = sc.polls or polls
  end

  -- Pending while fewer than `polls` polls were answered, or while younger
  -- than latency_ms; faults above do not count as polls.
  local pending = polls > 0 and state.poll(id) <= polls
  if not pending and settings.latency_ms > 0 then
    ngx.update_time()
    pending = (ngx.now() - created) * 1000 < settings.latency_ms
  end
  if pending then return reply(200, reports.PENDING_JSON) end
  if sc and sc.name == "no_records" then return reply(200, reports.NO_RECORDS_JSON) end
  return reply(200, report_json(vin))
end

local ROUTES = {
  [STAGE .. "/maintenance/order"] = order,
  [STAGE .. "/maintenance_report/get"] = report,
}

-- The gateway's 404 names the path below the stage ("/release").
local function no_api(uri)
  if uri:sub(1, #STAGE + 1) == STAGE .. "/" then uri = uri:sub(#STAGE + 1) end
  return reply(404, faults.message_json("There is no api match uri[" .. uri .. "]."))
end

-- The gateway's switches (POST /__sandbox/gateway), in the stats dict so that
-- every worker sees them and /__sandbox/reset clears them.
local SWITCHES = { "answer", "status", "times", "rate_limit", "auth" }

local function switches()
  local stats = ngx.shared.mr_sandbox_stats
  local cfg = {}
  for _, k in ipairs(SWITCHES) do cfg[k] = stats:get("gw:" .. k) end
  return cfg
end

-- X-RateLimit-* as the gateway sends them, when a limit is set; over the
-- limit within one second of the sandbox's clock, the gateway's 429.
local function rate_limit(limit)
  local stats = ngx.shared.mr_sandbox_stats
  local used = stats:incr("gw:window:" .. ngx.time(), 1, 0, 10)
  ngx.header["X-RateLimit-Limit"] = tostring(limit)
  ngx.header["X-RateLimit-Used"] = math.min(used, limit) .. "/" .. limit
  if used > limit then
    stats:incr("gw:rate_limited", 1, 0)
    return true
  end
end

-- Answers with a published text (gateway.TEXTS): the alternative wording when
-- the status asked for is the signing guide's.
local function gateway_text(id, status)
  ngx.shared.mr_sandbox_stats:incr("gw:answered", 1, 0)
  local entry = gateway.TEXTS[id]
  local text = entry[2]
  if status and entry.alt and status == entry.alt[1] then text = entry.alt[2] end
  return reply(status or entry[1], faults.message_json(text))
end

function M.api()
  ngx.header["X-Api-RequestId"] = ngx.var.request_id
  local cfg = switches()
  -- /__text/ID/STATUS/…: that text for this request only (0: its first status), so
  -- that concurrent specs need no shared switch.
  local text_id, text_status = ngx.var.uri:match("^/__text/([%w_]+)/(%d+)/")
  if text_id and gateway.TEXTS[text_id] then
    return gateway_text(text_id, tonumber(text_status) ~= 0 and tonumber(text_status) or nil)
  end
  if cfg.answer and state.fire("gw:answer", cfg.times or 0) then return gateway_text(cfg.answer, cfg.status) end
  if cfg.rate_limit and rate_limit(cfg.rate_limit) then
    return reply(429, faults.message_json(gateway.TEXTS.rate_limit[2]))
  end
  local uri = ngx.var.uri
  local route = ROUTES[uri]
  -- Both APIs are published for GET only; anything else matches no API.
  if not route or ngx.req.get_method() ~= "GET" then return no_api(uri) end
  local headers = ngx.req.get_headers()
  local ok, status, message
  if cfg.auth == "app" then
    ok, status, message = gateway.check_app(headers, ngx.req.get_method(), uri:sub(#STAGE + 1),
      ngx.req.get_uri_args(), settings.secrets, ngx.time())
  else
    ok, status, message = gateway.check(headers, settings.secrets, ngx.time())
  end
  if not ok then return reply(status, faults.message_json(message)) end
  return route()
end

-- POST /__sandbox/gateway?answer=ID&status=N&times=N&rate_limit=N&auth=app|key
-- sets switches (an empty value clears one); GET shows them and the counters.
local function gateway_admin()
  local stats = ngx.shared.mr_sandbox_stats
  if ngx.req.get_method() == "POST" then
    local args = ngx.req.get_uri_args()
    for _, k in ipairs(SWITCHES) do
      local v = args[k]
      if v == "" or v == true then
        stats:delete("gw:" .. k)
      elseif type(v) == "string" then
        if k == "answer" and not gateway.TEXTS[v] then return nil, "unknown answer " .. v end
        if k == "auth" and v ~= "app" and v ~= "key" then return nil, "auth must be app or key" end
        if k ~= "answer" and k ~= "auth" then
          v = tonumber(v)
          if not v or v < 0 or v ~= math.floor(v) then return nil, k .. " must be a whole number" end
        end
        stats:set("gw:" .. k, v)
      end
    end
    ngx.shared.mr_sandbox_orders:delete("f:gw:answer")
  end
  local cfg = switches()
  local kv = {}
  for _, k in ipairs(SWITCHES) do
    if cfg[k] ~= nil then kv[#kv + 1] = k; kv[#kv + 1] = cfg[k] end
  end
  kv[#kv + 1] = "answered"; kv[#kv + 1] = stats:get("gw:answered") or 0
  kv[#kv + 1] = "rate_limited"; kv[#kv + 1] = stats:get("gw:rate_limited") or 0
  return json.encode(json.object(kv))
end

-- Admin endpoints, never behind the gateway; nginx allows only loopback.
function M.admin()
  local action = ngx.var.uri:match("^/__sandbox/(%w+)$")
  local body
  if action == "stats" then
    body = state.stats_json()
  elseif action == "counts" then
    body = state.counts_json()
  elseif action == "reset" then
    state.reset()
    body = '{"ok":true}'
  elseif action == "gateway" then
    local err
    body, err = gateway_admin()
    if not body then
      ngx.status = 400
      body = json.encode(json.object{ "error", err })
    end
  else
    ngx.status = 404
    body = '{"error":"unknown admin endpoint"}'
  end
  ngx.header["Content-Type"] = "application/json"
  ngx.header["Content-Length"] = #body
  ngx.print(body)
  return ngx.exit(ngx.OK)
end

return M
