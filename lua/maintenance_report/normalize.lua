-- Turns the vendor's decoded report into a stable, documented table
-- (see README.md, "The normalized report").
--
-- The vendor's types are inconsistent (numbers as strings, epoch-ms dates,
-- lists packed into "a; b; " strings, missing keys), so every field is read
-- defensively: a value of the wrong type counts as absent and nothing raises.
--
-- The work is done in the C core (src/normalize.c): walking the decoded table
-- there, and reusing its strings, is what keeps decode + normalize close to
-- the cost of the JSON decode itself.

local core = require "maintenance_report.core"

local normalize = {}

local normalize_report = core.normalize_report

--- Number from a number or a decimal string ("1.9", " 29 "); nil otherwise.
-- Hex, exponents and "nan"/"inf" are refused: the vendor never sends them.
-- On Lua 5.3+ integral values have the integer subtype.
normalize.number = core.normalize_number

--- "YYYY-MM-DD" from a date string or epoch milliseconds (number or digit string),
-- or nil. Epoch values are converted at utc_offset_hours (default +8, CST),
-- with integer arithmetic (civil_from_days), never os.date.
normalize.date = core.normalize_date

--- Normalized report table from the whole decoded response body.
-- status ("ready", "no_records", "pending") is decided by the caller.
-- Returns nil, message only when decoded is not a table; never raises.
function normalize.report(decoded, status, order_id, opts)
  local utc_offset_hours
  if type(opts) == "table" then utc_offset_hours = rawget(opts, "utc_offset_hours") end
  return normalize_report(decoded, status, order_id, utc_offset_hours)
end

return normalize
