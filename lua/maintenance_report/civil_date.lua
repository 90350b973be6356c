-- Proleptic Gregorian dates as day counts since 1970-01-01, in integer
-- arithmetic only: os.time and os.date depend on the local time zone and on
-- the range of the platform's time_t. The two conversions are Howard
-- Hinnant's days_from_civil and civil_from_days ("chrono-Compatible Low-Level
-- Date Algorithms", https://howardhinnant.github.io/date_algorithms.html):
-- eras of 400 years (146097 days), years starting on 1 March so that the leap
-- day is the last day of the year, 719468 the day count of 1970-01-01 from
-- 0000-03-01.
local civil_date = {}

local floor = math.floor

function civil_date.is_leap(y)
  return y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0)
end

local DAYS_IN_MONTH = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }

function civil_date.days_in_month(y, m)
  if m == 2 and civil_date.is_leap(y) then return 29 end
  return DAYS_IN_MONTH[m]
end

--- Days since 1970-01-01 (negative before) for year y, month m (1-12), day d (1-31).
function civil_date.days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = floor(y / 400)
  local yoe = y - era * 400                                  -- [0, 399]
  local doy = floor((153 * ((m + 9) % 12) + 2) / 5) + d - 1  -- [0, 365], from 1 March
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

--- Year, month, day of the day z days after 1970-01-01.
function civil_date.civil_from_days(z)
  z = z + 719468
  local era = floor(z / 146097)
  local doe = z - era * 146097                               -- [0, 146096]
  local yoe = floor((doe - floor(doe / 1460) + floor(doe / 36524) - floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + floor(yoe / 4) - floor(yoe / 100))
  local mp = floor((5 * doy + 2) / 153)                      -- [0, 11], March = 0
  local d = doy - floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  return y, m, d
end

--- Whether y-m-d names a real day (month 1-12, day within the month).
function civil_date.valid(y, m, d)
  return m >= 1 and m <= 12 and d >= 1 and d <= civil_date.days_in_month(y, m)
end

--- Days since 1970-01-01 for "YYYY-MM-DD", or nil when it is not a real date.
function civil_date.parse(s)
  local y, m, d = tostring(s):match("^(%d%d%d%d)-(%d%d)-(%d%d)$")
  if not y then return nil end
  y, m, d = tonumber(y), tonumber(m), tonumber(d)
  if not civil_date.valid(y, m, d) then return nil end
  return civil_date.days_from_civil(y, m, d)
end

--- "YYYY-MM-DD" for a day count.
function civil_date.format(z)
  return string.format("%04d-%02d-%02d", civil_date.civil_from_days(z))
end

return civil_date
