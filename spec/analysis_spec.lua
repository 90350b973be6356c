-- analysis: each finding on a fixture built from the vendor sample, the clean history
-- (the negative case) with none, the verdict's rule, and every threshold and keyword
-- list overridable.
local analysis = require "maintenance_report.analysis"
local cases = require "fixtures.analysis_cases"
local normalize = require "maintenance_report.normalize"
local fixtures = require "helpers.fixtures"

local AS_OF = cases.AS_OF

local function run(report, opts)
  opts = opts or {}
  opts.as_of = opts.as_of or AS_OF
  return assert(analysis.analyze(report, opts))
end

local function ids(result)
  local out = {}
  for _, f in ipairs(result.findings) do out[#out + 1] = f.id end
  table.sort(out)
  return table.concat(out, ",")
end

local function find(result, id)
  for _, f in ipairs(result.findings) do if f.id == id then return f end end
  return nil
end

describe("analysis", function()
  it("finds nothing in a regular, undamaged history: 无明显异常", function()
    local result = run(cases.clean())
    assert.are.equal("", ids(result))
    assert.are.equal("ok", result.verdict.level)
    assert.are.equal("无明显异常", result.verdict.zh)
    assert.truthy(result.verdict.rule:find("高风险", 1, true))
    assert.are.equal(AS_OF, result.as_of)
  end)

  it("flags the issue's rollback (85,142 km, then 15,000 km) and the vendor's 正常 contradicting it", function()
    local report = cases.rollback()
    assert.is_true(report.flags.mileage_normal) -- the vendor's flag says 正常
    local result = run(report)
    local rollback = assert(find(result, "odometer_rollback"))
    assert.are.equal("high", rollback.severity)
    assert.are.equal(2, #rollback.supporting_records)
    assert.are.equal(85142, rollback.supporting_records[1].mileage)
    assert.are.equal(15000, rollback.supporting_records[2].mileage)
    assert.truthy(rollback.zh:find("85,142", 1, true) and rollback.zh:find("70,142", 1, true))
    assert.truthy(rollback.en:find("rollback", 1, true))
    local contradicted = assert(find(result, "mileage_flag_contradicted"))
    assert.are.equal("high", contradicted.severity)
    assert.truthy(contradicted.zh:find("里程正常", 1, true))
    assert.are.equal("high_risk", result.verdict.level)
    assert.are.equal("高风险", result.verdict.zh)
    assert.are.equal("high", result.findings[1].severity, "the most severe come first")
  end)

  it("tolerates a drop within rollback_tolerance_km, and the tolerance is overridable", function()
    local report = cases.clean()
    local drop = { date = "2016-12-01", mileage = 44700, items = {}, materials = {}, category = "repair" }
    table.insert(report.records, drop)
    assert.is_nil(find(run(report), "odometer_rollback"), "300 km below: within 500")
    assert.truthy(find(run(report, { rollback_tolerance_km = 100 }), "odometer_rollback"))
  end)

  it("flags a mileage rise beyond the plausible rate, and the vendor's 正常 with it", function()
    local result = run(cases.fast_mileage())
    local f = assert(find(result, "implausible_mileage_rate"))
    assert.are.equal("medium", f.severity)
    assert.are.equal(45000, f.supporting_records[1].mileage)
    assert.are.equal(105000, f.supporting_records[2].mileage)
    assert.truthy(find(result, "mileage_flag_contradicted"))
    assert.is_nil(find(run(cases.fast_mileage(), { max_km_per_year = 1e6 }), "implausible_mileage_rate"))
  end)

  it("says both when the vendor marks the mileage 异常 and the records look plausible", function()
    local result = run(cases.flag_abnormal())
    local f = assert(find(result, "mileage_flag_contradicted"))
    assert.are.equal("medium", f.severity)
    assert.truthy(f.zh:find("里程异常", 1, true) and f.zh:find("未见", 1, true))
    assert.are.equal("mileage_flag_contradicted", ids(result))
  end)

  local damage_cases = {
    { "structural", "钣金喷漆; 左前纵梁校正; 车身校正; ", "carConstructRecordsFlag", "纵梁" },
    { "structural", "B柱钣金修复; ", nil, "B柱" },
    { "structural", "右后翼子板切割更换; ", nil, "切割" },
    { "airbag", "更换主驾驶安全气囊; ", nil, "气囊" },
    { "flood", "车辆泡水清洗; 更换地毯; ", "carWaterFlag", "泡水" },
    { "flood", "车辆水淹检修; ", nil, "水淹" },
    { "fire", "发动机舱火烧维修; 更换线束; ", "carFireFlag", "火烧" },
    { "fire", "排气管烧蚀; ", nil, "烧蚀" },
    { "major_component", "更换变速箱总成; ", "carComponentRecordsFlag", "变速箱总成" },
  }
  for _, c in ipairs(damage_cases) do
    it(("finds %s work from the keyword %s"):format(c[1], c[4]), function()
      local result = run(cases.damage(c[2], c[3]))
      local f = assert(find(result, c[1]), ids(result))
      assert.are.equal(1, #f.supporting_records)
      assert.are.equal("2016-12-01", f.supporting_records[1].date)
      assert.truthy(f.zh:find(c[4], 1, true))
      if c[3] then assert.truthy(f.zh:find("厂商标记：有", 1, true)) end
      assert.are.equal(c[1] == "major_component" and "attention" or "high_risk", result.verdict.level)
    end)
  end

  it("matches latin letters in keywords in either case (a柱 is A柱)", function()
    assert.truthy(find(run(cases.damage("右侧a柱钣金; ")), "structural"))
  end)

  it("reads the vendor's analysis lists too, once per visit", function()
    local report = cases.clean()
    local r = { date = "2016-12-05", mileage = 45600, items = { "左前纵梁校正" }, materials = {}, category = "repair" }
    report.structural_records = { r }
    report.exterior_records = { r }
    local f = assert(find(run(report), "structural"))
    assert.are.equal(1, #f.supporting_records)
  end)

  it("reports a vendor damage flag that no record explains", function()
    local report = cases.clean()
    report.flags.fire = true
    local f = assert(find(run(report), "fire"))
    assert.are.equal(0, #f.supporting_records)
    assert.truthy(f.zh:find("厂商标记为有", 1, true))
  end)

  it("replaces a keyword list when asked", function()
    local report = cases.damage("更换前挡风玻璃; ")
    assert.are.equal("", ids(run(report)))
    local result = run(report, { keywords = { structural = { "挡风玻璃" } } })
    assert.truthy(find(result, "structural"))
    -- the other lists keep their defaults
    assert.truthy(find(run(cases.damage("更换主驾驶安全气囊; "), { keywords = { structural = { "x" } } }), "airbag"))
  end)

  it("flags a service gap over 18 months or 20,000 km", function()
    local result = run(cases.service_gap())
    local f = assert(find(result, "service_gap"))
    assert.are.equal("2014-04-08", f.supporting_records[1].date)
    assert.are.equal("2016-04-08", f.supporting_records[2].date)
    assert.truthy(f.zh:find("28,000", 1, true))
    assert.are.equal("service_gap", ids(result))
    assert.are.equal("", ids(run(cases.service_gap(), { service_gap_days = 800, service_gap_km = 30000 })))
  end)

  it("flags a last service long before as_of", function()
    local result = run(cases.clean(), { as_of = cases.LATE_AS_OF })
    local f = assert(find(result, "last_service_old"))
    assert.are.equal("2016-10-08", f.supporting_records[1].date)
    assert.are.equal("last_service_old", ids(result))
    assert.are.equal("", ids(run(cases.clean(), { as_of = cases.LATE_AS_OF, last_service_days = 1000 })))
  end)

  it("compares the services in the records with the vendor's mainTainTimes", function()
    local result = run(cases.count_mismatch())
    local f = assert(find(result, "service_count_mismatch"))
    assert.are.equal("info", f.severity)
    assert.truthy(f.zh:find("6 次", 1, true) and f.zh:find("4", 1, true))
    assert.are.equal("ok", result.verdict.level, "info findings do not change the verdict")
  end)

  it("finds on the vendor sample what a reader of it would: the component flag, a service gap", function()
    local result = run(fixtures.ready_report("O"))
    assert.are.equal("major_component,service_count_mismatch,service_gap", ids(result))
    assert.are.equal("需注意", result.verdict.zh)
  end)

  it("has a no-records verdict and nothing for a pending report", function()
    local nr = normalize.report(fixtures.json("vendor_report_no_records.json"), "no_records", "O-NR")
    local result = run(nr)
    assert.are.equal("no_records", result.verdict.level)
    assert.are.equal(0, #result.findings)
    assert.is_nil(analysis.analyze({ status = "pending" }))
  end)

  it("defaults as_of to today in China time", function()
    local result = assert(analysis.analyze(cases.clean()))
    local today = os.date("!%Y-%m-%d", os.time() + 8 * 3600)
    assert.are.equal(today, result.as_of)
  end)

  it("rejects bad options: unknown keys raise, bad values are invalid_input", function()
    assert.has_error(function() analysis.analyze(cases.clean(), { colour = 1 }) end,
      "analysis.analyze: unknown option 'colour'")
    local r, err = analysis.analyze(cases.clean(), { as_of = "2017-02-30" })
    assert.is_nil(r)
    assert.are.equal("invalid_input", err.kind)
    r, err = analysis.analyze(cases.clean(), { keywords = { smoke = { "x" } } })
    assert.is_nil(r)
    assert.truthy(tostring(err):find("smoke", 1, true))
    r, err = analysis.analyze(cases.clean(), { service_gap_days = 0 })
    assert.is_nil(r)
    assert.are.equal("invalid_input", err.kind)
  end)

  it("pauses between its parts when given a pause function, with the same findings", function()
    local report = fixtures.ready_report("O")
    local pauses = 0
    local paused = assert(analysis.analyze(report, { as_of = AS_OF }, function() pauses = pauses + 1 end))
    assert.are.equal(2, pauses) -- after the odometer, after the keyword search
    assert.are.same(assert(analysis.analyze(report, { as_of = AS_OF })), paused)
    local nr = normalize.report(fixtures.json("vendor_report_no_records.json"), "no_records", "O-NR")
    pauses = 0
    analysis.analyze(nr, { as_of = AS_OF }, function() pauses = pauses + 1 end)
    assert.are.equal(0, pauses)
    assert.has_error(function() analysis.analyze(report, nil, 1) end, "analysis.analyze: pause must be a function")
  end)

  it("attach sets report.analysis once", function()
    local report = cases.rollback()
    local a = analysis.attach(report, { as_of = AS_OF })
    assert.are.equal(a, report.analysis)
    assert.are.equal(a, analysis.attach(report))
  end)

  describe("on the sandbox's scenario VINs", function()
    local cjson = require "cjson"
    local scenarios = require "maintenance_report_sandbox.scenarios"
    local reports = require "maintenance_report_sandbox.reports"
    local SANDBOX_AS_OF = string.format("%04d-%02d-%02d", reports.AS_OF[1], reports.AS_OF[2], reports.AS_OF[3])
    -- scenario -> the findings it is made for (a flood or fire visit is also one of the
    -- vendor's component records, so its component flag shows too)
    local expected = {
      clean = "", one_year = "",
      rollback = "mileage_flag_contradicted,odometer_rollback",
      fast_mileage = "implausible_mileage_rate,mileage_flag_contradicted,service_gap",
      mileage_flag_abnormal = "mileage_flag_contradicted",
      structural = "structural",
      airbag = "airbag,major_component", flood = "flood,major_component", fire = "fire,major_component",
      major_component = "major_component",
      service_gap = "service_gap",
      last_service_old = "last_service_old",
      service_count_mismatch = "service_count_mismatch",
    }
    for _, f in ipairs(scenarios.FINDINGS) do
      it(f[1] .. " gives " .. (expected[f[1]] ~= "" and expected[f[1]] or "no finding"), function()
        local vin = assert(scenarios.vin(f[1]))
        local report = normalize.report(cjson.decode(reports.ready_json(vin)), "ready", "O")
        assert.are.equal(expected[f[1]], ids(run(report, { as_of = SANDBOX_AS_OF })))
      end)
    end
  end)
end)
