-- luacheck: std +busted
-- Edge cases of normalize.report that normalize_spec.lua does not pin down:
-- list shapes, long lists and texts, number subtypes, text reuse boundaries.
-- Expected values are those of the original pure-Lua normalizer, which the C
-- one (src/normalize*.c) replaced; where docs/normalize.md changed a rule,
-- spec/normalize_semantics_spec.lua has it.
local normalize = require("maintenance_report.normalize")

local function records_of(raw_records, opts)
  local body = { data = { detail = { normalRepairRecords = raw_records } } }
  return normalize.report(body, "ready", nil, opts).records
end

local function only_record(raw) return records_of({ raw })[1] end

local function pluck(list, key)
  local values = {}
  for i, entry in ipairs(list) do values[i] = entry[key] end
  return values
end

describe("normalize.report record lists", function()
  it("reads a list with holes in key order, as if it had none", function()
    local records = records_of({ [1] = { content = "a" }, [3] = { content = "c" }, [7] = { content = "g" } })
    assert.are.same({ "a", "c", "g" }, pluck(pluck(records, "items"), 1))
  end)

  it("treats a list with a key that is not a whole number >= 1 as empty", function()
    for _, key in ipairs({ 0, -1, 1.5, "x", true }) do
      assert.are.same({}, records_of({ { content = "a" }, [key] = { content = "b" } }), tostring(key))
    end
  end)

  it("sorts lists longer than a few dozen records stably, undated last", function()
    local raw, order = {}, {}
    for i = 1, 100 do
      local date = (i % 4 ~= 0) and string.format("2014-%02d-01", 12 - i % 12) or nil
      raw[i] = { repairDate = date, content = tostring(i) }
      order[i] = i
    end
    -- the reference: by date, then by position; undated (nil) last
    table.sort(order, function(a, b)
      local da, db = raw[a].repairDate or "~", raw[b].repairDate or "~"
      if da ~= db then return da < db end
      return a < b
    end)
    local expected = {}
    for i, at in ipairs(order) do expected[i] = tostring(at) end
    assert.are.same(expected, pluck(pluck(records_of(raw), "items"), 1))
  end)
end)

describe("normalize.report record fields", function()
  it("splits long contents and material lists completely, in order", function()
    local items, materials, expected_items = {}, {}, {}
    for i = 1, 75 do
      items[i] = (i % 2 == 0 and " item " or "项目") .. i
      expected_items[i] = (i % 2 == 0 and "item " or "项目") .. i
      materials[i] = "part " .. i .. ":" .. i
    end
    local packed = {}
    for i = 1, 75 do packed[#packed + 1] = items[i] .. ((i % 3 == 0) and "；" or "; ") end
    local record = only_record({ content = table.concat(packed), materal = table.concat(materials, "；") })
    assert.are.same(expected_items, record.items)
    assert.are.equal(75, #record.materials)
    assert.are.same({ name = "part 75", quantity = 75 }, record.materials[75])
  end)

  it("splits a material at whichever colon, ASCII or full-width, comes last", function()
    assert.are.same({
      { name = "a：b", quantity = 3 },
      { name = "a:b", quantity = 4 },
      { name = "x：", quantity = 1 },
      { name = "y:z：w" },
    }, only_record({ materal = "a：b:3; a:b：4; x：：1; y:z：w" }).materials)
  end)

  it("reads quantities written with many digits", function()
    local long = "1.5" .. string.rep("0", 80) .. "1"
    assert.are.same({ { name = "oil", quantity = 1.5 }, { name = "bolts", quantity = 12 } },
      only_record({ materal = "oil:" .. long .. ";bolts: 000000000000000000012 " }).materials)
  end)

  it("trims a date with space on one side only", function()
    assert.are.equal("2016-06-23", only_record({ repairDate = "2016-06-23 " }).date)
    assert.are.equal("2016-06-03", only_record({ repairDate = "2016-06-3 " }).date)
    assert.are.equal("2016-06-23", only_record({ repairDate = "\t2016-06-23" }).date)
    assert.are.equal("2016-06-23", normalize.date("2016-06-23\n"))
  end)

  it("reads epoch milliseconds with leading zeros or many digits", function()
    assert.are.equal("2013-10-08", only_record({ mainTainDate = "0001381161600000" }).date)
    assert.are.equal("2013-10-08", normalize.date("00000000001381161600000"))
    assert.is_nil(normalize.date("253402300800001"))
  end)

  it("categorizes on words that straddle no separator", function()
    assert.are.equal("repair", only_record({ content = "钣;金; 机 油" }).category)
    assert.are.equal("bodywork", only_record({ content = "一般维修；后门钣金" }).category)
  end)
end)

describe("normalize.report numbers on Lua 5.3+", function()
  local it53 = math.type and it or pending

  it53("gives integral values the integer subtype wherever they appear", function()
    local body = { data = { detail = {
      resultCode = 1205.0, mileageEstimate = "117369.0", makeDate = 2014.0,
      normalRepairRecords = { { mileage = 29.0, materal = "oil:8.0; bolt:1.5" } },
    } } }
    local report = normalize.report(body, "ready")
    assert.are.equal("integer", math.type(report.code))
    assert.are.equal("integer", math.type(report.mileage_estimate))
    assert.are.equal("integer", math.type(report.vehicle.year))
    local record = report.records[1]
    assert.are.equal("integer", math.type(record.mileage))
    assert.are.equal("integer", math.type(record.materials[1].quantity))
    assert.are.equal("float", math.type(record.materials[2].quantity))
  end)
end)

describe("normalize.report arguments", function()
  it("passes status through as it is and keeps order_id only when it is a string", function()
    local status = {}
    local report = normalize.report({}, status, 42)
    assert.are.equal(status, report.status)
    assert.is_nil(report.order_id)
  end)

  it("uses the default offset (UTC+8) when opts or its utc_offset_hours is absent", function()
    local body = { data = { detail = { lastMainTainTime = 1381161600000 } } } -- 2013-10-07T16:00Z
    for _, opts in ipairs({ false, {}, { utc_offset_hours = nil } }) do
      assert.are.equal("2013-10-08", normalize.report(body, "ready", nil, opts or nil).last_maintenance_date)
    end
    for _, hours in ipairs({ 0, -8 }) do
      local report = normalize.report(body, "ready", nil, { utc_offset_hours = hours })
      assert.are.equal("2013-10-07", report.last_maintenance_date)
    end
  end)

  it("reads raw fields only: metamethods of the input never run", function()
    local trap = { __index = function() error("__index ran") end }
    local detail = setmetatable({ resultCode = "1205", normalRepairRecords = setmetatable({
      setmetatable({ content = "a" }, trap) }, trap) }, trap)
    local body = setmetatable({ data = setmetatable({ detail = detail }, trap) }, trap)
    local report = normalize.report(body, "ready")
    assert.are.equal(1205, report.code)
    assert.are.same({ "a" }, report.records[1].items)
    assert.are.equal(body, report.raw)
  end)
end)
