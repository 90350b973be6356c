-- The normalized report as JSON, through the library's encoder
-- (maintenance_report.json: stable key order, readable UTF-8, empty report
-- lists as []).
local json = require "maintenance_report.json"

local render = {}

--- The normalized report as one JSON document. The vendor's body (`raw`) is left out
--- unless opts.raw is true. opts.indent: e.g. "  " (nil = one line).
function render.report(report, opts)
  opts = opts or {}
  return json.encode(report, { indent = opts.indent, skip_keys = not opts.raw and { raw = true } or nil })
end

return render
