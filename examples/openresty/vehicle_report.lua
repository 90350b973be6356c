-- Example OpenResty service: GET /vehicles/{vin}/report runs the whole paid query
-- (order, then poll) and answers the normalized report as JSON.
--
-- Every report costs money, so a VIN is bought at most once at a time, across all
-- workers: the first request takes a lock in a lua_shared_dict (dict:add is atomic
-- across workers) and the others wait for its result in the same dict. Finished
-- reports are cached there for cache_ttl seconds. The order id is kept as soon as
-- the order is placed, so a request that timed out (or a worker that died) is resumed
-- by polling the same order instead of buying a second one.
local mr = require "maintenance_report"
local json = require "maintenance_report.json" -- empty report lists stay [], numbers shortest

local M = {}

M.settings = {
  dict = "maintenance_report", -- lua_shared_dict name
  cache_ttl = 86400,           -- seconds a finished report is served from the cache
  error_ttl = 5,               -- seconds a failure is shared with requests that waited for it
  order_ttl = 86400,           -- seconds an unfinished order id is kept for resuming
  max_wait = 120,              -- seconds one request polls the vendor before answering 504
  timeout = 10,                -- seconds per API call
  poll_interval = 3,           -- longest pause between two polls
  wait_step = 0.05,            -- seconds between two looks at another request's result
}

--- Called from init_by_lua_block; unknown settings are a configuration error.
function M.configure(opts)
  for k, v in pairs(opts or {}) do
    if M.settings[k] == nil then error("vehicle_report.configure: unknown setting '" .. tostring(k) .. "'", 2) end
    M.settings[k] = v
  end
end

-- upstream error kind → HTTP status of our answer
local STATUS_BY_KIND = { invalid_input = 400, timeout = 504, pending = 504 }

--- The HTTP status for a client error: 400 for input, 504 for time, 502 for the rest.
function M.status_for(err)
  return STATUS_BY_KIND[err.kind] or 502
end

--- {"error":{"kind":…,"message":…,"order_id":…}}
function M.error_body(kind, message, order_id)
  return json.encode{ error = { kind = kind, message = tostring(message), order_id = order_id } }
end

-- One client per worker, built on first use: env is read at request time, and
-- inside nginx the client picks the cosocket transport by itself.
local client
local function get_client()
  if client then return client end
  local id, key = os.getenv("MAINTENANCE_REPORT_SECRET_ID"), os.getenv("MAINTENANCE_REPORT_SECRET_KEY")
  if not id or id == "" or not key or key == "" then
    return nil, "MAINTENANCE_REPORT_SECRET_ID and MAINTENANCE_REPORT_SECRET_KEY must be set, "
      .. "and listed with `env` directives in nginx.conf"
  end
  local endpoint = os.getenv("MAINTENANCE_REPORT_ENDPOINT")
  local c, err = mr.new{
    secret_id = id, secret_key = key, endpoint = endpoint ~= "" and endpoint or nil,
    timeout = M.settings.timeout, poll_interval = M.settings.poll_interval, max_wait = M.settings.max_wait,
  }
  if not c then return nil, tostring(err) end
  client = c
  return client
end

local function dict()
  return ngx.shared[M.settings.dict] or error("lua_shared_dict " .. M.settings.dict .. " is not declared")
end

-- Runs the paid workflow for one VIN while holding its lock; stores the outcome.
local function fetch(shared, vin)
  local c, config_err = get_client()
  if not c then return 500, M.error_body("configuration", config_err) end
  local order_id = shared:get("order:" .. vin) -- an order a previous attempt placed
  if not order_id then
    local order, err = c:create_order{ vin = vin }
    if not order then
      local body = M.error_body(err.kind, err.message, err.order_id)
      shared:set("error:" .. vin, M.status_for(err) .. "\n" .. body, M.settings.error_ttl)
      return M.status_for(err), body
    end
    order_id = order.order_id
    shared:set("order:" .. vin, order_id, M.settings.order_ttl)
  end
  local report, err = c:wait_report(order_id, { max_wait = M.settings.max_wait })
  if not report then
    -- The order stays remembered: the next request resumes it instead of buying again.
    local body = M.error_body(err.kind, err.message, order_id)
    shared:set("error:" .. vin, M.status_for(err) .. "\n" .. body, M.settings.error_ttl)
    return M.status_for(err), body
  end
  report.raw = nil
  local body = json.encode(report)
  shared:set("report:" .. vin, body, M.settings.cache_ttl)
  shared:delete("order:" .. vin) -- done: after the cache expires, a fresh report is bought
  return 200, body
end

-- A finished answer for vin, if any: status, body, cache label.
local function finished(shared, vin)
  local body = shared:get("report:" .. vin)
  if body then return 200, body end
  local stored = shared:get("error:" .. vin)
  if stored then
    local status, error_body = stored:match("^(%d+)\n(.*)$")
    return tonumber(status), error_body
  end
end

local lock_seq = 0

-- Status and body for vin: from the cache, from another request's work, or bought here.
local function serve(shared, vin)
  local status, body = finished(shared, vin)
  if status then return status, body, "HIT" end
  -- Longer than the owner can take, so a live owner never loses its lock; a dead
  -- worker's lock expires and a waiter takes over (resuming the stored order).
  local lock_ttl = M.settings.max_wait + 6 * M.settings.timeout + 30
  local give_up = ngx.now() + lock_ttl
  lock_seq = lock_seq + 1
  local token = ngx.worker.pid() .. ":" .. lock_seq
  while true do
    if shared:add("lock:" .. vin, token, lock_ttl) then
      -- Re-check: the previous owner stores its result before it releases the lock.
      status, body = finished(shared, vin)
      local label = status and "HIT" or "MISS"
      if not status then
        local ok
        ok, status, body = pcall(fetch, shared, vin)
        if not ok then
          ngx.log(ngx.ERR, "vehicle_report: ", status)
          status, body = 500, M.error_body("internal", "internal error")
        end
      end
      if shared:get("lock:" .. vin) == token then shared:delete("lock:" .. vin) end
      return status, body, label
    end
    ngx.sleep(M.settings.wait_step)
    status, body = finished(shared, vin)
    if status then return status, body, "SHARED" end
    if ngx.now() >= give_up then
      return 504, M.error_body("timeout", "gave up waiting for another request for this VIN"), "SHARED"
    end
  end
end

local function respond(status, body, cache)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  if cache then ngx.header["X-Cache"] = cache end
  ngx.print(body, "\n")
end

--- content_by_lua handler for GET /vehicles/{vin}/report.
function M.report(raw_vin)
  local vin, message = mr.validate.vin(raw_vin, { check_digit = true })
  if not vin then return respond(400, M.error_body("invalid_input", message)) end
  local shared = dict()
  shared:incr("in_flight", 1, 0)
  local ok, status, body, cache = pcall(serve, shared, vin)
  shared:incr("in_flight", -1, 0)
  if not ok then
    ngx.log(ngx.ERR, "vehicle_report: ", status)
    status, body = 500, M.error_body("internal", "internal error")
  end
  return respond(status, body, cache)
end

--- content_by_lua handler for /health: answers at once, whatever is in flight.
function M.health()
  local in_flight = dict():get("in_flight") or 0
  respond(200, json.encode{ status = "ok", in_flight = in_flight })
end

return M
