-- analysis: the keyword search's edge cases, each against the documented rule
-- (README, "Report analysis"): a record matches with the first keyword found in
-- its first text that has one (its type, then its items, in order; keywords in
-- list order), ASCII case ignored, a text never matching across into the next.
local analysis = require "maintenance_report.analysis"

local function report(records)
  return { status = "ready", flags = {}, records = records }
end

local function record(date, items, rtype)
  return { date = date, mileage = 1000, items = items, materials = {}, category = "repair", type = rtype }
end

local function finding(result, id)
  for _, f in ipairs(result.findings) do if f.id == id then return f end end
  return nil
end

local function structural(records, keywords)
  local result = assert(analysis.analyze(report(records), { as_of = "2020-01-01",
    keywords = { structural = keywords } }))
  return finding(result, "structural")
end

describe("analysis keyword search", function()
  it("takes the first text with a hit, then the first keyword in that text", function()
    local f = assert(structural({ record("2019-01-01", { "焊接加固", "左纵梁校正" }) }, { "纵梁", "焊接" }))
    assert.truthy(f.zh:find("含“焊接”", 1, true), f.zh) -- text 1 has only 焊接
    f = assert(structural({ record("2019-01-01", { "焊接纵梁" }) }, { "纵梁", "焊接" }))
    assert.truthy(f.zh:find("含“纵梁”", 1, true), f.zh) -- one text with both: list order
    f = assert(structural({ record("2019-01-01", { "左纵梁" }, "焊接") }, { "纵梁", "焊接" }))
    assert.truthy(f.zh:find("含“焊接”", 1, true), f.zh) -- the type is the first text
  end)

  it("lists each record's word once per category, in record order", function()
    local f = assert(structural({ record("2019-01-01", { "纵梁" }), record("2019-02-01", { "b柱钣金" }),
      record("2019-03-01", { "纵梁" }) }, { "B柱", "纵梁" }))
    assert.are.equal(3, #f.supporting_records)
    assert.truthy(f.zh:find("含“纵梁、B柱”", 1, true), f.zh)
  end)

  it("never matches across two texts of a record", function()
    assert.is_nil(structural({ record("2019-01-01", { "左纵", "梁校正" }) }, { "纵梁" }))
    assert.is_nil(structural({ record("2019-01-01", { "梁校正" }, "左纵") }, { "纵梁" }))
  end)

  it("handles NUL bytes in texts and keywords like any other byte", function()
    assert.truthy(structural({ record("2019-01-01", { "x\0纵梁" }) }, { "纵梁" }))
    assert.truthy(structural({ record("2019-01-01", { "xa\0by" }) }, { "A\0B" }))
    assert.is_nil(structural({ record("2019-01-01", { "a", "b" }) }, { "A\0B" }))
    local f = assert(structural({ record("2019-01-01", { "x\0y焊接", "纵梁" }) }, { "纵梁", "焊接" }))
    assert.truthy(f.zh:find("含“焊接”", 1, true), f.zh)
  end)

  it("sees a keyword list changed in place since the last analysis", function()
    local keywords = { "纵梁" }
    local records = { record("2019-01-01", { "焊接" }) }
    assert.is_nil(structural(records, keywords))
    keywords[1] = "焊接"
    assert.truthy(structural(records, keywords))
    keywords[1], keywords[2] = "x", "纵梁"
    assert.is_nil(structural(records, keywords))
    keywords[2] = "焊接"
    assert.truthy(structural(records, keywords))
  end)

  it("counts records with equal date, mileage, type and items once, and others of that date apart", function()
    local f = assert(structural({ record("2019-01-01", { "纵梁" }), record("2019-01-01", { "纵梁" }),
      record("2019-01-01", { "纵梁", "喷漆" }) }, { "纵梁" }))
    assert.are.equal(2, #f.supporting_records)
  end)
end)
