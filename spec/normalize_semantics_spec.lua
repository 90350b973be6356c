-- luacheck: std +busted
-- The documented rules of docs/normalize.md where they differ from what the
-- normalizer inherited from Lua 5.4's arithmetic: the accepted utc_offset_hours,
-- options checked like every other options table, numbers that never wrap and
-- never depend on the interpreter, and epoch dates bounded by the calendar only.
-- Expected dates come from `date -u -d @SECONDS +%F` (GNU coreutils).
local normalize = require("maintenance_report.normalize")

local EPOCH_MS = 1381161600000 -- 2013-10-07T16:00:00Z

local function last_maintenance(opts)
  local body = { data = { detail = { lastMainTainTime = EPOCH_MS } } }
  return normalize.report(body, "ready", nil, opts).last_maintenance_date
end

local function raises(pattern, fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "did not raise")
  assert.truthy(tostring(err):find(pattern), tostring(err))
end

describe("utc_offset_hours", function()
  local OFFSET_RULE = "utc_offset_hours must be a number from %-12 to 14 in steps of 0%.25"

  it("accepts -12..14 in quarter hours, and nil for UTC+8", function()
    -- date -u -d @$((1381161600 + OFFSET)) +%F
    local cases = {
      { nil, "2013-10-08" }, { 8, "2013-10-08" }, { 8.0, "2013-10-08" }, { 7.75, "2013-10-07" },
      { -12, "2013-10-07" }, { 14, "2013-10-08" }, { 5.75, "2013-10-07" }, { 0, "2013-10-07" },
    }
    for _, case in ipairs(cases) do
      local hours, expected = case[1], case[2]
      assert.are.equal(expected, normalize.date(EPOCH_MS, hours), tostring(hours))
      assert.are.equal(expected, last_maintenance({ utc_offset_hours = hours }), tostring(hours))
    end
    assert.are.equal("2013-10-08", last_maintenance(nil))
    assert.are.equal("2013-10-08", last_maintenance({}))
  end)

  it("refuses, with a message naming the rule, anything else", function()
    local bad = { 25, -24, 14.25, -12.25, 0.1, 5.6, 1 / 0, -1 / 0, 0 / 0, "8", true, {} }
    if math.type then
      bad[#bad + 1] = math.mininteger -- math.abs(math.mininteger) < 0 passed the old check
      bad[#bad + 1] = math.maxinteger
    end
    for _, hours in ipairs(bad) do
      raises(OFFSET_RULE, normalize.date, EPOCH_MS, hours)
      raises(OFFSET_RULE, normalize.report, {}, "ready", nil, { utc_offset_hours = hours })
      raises(OFFSET_RULE, normalize.report, "not a table", "ready", nil, { utc_offset_hours = hours })
    end
    raises("got 25", normalize.date, EPOCH_MS, 25)
    raises("got string", normalize.date, EPOCH_MS, "8")
  end)

  it("is checked before the value, so a bad offset never goes unnoticed", function()
    raises(OFFSET_RULE, normalize.date, "not a date", 99)
    raises(OFFSET_RULE, normalize.date, nil, 99)
  end)
end)

describe("normalize.report options", function()
  it("must be a table or nil", function()
    for _, opts in ipairs({ "x", 8, true }) do
      raises("opts must be a table or nil, got " .. type(opts), normalize.report, {}, "ready", nil, opts)
    end
  end)

  it("has no option but utc_offset_hours", function()
    raises("unknown option 'utc_offset'", normalize.report, {}, "ready", nil, { utc_offset = 8 })
  end)
end)

describe("normalize.number range", function()
  local TWO_53 = 9007199254740992

  it("reads whole numbers up to 2^53 exactly", function()
    assert.are.equal(TWO_53, normalize.number("9007199254740992"))
    assert.are.equal(-TWO_53, normalize.number("-9007199254740992"))
    if math.type then
      assert.are.equal("integer", math.type(normalize.number("9007199254740992")))
      assert.are.equal("integer", math.type(normalize.number(2 ^ 53)))
    end
  end)

  it("gives the nearest float beyond 2^53, as every interpreter holds it", function()
    -- 2^53 + 1 is not a double; the nearest one (ties to even) is 2^53.
    assert.are.equal(TWO_53 + 0.0, normalize.number("9007199254740993"))
    assert.are.equal(2 ^ 63, normalize.number("9223372036854775807"))
    assert.are.equal(-(2 ^ 63), normalize.number("-9223372036854775808"))
    assert.are.equal(1e20, normalize.number("99999999999999999999"))
    if math.type then
      assert.are.equal("float", math.type(normalize.number("9007199254740993")))
      assert.are.equal("float", math.type(normalize.number("-9223372036854775808")))
      assert.are.equal("float", math.type(normalize.number(1e18)))
      assert.are.equal("float", math.type(normalize.number(math.tointeger(2 ^ 53) + 1)))
      local max = normalize.number(math.maxinteger)
      assert.are.equal("float", math.type(max))
      assert.are.equal(2 ^ 63, max)
      assert.are.equal(-(2 ^ 63), normalize.number(math.mininteger))
    end
  end)

  it("refuses text whose value is not finite", function()
    assert.is_nil(normalize.number("1" .. string.rep("0", 400)))
  end)

  it("reads a build year or a flag only from an exact value", function()
    local detail = { makeDate = "2014.0000000000000001", carFireFlag = "1.0", carWaterFlag = "-0" }
    local body = { data = { detail = detail } }
    local report = normalize.report(body, "ready")
    assert.are.equal(2014, report.vehicle.year) -- the text's nearest double is 2014
    assert.are.same({ fire = true, flood = false }, report.flags)
  end)
end)

describe("normalize.date epoch range", function()
  it("accepts every instant whose civil date is in 0001..9999, at any offset", function()
    -- 253402300800 s is 10000-01-01T00:00Z; one hour later at UTC-12 is 9999-12-31T13:00.
    assert.are.equal("9999-12-31", normalize.date(253402300800000 + 3600000, -12))
    assert.are.equal("9999-12-31", normalize.date("253402303600000", -12))
    assert.are.equal("0001-01-01", normalize.date(-62135596800000, 0))
  end)

  it("refuses instants whose civil date is outside 0001..9999", function()
    assert.is_nil(normalize.date(253402300800000, 0))
    assert.is_nil(normalize.date(-62135596800001, 0))
    assert.is_nil(normalize.date("-62135596800001", 0))
    assert.is_nil(normalize.date(2 ^ 63))
    if math.type then
      assert.is_nil(normalize.date(math.mininteger))
      assert.is_nil(normalize.date(math.maxinteger))
    end
  end)

  it("floors fractional milliseconds", function()
    assert.are.equal("1969-12-31", normalize.date(-0.5, 0)) -- 1969-12-31T23:59:59.9995Z
    assert.are.equal("1970-01-01", normalize.date(0.5, 0))
    assert.are.equal("2013-10-07", normalize.date(EPOCH_MS - 0.25, 8))
  end)
end)
