-- core.keyword_matches, the C keyword search that analysis.analyze uses on Lua 5.x
-- (src/analysis_search.c), against the rule of README "Report analysis": a record
-- matches a list with the first keyword found in its first text that has one
-- (its type, then its items in order; keywords in list order), ASCII case
-- ignored, never across two texts. Anything but plain data gives nil (the Lua
-- search then answers). The expected values below are worked out by hand from
-- that rule.
local core = require "maintenance_report.core"

local function rec(items, rtype)
  return { items = items, type = rtype }
end

describe("core.keyword_matches", function()
  it("takes the first text with a hit, then the first keyword in that text", function()
    local a, b, c = rec({ "焊接加固", "左纵梁校正" }), rec({ "焊接纵梁" }), rec({ "左纵梁" }, "焊接")
    local found = assert(core.keyword_matches({ a, b, c }, {}, { { "纵梁", "焊接" } }))
    assert.are.equal("焊接", found[1][a])
    assert.are.equal("纵梁", found[1][b])
    assert.are.equal("焊接", found[1][c])
  end)

  it("answers every list, in order, over both record lists, each record once", function()
    local a, b, extra = rec({ "更换机油" }), rec({ "气囊" }), rec({ "常规保养" })
    local found = assert(core.keyword_matches({ a, b }, { a, extra, b }, { { "气囊" }, { "保养", "机油" }, {} }))
    assert.are.equal(3, #found)
    assert.are.same({ [b] = "气囊" }, found[1])
    assert.are.same({ [a] = "机油", [extra] = "保养" }, found[2])
    assert.are.same({}, found[3])
  end)

  it("ignores ASCII case on both sides and keeps the list's own string", function()
    local a = rec({ "左a柱钣金" })
    local found = assert(core.keyword_matches({ a }, {}, { { "A柱" }, { "a柱" } }))
    assert.are.equal("A柱", found[1][a])
    assert.are.equal("a柱", found[2][a])
  end)

  it("never matches across two texts, and reads NUL bytes inside a text as bytes", function()
    local split, typed, nul = rec({ "左纵", "梁校正" }), rec({ "梁校正" }, "左纵"), rec({ "x\0纵梁" })
    local found = assert(core.keyword_matches({ split, typed, nul }, {}, { { "纵梁" } }))
    assert.are.same({ [nul] = "纵梁" }, found[1])
  end)

  it("reads items up to #items only when items[1] is there", function()
    local holey = { items = { nil, "纵梁" } }
    local none = { items = {} }
    local found = assert(core.keyword_matches({ holey, none }, {}, { { "纵梁" } }))
    assert.are.same({}, found[1])
  end)

  it("gives nil for what only the Lua search handles", function()
    local plain = rec({ "纵梁" })
    local meta = setmetatable(rec({ "纵梁" }), {})
    assert.is_nil(core.keyword_matches({ meta }, {}, { { "纵梁" } }))
    assert.is_nil(core.keyword_matches({ rec({ 12 }) }, {}, { { "纵梁" } }))
    assert.is_nil(core.keyword_matches({ { type = 5 } }, {}, { { "纵梁" } }))
    assert.is_nil(core.keyword_matches({ { items = "纵梁" } }, {}, { { "纵梁" } }))
    assert.is_nil(core.keyword_matches({ plain }, {}, { { "" } }))
    assert.is_nil(core.keyword_matches({ plain }, {}, { { "纵\0梁" } }))
    assert.is_nil(core.keyword_matches({ plain }, {}, { { 1 } }))
    assert.is_nil(core.keyword_matches({ plain }, {}, { setmetatable({ "纵梁" }, {}) }))
    assert.is_nil(core.keyword_matches({ plain }, {}, { "纵梁" }))
  end)

  it("finds a keyword at the very start and the very end of the texts", function()
    local first, last = rec({ "纵梁在前" }), rec({ "在后纵梁" })
    local found = assert(core.keyword_matches({ first, last }, {}, { { "纵梁" } }))
    assert.are.same({ [first] = "纵梁", [last] = "纵梁" }, found[1])
  end)

  it("answers a report larger than the search keeps a buffer for, and a small one after it", function()
    local many = {}
    for i = 1, 3000 do many[i] = rec({ ("更换左前门饰板及卡扣%d"):format(i), i % 3 == 0 and "左纵梁校正" or "喷漆" }) end
    local found = assert(core.keyword_matches(many, {}, { { "纵梁" } }))
    local hits = 0
    for r, word in pairs(found[1]) do
      hits = hits + 1
      assert.are.equal("纵梁", word)
      assert.are.equal("左纵梁校正", r.items[2])
    end
    assert.are.equal(1000, hits)
    local small = rec({ "纵梁" })
    assert.are.same({ [small] = "纵梁" }, assert(core.keyword_matches({ small }, {}, { { "纵梁" } }))[1])
  end)
end)
