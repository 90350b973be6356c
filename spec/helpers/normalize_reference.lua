-- The reference normalizer the C one (src/normalize*.c) is checked against
-- (spec/normalize_differential_spec.lua): the pure-Lua normalize.lua the C
-- core replaced, with the semantics of docs/normalize.md (numbers never wrap,
-- exact epoch arithmetic, utc_offset_hours -12..14 in steps of 0.25).
-- Written for clarity, not speed; it shares no code with the C core.
--
-- Pure Lua, for Lua 5.1/LuaJIT and 5.4: no utf8 library, no integer division,
-- no os.date (it would depend on the host's time zone).

local normalize = {}

local DEFAULT_UTC_OFFSET_HOURS = 8 -- China Standard Time; an assumption, see docs
local MS_PER_HOUR = 3600000
local MS_PER_DAY = 86400000
-- |epoch ms| beyond 10^15 is outside years 1..9999 at every offset.
local EPOCH_GUARD = 1e15
local TWO_53 = 2 ^ 53 -- every whole double up to here is exact

local FULLWIDTH_SEMICOLON = "\239\188\155" -- U+FF1B '；'
local FULLWIDTH_COLON = "\239\188\154"     -- U+FF1A '：'

---------------------------------------------------------------------------
-- Small readers: each returns nil for anything it does not understand
---------------------------------------------------------------------------

-- The bytes %s matches, looked up by string.byte: cheaper than a pattern.
local SPACE = {}
for b = 0, 255 do SPACE[b] = string.char(b):find("^%s") ~= nil end

-- Most values have nothing to trim: check the two end bytes and return s
-- itself, with no scan of the whole string and no new string.
local function trim(s)
  local len = #s
  if len == 0 or not (SPACE[s:byte(1)] or SPACE[s:byte(len)]) then return s end
  return s:match("^%s*(.*%S)") or ""
end

-- rawget so that a table with odd metamethods cannot make us raise.
local function field(t, key)
  if type(t) ~= "table" then return nil end
  return rawget(t, key)
end

-- cjson gives both objects and arrays as tables; an object has no [1].
local function object(value)
  if type(value) == "table" and rawget(value, 1) == nil then return value end
  return nil
end

-- Elements of an array-like table in index order; {} for anything else.
local function array_items(value)
  if type(value) ~= "table" then return {} end
  local keys = {}
  for key in next, value do
    if type(key) ~= "number" or key < 1 or key % 1 ~= 0 then return {} end
    keys[#keys + 1] = key
  end
  table.sort(keys)
  local items = {}
  for i, key in ipairs(keys) do items[i] = rawget(value, key) end
  return items
end

local function text(value)
  if type(value) ~= "string" then return nil end
  local s = trim(value)
  if s == "" then return nil end
  return s
end

-- On 5.3+: whole values within +-2^53 as integers, everything else as the
-- nearest float, so no value depends on the interpreter or wraps.
local function tidy_number(n)
  if not math.type then return n end
  if n >= -TWO_53 and n <= TWO_53 then
    if n % 1 == 0 then return math.tointeger(n) end
    return n
  end
  return n + 0.0
end

local function is_finite(n)
  return n == n and n ~= math.huge and n ~= -math.huge
end

--- Number from a number or a decimal string ("1.9", " 29 "); nil otherwise.
-- Hex, exponents and "nan"/"inf" are refused: the vendor never sends them.
function normalize.number(value)
  local n
  if type(value) == "number" then
    n = value
  elseif type(value) == "string" then
    local s = trim(value)
    if s:find("^[+-]?%d+%.?%d*$") or s:find("^[+-]?%.%d+$") then n = tonumber(s) end
  end
  if n == nil or not is_finite(n) then return nil end
  return tidy_number(n)
end

---------------------------------------------------------------------------
-- Dates
---------------------------------------------------------------------------

local function floor_div(a, b)
  return math.floor(a / b)
end

local function is_leap_year(y)
  return y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0)
end

local DAYS_IN_MONTH = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }

