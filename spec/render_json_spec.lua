-- render/json: the normalized report as readable UTF-8 JSON with a stable key order, through
-- the library's encoder (maintenance_report.json); decodes back to the same data.
local cjson = require "cjson"
local json = require "maintenance_report.json"
local render = require "maintenance_report.render.json"
local normalize = require "maintenance_report.normalize"

local fixture = require("helpers.fixtures").json

-- Deep equality that treats integral floats and integers alike (cjson decodes 5 as 5.0 on 5.4).
local function same(a, b)
  if type(a) == "number" and type(b) == "number" then return a == b end
  if type(a) ~= "table" or type(b) ~= "table" then return a == b end
  for k, v in pairs(a) do if not same(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

describe("render.json", function()
  it("does not escape '/' or non-ASCII text", function()
    local s = json.encode{ series = "7系(17/08-)", url = "http://x/y" }
    assert.truthy(s:find("7系(17/08-)", 1, true), s)
    assert.truthy(s:find("http://x/y", 1, true), s)
    assert.falsy(s:find("\\/", 1, true), s)
    assert.falsy(s:find("\\u", 1, true), s)
  end)

  it("escapes quotes, backslashes and control characters, and decodes back", function()
    local value = { s = 'a "quoted" \\ back\nline\ttab\27esc\0nul' }
    local s = json.encode(value)
    assert.falsy(s:find("[%z\1-\31]"), "raw control character in output")
    assert.are.same(value, cjson.decode(s))
  end)

  it("replaces invalid UTF-8 so that every output is valid UTF-8", function()
    local s = json.encode{ v = "ok\255\254 京" }
    assert.truthy(s:find("\239\191\189", 1, true))
    assert.truthy(s:find("京", 1, true))
    assert.is_table(cjson.decode(s))
  end)

  it("orders keys the same way whatever the insertion order", function()
    local a, b = {}, {}
    local keys = { "zeta", "status", "vin", "alpha", "order_id", "mileage", "beta" }
    for i = 1, #keys do a[keys[i]] = i end
    for i = #keys, 1, -1 do b[keys[i]] = i end
    assert.are.equal(json.encode(a), json.encode(b))
    local s = json.encode(a)
    assert.is_true(s:find('"status"', 1, true) < s:find('"order_id"', 1, true))
    assert.is_true(s:find('"alpha"', 1, true) < s:find('"beta"', 1, true))
    assert.is_true(s:find('"beta"', 1, true) < s:find('"zeta"', 1, true))
  end)

  it("writes integral numbers without a fraction and keeps decimals exact", function()
    assert.are.equal('{"a":117369,"b":3.6,"c":-2,"d":0.1}', json.encode{ a = 117369.0, b = 3.6, c = -2, d = 0.1 })
    assert.has_error(function() json.encode(0 / 0) end)
  end)

  it("writes the normalized report's empty lists as [] and empty objects as {}", function()
    local report = normalize.report(fixture("vendor_report_no_records.json"), "no_records", "O1")
    local s = render.report(report)
    assert.truthy(s:find('"records":[]', 1, true), s)
    assert.truthy(s:find('"structural_records":[]', 1, true), s)
    assert.truthy(s:find('"flags":{}', 1, true), s)
  end)

  it("gives back the normalized report, without raw unless asked for", function()
    local report = normalize.report(fixture("vendor_report_ready.json"), "ready", "O2")
    local decoded = cjson.decode(render.report(report, { indent = "  " }))
    assert.is_nil(decoded.raw)
    local expected = {}
    for k, v in pairs(report) do if k ~= "raw" then expected[k] = v end end
    assert.are.equal("table", type(decoded.analysis))
    decoded.analysis = nil
    assert.is_true(same(expected, decoded))
    local with_raw = cjson.decode(render.report(report, { raw = true }))
    assert.are.equal("0", with_raw.raw.code)
  end)

  it("puts the queried identity and the findings first", function()
    local cases = require "fixtures.analysis_cases"
    local s = render.report(cases.rollback(), { indent = "  ", query = { vin = "WBAXW1104J0X16755" },
      analysis = { as_of = cases.AS_OF } })
    local decoded = cjson.decode(s)
    assert.are.equal("WBAXW1104J0X16755", decoded.query.vin)
    assert.are.equal("高风险", decoded.analysis.verdict.zh)
    assert.are.equal("odometer_rollback", decoded.analysis.findings[1].id)
    assert.are.equal(15000, decoded.analysis.findings[1].supporting_records[2].mileage)
    assert.is_true(s:find('"query"', 1, true) < s:find('"analysis"', 1, true))
    assert.is_true(s:find('"findings"', 1, true) < s:find('"status"', 1, true))
    assert.is_true(s:find('"findings"', 1, true) < s:find('"vehicle"', 1, true))
    -- a clean report: an empty findings list, still a list
    assert.truthy(render.report(cases.clean(), { analysis = { as_of = cases.AS_OF } }):find('"findings":[]', 1, true))
  end)
end)
