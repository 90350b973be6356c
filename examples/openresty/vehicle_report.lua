-- Example OpenResty service: GET /vehicles/{vin}/report runs the whole paid query
-- (order, then poll) and answers the normalized report as JSON.
--
-- Every report costs money, so the client orders through an order ledger kept in
-- its own lua_shared_dict (maintenance_report.ledger.shm), shared by every worker
-- of this machine. The ledger, not this file, decides:
--   * concurrent requests for one VIN share one order (the others wait for the
--     first one's claim and get its report);
--   * a finished report is reused for cache_ttl seconds;
--   * a placed order still pending (504) is polled by the next request, not bought again;
--   * an order whose outcome is unknown (a timeout, a 5xx, a connection lost after
--     the request left) is never bought again: every request for that VIN answers
--     409 until an operator has checked the vendor's order list and calls M.forget.
-- A fleet of machines shares one ledger in Redis instead (ledger_url, or the
-- MAINTENANCE_REPORT_LEDGER environment variable; docs/fleet.md): then one order
-- per vehicle holds across machines, a machine that dies while polling leaves
-- its order id for the others, spend budgets and the rate limit are the
-- fleet's, and the shm dict becomes this machine's cache of finished reports.
local mr = require "maintenance_report"
local json = require "maintenance_report.json" -- empty report lists stay [], numbers shortest
local ledger_mod = require "maintenance_report.ledger"
local metrics_mod = require "maintenance_report.metrics"
local rate_limit_mod = require "maintenance_report.rate_limit"

local M = {}

M.settings = {
  dict = "maintenance_report",               -- lua_shared_dict for the service's own counters
  ledger_dict = "maintenance_report_ledger", -- lua_shared_dict of the order ledger, used by nothing else
  cache_ttl = 86400,   -- seconds a finished report is reused from the ledger (0: never)
  max_wait = 120,      -- seconds one request polls the vendor before answering 504
  timeout = 10,        -- seconds per API call
  poll_interval = mr.DEFAULTS.poll_interval, -- longest pause between two polls (the library's adaptive policy)
  retry_after = 5,     -- seconds in Retry-After of a 504 pending or 503 answer: when to ask again
  ledger_wait = false, -- seconds a request waits for another one on the same VIN (false: see below)
  -- A fleet (docs/fleet.md). ledger_url: redis://[[user]:password@]host:port/db; false reads
  -- MAINTENANCE_REPORT_LEDGER (list it with `env`), and without either the ledger is this machine's.
  ledger_url = false,
  ledger_prefix = "mr:ledger:", -- Redis key prefix: one per deployment sharing a Redis
  claim_ttl = 60,      -- seconds a dead machine's claim on a VIN lasts before another takes over its polling
  wait_replicas = 0,   -- Redis replicas that must have each ledger write before an order leaves (WAIT)
  -- On store_unavailable (Redis down): "serve_local" answers reports this machine has
  -- cached; "fail" answers 503. Orders always fail closed: no claim, no order.
  on_store_unavailable = "serve_local",
  price = 17,          -- yuan per order, for budgets and maintenance_report_spent_yuan_total
  budget = false,      -- { day =, month =, tenant_day =, tenant_month = } in yuan (false: none)
  tenant_header = false, -- request header naming the tenant for tenant_day / tenant_month (e.g. "X-Tenant")
  rate_limit = false,  -- { rate = calls/s, burst = } for the whole fleet: size it below the usage plan
  metrics_dict = "maintenance_report_metrics", -- lua_shared_dict of /metrics
  -- lua_shared_dict of this machine's answers to cache hits, served before the ledger
  -- is consulted (not declared: every request goes through the ledger)
  cache_dict = "maintenance_report_cache",
}

--- Called from init_by_lua_block (more than once merges); unknown settings are a configuration error.
function M.configure(opts)
  for k, v in pairs(opts or {}) do
    if M.settings[k] == nil then error("vehicle_report.configure: unknown setting '" .. tostring(k) .. "'", 2) end
    M.settings[k] = v
  end
end

-- error kind → HTTP status of our answer, for errors whose order is not of unknown outcome
local STATUS_BY_KIND = {
  invalid_input = 400, pending = 504, timeout = 504, ledger_busy = 503, store_unavailable = 503,
  budget_exceeded = 402, ledger = 500, configuration = 500, internal = 500,
}

--- The HTTP status for a client error (docs/openresty.md, "Errors and statuses").
--- 409 whenever an order may have been charged without an id: a 4xx, so that no
--- proxy or client retries it by itself, as they may a 502 or 504 on a GET.
function M.status_for(err)
  if err.order_outcome == "unknown" then return 409 end
  return STATUS_BY_KIND[err.kind] or 502
end

--- {"error":{"kind":…,"message":…,"order_outcome":…,"vin":…,"request_id":…,"order_id":…}}
--- order_outcome: "unknown" or "not_placed" for a failed order, "placed" when an order id exists.
function M.error_body(err)
  local reason = type(err.reason) == "table" and err.reason or {}
  local outcome = err.order_outcome or (err.order_id and "placed" or nil)
  return json.encode{ error = {
    kind = err.kind, message = tostring(err.message), order_outcome = outcome,
    vin = err.vin, request_id = err.request_id or reason.request_id, order_id = err.order_id,
  } }
end

local function shared_dict(name)
  return ngx.shared[name] or error("lua_shared_dict " .. name .. " is not declared", 0)
end

-- One ledger, one client and one metrics writer per worker, built on first use:
-- env is read at request time, and inside nginx the client picks the cosocket
-- transport by itself.
local ledger, client, metrics

local function ledger_url()
  local url = M.settings.ledger_url or os.getenv("MAINTENANCE_REPORT_LEDGER")
  return url ~= "" and url or nil
end

local function get_ledger()
  if ledger then return ledger end
  local s = M.settings
  local url = ledger_url()
  if url then
    local L, err = ledger_mod.redis(url, { prefix = s.ledger_prefix, claim_ttl = s.claim_ttl,
      wait_replicas = s.wait_replicas, budget = s.budget and M.budget_options() or nil })
    if not L then error("vehicle_report: ledger_url: " .. tostring(err), 0) end
    ledger = L
  else
    ledger = ledger_mod.shm(shared_dict(s.ledger_dict), { budget = s.budget and M.budget_options() or nil })
  end
  return ledger
end

function M.budget_options()
  local b = { price = M.settings.price }
  for k, v in pairs(M.settings.budget) do b[k] = v end
  return b
end

local function get_metrics()
  metrics = metrics or metrics_mod.new{ dict = shared_dict(M.settings.metrics_dict), price = M.settings.price }
  return metrics
end

local function get_client()
  if client then return client end
  local id, key = os.getenv("MAINTENANCE_REPORT_SECRET_ID"), os.getenv("MAINTENANCE_REPORT_SECRET_KEY")
  if not id or id == "" or not key or key == "" then
    return nil, "MAINTENANCE_REPORT_SECRET_ID and MAINTENANCE_REPORT_SECRET_KEY must be set, "
      .. "and listed with `env` directives in nginx.conf"
  end
  local s = M.settings
  local endpoint = os.getenv("MAINTENANCE_REPORT_ENDPOINT")
  local L = get_ledger()
  local limiter
  if s.rate_limit then
    local rerr
    limiter, rerr = rate_limit_mod.new(L.store, s.rate_limit)
    if not limiter then return nil, "rate_limit: " .. tostring(rerr) end
  end
  local m = get_metrics()
  local c, err = mr.new{
    secret_id = id, secret_key = key, endpoint = endpoint ~= "" and endpoint or nil,
    timeout = s.timeout, poll_interval = s.poll_interval, max_wait = s.max_wait,
    ledger = L, reuse = s.cache_ttl, rate_limit = limiter,
    on_event = function(e) m:event(e) end,
    -- Longer than the request holding the VIN can take (3 order attempts, max_wait of
    -- polls, 3 report attempts, backoff), so a waiter gets its report, not a 503.
    ledger_wait = s.ledger_wait or (s.max_wait + 6 * s.timeout + 30),
  }
  if not c then return nil, tostring(err) end
  client = c
  return client
end

-- With Redis as the ledger and on_store_unavailable = "serve_local", this machine
-- keeps the finished reports it served in its shm dict too, so that they can still
-- be read while Redis is down (for cache_ttl). Otherwise nothing is kept.
local function local_cache()
  local s = M.settings
  if not (s.cache_ttl > 0 and s.on_store_unavailable == "serve_local" and ledger_url()) then return nil end
  return shared_dict(s.ledger_dict)
end

-- The answers to cache hits, as bytes: a hit costs a VIN check, one dict read and
-- one write. Only the answers of reports the ledger reused are kept, since a reused
-- report reads the same every time, until it leaves the ledger's reuse window
-- (cache_ttl after its order was placed, at most: the ledger counts from when it
-- became final). Off when cache_ttl is 0, and for a Redis ledger with
-- on_store_unavailable = "fail", which must answer 503 while Redis is down.
local hits, hits_known
-- The metrics dict's key of maintenance_report_reports_total{source="cache"}: built
-- once, since building it per hit costs more than the rest of the hit
-- (spec/openresty_cache_spec.lua reads the count back from /metrics).
local HIT_COUNTER = 'c\tmaintenance_report_reports_total{source="cache"}'

local function hit_cache()
  if hits_known then return hits end
  local s = M.settings
  hits_known = true
  if s.cache_ttl > 0 and s.cache_dict and not (ledger_url() and s.on_store_unavailable == "fail") then
    hits = ngx.shared[s.cache_dict]
  end
  return hits
end

local function keep_hit(vin, report, body)
  local cache = hit_cache()
  if not cache or not report.reused or type(report.ordered_at) ~= "number" then return end
  local ttl = report.ordered_at + M.settings.cache_ttl - ngx.time()
  if ttl >= 1 then cache:set(vin, body .. "\n", ttl) end
end

-- Status, body, extra headers for vin: bought now, reused, resumed or refused by the ledger.
local function serve(vin, tenant)
  local c, config_err = get_client()
  if not c then return 500, M.error_body{ kind = "configuration", message = config_err } end
  local report, err = c:query{ vin = vin, tenant = tenant }
  local cache = local_cache()
  if report then
    if not report.reused then
      ngx.log(ngx.NOTICE, "vehicle_report: vin ", vin, " order ", report.order_id, " ", report.status)
    end
    report.raw = nil
    local body = json.encode(report)
    if cache then cache:safe_set("report:" .. vin, body, M.settings.cache_ttl) end
    keep_hit(vin, report, body)
    return 200, body, { ["X-Cache"] = report.reused and "HIT" or "MISS" }
  end
  get_metrics():error(err)
  if err.kind == "store_unavailable" and cache then
    local body = cache:get("report:" .. vin)
    if body then return 200, body, { ["X-Cache"] = "LOCAL" } end
  end
  err.vin = err.vin or vin
  local status = M.status_for(err)
  if status == 409 or err.order_id then
    -- The ledger is memory: the error log keeps what an operator needs after a restart.
    ngx.log(ngx.WARN, "vehicle_report: vin ", vin, " ", err.kind, " order_outcome ",
      tostring(err.order_outcome), " order ", tostring(err.order_id), " request ", tostring(err.request_id))
  end
  local headers
  if status == 503 or err.kind == "pending" then
    headers = { ["Retry-After"] = tostring(math.ceil(M.settings.retry_after)) }
  end
  return status, M.error_body(err), headers
end

-- Every answer says its length: a chunked answer ends with a last chunk that nginx
-- writes on its own, after the body, and a second segment per answer costs a hit
-- more than the whole Lua part of it (BENCHMARKS.md, section 7).
local function respond(status, body, headers)
  ngx.status = status
  local header = ngx.header
  header["Content-Type"] = "application/json"
  header["Content-Length"] = #body + 1
  for name, value in pairs(headers or {}) do header[name] = value end
  ngx.print(body, "\n")
end

--- content_by_lua handler for GET /vehicles/{vin}/report.
local CHECK_DIGIT = { check_digit = true }

local function answer_hit(hit)
  local header = ngx.header
  header["Content-Type"] = "application/json"
  header["Content-Length"] = #hit
  header["X-Cache"] = "HIT"
  get_metrics().dict:incr(HIT_COUNTER, 1, 0)
  return ngx.print(hit)
end

function M.report(raw_vin)
  local cache = hit_cache()
  -- Kept answers are keyed by valid, normalized VINs: one found under the VIN as
  -- asked needs no check. The 17 bounds the key; anything else is checked first.
  local hit = cache and #raw_vin == 17 and cache:get(raw_vin)
  if hit then return answer_hit(hit) end
  local vin, message = mr.validate.vin(raw_vin, CHECK_DIGIT)
  if not vin then return respond(400, M.error_body{ kind = "invalid_input", message = message }) end
  hit = cache and vin ~= raw_vin and cache:get(vin)
  if hit then return answer_hit(hit) end
  local counters = shared_dict(M.settings.dict)
  counters:incr("in_flight", 1, 0)
  local tenant = M.settings.tenant_header and ngx.req.get_headers()[M.settings.tenant_header] or nil
  if type(tenant) == "table" then tenant = tenant[1] end
  local ok, status, body, headers = pcall(serve, vin, tenant)
  counters:incr("in_flight", -1, 0)
  if not ok then
    ngx.log(ngx.ERR, "vehicle_report: ", status)
    -- The client raises with the order id when an order was placed: keep it in the answer.
    local order_id = tostring(status):match("order (%S+) was placed")
    status, body = 500, M.error_body{ kind = "internal", message = "internal error", vin = vin, order_id = order_id }
  end
  return respond(status, body, headers)
end

--- content_by_lua handler for /health: answers at once, whatever is in flight.
function M.health()
  local in_flight = shared_dict(M.settings.dict):get("in_flight") or 0
  respond(200, json.encode{ status = "ok", in_flight = in_flight })
end

--- content_by_lua handler for /metrics: the Prometheus text format. Counters are this
--- machine's (scrape every machine); the budget is the fleet's when the ledger is Redis.
function M.metrics()
  local gauges = { { name = "maintenance_report_in_flight", help = "Report requests being served now.",
    value = shared_dict(M.settings.dict):get("in_flight") or 0 } }
  local ok, remaining = pcall(function() return get_ledger():budget_remaining() end)
  if ok and remaining then
    local points = {}
    for i, b in ipairs(remaining) do points[i] = { labels = { bucket = b.name }, value = b.remaining } end
    gauges[#gauges + 1] = { name = "maintenance_report_budget_remaining_yuan",
      help = "Yuan left in each spend budget an order draws on now.", points = points }
  end
  ngx.header["Content-Type"] = "text/plain; version=0.0.4"
  ngx.print(get_metrics():render(gauges))
end

--- Clears the ledger entry of a VIN, so that its next request may buy it again: for an
--- operator, after checking the vendor's order list. Not routed by the example: put it
--- behind a location only you can reach. Returns true, or nil, err (ledger_busy while
--- a request holds the VIN).
function M.forget(raw_vin)
  local vin, message = mr.validate.vin(raw_vin, CHECK_DIGIT)
  if not vin then return nil, { kind = "invalid_input", message = message } end
  -- dropped before and after: a request that read the entry just before may keep it again
  local cache = hit_cache()
  if cache then cache:delete(vin) end
  local ok, err = get_ledger():forget{ vin = vin }
  if ok and cache then cache:delete(vin) end
  return ok, err
end

return M