local function days_in_month(y, m)
  if m == 2 and is_leap_year(y) then return 29 end
  return DAYS_IN_MONTH[m]
end

local function format_date(y, m, d)
  if y < 1 or y > 9999 or m < 1 or m > 12 or d < 1 or d > days_in_month(y, m) then return nil end
  return string.format("%04d-%02d-%02d", y, m, d)
end

-- Civil date from days since 1970-01-01 (H. Hinnant's civil_from_days,
-- the inverse of days_from_civil), in integer arithmetic.
local function civil_from_days(days)
  local z = days + 719468
  local era = floor_div(z, 146097)
  local day_of_era = z - era * 146097
  local year_of_era = floor_div(day_of_era - floor_div(day_of_era, 1460)
    + floor_div(day_of_era, 36524) - floor_div(day_of_era, 146096), 365)
  local day_of_year = day_of_era - (365 * year_of_era + floor_div(year_of_era, 4) - floor_div(year_of_era, 100))
  local month_from_march = floor_div(5 * day_of_year + 2, 153)
  local day = day_of_year - floor_div(153 * month_from_march + 2, 5) + 1
  local month = month_from_march < 10 and month_from_march + 3 or month_from_march - 9
  local year = year_of_era + era * 400
  if month <= 2 then year = year + 1 end
  return year, month, day
end

-- Whole milliseconds (floored) plus a whole-ms offset, floored to days: the
-- float division of integers below 2^53 by MS_PER_DAY cannot round across a
-- day boundary, so this is exact.
local function date_from_epoch_ms(ms, offset_ms)
  if not (ms >= -EPOCH_GUARD and ms <= EPOCH_GUARD) then return nil end
  local days = floor_div(math.floor(ms) + offset_ms, MS_PER_DAY)
  return format_date(civil_from_days(days))
end

-- ^-?%d+$ read exactly, whatever the leading zeros.
local function epoch_ms_from_digits(s)
  local sign, digits = s:match("^(-?)0*(%d*)$")
  if #digits > 16 then return nil end
  local ms = tonumber(digits) or 0
  if ms > EPOCH_GUARD then return nil end
  if sign == "-" then ms = -ms end
  return ms
end

-- "YYYY-MM-DD", "YYYY/MM/DD", optionally followed by " hh:mm[:ss]" or "Thh:mm...".
-- The time, if any, is ignored: the vendor writes civil dates, not instants.
local function date_from_text(s)
  local y, _, m, d, rest = s:match("^(%d%d%d%d)([-/])(%d%d?)%2(%d%d?)(.*)$")
  if not y then return nil end
  if rest ~= "" and not rest:find("^[T ]%d%d?:%d%d") then return nil end
  return format_date(tonumber(y), tonumber(m), tonumber(d))
end

-- The offset in whole ms; raises (a programmer error) for anything but nil
-- or a number from -12 to 14 in steps of 0.25.
local function utc_offset_ms(hours)
  if hours == nil then return DEFAULT_UTC_OFFSET_HOURS * MS_PER_HOUR end
  if type(hours) == "number" then
    local quarters = hours * 4.0 -- a float: an integer near 2^63 would wrap
    if quarters >= -48 and quarters <= 56 and quarters % 1 == 0 then return quarters * (MS_PER_HOUR / 4) end
  end
  error("utc_offset_hours must be a number from -12 to 14 in steps of 0.25, got "
    .. (type(hours) == "number" and tostring(hours) or type(hours)), 0)
end

--- "YYYY-MM-DD" from a date string or epoch milliseconds (number or digit string),
-- or nil. Epoch values are converted at utc_offset_hours (default +8, CST).
local function date_at(value, offset_ms)
  if type(value) == "number" then return date_from_epoch_ms(value, offset_ms) end
  if type(value) ~= "string" then return nil end
  local s = trim(value)
  if s:find("^-?%d+$") then
    local ms = epoch_ms_from_digits(s)
    return ms and date_from_epoch_ms(ms, offset_ms)
  end
  return date_from_text(s)
