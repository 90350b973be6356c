-- Minimal JSON encoder with a fixed key order, so the same data always gives
-- the same bytes (cjson's key order follows the hash table and is not stable).
-- Objects are built as flat {key1, value1, key2, value2, ...} lists.
local M = {}

local OBJECT = {}
local ARRAY = {}
local RAW = {}

function M.object(kv) return setmetatable(kv, OBJECT) end
function M.array(list) return setmetatable(list, ARRAY) end
-- Pre-formatted JSON text (e.g. a float with chosen precision).
function M.raw(text) return setmetatable({ text }, RAW) end

local ESCAPES = {
  ['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f',
  ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t',
}

local function escape_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return ESCAPES[c] or string.format("\\u%04x", c:byte())
  end) .. '"'
end

local encode

local function encode_into(out, v)
  local t = type(v)
  if t == "string" then
    out[#out + 1] = escape_string(v)
  elseif t == "number" then
    -- Only integers: floats must go through M.raw so their text is chosen
    -- explicitly (tostring differs between Lua 5.4 and LuaJIT).
    assert(v == math.floor(v) and v > -2^53 and v < 2^53, "non-integer number; use json.raw")
    out[#out + 1] = string.format("%d", math.floor(v))
  elseif t == "boolean" then
    out[#out + 1] = v and "true" or "false"
  elseif t == "table" then
    local mt = getmetatable(v)
    if mt == RAW then
      out[#out + 1] = v[1]
    elseif mt == OBJECT then
      out[#out + 1] = "{"
      for i = 1, #v, 2 do
        if i > 1 then out[#out + 1] = "," end
        out[#out + 1] = escape_string(v[i])
        out[#out + 1] = ":"
        encode_into(out, v[i + 1])
      end
      out[#out + 1] = "}"
    elseif mt == ARRAY then
      out[#out + 1] = "["
      for i = 1, #v do
        if i > 1 then out[#out + 1] = "," end
        encode_into(out, v[i])
      end
      out[#out + 1] = "]"
    else
      error("plain table: use json.object or json.array")
    end
  else
    error("cannot encode " .. t)
  end
end

function encode(v)
  local out = {}
  encode_into(out, v)
  return table.concat(out)
end
M.encode = encode

return M
