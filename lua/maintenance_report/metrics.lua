-- Money and health metrics in the Prometheus text format (0.0.4), fed by the
-- client's events. Counters live in an ngx.shared dict (every worker of one
-- machine adds to the same numbers; scrape each machine) or, outside nginx,
-- in a table.
--
--   local m = metrics.new{ dict = ngx.shared.maintenance_report_metrics, price = 17 }
--   mr.new{ …, on_event = function(e) m:event(e) end }
--   m:error(err)              once per failed request, by its error kind
--   m:render(gauges) → text   gauges: { { name =, help =, labels =, value = } … }
--
-- What is counted, from which event:
--   maintenance_report_orders_total{outcome}        "order": placed, not_placed, unknown
--   maintenance_report_spent_yuan_total             placed orders × price
--   maintenance_report_reports_total{source}        bought, resumed, taken_over ("report"),
--                                                   joined, cache ("ledger" reuse)
--   maintenance_report_claims_taken_over_total      "ledger" poll of a dead holder's order
--   maintenance_report_errors_total{kind}           m:error
--   maintenance_report_http_request_duration_seconds{op}   "http", a histogram
--   maintenance_report_report_ready_seconds         "report": order placed → report final
local metrics = {}

local LATENCY_BUCKETS = { 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30 }
local READY_BUCKETS = { 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600 }

local FAMILIES = {
  maintenance_report_orders_total = { "counter", "Paid orders by outcome (unknown: may have been charged)." },
  maintenance_report_spent_yuan_total = { "counter", "Yuan spent on placed orders.", unlabeled = true },
  maintenance_report_reports_total = { "counter", "Reports served, by where they came from." },
  maintenance_report_claims_taken_over_total = { "counter",
    "Orders whose polling was taken over from a holder that died or lost its claim.", unlabeled = true },
  maintenance_report_errors_total = { "counter", "Failed requests by error kind." },
  maintenance_report_http_request_duration_seconds = { "histogram", "Gateway call latency.", LATENCY_BUCKETS },
  maintenance_report_report_ready_seconds = { "histogram",
    "Time from a placed order to its final report.", READY_BUCKETS },
}

