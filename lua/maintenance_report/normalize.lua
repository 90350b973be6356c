-- Turns the vendor's decoded report into a stable, documented table
-- (README.md, "The normalized report"; the exact rules: docs/normalize.md).
--
-- The vendor's types are inconsistent (numbers as strings, epoch-ms dates,
-- lists packed into "a; b; " strings, missing keys), so every field is read
-- defensively: a value of the wrong type counts as absent and nothing raises.
--
-- The work is done in the C core (src/normalize*.c): walking the decoded table
-- there, and reusing its strings, is what keeps decode + normalize close to
-- the cost of the JSON decode itself.

local core = require "maintenance_report.core"

local normalize = {}

local normalize_report = core.normalize_report

--- Number from a number or a decimal string ("1.9", " 29 "); nil otherwise.
-- Hex, exponents and "nan"/"inf" are refused: the vendor never sends them.
-- Integral values within +-2^53 have the integer subtype on Lua 5.3+; every
-- other value is the nearest float (never a wrapped integer).
normalize.number = core.normalize_number

--- "YYYY-MM-DD" from a date string or epoch milliseconds (number or digit string),
-- or nil. Epoch values are converted at utc_offset_hours (nil: +8, CST; else
-- -12..14 in steps of 0.25, anything else raises), in exact integer
-- arithmetic, never os.date.
normalize.date = core.normalize_date

--- Normalized report table from the whole decoded response body.
-- status ("ready", "no_records", "pending") is decided by the caller.
-- Returns nil, message when decoded is not a table. Raises only for a
-- programmer error: opts neither nil nor a table, an unknown option, or a
-- utc_offset_hours outside -12..14 in steps of 0.25 (docs/normalize.md).
function normalize.report(decoded, status, order_id, opts)
  local utc_offset_hours
  if opts ~= nil then
    if type(opts) ~= "table" then
      error("normalize.report: opts must be a table or nil, got " .. type(opts), 2)
    end
    for key in next, opts do
      if key ~= "utc_offset_hours" then
        error("normalize.report: unknown option '" .. tostring(key) .. "'", 2)
      end
    end
    utc_offset_hours = rawget(opts, "utc_offset_hours")
  end
  return normalize_report(decoded, status, order_id, utc_offset_hours)
end

return normalize
