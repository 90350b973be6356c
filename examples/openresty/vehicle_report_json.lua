-- JSON encoding for the example service. Not cjson: Debian's lua-cjson writes an
-- empty Lua table as {} and has no empty-array marker, but the normalized report's
-- lists must stay lists. Keys are sorted, so equal reports give equal bytes.
local M = {}

-- Keys of the normalized report whose values are lists (README.md, "The normalized report").
M.LIST_KEYS = {
  records = true, component_records = true, exterior_records = true,
  structural_records = true, items = true, materials = true,
}

local ESCAPES = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }

local function string_json(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return ESCAPES[c] or ("\\u%04x"):format(c:byte())
  end) .. '"'
end

local function number_json(n)
  if n ~= n or n == math.huge or n == -math.huge then return "null" end
  if n == math.floor(n) and math.abs(n) < 2 ^ 53 then return ("%d"):format(n) end
  return ("%.17g"):format(n)
end

local encode

local function table_json(t, as_list, depth)
  if depth > 32 then error("vehicle_report_json: nesting too deep", 0) end
  local out = {}
  if as_list or t[1] ~= nil then
    for i = 1, #t do out[i] = encode(t[i], nil, depth + 1) end
    return "[" .. table.concat(out, ",") .. "]"
  end
  local keys = {}
  for k in pairs(t) do
    if type(k) == "string" then keys[#keys + 1] = k end
  end
  table.sort(keys)
  for i, k in ipairs(keys) do
    out[i] = string_json(k) .. ":" .. encode(t[k], k, depth + 1)
  end
  return "{" .. table.concat(out, ",") .. "}"
end

function encode(v, key, depth)
  local kind = type(v)
  if kind == "string" then return string_json(v) end
  if kind == "number" then return number_json(v) end
  if kind == "boolean" then return tostring(v) end
  if kind == "table" then return table_json(v, M.LIST_KEYS[key], depth or 0) end
  return "null"
end

--- Encodes a value; empty tables under LIST_KEYS become [].
function M.encode(value)
  return encode(value, nil, 0)
end

return M
