-- The normalized report as JSON, through the library's encoder
-- (maintenance_report.json: stable key order, readable UTF-8, empty report
-- lists as []). The findings come first: "query" (what was asked, when
-- known), then "analysis", then the report's own fields.
local analysis = require "maintenance_report.analysis"
local json = require "maintenance_report.json"

local render = {}

local LIST_KEYS = { findings = true, supporting_records = true }
for k, v in pairs(json.LIST_KEYS) do LIST_KEYS[k] = v end

--- The normalized report as one JSON document. The vendor's body (`raw`) is left out
--- unless opts.raw is true. opts.indent: e.g. "  " (nil = one line). opts.query:
--- {vin=, plate_number=, engine_number=} as queried (default report.query).
--- opts.analysis: options for analysis.analyze when the report has no analysis yet.
function render.report(report, opts)
  opts = opts or {}
  local enc = { indent = opts.indent, list_keys = LIST_KEYS,
                skip_keys = { raw = not opts.raw or nil, analysis = true, query = true } }
  local body = json.encode(report, enc)
  local first = {}
  local query = opts.query or report.query
  if query and next(query) then first[#first + 1] = { "query", query } end
  local result = report.analysis
  if result == nil then result = analysis.analyze(report, opts.analysis) end
  if result then first[#first + 1] = { "analysis", result } end
  if #first == 0 then return body end
  local parts = {}
  local inner = { indent = opts.indent, list_keys = LIST_KEYS, skip_keys = { raw = true } }
  for _, kv in ipairs(first) do
    local value = json.encode(kv[2], inner)
    if opts.indent then
      parts[#parts + 1] = opts.indent .. json.encode(kv[1]) .. ": " .. value:gsub("\n", "\n" .. opts.indent)
    else
      parts[#parts + 1] = json.encode(kv[1]) .. ":" .. value
    end
  end
  local nl = opts.indent and "\n" or ""
  local rest = body:match("^{%s*(.-)%s*}$")
  if rest == "" then return "{" .. nl .. table.concat(parts, "," .. nl) .. nl .. "}" end
  return "{" .. nl .. table.concat(parts, "," .. nl) .. "," .. nl .. (opts.indent or "") .. rest .. nl .. "}"
end

return render
