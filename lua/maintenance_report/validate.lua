-- Input validation, run before any (paid) request is sent.
--
-- Every public function returns the normalized value, or nil and a one-line
-- English message. Nothing here raises: a value of the wrong type is bad
-- user input like any other. The charsets below exclude CR, LF and every
-- other control character, so a value that passes cannot inject a header
-- or break a URL.
--
-- Pure Lua, for Lua 5.1/LuaJIT and 5.4: no utf8 library, no integer division.

local validate = {}

local MAX_ENGINE_NUMBER_LENGTH = 20
local MAX_ORDER_ID_LENGTH = 64

---------------------------------------------------------------------------
-- Text helpers
---------------------------------------------------------------------------

local function trim(s)
  return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

-- string.upper follows the C locale; fold ASCII only so UTF-8 bytes stay intact.
local function ascii_upper(s)
  return (s:gsub("[a-z]", function(c) return string.char(c:byte() - 32) end))
end

local function hex_bytes(s)
  return (s:gsub(".", function(c) return string.format("\\x%02X", c:byte()) end))
end

local function is_continuation_byte(b)
  return b >= 0x80 and b <= 0xBF
end

-- Position counted in characters (UTF-8 lead bytes), so it stays sensible
-- when the text before the offending byte is not ASCII.
local function char_position(s, byte_index)
  local position = 1
  for i = 1, byte_index - 1 do
    if not is_continuation_byte(s:byte(i)) then position = position + 1 end
  end
  return position
end

-- The byte at i plus any continuation bytes that follow it (at most 3).
local function byte_sequence_at(s, i)
  local j = i
  while j < i + 3 and j < #s and is_continuation_byte(s:byte(j + 1)) do j = j + 1 end
  return s:sub(i, j)
end

local function describe_control(byte)
  if byte == 0x0D then return "a carriage return (\\x0D)" end
  if byte == 0x0A then return "a line feed (\\x0A)" end
  return string.format("a control character (\\x%02X)", byte)
end

local function control_message(label, s, i)
  return string.format("%s contains %s at position %d; line breaks and control characters are not allowed",
    label, describe_control(s:byte(i)), char_position(s, i))
end

-- First control character or non-ASCII byte, as a message; nil when the text is
-- printable ASCII. `allowed` says what the field may contain.
local function ascii_problem(label, s, allowed)
  local i = s:find("[%z\1-\31\127-\255]")
  if not i then return nil end
  if s:byte(i) < 0x80 then return control_message(label, s, i) end
  return string.format("%s contains a non-ASCII character (%s) at position %d; %s",
    label, hex_bytes(byte_sequence_at(s, i)), char_position(s, i), allowed)
end

local function quote_char(c)
  return "'" .. c .. "'"
end

-- Common start of every validator: type check, trim, emptiness.
local function prepare(value, label, empty_message)
  if value == nil then return nil, empty_message end
  if type(value) ~= "string" then
    return nil, string.format("%s must be a string, got %s", label, type(value))
  end
  local s = trim(value)
  if s == "" then return nil, empty_message end
  return s
end

---------------------------------------------------------------------------
-- VIN (GB 16735 / ISO 3779)
---------------------------------------------------------------------------

local VIN_LENGTH = 17
local VIN_CHECK_POSITION = 9
local VIN_WEIGHTS = { 8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2 }
local VIN_LETTER_VALUES = {
  A = 1, B = 2, C = 3, D = 4, E = 5, F = 6, G = 7, H = 8,
  J = 1, K = 2, L = 3, M = 4, N = 5, P = 7, R = 9,
  S = 2, T = 3, U = 4, V = 5, W = 6, X = 7, Y = 8, Z = 9,
}

local function vin_char_value(c)
  return VIN_LETTER_VALUES[c] or tonumber(c:match("^%d$"))
end

