-- Sandbox state in lua_shared_dicts, so that every nginx worker sees the same
-- orders and counters. Only the functions touch ngx; the dict table is also
-- read by the config generator outside nginx.
local json = require "maintenance_report_sandbox.json"

local M = {}

-- name -> size (room for 100,000 orders and more). orders: order ids, poll and fault counters; stats: what specs
-- assert on; reports: generated report JSON per VIN (a cache: evicting an
-- entry only costs a regeneration).
M.DICTS = {
  mr_sandbox_orders = "64m",
  mr_sandbox_stats = "64m",
  mr_sandbox_reports = "64m",
}

local function dict(name) return ngx.shared[name] end

-- Counts an order attempt at arrival. Times are kept as t:1, t:2, ... so
-- the arrival order survives (the counter hands out the index atomically).
function M.count_order(vin)
  local stats = dict("mr_sandbox_stats")
  local n = stats:incr("orders", 1, 0)
  ngx.update_time()
  stats:set("t:" .. n, ngx.now())
  -- Distinct VINs and VINs ordered more than once, kept as counters so that a
  -- batch of 100,000 can be checked without listing every key.
  local times = stats:incr("v:" .. vin, 1, 0)
  if times == 1 then stats:incr("vins", 1, 0) elseif times == 2 then stats:incr("repeat_vins", 1, 0) end
end

function M.count_report_read()
  dict("mr_sandbox_stats"):incr("report_reads", 1, 0)
end

function M.create_order(id, vin, created)
  -- safe_set: a full dict must fail loudly rather than evict live orders.
  local ok, err = dict("mr_sandbox_orders"):safe_set("o:" .. id, string.format("%.3f", created) .. " " .. vin)
  if not ok then return nil, err end
  -- The ids issued per VIN, so a crash harness can check that none was lost.
  local stats = dict("mr_sandbox_stats")
  local n = stats:incr("n:" .. vin, 1, 0)
  return stats:safe_set("i:" .. vin .. ":" .. n, id)
end

-- Returns vin, created (epoch seconds) or nil.
function M.get_order(id)
  local v = dict("mr_sandbox_orders"):get("o:" .. id)
  if not v then return nil end
  local created, vin = v:match("^(%S+) (.*)$")
  return vin, tonumber(created)
end

-- Counts one report poll for an order; returns the count so far.
function M.poll(id)
  return dict("mr_sandbox_orders"):incr("p:" .. id, 1, 0)
end

-- Whether a fault with a "fires N times" budget fires now (times 0: always).
function M.fire(key, times)
  if times == 0 then return true end
  return dict("mr_sandbox_orders"):incr("f:" .. key, 1, 0) <= times
end

function M.cached_report(vin, generate)
  local cache = dict("mr_sandbox_reports")
  local body = cache:get(vin)
  if not body then
    body = generate(vin)
    cache:set(vin, body)
  end
  return body
end

function M.stats_json()
  local stats = dict("mr_sandbox_stats")
  local orders = stats:get("orders") or 0
  local times = {}
  for i = 1, orders do
    local t = stats:get("t:" .. i)
    if t then times[#times + 1] = json.raw(string.format("%.3f", t)) end
  end
  local vins = {}
  for _, key in ipairs(stats:get_keys(0)) do
    local vin = key:match("^v:(.*)$")
    if vin then vins[#vins + 1] = vin end
  end
  table.sort(vins)
  local by_vin, ids_by_vin = {}, {}
  for _, vin in ipairs(vins) do
    by_vin[#by_vin + 1] = vin
    by_vin[#by_vin + 1] = stats:get("v:" .. vin)
    local ids = {}
    for i = 1, stats:get("n:" .. vin) or 0 do ids[#ids + 1] = stats:get("i:" .. vin .. ":" .. i) end
    ids_by_vin[#ids_by_vin + 1] = vin
    ids_by_vin[#ids_by_vin + 1] = json.array(ids)
  end
  return json.encode(json.object {
    "orders", orders,
    "orders_by_vin", json.object(by_vin),
    "order_ids_by_vin", json.object(ids_by_vin),
    "order_times", json.array(times),
    "report_reads", stats:get("report_reads") or 0,
  })
end

-- {orders, vins, repeat_vins, report_reads}: the counters alone, cheap at any size.
function M.counts_json()
  local stats = dict("mr_sandbox_stats")
  return json.encode(json.object {
    "orders", stats:get("orders") or 0, "vins", stats:get("vins") or 0,
    "repeat_vins", stats:get("repeat_vins") or 0, "report_reads", stats:get("report_reads") or 0,
  })
end

-- Forgets orders and counters; the report cache stays (it is deterministic).
function M.reset()
  dict("mr_sandbox_orders"):flush_all()
  dict("mr_sandbox_stats"):flush_all()
end

return M
