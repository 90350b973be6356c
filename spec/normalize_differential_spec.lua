-- luacheck: std +busted
-- The C normalizer (src/normalize*.c) against the pure-Lua reference
-- (spec/helpers/normalize_reference.lua) over seeded mutations of the vendor
-- sample: types, numbers, dates, missing and extra fields, arrays for
-- objects, UTF-8. Outputs must be the same, number subtypes included on 5.3+,
-- and a bad option must make both raise the same message.
--
-- MR_NORMALIZE_SEED and MR_NORMALIZE_CASES override the seed and the number
-- of reports; a failure prints the seed that replays its case alone.
-- Globals as locals: under busted every global read goes through its environment.
local error, getmetatable, ipairs, next, pcall, print, rawget, rawset, setmetatable, tonumber, tostring, type =
  error, getmetatable, ipairs, next, pcall, print, rawget, rawset, setmetatable, tonumber, tostring, type
local math, string, table = math, string, table

local cjson = require("cjson")
local fixtures = require("helpers.fixtures")
local reference = require("helpers.normalize_reference")
local normalize = require("maintenance_report.normalize")

local BASE_SEED = tonumber(os.getenv("MR_NORMALIZE_SEED") or "") or 20261128
local CASES = tonumber(os.getenv("MR_NORMALIZE_CASES") or "") or 10000
local SCALAR_ROUNDS = 3 -- normalize.number / normalize.date checks per report case
local SAMPLE = fixtures.raw("vendor_report_ready.json")
local MODULUS = 2147483647
local NONE = {} -- stands for nil in a list to pick from

