-- The library's one JSON reader and writer: the CLI's output, the batch
-- journal and the examples all go through it, so they agree byte for byte.
--
-- decode goes through the C core's private lua-cjson instance (its settings
-- never touch the host's cjson). encode is the core's json_encode (C, about
-- 30× this file's Lua writer, which stays as the reference: encode_lua), not
-- cjson's, because cjson escapes '/', orders keys at random and cannot tell an
-- empty list from an empty object, and a fixed %.17g prints 1.6 as
-- 1.6000000000000001. Both write:
--   * keys in a stable order: the normalized report's fields in reading
--     order, then every other key alphabetically, so equal values give
--     equal bytes;
--   * UTF-8 text as it is (invalid bytes, from a GBK file say, become
--     U+FFFD, so every output is valid UTF-8), control characters escaped;
--   * integral numbers without ".0" under both Lua 5.4 and LuaJIT, others
--     in the shortest form that reads back as the same double;
--   * NaN and infinities refused: JSON has no spelling for them.
local errors = require "maintenance_report.errors"

local json = {}

--- Marks a table as a JSON array, even when it is empty.
local ARRAY = {}
function json.array(t) return setmetatable(t or {}, ARRAY) end

--- JSON null inside arrays or objects (decoded nulls, cjson's light userdata, encode as null too).
json.null = setmetatable({}, { __tostring = function() return "null" end })

--- Keys whose value is always a list in a normalized report (an empty table there is `[]`).
json.LIST_KEYS = {
  records = true, component_records = true, exterior_records = true, structural_records = true,
  items = true, materials = true,
}

-- Keys that come first, in this order; all others follow alphabetically.
local KEY_ORDER = {
  "event", "line", "vin", "engine_number", "plate_number", "input", "status", "order_id", "kind", "code",
  "message", "order_outcome", "http_status", "request_id",
  "vehicle", "brand", "manufacturer", "series", "model", "year", "transmission", "displacement",
  "emission_standard", "flags", "fire", "flood", "structural", "major_component", "exterior",
  "mileage_normal", "mileage_estimate", "mileage_per_year", "maintenance_per_year",
  "last_maintenance_date", "last_repair_date", "date", "mileage", "category", "type", "items",
  "materials", "name", "quantity", "records", "component_records", "exterior_records",
  "structural_records", "report", "error",
}
local RANK = {}
for i, key in ipairs(KEY_ORDER) do RANK[key] = i end

local function key_before(a, b)
  local ra, rb = RANK[a], RANK[b]
  if ra and rb then return ra < rb end
  if ra then return true end
  if rb then return false end
  return a < b
end

---------------------------------------------------------------------------
-- Decoding
---------------------------------------------------------------------------

--- The value of JSON text s, or nil, err (kind invalid_input). JSON null decodes as the
--- core's json_null (a light userdata), which encode writes back as null.
function json.decode(s)
  if type(s) ~= "string" then error("json.decode: a string is required, got " .. type(s), 2) end
  local core = require "maintenance_report.core"
  local value, message = core.json_decode(s)
  if value == nil then
    return nil, errors.new("invalid_input", "invalid JSON: " .. tostring(message):gsub("[\r\n]+", " "))
  end
  return value
end

---------------------------------------------------------------------------
-- Strings: escape what JSON requires, repair invalid UTF-8
---------------------------------------------------------------------------

local REPLACEMENT = "\239\191\189" -- U+FFFD

-- Length of the valid UTF-8 sequence starting at i, or nil.
local function utf8_len_at(s, i)
  local b = s:byte(i)
  local n, min
  if b < 0x80 then return 1
  elseif b >= 0xC2 and b <= 0xDF then n, min = 2, 0x80
  elseif b >= 0xE0 and b <= 0xEF then n, min = 3, 0x800
  elseif b >= 0xF0 and b <= 0xF4 then n, min = 4, 0x10000
  else return nil end
  local cp = b % (2 ^ (7 - n))
  for k = 1, n - 1 do
    local c = s:byte(i + k)
    if not c or c < 0x80 or c > 0xBF then return nil end
    cp = cp * 64 + (c - 0x80)
  end
  if cp < min or cp > 0x10FFFF or (cp >= 0xD800 and cp <= 0xDFFF) then return nil end
  return n
end

--- The string with every invalid UTF-8 byte replaced by U+FFFD.
function json.utf8_clean(s)
  if not s:find("[\128-\255]") then return s end
  local out, i, n = {}, 1, #s
  while i <= n do
    local len = utf8_len_at(s, i)
    if len then
      out[#out + 1] = s:sub(i, i + len - 1)
      i = i + len
    else
      out[#out + 1] = REPLACEMENT
      i = i + 1
    end
  end
  return table.concat(out)
end

local ESCAPES = {
  ['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f',
  ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t',
}

--- A JSON string literal for s.
function json.quote(s)
  s = json.utf8_clean(s)
  return '"' .. s:gsub('[%z\1-\31"\\\127]', function(c)
    return ESCAPES[c] or string.format("\\u%04x", c:byte())
  end) .. '"'
end
local quote = json.quote

---------------------------------------------------------------------------
-- Numbers
---------------------------------------------------------------------------

local MIN_NORMAL = 2 ^ -1022

--- The JSON text of a number: integers as integers, other values in the shortest
--- of %.14g … %.17g that reads back as the same double (subnormals from %.1g). Raises for NaN and infinities.
function json.number(n)
  if n ~= n or n == math.huge or n == -math.huge then
    error("json.encode: cannot encode " .. tostring(n) .. " (JSON has no NaN or infinity)", 0)
  end
  if math.type and math.type(n) == "integer" then return string.format("%d", n) end
  -- Below 2^53 every integral double is exact, so %.0f prints it digit for digit.
  if n == math.floor(n) and n > -2 ^ 53 and n < 2 ^ 53 then return string.format("%.0f", n) end
  -- A normal double that reads back from 14 digits has no shorter form: its error
  -- (half an ulp, 2^-53 relative) is far below half a unit of the 14th digit, so %g's
  -- dropped trailing zeros leave the shortest digits. Subnormals have fewer bits.
  local first = math.abs(n) < MIN_NORMAL and 1 or 14
  for digits = first, 16 do
    local s = string.format("%." .. digits .. "g", n)
    if tonumber(s) == n then return s end
  end
  return string.format("%.17g", n) -- 17 significant digits always round-trip (IEEE 754)
end

---------------------------------------------------------------------------
-- Tables
---------------------------------------------------------------------------

-- "array" (with its length), "object" or "empty".
local function shape(t)
  if getmetatable(t) == ARRAY then return "array", #t end
  local count, max = 0, 0
  for k in pairs(t) do
    count = count + 1
    if type(k) == "number" and k >= 1 and k == math.floor(k) then
      if k > max then max = k end
    else
      return "object"
    end
  end
  if count == 0 then return "empty" end
  if max == count then return "array", count end
  return "object"
end

local encode_value

local function encode_table(t, out, opts, depth, key)
  if depth > 64 then error("json.encode: nesting too deep (a cycle?)", 0) end
  local kind, n = shape(t)
  if kind == "empty" then
    kind, n = (key and opts.list_keys[key]) and "array" or "object", 0
  end
  local indent = opts.indent
  local nl, pad, pad_in = "", "", ""
  if indent then
    nl = "\n"
    pad = string.rep(indent, depth)
    pad_in = string.rep(indent, depth + 1)
  end
  if kind == "array" then
    if n == 0 then out[#out + 1] = "[]" return end
    out[#out + 1] = "["
    for i = 1, n do
      out[#out + 1] = (i > 1 and "," or "") .. nl .. pad_in
      encode_value(t[i], out, opts, depth + 1, nil)
    end
    out[#out + 1] = nl .. pad .. "]"
    return
  end
  local keys = {}
  for k, v in pairs(t) do
    if v ~= nil and not (opts.skip_keys and opts.skip_keys[k]) then keys[#keys + 1] = tostring(k) end
  end
  if #keys == 0 then out[#out + 1] = "{}" return end
  table.sort(keys, key_before)
  out[#out + 1] = "{"
  for i, k in ipairs(keys) do
    local v = t[k]
    if v == nil then v = t[tonumber(k)] end
    out[#out + 1] = (i > 1 and "," or "") .. nl .. pad_in .. quote(k) .. (indent and ": " or ":")
    encode_value(v, out, opts, depth + 1, k)
  end
  out[#out + 1] = nl .. pad .. "}"
end

encode_value = function(v, out, opts, depth, key)
  local t = type(v)
  if v == nil or v == json.null or t == "userdata" then -- cjson's null is a light userdata
    out[#out + 1] = "null"
  elseif t == "string" then
    out[#out + 1] = quote(v)
  elseif t == "number" then
    out[#out + 1] = json.number(v)
  elseif t == "boolean" then
    out[#out + 1] = v and "true" or "false"
  elseif t == "table" then
    encode_table(v, out, opts, depth, key)
  else
    error("json.encode: cannot encode a " .. t, 0)
  end
end

--- The Lua writer: json.encode's reference, byte for byte (spec/json_spec.lua compares them).
function json.encode_lua(value, opts)
  opts = opts or {}
  local o = { indent = opts.indent, list_keys = opts.list_keys or json.LIST_KEYS, skip_keys = opts.skip_keys }
  local out = {}
  encode_value(value, out, o, 0, nil)
  return table.concat(out)
end

local has_core, core = pcall(require, "maintenance_report.core")
local c_encode = has_core and core.json_encode

--- JSON text for value. opts: indent (e.g. "  "; nil = one line),
--- list_keys (defaults to json.LIST_KEYS), skip_keys (a set of keys to leave out at any depth).
--- Raises for values JSON cannot hold (NaN, infinities, functions, cycles).
function json.encode(value, opts)
  if not c_encode then return json.encode_lua(value, opts) end
  if opts == nil then return c_encode(value, nil, json.LIST_KEYS, nil, json.null, ARRAY, RANK) end
  return c_encode(value, opts.indent, opts.list_keys or json.LIST_KEYS, opts.skip_keys, json.null, ARRAY, RANK)
end

return json
