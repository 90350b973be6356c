-- luacheck: std +busted
local validate = require("maintenance_report.validate")

-- An independent check-digit oracle written from the published table
-- (api.md, GB 16735 / ISO 3779); it deliberately shares no code with validate.lua.
local oracle = {}
do
  local values = {}
  for letter, value in ("A1 B2 C3 D4 E5 F6 G7 H8 J1 K2 L3 M4 N5 P7 R9 S2 T3 U4 V5 W6 X7 Y8 Z9")
      :gmatch("(%u)(%d)") do
    values[letter] = tonumber(value)
  end
  for digit = 0, 9 do values[tostring(digit)] = digit end
  oracle.values = values

  local weights = {}
  for w in ("8 7 6 5 4 3 2 10 0 9 8 7 6 5 4 3 2"):gmatch("%d+") do weights[#weights + 1] = tonumber(w) end

  function oracle.check_char(vin)
    local sum = 0
    for i = 1, 17 do sum = sum + values[vin:sub(i, i)] * weights[i] end
    local r = sum % 11
    return r == 10 and "X" or tostring(r)
  end

  -- The reason category the rules give for a candidate string.
  function oracle.category(candidate)
    local s = candidate:match("^%s*(.-)%s*$")
    if s:find("[%z\1-\31\127]") then return "control" end
    if s:find("[\128-\255]") then return "non_ascii" end
    if #s ~= 17 then return "length" end
    if s:find("[IOQ]") then return "ioq" end
    for i = 1, 17 do
      if not values[s:sub(i, i)] then return "charset" end
    end
    if s:sub(9, 9) ~= oracle.check_char(s) then return "check_digit" end
    return "valid"
  end
end

-- Which rule a validate.vin message reports.
local MESSAGE_CATEGORIES = {
  { "length", "^VIN must be 17 characters, got %d+$" },
  { "ioq", "^VIN contains '[IOQ]' at position %d+; I, O and Q are not used in VINs$" },
  { "charset", "^VIN contains invalid character '.' at position %d+$" },
  { "control", "^VIN contains .- at position %d+; line breaks and control characters are not allowed$" },
  { "non_ascii", "^VIN contains a non%-ASCII character %(.-%) at position %d+; VINs use only A%-Z and 0%-9$" },
  { "check_digit", "^VIN check digit is [0-9A-Z], expected [0-9X]$" },
}

local function category_of(result, message)
  if result then return "valid" end
  for _, entry in ipairs(MESSAGE_CATEGORIES) do
    if message:find(entry[2]) then return entry[1] end
  end
  return "unrecognized message: " .. tostring(message)
end

local VALID_VINS = { "1G4AH59H45G118341", "WBAXW1104J0X16755", "1G1BN53E6NW128495" }

-- Every character of [0-9A-Z] plus a few that must never pass.
local SUBSTITUTES = {}
for c in ("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"):gmatch(".") do SUBSTITUTES[#SUBSTITUTES + 1] = c end
for _, c in ipairs({ "-", " ", "#", "*", ".", "\n", "\t", "\195\169" }) do SUBSTITUTES[#SUBSTITUTES + 1] = c end

local function each_mutant(vin, visit)
  for position = 1, #vin do
    for _, c in ipairs(SUBSTITUTES) do
      if c ~= vin:sub(position, position) then
        visit(vin:sub(1, position - 1) .. c .. vin:sub(position + 1), position, c)
      end
    end
  end
end

describe("validate.vin", function()
  it("accepts the published valid VINs unchanged", function()
    for _, vin in ipairs(VALID_VINS) do
      assert.are.equal(vin, (validate.vin(vin)))
    end
  end)

  it("agrees with the oracle that the published VINs are valid", function()
    for _, vin in ipairs(VALID_VINS) do
      assert.are.equal("valid", oracle.category(vin))
    end
  end)

  it("agrees with the independent oracle on every single-character substitution", function()
    for _, vin in ipairs(VALID_VINS) do
      local disagreements, checked = {}, 0
      each_mutant(vin, function(mutant)
        checked = checked + 1
        local got = category_of(validate.vin(mutant))
        local want = oracle.category(mutant)
        if got ~= want then
          disagreements[#disagreements + 1] = string.format("%q: got %s, want %s", mutant, got, want)
        end
      end)
      assert.are.equal(17 * (#SUBSTITUTES - 1), checked)
      assert.are.same({}, disagreements)
    end
  end)

  it("names the mutated character and position in charset messages", function()
    local wrong = {}
    each_mutant(VALID_VINS[1], function(mutant, position, c)
      local expected
      local category = oracle.category(mutant)
      if category == "ioq" then
        expected = string.format("VIN contains '%s' at position %d; I, O and Q are not used in VINs", c, position)
      elseif category == "charset" then
        expected = string.format("VIN contains invalid character '%s' at position %d", c, position)
      end
      local _, message = validate.vin(mutant)
      if expected and message ~= expected then wrong[#wrong + 1] = message end
    end)
    assert.are.same({}, wrong)
  end)

  it("reports the oracle's expected character in check-digit messages", function()
    for _, vin in ipairs(VALID_VINS) do
      each_mutant(vin, function(mutant)
        if oracle.category(mutant) == "check_digit" then
          local _, message = validate.vin(mutant)
          assert.are.equal(string.format("VIN check digit is %s, expected %s",
            mutant:sub(9, 9), oracle.check_char(mutant)), message)
        end
      end)
    end
  end)

  -- The check digit is blind to swapping characters of equal value (A and 1,
  -- B/K/S and 2, ...). The spec makes that visible instead of hiding it.
  it("lets through exactly the substitutions of an equal-value character, and only those", function()
    for _, vin in ipairs(VALID_VINS) do
      local accepted, equal_value = {}, {}
      each_mutant(vin, function(mutant, position, c)
        if validate.vin(mutant) then accepted[#accepted + 1] = mutant end
        local original = vin:sub(position, position)
        if position ~= 9 and oracle.values[c] and c ~= "I" and c ~= "O" and c ~= "Q"
            and oracle.values[c] == oracle.values[original] then
          equal_value[#equal_value + 1] = mutant
        end
      end)
      assert.is_true(#accepted > 0)
      assert.are.same(equal_value, accepted)
    end
  end)

  it("accepts a known equal-value substitution (A -> 1 at position 4)", function()
    assert.are.equal("1G41H59H45G118341", (validate.vin("1G41H59H45G118341")))
  end)

  it("rejects any other check character at position 9", function()
    for c in ("0123456789X"):gmatch(".") do
      if c ~= "4" then
        local result, message = validate.vin("1G4AH59H" .. c .. "5G118341")
        assert.is_nil(result)
        assert.are.equal("VIN check digit is " .. c .. ", expected 4", message)
      end
    end
  end)

  it("rejects the vendor's 16-character sample VIN", function()
    local result, message = validate.vin("SBL666666BM9D933")
    assert.is_nil(result)
    assert.are.equal("VIN must be 17 characters, got 16", message)
  end)

  it("accepts lower case and surrounding whitespace, and normalizes them", function()
    assert.are.equal("1G4AH59H45G118341", (validate.vin("  1g4ah59h45g118341\t\n")))
    assert.are.equal("WBAXW1104J0X16755", (validate.vin("wbaxw1104j0x16755")))
  end)

  it("reports I, O and Q after folding case", function()
    local result, message = validate.vin("1g4ih59h45g118341")
    assert.is_nil(result)
    assert.are.equal("VIN contains 'I' at position 4; I, O and Q are not used in VINs", message)
  end)

  it("reports an invalid character with its position", function()
    assert.are.same({ nil, "VIN contains invalid character '#' at position 3" },
      { validate.vin("1G#AH59H45G118341") })
  end)

  it("reports the check digit mismatch with the expected character", function()
    -- 1G4AH59H45G118341 with the check digit 4 replaced by X
    assert.are.same({ nil, "VIN check digit is X, expected 4" }, { validate.vin("1G4AH59HX5G118341") })
  end)

  it("check_digit = false relaxes only the check digit", function()
    local opts = { check_digit = false }
    assert.are.equal("1G4AH59HX5G118341", (validate.vin("1g4ah59hx5g118341", opts)))
    assert.are.same({ nil, "VIN must be 17 characters, got 16" }, { validate.vin("SBL666666BM9D933", opts) })
    assert.are.same({ nil, "VIN contains 'O' at position 2; I, O and Q are not used in VINs" },
      { validate.vin("1O4AH59H45G118341", opts) })
    assert.are.same({ nil, "VIN contains invalid character '-' at position 5" },
      { validate.vin("1G4A-59H45G118341", opts) })
  end)

  it("requires a value", function()
    assert.are.same({ nil, "VIN is required" }, { validate.vin("") })
    assert.are.same({ nil, "VIN is required" }, { validate.vin("  \t ") })
    assert.are.same({ nil, "VIN is required" }, { validate.vin(nil) })
  end)

  it("returns a message, never raises, for non-string values", function()
    assert.are.same({ nil, "VIN must be a string, got number" }, { validate.vin(12345678901234567) })
    assert.are.same({ nil, "VIN must be a string, got table" }, { validate.vin({}) })
    assert.are.same({ nil, "VIN must be a string, got boolean" }, { validate.vin(true) })
  end)

  it("says plainly that CR and LF are not allowed", function()
    assert.are.same({ nil, "VIN contains a line feed (\\x0A) at position 5; "
      .. "line breaks and control characters are not allowed" }, { validate.vin("1G4A\nH59H45G118341") })
    assert.are.same({ nil, "VIN contains a carriage return (\\x0D) at position 5; "
      .. "line breaks and control characters are not allowed" }, { validate.vin("1G4A\r\nX-Injected: 1") })
    assert.are.same({ nil, "VIN contains a control character (\\x00) at position 2; "
      .. "line breaks and control characters are not allowed" }, { validate.vin("1\0G4AH59H45G118341") })
  end)

  it("shows non-ASCII characters as escaped bytes, counting position in characters", function()
    -- 京 is E4 BA AC and é is C3 A9.
    local _, message = validate.vin("京1G4\195\169H59H45G118341")
    assert.are.equal("VIN contains a non-ASCII character (\\xE4\\xBA\\xAC) at position 1; "
      .. "VINs use only A-Z and 0-9", message)
    _, message = validate.vin("1G4A\195\169H59H45G11834")
    assert.are.equal("VIN contains a non-ASCII character (\\xC3\\xA9) at position 5; "
      .. "VINs use only A-Z and 0-9", message)
  end)

  it("keeps the message valid UTF-8 for a malformed byte", function()
    local _, message = validate.vin("1G4\255H59H45G118341")
    assert.are.equal("VIN contains a non-ASCII character (\\xFF) at position 4; VINs use only A-Z and 0-9", message)
    assert.is_nil(message:find("[\128-\255]"))
  end)
end)

describe("validate.vin_check_digit", function()
  it("returns the expected check character", function()
    assert.are.equal("4", validate.vin_check_digit("1G4AH59H45G118341"))
    assert.are.equal("4", validate.vin_check_digit("WBAXW1104J0X16755"))
    assert.are.equal("6", validate.vin_check_digit("1G1BN53E6NW128495"))
  end)

  it("ignores the character already at position 9", function()
    assert.are.equal("4", validate.vin_check_digit("1G4AH59H05G118341"))
  end)

  it("returns 'X' for a remainder of 10", function()
    -- 1M8GDM9A_KP042788: the published example whose check digit is X
    assert.are.equal("X", validate.vin_check_digit("1M8GDM9AXKP042788"))
    assert.are.equal("X", oracle.check_char("1M8GDM9AXKP042788"))
  end)

  it("rejects a bad length or charset", function()
    assert.are.same({ nil, "VIN must be 17 characters, got 16" }, { validate.vin_check_digit("SBL666666BM9D933") })
    assert.are.same({ nil, "VIN contains 'Q' at position 1; I, O and Q are not used in VINs" },
      { validate.vin_check_digit("QG4AH59H45G118341") })
    assert.are.same({ nil, "VIN must be a string, got nil" }, { validate.vin_check_digit(nil) })
  end)
end)

describe("validate.plate", function()
  local function accepts(input, expected)
    local result, message = validate.plate(input)
    assert.are.equal(expected or input, result, message)
  end

  local function rejects(input, expected_message)
    local result, message = validate.plate(input)
    assert.is_nil(result)
    assert.are.equal(expected_message, message)
  end

  it("accepts regular plates", function()
    accepts("京A12345")
    accepts("粤BX5Z8K")
    accepts("琼ZABCDE")
  end)

  it("accepts the 挂, 学, 警, 港 and 澳 suffixes in last place", function()
    accepts("鲁B1234挂")
    accepts("苏A1234学")
    accepts("京A0001警")
    accepts("粤Z1234港")
    accepts("粤Z1234澳")
  end)

  it("accepts small new-energy plates", function()
    accepts("粤BD12345")
    accepts("沪AFA1234")
    accepts("浙AD71234")
  end)

  it("accepts large new-energy plates", function()
    accepts("粤B12345D")
    accepts("川A54321F")
  end)

  it("trims and folds ASCII letters to upper case", function()
    accepts("  京a12b45 \n", "京A12B45")
    accepts("粤bd12345", "粤BD12345")
  end)

  it("requires a province abbreviation first", function()
    local message = "plate must start with a province abbreviation such as 京 or 粤"
    rejects("A12345", message)
    rejects("港A12345", message)
    rejects("AB12345", message)
  end)

  it("rejects wrong lengths", function()
    rejects("京A1234", "plate must be 7 characters (8 for new-energy plates), got 6")
    rejects("京A", "plate must be 7 characters (8 for new-energy plates), got 2")
    rejects("粤BD123456", "plate must be 7 characters (8 for new-energy plates), got 9")
  end)

  it("rejects I and O", function()
    rejects("京A1I345", "plate contains 'I' at position 4; I and O are not used on plates")
    rejects("京A1234O", "plate contains 'O' at position 7; I and O are not used on plates")
    rejects("粤BDO2345", "plate contains 'O' at position 4; I and O are not used on plates")
  end)

  it("requires a letter in second place", function()
    rejects("京112345", "plate character 2 must be a letter A-Z, got '1'")
  end)

  it("rejects suffixes and symbols elsewhere", function()
    rejects("京A挂2345", "plate character 3 must be a letter or digit, got '挂'")
    rejects("京A1234#", "plate character 7 must be a letter, a digit, or one of 挂 学 警 港 澳, got '#'")
    rejects("京A12·45", "plate has a separator '·' at position 5; one separator is accepted only after the letter, "
      .. "as in 川A·12345")
  end)

  it("rejects malformed new-energy plates", function()
    rejects("粤BX12345", "new-energy plate must have D or F as its 3rd character (small vehicles)"
      .. " or its last character (large vehicles)")
    rejects("京A12345挂", "new-energy plate must have D or F as its 3rd character (small vehicles)"
      .. " or its last character (large vehicles)")
    rejects("粤BD1234A", "plate character 8 must be a digit, got 'A'")
    rejects("粤B1234AD", "plate character 7 must be a digit, got 'A'")
  end)

  it("rejects empty and non-string values without raising", function()
    rejects("", "plate is empty")
    rejects("   ", "plate is empty")
    rejects(42, "plate must be a string, got number")
  end)

  it("rejects control characters and broken UTF-8 plainly", function()
    rejects("京A12345\r\nX: 1",
      "plate contains a carriage return (\\x0D) at position 8; line breaks and control characters are not allowed")
    rejects("京A1\t345", "plate contains a control character (\\x09) at position 4; "
      .. "line breaks and control characters are not allowed")
    rejects("京\255A12345", "plate is not valid UTF-8 text (byte \\xFF at byte offset 4)")
    rejects("\228\186A12345", "plate is not valid UTF-8 text (byte \\xE4 at byte offset 1)")
  end)
end)

describe("validate.engine_number", function()
  it("accepts 1 and 20 characters", function()
    assert.are.equal("A", (validate.engine_number("A")))
    assert.are.equal(("7"):rep(20), (validate.engine_number(("7"):rep(20))))
  end)

  it("rejects 21 characters", function()
    assert.are.same({ nil, "engine number must be at most 20 characters, got 21" },
      { validate.engine_number(("7"):rep(21)) })
  end)

  it("rejects an empty value", function()
    assert.are.same({ nil, "engine number is empty" }, { validate.engine_number("") })
    assert.are.same({ nil, "engine number is empty" }, { validate.engine_number(" \t") })
  end)

  it("trims and folds to upper case, keeping '-'", function()
    assert.are.equal("G4KD-AB1234", (validate.engine_number("  g4kd-ab1234\n")))
  end)

  it("rejects other characters", function()
    assert.are.same({ nil, "engine number contains invalid character '_' at position 5; "
      .. "only letters, digits and '-' are allowed" }, { validate.engine_number("G4KD_1") })
    assert.are.same({ nil, "engine number contains invalid character ' ' at position 5; "
      .. "only letters, digits and '-' are allowed" }, { validate.engine_number("G4KD 1") })
  end)

  it("rejects CR/LF, saying why", function()
    assert.are.same({ nil, "engine number contains a line feed (\\x0A) at position 5; "
      .. "line breaks and control characters are not allowed" }, { validate.engine_number("G4KD\nSet-Cookie: x") })
  end)

  it("rejects non-ASCII and non-string values", function()
    assert.are.same({ nil, "engine number contains a non-ASCII character (\\xE5\\x8F\\x91) at position 1; "
      .. "only letters, digits and '-' are allowed" }, { validate.engine_number("发动机") })
    assert.are.same({ nil, "engine number must be a string, got number" }, { validate.engine_number(123) })
  end)
end)

describe("validate.order_id", function()
  it("accepts 1 and 64 characters", function()
    assert.are.equal("a", (validate.order_id("a")))
    local id = ("Ab9_-"):rep(12) .. "Zz09"
    assert.are.equal(64, #id)
    assert.are.equal(id, (validate.order_id(id)))
  end)

  it("rejects 65 characters", function()
    assert.are.same({ nil, "order id must be at most 64 characters, got 65" }, { validate.order_id(("x"):rep(65)) })
  end)

  it("keeps case and trims", function()
    assert.are.equal("Order_42-a", (validate.order_id(" Order_42-a\n")))
  end)

  it("requires a value", function()
    assert.are.same({ nil, "order id is required" }, { validate.order_id("") })
    assert.are.same({ nil, "order id is required" }, { validate.order_id(nil) })
  end)

  it("rejects URL metacharacters", function()
    assert.are.same({ nil, "order id contains invalid character '&' at position 4; "
      .. "only letters, digits, '_' and '-' are allowed" }, { validate.order_id("abc&vin=1") })
    assert.are.same({ nil, "order id contains invalid character '/' at position 3; "
      .. "only letters, digits, '_' and '-' are allowed" }, { validate.order_id("ab/../etc") })
  end)

  it("rejects CR/LF, saying why", function()
    assert.are.same({ nil, "order id contains a carriage return (\\x0D) at position 4; "
      .. "line breaks and control characters are not allowed" }, { validate.order_id("abc\r\nHost: evil") })
  end)

  it("returns a message for non-string values", function()
    assert.are.same({ nil, "order id must be a string, got table" }, { validate.order_id({}) })
  end)
end)