-- Length and charset of an upper-cased, printable-ASCII VIN.
local function vin_shape_problem(vin)
  if #vin ~= VIN_LENGTH then
    return string.format("VIN must be %d characters, got %d", VIN_LENGTH, #vin)
  end
  for i = 1, #vin do
    local c = vin:sub(i, i)
    if c == "I" or c == "O" or c == "Q" then
      return string.format("VIN contains '%s' at position %d; I, O and Q are not used in VINs", c, i)
    end
    if not vin_char_value(c) then
      return string.format("VIN contains invalid character %s at position %d", quote_char(c), i)
    end
  end
  return nil
end

local function compute_check_digit(vin)
  local sum = 0
  for i = 1, VIN_LENGTH do
    sum = sum + vin_char_value(vin:sub(i, i)) * VIN_WEIGHTS[i]
  end
  local remainder = sum % 11
  return remainder == 10 and "X" or tostring(remainder)
end

local VIN_ALLOWED = "VINs use only A-Z and 0-9"

--- Expected check character ('0'-'9' or 'X') of a 17-character VIN.
-- Case-insensitive; returns nil, message for a bad length or charset.
function validate.vin_check_digit(vin17)
  if type(vin17) ~= "string" then
    return nil, "VIN must be a string, got " .. type(vin17)
  end
  local problem = ascii_problem("VIN", vin17, VIN_ALLOWED)
  if problem then return nil, problem end
  local vin = ascii_upper(vin17)
  problem = vin_shape_problem(vin)
  if problem then return nil, problem end
  return compute_check_digit(vin)
end

-- The common case in one pattern test and one string.byte call (a web service
-- validates every request): exactly 17 VIN characters, any case, nothing to trim.
-- Returns the normalized VIN, or nil when the general path must decide (and
-- word the message).
local VIN_BYTE_VALUES = {}
for c, v in pairs(VIN_LETTER_VALUES) do
  VIN_BYTE_VALUES[c:byte()], VIN_BYTE_VALUES[c:lower():byte()] = v, v
end
for d = 0, 9 do VIN_BYTE_VALUES[48 + d] = d end
local X_BYTE = ("X"):byte()

local function plain_vin(s, check)
  if #s ~= VIN_LENGTH or s:find("[^A-HJ-NPR-Z0-9a-hj-npr-z]") then return nil end
  if check then
    local V = VIN_BYTE_VALUES
    local b1, b2, b3, b4, b5, b6, b7, b8, b9, b10, b11, b12, b13, b14, b15, b16, b17 = s:byte(1, VIN_LENGTH)
    local remainder = (V[b1] * 8 + V[b2] * 7 + V[b3] * 6 + V[b4] * 5 + V[b5] * 4 + V[b6] * 3 + V[b7] * 2
      + V[b8] * 10 + V[b10] * 9 + V[b11] * 8 + V[b12] * 7 + V[b13] * 6 + V[b14] * 5 + V[b15] * 4
      + V[b16] * 3 + V[b17] * 2) % 11
    if b9 ~= (remainder == 10 and X_BYTE or 48 + remainder) then return nil end
  end
  -- only ASCII letters outside I, O and Q remain, which every locale upper-cases alike
  return s:find("[a-z]") and s:upper() or s
end

--- Normalized (trimmed, upper-case) VIN, or nil, message.
-- opts.check_digit == false skips only the position-9 check digit.
function validate.vin(s, opts)
  if type(s) == "string" then
    local plain = plain_vin(s, not (type(opts) == "table" and opts.check_digit == false))
    if plain then return plain end
  end
  local vin, err = prepare(s, "VIN", "VIN is required")
  if not vin then return nil, err end
  local problem = ascii_problem("VIN", vin, VIN_ALLOWED)
  if problem then return nil, problem end
  vin = ascii_upper(vin)
  problem = vin_shape_problem(vin)
  if problem then return nil, problem end
  if type(opts) == "table" and opts.check_digit == false then return vin end

  local expected = compute_check_digit(vin)
  local actual = vin:sub(VIN_CHECK_POSITION, VIN_CHECK_POSITION)
  if actual ~= expected then
    return nil, string.format("VIN check digit is %s, expected %s", actual, expected)
  end
  return vin
end

---------------------------------------------------------------------------
-- Licence plate (GA 36-2018)
---------------------------------------------------------------------------

local PROVINCES = {}
for province in ("京 津 沪 渝 冀 豫 云 辽 黑 湘 皖 鲁 新 苏 浙 赣 鄂 桂 甘 晋 蒙 陕 吉 闽 贵 粤 青 藏 川 宁 琼"):gmatch("%S+") do
  PROVINCES[province] = true
end
local REGULAR_SUFFIXES = { ["挂"] = true, ["学"] = true, ["警"] = true, ["港"] = true, ["澳"] = true }
local REGULAR_LENGTH = 7
local NEW_ENERGY_LENGTH = 8

-- Length of the UTF-8 sequence a lead byte starts; nil for a byte that cannot lead.
local function utf8_sequence_length(b)
  if b < 0x80 then return 1 end
  if b >= 0xC2 and b <= 0xDF then return 2 end
  if b >= 0xE0 and b <= 0xEF then return 3 end
  if b >= 0xF0 and b <= 0xF4 then return 4 end
  return nil
end

-- Split into UTF-8 characters by hand (5.1 has no utf8 library).
-- Returns the list, or nil and the byte index of the first malformed byte.
local function utf8_chars(s)
  local chars, i = {}, 1
  while i <= #s do
    local n = utf8_sequence_length(s:byte(i))
    if not n or i + n - 1 > #s then return nil, i end
    for j = i + 1, i + n - 1 do
      if not is_continuation_byte(s:byte(j)) then return nil, i end
    end
    chars[#chars + 1] = s:sub(i, i + n - 1)
    i = i + n
  end
  return chars
end

local function is_letter(c) return c:find("^[A-Z]$") ~= nil end
local function is_digit(c) return c:find("^[0-9]$") ~= nil end
local function is_plate_letter_or_digit(c)
  return (is_letter(c) or is_digit(c)) and c ~= "I" and c ~= "O"
end

-- A printable message for one plate character: I and O get their own reason.
local function plate_char_message(position, c, wanted)
  if c == "I" or c == "O" then
    return string.format("plate contains '%s' at position %d; I and O are not used on plates", c, position)
  end
  return string.format("plate character %d must be %s, got %s", position, wanted, quote_char(c))
end

local function check_plate_chars(chars, first, last, accepts, wanted)
  for i = first, last do
    if not accepts(chars[i]) then return plate_char_message(i, chars[i], wanted) end
  end
  return nil
end

local function regular_plate_problem(chars)
  local problem = check_plate_chars(chars, 3, 6, is_plate_letter_or_digit, "a letter or digit")
  if problem then return problem end
  local last = chars[REGULAR_LENGTH]
  if is_plate_letter_or_digit(last) or REGULAR_SUFFIXES[last] then return nil end
  return plate_char_message(REGULAR_LENGTH, last, "a letter, a digit, or one of 挂 学 警 港 澳")
end

local function is_energy_type(c) return c == "D" or c == "F" end

local function new_energy_plate_problem(chars)
  if is_energy_type(chars[3]) then -- small vehicle: 粤B D1 2345
    return check_plate_chars(chars, 4, 4, is_plate_letter_or_digit, "a letter or digit")
      or check_plate_chars(chars, 5, 8, is_digit, "a digit")
  end
  if is_energy_type(chars[8]) then -- large vehicle: 粤B 12345 D
    return check_plate_chars(chars, 3, 7, is_digit, "a digit")
  end
  return "new-energy plate must have D or F as its 3rd character (small vehicles)"
    .. " or its last character (large vehicles)"
end

-- Separators dealers and DMS exports write after the issuing-authority letter
-- (川A·12345, 川A 12345, 川A-12345): not part of the plate number.
local PLATE_SEPARATORS = { [" "] = true, ["-"] = true, ["."] = true, ["·"] = true, ["•"] = true,
  ["・"] = true, ["．"] = true, ["－"] = true, ["\227\128\128"] = true } -- the last: U+3000 ideographic space

-- Drops one separator after the 2nd character; any other is an error that names it.
local function drop_plate_separator(chars)
  local dropped = false
  if PLATE_SEPARATORS[chars[3] or ""] then
    table.remove(chars, 3)
    dropped = true
  end
  for i, c in ipairs(chars) do
    if PLATE_SEPARATORS[c] then
      return nil, string.format("plate has a separator %s at position %d; one separator is accepted only "
        .. "after the letter, as in 川A·12345", quote_char(c), i + (dropped and 1 or 0))
    end
  end
  return chars, dropped
end

--- Normalized (trimmed, ASCII upper-case, without a separator after the letter) plate number,
--- or nil, message.
function validate.plate(s)
  local plate, err = prepare(s, "plate", "plate is empty")
  if not plate then return nil, err end
  local control_at = plate:find("[%z\1-\31\127]")
  if control_at then return nil, control_message("plate", plate, control_at) end
  plate = ascii_upper(plate)

  local chars, bad_byte = utf8_chars(plate)
  if not chars then
    return nil, string.format("plate is not valid UTF-8 text (byte \\x%02X at byte offset %d)",
      plate:byte(bad_byte), bad_byte)
  end
  if not PROVINCES[chars[1]] then
    return nil, "plate must start with a province abbreviation such as 京 or 粤"
  end
  local separated, problem_or_dropped = drop_plate_separator(chars)
  if not separated then return nil, problem_or_dropped end
  if #chars ~= REGULAR_LENGTH and #chars ~= NEW_ENERGY_LENGTH then
    return nil, string.format("plate must be %d characters (%d for new-energy plates), got %d%s",
      REGULAR_LENGTH, NEW_ENERGY_LENGTH, #chars, problem_or_dropped and " without the separator" or "")
  end
  if not is_letter(chars[2]) then
    return nil, string.format("plate character 2 must be a letter A-Z, got %s", quote_char(chars[2]))
  end

  local problem
  if #chars == REGULAR_LENGTH then
    problem = regular_plate_problem(chars)
  else
    problem = new_energy_plate_problem(chars)
  end
  if problem then return nil, problem end
  return table.concat(chars)
end

---------------------------------------------------------------------------
-- Engine number and order id
---------------------------------------------------------------------------

-- Shared rule for plain ASCII identifiers: length bound and a charset.
local function identifier(s, spec)
  local value, err = prepare(s, spec.label, spec.empty_message)
  if not value then return nil, err end
  local problem = ascii_problem(spec.label, value, spec.allowed)
  if problem then return nil, problem end
  if #value > spec.max_length then
    return nil, string.format("%s must be at most %d characters, got %d", spec.label, spec.max_length, #value)
  end
  local bad_at = value:find(spec.invalid_pattern)
  if bad_at then
    return nil, string.format("%s contains invalid character %s at position %d; %s",
      spec.label, quote_char(value:sub(bad_at, bad_at)), bad_at, spec.allowed)
  end
  return value
end

local ENGINE_NUMBER = {
  label = "engine number",
  empty_message = "engine number is empty",
  allowed = "only letters, digits and '-' are allowed",
  max_length = MAX_ENGINE_NUMBER_LENGTH,
  invalid_pattern = "[^A-Za-z0-9%-]",
}

local ORDER_ID = {
  label = "order id",
  empty_message = "order id is required",
  allowed = "only letters, digits, '_' and '-' are allowed",
  max_length = MAX_ORDER_ID_LENGTH,
  invalid_pattern = "[^A-Za-z0-9_%-]",
}

--- Trimmed engine number, folded to upper case (engine numbers are stamped
-- codes and compare case-insensitively), or nil, message. 1-20 of A-Z 0-9 '-'.
function validate.engine_number(s)
  local value, err = identifier(s, ENGINE_NUMBER)
  if not value then return nil, err end
  return ascii_upper(value)
end

--- Trimmed order id (case kept), or nil, message. 1-64 of A-Z a-z 0-9 '_' '-'.
function validate.order_id(s)
  -- A well-formed id (every get_report's) in one scan: then there is nothing to
  -- trim and no control or non-ASCII byte, so identifier() would return it as it is.
  if type(s) == "string" and #s <= ORDER_ID.max_length and s ~= "" and not s:find(ORDER_ID.invalid_pattern) then
    return s
  end
  return identifier(s, ORDER_ID)
end

--- The X-Source label as given, or nil, message: printable ASCII (space to '~'),
-- since the gateway signs and compares header bytes and refuses other text as a
-- bad signature. Not trimmed: it is signed exactly as sent.
function validate.source(s)
  if type(s) ~= "string" then return nil, "source must be a string, got " .. type(s) end
  if s == "" then return nil, "source must not be empty" end
  local problem = ascii_problem("source", s, "only printable ASCII (letters, digits, punctuation, space) is allowed")
  if problem then return nil, problem end
  if s:find("^ ") or s:find(" $") then return nil, "source must not start or end with a space" end
  return s
end

return validate