-- Park-Miller: exact in doubles and in 5.4 integers, so a seed gives the same
-- cases on every interpreter (math.random differs between them).
local function new_rng(seed)
  local state = seed
  local rng = {}
  function rng.int(n) -- 1..n
    state = state * 16807 % MODULUS
    return state % n + 1
  end
  function rng.pick(list) return list[rng.int(#list)] end
  function rng.chance(percent) return rng.int(100) <= percent end
  return rng
end

local function case_seed(i) return (BASE_SEED - 1 + i) % (MODULUS - 1) + 1 end

---------------------------------------------------------------------------
-- Values
---------------------------------------------------------------------------

local NUMBERS = {
  0, 1, -1, 29, 1205, 2014, 117369, 1.9, 0.5, -0.5, -0.0, 1e-300, 2014.0, 1e15, 1e16,
  2 ^ 53 - 1, 2 ^ 53, 2 ^ 53 + 2, -(2 ^ 53), 2 ^ 63, -(2 ^ 63), 2 ^ 64, 1e300, -1e308, 1 / 0, -1 / 0, 0 / 0,
  1381161600000, 1381161599999, 1381161600000.5, -1.5, -28800000, -28800001, 253402300800000,
  253402300800000 + 36e5, 253402300799999, -62135596800000, -62135596800001, -62135596800000 - 14 * 36e5,
  1e15, 1e15 + 1, -1e15, 4107513600000, 951753600000,
}
if math.type then
  for _, n in ipairs({ math.maxinteger, math.mininteger, math.maxinteger - 1, math.mininteger + 1,
    math.tointeger(2 ^ 53) + 1, -math.tointeger(2 ^ 53) - 1, math.tointeger(2 ^ 62), 1000000000000001 }) do
    NUMBERS[#NUMBERS + 1] = n
  end
end

local NUMERIC_TEXTS = {
  "29", " 29 ", "\t7115\n", "+5", "-3", "-0", "+0", "-.5", ".5", "5.", "1.9", "1.2.3", "", " ", "abc",
  "12km", "0x10", "1e5", "1E5", "nan", "inf", "-inf", "NaN", "9007199254740992", "9007199254740993",
  "-9007199254740993", "9223372036854775807", "9223372036854775808", "-9223372036854775808",
  "99999999999999999999", "000000000000000000012", "1.5" .. string.rep("0", 80) .. "1",
  "1" .. string.rep("0", 400), "0." .. string.rep("0", 400) .. "1", "\v12\f", "١٢", "１２", "2014", "2014.0",
  "1000", "999", "10000", "1", "0", "1.0", "01", "0.0", "117369.0", "\0", "3\0",
}

local DATE_TEXTS = {
  "2016-06-23", "2016/06/23", "2016/6/3", "2016-6-3", "2016-06-23 10:11:12", "2016-06-23T10:11",
  "2016-06-23T1:05", "2016-06-23 1:05xyz", "2016-06-23 10", "2016-06-23 10:1", "2016-06-23x", " 2016-02-29 ",
  "2016-02-30", "2015-02-29", "1900-02-29", "2000-02-29", "2016-13-01", "2016-00-10", "0000-01-01",
  "0001-01-01", "9999-12-31", "2016-06", "2016-06/23", "2016-1-123", "2016-123-1", "2016/06-23",
  "20160623", "16-06-23", "2016-06-23\n", "\t2016-06-23", "2016-06-3 ", "2016-06-23  ", "２０１６-06-23",
  "1381161600000", "0001381161600000", "00000000001381161600000", "-1", "-28800001", "253402300800000",
  "253402300800001", "-62135596800000", "99999999999999999999", "1000000000000000", "1000000000000001",
  "9999999999999999", "10000000000000000", "-0", "0", "-", "1381161600000.5", " 1420128000000 ",
}

local TEXTS = {
  "", "   ", "路虎", " 路虎 ", "SA******02383", "a\0b", "\xff\xfe", "\xef\xbc", "\xef\xbc\x9b", "钣金喷漆",
  "一般维修", "常规保养", "更换机油机滤", "后杠喷漆", "钣;金", "机 油", "x:y", "x：3", "\xf0\x9f\x9a\x97 car",
  "e\xcc\x81", string.rep("长", 300),
}

local LIST_ENTRIES = {
  "FSA Q323", "机油:4", "机油：4", "Filter: type A:2", "Oil 5W-30 : 1.5 ", ":3", "螺丝:若干", "x：：1",
  "y:z：w", "a：b:3", "part:1e5", "part:-2", "part:0x10", "  ", "", "钣金", "保养", "机滤:1", "喷漆 ",
  "\xef\xbc", "a\0b:2", "bolts: 000000000000000000012 ", "oil:" .. "1.5" .. string.rep("0", 80) .. "1",
}
local SEPARATORS = { ";", "; ", "；", " ； ", ";;", "\xef\xbc", "\n" }

local VENDOR_KEYS = {
  "resultCode", "resultMsg", "vin", "brand", "manufacturer", "seriesName", "modelName", "makeDate",
  "transmissionType", "displacement", "effluentStandard", "carFireFlag", "carWaterFlag",
  "carComponentRecordsFlag", "carConstructRecordsFlag", "carOutsideRecordsFlag", "mileageIsNormalFlag",
  "mileageEstimate", "mileageEveryYear", "mainTainTimes", "lastMainTainTime", "lastRepairTime",
  "normalRepairRecords", "componentAnalyzeRepairRecords", "outsideAnalyzeRepairRecords",
  "constructAnalyzeRepairRecords", "content", "repairDate", "mainTainDate", "materal", "material",
  "mileage", "type", "data", "detail", "description", "extra", 1, 2,
}

local function packed_list(rng)
  local parts = {}
  for _ = 1, rng.int(6) - 1 do
    parts[#parts + 1] = rng.pick(LIST_ENTRIES)
    parts[#parts + 1] = rng.pick(SEPARATORS)
  end
  return table.concat(parts)
end

local random_value

local function random_record(rng, depth)
  local record = {}
  for _ = 1, rng.int(5) do
    local key = rng.pick({ "content", "repairDate", "mainTainDate", "materal", "material", "mileage", "type" })
    record[key] = random_value(rng, depth + 1)
  end
  return record
end

local function random_table(rng, depth)
  local kind = rng.int(7)
  if kind == 1 then return {} end
  if kind == 2 then return { random_value(rng, depth + 1), random_value(rng, depth + 1) } end
  if kind == 3 then return { first = random_record(rng, depth) } end
  if kind == 4 then -- a record list, sometimes longer than the C side's on-stack limit
    local list = {}
    for i = 1, rng.chance(20) and 30 + rng.int(20) or rng.int(4) do
      list[i] = rng.chance(85) and random_record(rng, depth) or random_value(rng, depth + 1)
    end
    return list
  end
  if kind == 5 then -- holes and keys no list may have
    local list = { [1] = random_record(rng, depth), [3] = random_record(rng, depth) }
    local key = rng.pick({ 7, 2 ^ 53, 1e300, 2 ^ 63, 0, -1, 1.5, "x", true })
    list[key] = random_record(rng, depth)
    return list
  end
  if kind == 6 then return random_record(rng, depth) end
  return setmetatable({ content = "a" }, { __index = function() error("__index ran") end })
end

function random_value(rng, depth)
  local kind = rng.int(depth > 3 and 7 or 9)
  if kind == 1 then return rng.pick(NUMBERS) end
  if kind == 2 then return rng.pick(NUMERIC_TEXTS) end
  if kind == 3 then return rng.pick(DATE_TEXTS) end
  if kind == 4 then return rng.pick(TEXTS) end
  if kind == 5 then return packed_list(rng) end
  if kind == 6 then return rng.pick({ true, false, cjson.null }) end
  if kind == 7 then return rng.pick(NUMBERS) + rng.int(1000) - 500 end
  return random_table(rng, depth)
end

---------------------------------------------------------------------------
-- Mutations of the decoded sample
---------------------------------------------------------------------------

-- A fixed order of keys: next's order varies with 5.4's per-state hash seed.
local function key_less(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return ta < tb end
  if ta == "string" or ta == "number" then return a < b end
  return tostring(a) < tostring(b)
end

local function sorted_keys(t)
  local keys = {}
  for k in next, t do keys[#keys + 1] = k end
  table.sort(keys, key_less)
  return keys
end

-- Every table of the tree, in a fixed order.
local function tables_of(root)
  local found, seen = {}, {}
  local function walk(t)
    if seen[t] then return end
    seen[t] = true
    found[#found + 1] = t
    for _, k in ipairs(sorted_keys(t)) do
      local v = rawget(t, k)
      if type(v) == "table" and getmetatable(v) == nil then walk(v) end
    end
  end
  walk(root)
  return found
end

local function mutate(rng, decoded, tables)
  local t = rng.pick(tables)
  local kind = rng.int(10)
  if kind <= 5 then
    t[rng.pick(VENDOR_KEYS)] = random_value(rng, 1)
  elseif kind == 6 then -- drop an existing field
    local keys = sorted_keys(t)
    if #keys > 0 then t[rng.pick(keys)] = nil end
  elseif kind == 7 then -- an object wrapped into an array, or an array into an object
    local data = rawget(decoded, "data")
    local detail = type(data) == "table" and rawget(data, "detail")
    if detail then rawset(data, "detail", rng.chance(50) and { detail } or { first = detail }) end
  elseif kind == 8 then -- one record list grows past 32 entries, with ties and undated ones
    local data = rawget(decoded, "data")
    local detail = type(data) == "table" and rawget(data, "detail")
    local list = type(detail) == "table" and rawget(detail, "normalRepairRecords")
    if type(list) == "table" then
      for i = #list + 1, #list + 25 + rng.int(20) do list[i] = random_record(rng, 2) end
    end
  elseif kind == 9 then -- swap two entries of a list
    local n = #t
    if n >= 2 then
      local a, b = rng.int(n), rng.int(n)
      t[a], t[b] = t[b], t[a]
    end
  else
    t[rng.pick(VENDOR_KEYS)] = random_table(rng, 1)
  end
end

local VALID_OFFSETS = { 8, 0, -12, 14, 5.5, 5.75, -3.5, 12.75, 8.0, -0.0, 13, -11.25 }
local BAD_OFFSETS = { 14.25, -12.25, 25, 0.1, 1 / 0, -1 / 0, 0 / 0, "8", true, {}, 2 ^ 63 }
if math.type then
  BAD_OFFSETS[#BAD_OFFSETS + 1] = math.mininteger
  BAD_OFFSETS[#BAD_OFFSETS + 1] = math.maxinteger
end

local function random_opts(rng)
  local kind = rng.int(20)
  if kind <= 4 then return nil end
  if kind == 5 then return {} end
  if kind == 6 then return { utc_offset_hours = rng.pick(BAD_OFFSETS) } end
  if kind == 7 then return rng.pick({ "x", 8, true, { utc_offset_hour = 8 } }) end
  return { utc_offset_hours = rng.pick(VALID_OFFSETS) }
end

---------------------------------------------------------------------------
-- Comparison
---------------------------------------------------------------------------

local function show(v)
  if type(v) == "string" then return string.format("%q", v) end
  if type(v) == "number" then
    return string.format("%.17g", v) .. (math.type and " (" .. math.type(v) .. ")" or "")
  end
  return tostring(v)
end

-- nil when a and b are the same normalized value, else the path of the first
-- difference. The top level's raw must be the decoded input itself.
local function difference(a, b, path, raw, nested)
  if type(a) ~= type(b) then return path .. ": " .. show(a) .. " vs " .. show(b) end
  if type(a) == "number" then
    if a ~= b or (math.type and math.type(a) ~= math.type(b)) then
      return path .. ": " .. show(a) .. " vs " .. show(b)
    end
    return nil
  end
  if type(a) ~= "table" then
    if a ~= b then return path .. ": " .. show(a) .. " vs " .. show(b) end
    return nil
  end
  local keys = {}
  for k in next, a do keys[#keys + 1] = k end
  for k in next, b do if rawget(a, k) == nil then keys[#keys + 1] = k end end
  for _, k in ipairs(keys) do
    local at = path .. "." .. tostring(k)
    if k == "raw" and not nested then
      if rawget(a, k) ~= raw or rawget(b, k) ~= raw then return at .. ": not the decoded input itself" end
    else
      local found = difference(rawget(a, k), rawget(b, k), at, raw, true)
      if found then return found end
    end
  end
  return nil
end

local function strip_position(message)
  return (tostring(message):gsub("^[^\n]-:%d+: ", ""))
end

-- Both raise the same message, or both return results with no difference.
local function compare_calls(label, c_fn, ref_fn, raw, ...)
  local c = { pcall(c_fn, ...) }
  local r = { pcall(ref_fn, ...) }
  if c[1] ~= r[1] then
    return label .. ": C " .. (c[1] and "returned" or "raised " .. tostring(c[2]))
      .. ", reference " .. (r[1] and "returned" or "raised " .. tostring(r[2]))
  end
  if not c[1] then
    if strip_position(c[2]) ~= strip_position(r[2]) then
      return label .. ": messages differ: " .. tostring(c[2]) .. " vs " .. tostring(r[2])
    end
    return nil
  end
  return difference(c[2], r[2], label, raw) or difference(c[3], r[3], label .. "[2]", raw)
end

local function run_case(i)
  local seed = case_seed(i)
  local rng = new_rng(seed)
  local decoded = cjson.decode(SAMPLE)
  local tables = tables_of(decoded) -- tables the mutations add are not mutated again
  for _ = 1, rng.int(4) do mutate(rng, decoded, tables) end
  if rng.chance(3) then decoded = random_value(rng, 1) end
  local status = rng.pick({ "ready", "no_records", "pending", NONE, 7 })
  local order_id = rng.pick({ "ORDER-1", NONE, 42, "" })
  if status == NONE then status = nil end
  if order_id == NONE then order_id = nil end
  local opts = random_opts(rng)
  local found = compare_calls("report", normalize.report, reference.report, decoded, decoded, status, order_id, opts)
  for _ = 1, SCALAR_ROUNDS do
    if found then break end
    local value = random_value(rng, 4)
    found = compare_calls("number(" .. show(value) .. ")", normalize.number, reference.number, nil, value)
    local hours = rng.chance(90) and rng.pick(VALID_OFFSETS) or rng.pick(BAD_OFFSETS)
    found = found or compare_calls("date(" .. show(value) .. ", " .. show(hours) .. ")",
      normalize.date, reference.date, nil, value, hours)
  end
  if found then
    return ("case %d: %s\nreplay: MR_NORMALIZE_SEED=%d MR_NORMALIZE_CASES=1 (run seed %d)"):format(
      i, found, seed, BASE_SEED)
  end
  return nil
end

describe("normalize, C against the Lua reference", function()
  it(("agrees on %d mutated vendor reports (seed %d)"):format(CASES, BASE_SEED), function()
    for i = 0, CASES - 1 do
      local failure = run_case(i)
      if failure then
        print("\n" .. failure)
        assert(false, failure)
      end
    end
  end)

  it("can tell outputs apart (the comparison itself is not blind)", function()
    local raw = {}
    assert.is_nil(difference({ raw = raw, n = 1 }, { raw = raw, n = 1 }, "report", raw))
    local function same() return { raw = raw }, 1 end
    assert.is_nil(compare_calls("x", same, same, raw))
    assert.truthy(compare_calls("x", function() return 1, 2 end, function() return 1, 3 end, raw))
    assert.truthy(difference({ n = 1 }, { n = 2 }, "report", raw))
    assert.truthy(difference({ n = "1" }, { n = 1 }, "report", raw))
    assert.truthy(difference({ l = { 1, 2 } }, { l = { 1 } }, "report", raw))
    assert.truthy(difference({ raw = {} }, { raw = raw }, "report", raw))
    if math.type then assert.truthy(difference({ n = 1 }, { n = 1.0 }, "report", raw)) end
    assert.truthy(compare_calls("x", function() error("a", 0) end, function() return 1 end, raw))
    assert.truthy(compare_calls("x", function() error("a", 0) end, function() error("b", 0) end, raw))
  end)
end)