end

function normalize.date(value, utc_offset_hours)
  return date_at(value, utc_offset_ms(utc_offset_hours))
end

---------------------------------------------------------------------------
-- Vehicle, flags
---------------------------------------------------------------------------

-- A build year only when the value is a plain integer year like 2014 or "2014".
local function year(value)
  local n = normalize.number(value)
  if n and n % 1 == 0 and n >= 1000 and n <= 9999 then return n end
  return nil
end

local function flag(value)
  local n = normalize.number(value)
  if n == 1 then return true end
  if n == 0 then return false end
  return nil
end

local function vehicle(detail)
  return {
    vin = text(field(detail, "vin")),
    brand = text(field(detail, "brand")),
    manufacturer = text(field(detail, "manufacturer")),
    series = text(field(detail, "seriesName")),
    model = text(field(detail, "modelName")),
    year = year(field(detail, "makeDate")),
    transmission = text(field(detail, "transmissionType")),
    displacement = text(field(detail, "displacement")),
    emission_standard = text(field(detail, "effluentStandard")),
  }
end

local function flags(detail)
  return {
    fire = flag(field(detail, "carFireFlag")),
    flood = flag(field(detail, "carWaterFlag")),
    major_component = flag(field(detail, "carComponentRecordsFlag")),
    structural = flag(field(detail, "carConstructRecordsFlag")),
    exterior = flag(field(detail, "carOutsideRecordsFlag")),
    mileage_normal = flag(field(detail, "mileageIsNormalFlag")),
  }
end

---------------------------------------------------------------------------
-- Records
---------------------------------------------------------------------------

