-- CRC-32/IEEE (the zlib/PNG/Ethernet CRC: reflected polynomial 0xEDB88320,
-- initial and final value 0xFFFFFFFF), for the file ledger's line checksums.
-- Lua 5.4 has integer bit operators, LuaJIT has the bit library; the 5.4
-- source is loaded as text so that LuaJIT never has to parse it.
local crc32 = {}

local POLY = 0xEDB88320

local update
if type(rawget(_G, "bit")) == "table" or (not math.type and pcall(require, "bit")) then
  local bit = require "bit"
  local band, bxor, rshift = bit.band, bit.bxor, bit.rshift
  local T = {}
  for i = 0, 255 do
    local c = i
    for _ = 1, 8 do
      if band(c, 1) == 1 then c = bxor(rshift(c, 1), POLY) else c = rshift(c, 1) end
    end
    T[i] = c
  end
  update = function(s)
    local c = -1 -- 0xFFFFFFFF as a signed 32-bit value
    for i = 1, #s do
      c = bxor(T[band(bxor(c, s:byte(i)), 0xFF)], rshift(c, 8))
    end
    return (bxor(c, -1) % 4294967296)
  end
else
  update = assert(load([[
    local POLY = ...
    local T = {}
    for i = 0, 255 do
      local c = i
      for _ = 1, 8 do
        if c & 1 == 1 then c = (c >> 1) ~ POLY else c = c >> 1 end
      end
      T[i] = c
    end
    return function(s)
      local c = 0xFFFFFFFF
      local byte = string.byte
      for i = 1, #s do
        c = T[(c ~ byte(s, i)) & 0xFF] ~ (c >> 8)
      end
      return c ~ 0xFFFFFFFF
    end
  ]], "=crc32", "t"))(POLY)
end

-- The core's C loop when it is there (a 5 KB ledger line in microseconds).
local has_core, core = pcall(require, "maintenance_report.core")
if has_core and core.crc32 then update = core.crc32 end

--- The CRC-32 of s as a number in [0, 2^32).
function crc32.sum(s)
  return update(s)
end

--- The CRC-32 of s as 8 lower-case hex digits.
function crc32.hex(s)
  return string.format("%08x", update(s))
end

return crc32