-- A table with the shared dict's methods, for use outside nginx.
local function table_dict()
  local data = {}
  return {
    incr = function(_, key, value, init)
      data[key] = (data[key] or init or 0) + value
      return data[key]
    end,
    get = function(_, key) return data[key] end,
    get_keys = function()
      local keys = {}
      for k in pairs(data) do keys[#keys + 1] = k end
      return keys
    end,
  }
end

local Metrics = {}
Metrics.__index = Metrics

--- metrics.new{ dict = a lua_shared_dict (default: a table), price = yuan per order (17) }
function metrics.new(opts)
  opts = opts or {}
  return setmetatable({ dict = opts.dict or table_dict(), price = opts.price or 17 }, Metrics)
end

local function escape(value)
  return (tostring(value):gsub("[\\\"\n]", { ["\\"] = "\\\\", ['"'] = '\\"', ["\n"] = "\\n" }))
end

-- "name{a=\"x\"}" with labels sorted, so that one series has one key.
local function series(name, labels)
  local names = {}
  for k in pairs(labels or {}) do names[#names + 1] = k end
  if #names == 0 then return name end
  table.sort(names)
  local parts = {}
  for i, k in ipairs(names) do parts[i] = k .. '="' .. escape(labels[k]) .. '"' end
  return name .. "{" .. table.concat(parts, ",") .. "}"
end

function Metrics:inc(name, labels, value)
  self.dict:incr("c\t" .. series(name, labels), value or 1, 0)
end

function Metrics:observe(name, labels, value)
  local buckets = FAMILIES[name][3]
  local base = series(name, labels)
  for _, le in ipairs(buckets) do
    if value <= le then
      self.dict:incr("h\t" .. base .. "\t" .. le, 1, 0)
      break
    end
  end
  self.dict:incr("h\t" .. base .. "\tsum", value, 0)
  self.dict:incr("h\t" .. base .. "\tcount", 1, 0)
end

--- Feeds one client event (the client's on_event).
function Metrics:event(e)
  if e.event == "order" and e.outcome then
    self:inc("maintenance_report_orders_total", { outcome = e.outcome })
    if e.outcome == "placed" then self:inc("maintenance_report_spent_yuan_total", nil, self.price) end
  elseif e.event == "report" then
    self:inc("maintenance_report_reports_total", { source = e.source })
    if e.since_order then self:observe("maintenance_report_report_ready_seconds", nil, e.since_order) end
  elseif e.event == "ledger" then
    if e.action == "reuse" then
      self:inc("maintenance_report_reports_total", { source = e.joined and "joined" or "cache" })
    elseif e.action == "poll" and e.taken_over then
      self:inc("maintenance_report_claims_taken_over_total")
    end
  elseif e.event == "http" and e.duration then
    self:observe("maintenance_report_http_request_duration_seconds", { op = e.op }, e.duration)
  end
end

--- Counts a failed request by its kind.
function Metrics:error(err)
  self:inc("maintenance_report_errors_total", { kind = type(err) == "table" and err.kind or "internal" })
end

local function number(v)
  if v == math.huge then return "+Inf" end
  if v == math.floor(v) and math.abs(v) < 2 ^ 53 then return string.format("%d", v) end
  for digits = 15, 17 do -- the shortest text that reads back as the same number
    local text = string.format("%." .. digits .. "g", v)
    if tonumber(text) == v then return text end
  end
  return string.format("%.17g", v)
end

-- The series name's metric family and its labels part.
local function split_series(s)
  local name, labels = s:match("^([^{]+)(.*)$")
  return name, labels
end

local function with_le(labels, le)
  local inner = labels:match("^{(.*)}$")
  local l = 'le="' .. le .. '"'
  return "{" .. (inner and inner ~= "" and (inner .. "," .. l) or l) .. "}"
end

--- The whole exposition: every family with its HELP and TYPE (zero-valued
--- counters included, so that rate() works from the first scrape), then gauges.
function Metrics:render(gauges)
  local counters, histograms = {}, {}
  for _, key in ipairs(self.dict:get_keys(0)) do
    local kind, rest = key:match("^([ch])\t(.*)$")
    if kind == "c" then
      counters[rest] = self.dict:get(key)
    elseif kind == "h" then
      local s, part = rest:match("^(.*)\t([^\t]+)$")
      histograms[s] = histograms[s] or {}
      histograms[s][part] = self.dict:get(key)
    end
  end
  local out = {}
  local names = {}
  for name in pairs(FAMILIES) do names[#names + 1] = name end
  table.sort(names)
  for _, family in ipairs(names) do
    local f = FAMILIES[family]
    out[#out + 1] = "# HELP " .. family .. " " .. f[2]
    out[#out + 1] = "# TYPE " .. family .. " " .. f[1]
    local source = f[1] == "counter" and counters or histograms
    local mine = {}
    for s in pairs(source) do
      if split_series(s) == family then mine[#mine + 1] = s end
    end
    table.sort(mine)
    if #mine == 0 and f.unlabeled then out[#out + 1] = family .. " 0" end
    for _, s in ipairs(mine) do
      if f[1] == "counter" then
        out[#out + 1] = s .. " " .. number(counters[s])
      else
        local parts, _, labels = histograms[s], split_series(s)
        local cumulative = 0
        for _, le in ipairs(f[3]) do -- buckets in increasing order, each counting all below it
          cumulative = cumulative + (parts[tostring(le)] or 0)
          out[#out + 1] = family .. "_bucket" .. with_le(labels, number(le)) .. " " .. number(cumulative)
        end
        out[#out + 1] = family .. "_bucket" .. with_le(labels, "+Inf") .. " " .. number(parts.count or 0)
        out[#out + 1] = family .. "_sum" .. labels .. " " .. number(parts.sum or 0)
        out[#out + 1] = family .. "_count" .. labels .. " " .. number(parts.count or 0)
      end
    end
  end
  for _, g in ipairs(gauges or {}) do
    out[#out + 1] = "# HELP " .. g.name .. " " .. g.help
    out[#out + 1] = "# TYPE " .. g.name .. " gauge"
    for _, point in ipairs(g.points or { { labels = g.labels, value = g.value } }) do
      out[#out + 1] = series(g.name, point.labels) .. " " .. number(point.value)
    end
  end
  return table.concat(out, "\n") .. "\n"
end

return metrics
