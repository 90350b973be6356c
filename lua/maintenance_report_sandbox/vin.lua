-- VIN arithmetic the sandbox needs: check digit, model-year code, masking.
-- Deliberately independent of maintenance_report.validate so the sandbox
-- can check the client rather than share its bugs.
local M = {}

local LETTER_VALUE = {
  A = 1, B = 2, C = 3, D = 4, E = 5, F = 6, G = 7, H = 8,
  J = 1, K = 2, L = 3, M = 4, N = 5, P = 7, R = 9,
  S = 2, T = 3, U = 4, V = 5, W = 6, X = 7, Y = 8, Z = 9,
}
local WEIGHTS = { 8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2 }

-- Model-year codes repeat every 30 years: A=1980 ... Y=2000, 1=2001 ... 9=2009,
-- then A=2010 again.
local YEAR_CODES = "ABCDEFGHJKLMNPRSTVWXY123456789"
M.YEAR_CODES = YEAR_CODES

local function char_value(c)
  if c:match("%d") then return tonumber(c) end
  return LETTER_VALUE[c]
end

-- Returns the check character ("0".."9" or "X") for a 17-char VIN, ignoring
-- whatever is at position 9; nil if a character is not allowed in a VIN.
function M.check_char(vin)
  if type(vin) ~= "string" or #vin ~= 17 then return nil end
  local sum = 0
  for i = 1, 17 do
    local v = char_value(vin:sub(i, i))
    if not v then return nil end
    sum = sum + v * WEIGHTS[i]
  end
  local r = sum % 11
  if r == 10 then return "X" end
  return tostring(r)
end

function M.is_valid(vin)
  local c = M.check_char(vin)
  return c ~= nil and vin:sub(9, 9) == c
end

-- Puts the right check character at position 9.
function M.with_check_digit(vin)
  local c = assert(M.check_char(vin), "invalid VIN characters")
  return vin:sub(1, 8) .. c .. vin:sub(10)
end

-- Model year for the code at position 10: the latest year of the 30-year
-- cycle that is not after ref_year. nil for a character that is no year code.
function M.model_year(code, ref_year)
  local i = YEAR_CODES:find(code, 1, true)
  if not i or #code ~= 1 then return nil end
  local year = 1980 + (i - 1)
  while year + 30 <= ref_year do year = year + 30 end
  return year
end

-- Vendor masking: first 2 chars, 6 asterisks, last 5 ("SA******02383").
function M.mask(vin)
  if #vin <= 7 then return vin end
  return vin:sub(1, 2) .. "******" .. vin:sub(-5)
end

return M
