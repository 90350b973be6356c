-- validate.vin's fast path (one pattern test, one string.byte call) against a
-- plain reading of ISO 3779 / GB 16735 written here: for random 17-character
-- strings over the VIN alphabet in both cases, with and without a correct
-- check digit, and with characters a VIN never has, the verdict and the
-- normalized VIN agree with the standard.
local validate = require "maintenance_report.validate"

-- ISO 3779 transliteration and weights, as the standard tables them.
local VALUES = { A = 1, B = 2, C = 3, D = 4, E = 5, F = 6, G = 7, H = 8, J = 1, K = 2, L = 3, M = 4,
  N = 5, P = 7, R = 9, S = 2, T = 3, U = 4, V = 5, W = 6, X = 7, Y = 8, Z = 9 }
for d = 0, 9 do VALUES[tostring(d)] = d end
local WEIGHTS = { 8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2 }

-- The normalized VIN the standard accepts, or nil.
local function reference(s, check)
  local vin = s:gsub("^%s+", ""):gsub("%s+$", ""):gsub("%a", function(c)
    return c:byte() >= 97 and c:byte() <= 122 and string.char(c:byte() - 32) or c
  end)
  if #vin ~= 17 then return nil end
  local sum = 0
  for i = 1, 17 do
    local v = VALUES[vin:sub(i, i)]
    if not v then return nil end
    sum = sum + v * WEIGHTS[i]
  end
  if check then
    local expected = sum % 11 == 10 and "X" or tostring(sum % 11)
    if vin:sub(9, 9) ~= expected then return nil end
  end
  return vin
end

local ALPHABET = "ABCDEFGHJKLMNPRSTUVWXYZabcdefghjklmnprstuvwxyz0123456789"
local STRANGERS = { "I", "O", "Q", "i", "o", "q", " ", "-", "\0", "\n", "\xC3", "\xA9", "_", "Ä" }

local function random_vin()
  local chars = {}
  for i = 1, 17 do
    local k = math.random(#ALPHABET)
    chars[i] = ALPHABET:sub(k, k)
  end
  local roll = math.random(4)
  if roll == 1 then -- a correct check digit, in either case of x
    chars[9] = "0"
    local vin = table.concat(chars)
    local sum = 0
    for i = 1, 17 do sum = sum + VALUES[vin:sub(i, i):upper()] * WEIGHTS[i] end
    local digit = sum % 11 == 10 and (math.random(2) == 1 and "X" or "x") or tostring(sum % 11)
    chars[9] = digit
  elseif roll == 2 then
    chars[math.random(17)] = STRANGERS[math.random(#STRANGERS)]
  end
  return table.concat(chars)
end

describe("validate.vin's fast path", function()
  it("agrees with ISO 3779 on 20,000 random candidates, with and without the check digit", function()
    math.randomseed(3779)
    local accepted = 0
    for _ = 1, 20000 do
      local s = random_vin()
      for _, check in ipairs{ true, false } do
        local got, message = validate.vin(s, { check_digit = check })
        local want = reference(s, check)
        assert.are.equal(want, got, ("%q check=%s: %s"):format(s, tostring(check), tostring(message)))
        if got then accepted = accepted + 1 else assert.is_string(message) end
      end
    end
    assert.is_true(accepted > 10000, "too few valid candidates: " .. accepted)
  end)

  it("still trims and upper-cases what the fast path leaves to the general one", function()
    assert.are.equal("1G4AH59H45G118341", validate.vin(" 1g4ah59h45g118341\t"))
    assert.are.equal("11111111111111111", validate.vin("11111111111111111"))
    assert.is_nil(validate.vin("1G4AH59H45G11834"))
  end)
end)