-- "a; b; " (ASCII or full-width ';') to {"a", "b"}; empties dropped.
local function split_list(value)
  local entries = {}
  if type(value) ~= "string" then return entries end
  local s = value
  if s:find(FULLWIDTH_SEMICOLON, 1, true) then s = s:gsub(FULLWIDTH_SEMICOLON, ";") end
  -- The trimmed, non-empty runs between ';' (as gmatch("[^;]+") and trim
  -- would give), cut by plain finds and byte checks: no pattern matching on
  -- every byte, and no untrimmed copy of each entry.
  local pos, len = 1, #s
  while pos <= len do
    while SPACE[s:byte(pos)] do pos = pos + 1 end
    local semi = s:find(";", pos, true) or len + 1
    local last = semi - 1
    while last >= pos and SPACE[s:byte(last)] do last = last - 1 end
    if last >= pos then entries[#entries + 1] = s:sub(pos, last) end
    pos = semi + 1
  end
  return entries
end

-- Position of the last plain occurrence of needle in s, or nil.
local function find_last(s, needle)
  local last, from = nil, 1
  while true do
    local at = s:find(needle, from, true)
    if not at then return last end
    last, from = at, at + 1
  end
end

-- Split at the LAST colon, ASCII or full-width: names may contain ':' themselves.
local function split_at_last_colon(entry)
  local at, width = find_last(entry, ":"), 1
  local wide = find_last(entry, FULLWIDTH_COLON)
  if wide and (not at or wide > at) then at, width = wide, #FULLWIDTH_COLON end
  if not at then return nil, nil end
  return entry:sub(1, at - 1), entry:sub(at + width)
end

local function material(entry)
  local name, quantity_text = split_at_last_colon(entry)
  local quantity = normalize.number(quantity_text)
  name = name and trim(name)
  if not quantity or name == "" then return { name = entry } end
  return { name = name, quantity = quantity }
end

local function materials(raw)
  local packed = field(raw, "materal") -- sic, the vendor's spelling
  if type(packed) ~= "string" then packed = field(raw, "material") end
  local list = {}
  for i, entry in ipairs(split_list(packed)) do list[i] = material(entry) end
  return list
end

local BODYWORK_WORDS = { "钣金", "喷漆" }
local MAINTENANCE_WORDS = { "保养", "机油", "机滤" }

local function mentions_any(s, words)
  for i = 1, #words do
    if s:find(words[i], 1, true) then return true end
  end
  return false
end

-- Heuristic: the vendor has no category field, so guess one from type and items.
-- The texts are searched as one string joined by "\n", which no word contains,
-- so a word is found in it exactly when it is found in one of the texts.
local function category(record_type, items)
  local texts = table.concat(items, "\n")
  if record_type then texts = record_type .. "\n" .. texts end
  if mentions_any(texts, BODYWORK_WORDS) then return "bodywork" end
  if mentions_any(texts, MAINTENANCE_WORDS) then return "maintenance" end
  return "repair"
end

local function record(raw, offset_ms)
  local items = split_list(field(raw, "content"))
  local record_type = text(field(raw, "type"))
  return {
    date = date_at(field(raw, "repairDate"), offset_ms) or date_at(field(raw, "mainTainDate"), offset_ms),
    mileage = normalize.number(field(raw, "mileage")),
    items = items,
    materials = materials(raw),
    type = record_type,
    category = category(record_type, items),
  }
end

-- Dated records ascending, ties and undated records keeping input order
-- (table.sort is not stable, so the input index breaks ties).
local function sort_by_date(records)
  local positions = {}
  for i, r in ipairs(records) do positions[r] = i end
  table.sort(records, function(a, b)
    if a.date ~= b.date then
      if a.date == nil then return false end
      if b.date == nil then return true end
      return a.date < b.date
    end
    return positions[a] < positions[b]
  end)
  return records
end

local function records(value, offset_ms)
  local list = {}
  for _, raw in ipairs(array_items(value)) do
    if type(raw) == "table" then list[#list + 1] = record(raw, offset_ms) end
  end
  return sort_by_date(list)
end

---------------------------------------------------------------------------
-- Report
---------------------------------------------------------------------------

--- Normalized report table from the whole decoded response body.
-- status ("ready", "no_records", "pending") is decided by the caller.
-- Returns nil, message when decoded is not a table; raises for bad opts.
function normalize.report(decoded, status, order_id, opts)
  if opts ~= nil then
    if type(opts) ~= "table" then error("normalize.report: opts must be a table or nil, got " .. type(opts), 2) end
    for key in next, opts do
      if key ~= "utc_offset_hours" then error("normalize.report: unknown option '" .. tostring(key) .. "'", 2) end
    end
  end
  local offset = utc_offset_ms(field(opts, "utc_offset_hours"))
  if type(decoded) ~= "table" then return nil, "report body is not an object" end
  local data = object(field(decoded, "data"))
  local detail = object(field(data, "detail"))

  return {
    status = status,
    order_id = type(order_id) == "string" and order_id or nil,
    code = normalize.number(field(detail, "resultCode")),
    message = text(field(detail, "resultMsg")) or text(field(data, "description")),
    vehicle = vehicle(detail),
    flags = flags(detail),
    mileage_estimate = normalize.number(field(detail, "mileageEstimate")),
    mileage_per_year = normalize.number(field(detail, "mileageEveryYear")),
    maintenance_per_year = normalize.number(field(detail, "mainTainTimes")),
    last_maintenance_date = date_at(field(detail, "lastMainTainTime"), offset),
    last_repair_date = date_at(field(detail, "lastRepairTime"), offset),
    records = records(field(detail, "normalRepairRecords"), offset),
    component_records = records(field(detail, "componentAnalyzeRepairRecords"), offset),
    exterior_records = records(field(detail, "outsideAnalyzeRepairRecords"), offset),
    structural_records = records(field(detail, "constructAnalyzeRepairRecords"), offset), -- key assumed
    raw = decoded,
  }
end

return normalize
