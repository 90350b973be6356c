-- luacheck: std +busted
local cjson = require("cjson")
local normalize = require("maintenance_report.normalize")

-- A fresh decode each time, so a test may modify it.
local function load_fixture(name)
  local file = assert(io.open("spec/fixtures/" .. name, "rb"))
  local body = file:read("*a")
  file:close()
  return cjson.decode(body)
end

local function ready_report(opts)
  return normalize.report(load_fixture("vendor_report_ready.json"), "ready", "ORDER-1", opts)
end

local function pluck(list, key)
  local values = {}
  for i, entry in ipairs(list) do values[i] = entry[key] end
  return values
end

-- A report body holding only the given detail fields.
local function body_with(detail)
  return { code = "0", message = "成功", data = { result = "1", description = "查询成功,有报告", detail = detail } }
end

local function records_of(raw_records, opts)
  return normalize.report(body_with({ normalRepairRecords = raw_records }), "ready", nil, opts).records
end

-- Expected values below are literals read from the vendor listing / fixture text.
local LISTING_REPAIR_DATES = {
  "2013-10-08", "2013-10-25", "2013-10-31", "2014-01-02", "2014-05-10", "2014-05-12",
  "2014-06-10", "2014-07-14", "2015-07-13", "2015-10-31", "2016-12-28",
}
local LISTING_MILEAGES = { 29, 30, 31, 7115, 15138, 15271, 18571, 25119, 54500, 65421, 85142 }

describe("normalize.report on the vendor's ready sample", function()
  it("carries status, order id, code and message", function()
    local report = ready_report()
    assert.are.equal("ready", report.status)
    assert.are.equal("ORDER-1", report.order_id)
    assert.are.equal(1205, report.code) -- "1205", a string, in the sample
    assert.are.equal("已出报告", report.message)
  end)

  it("maps the vehicle fields", function()
    assert.are.same({
      vin = "SA******02383",
      brand = "路虎",
      manufacturer = "进口路虎",
      series = "揽胜运动版(13/06-)",
      model = "2014款 路虎 揽胜RANGE ROVER  3.0T 手自一体 HSE (RANGE ROVER SPORT 3.0L)",
      year = 2014,
      transmission = "手自一体",
      displacement = "3.0T",
      emission_standard = "欧五",
    }, ready_report().vehicle)
  end)

  it("turns the 0/1 flags into booleans", function()
    assert.are.same({
      fire = false,
      flood = false,
      major_component = true,
      structural = false,
      exterior = true,
      mileage_normal = true,
    }, ready_report().flags)
  end)

  it("turns numeric strings into numbers", function()
    local report = ready_report()
    assert.are.equal(117369, report.mileage_estimate)
    assert.are.equal(26394, report.mileage_per_year)
    assert.are.equal(1.9, report.maintenance_per_year)
    assert.are.equal("number", type(report.mileage_per_year))
  end)

  it("keeps the summary dates", function()
    local report = ready_report()
    assert.are.equal("2016-06-23", report.last_maintenance_date)
    assert.are.equal("2016-12-28", report.last_repair_date)
  end)

  it("has every normal record, by date, with numeric mileage", function()
    local records = ready_report().records
    assert.are.same(LISTING_REPAIR_DATES, pluck(records, "date"))
    assert.are.same(LISTING_MILEAGES, pluck(records, "mileage"))
    assert.are.equal("number", type(records[1].mileage)) -- "29" in the sample
  end)

  it("gives an empty item list for the record without content", function()
    local record = ready_report().records[3]
    assert.are.equal("2013-10-31", record.date)
    assert.are.same({}, record.items)
    assert.are.same({}, record.materials)
  end)

  it("splits content into trimmed items", function()
    local records = ready_report().records
    assert.are.same({ "FSA Q323" }, records[1].items)
    assert.are.same({ "李云龙 安装电动踏板", "安置脚垫" }, records[2].items)
    assert.are.equal(12, #records[8].items)
    assert.are.equal("基础保养服务包 第三次 路虎全新", records[8].items[12])
  end)

  it("splits materials into names and quantities", function()
    local record = ready_report().records[10]
    assert.are.equal("2015-10-31", record.date)
    assert.are.equal(9, #record.materials)
    assert.are.same({ name = "Edge Professional E 0W-20", quantity = 8 }, record.materials[1])
    assert.are.same({ name = "变速箱油底壳沉淀盘", quantity = 1 }, record.materials[9])
    assert.are.same({
      { name = "车门锁", quantity = 1 }, { name = "螺母", quantity = 2 }, { name = "锂电池", quantity = 1 },
    }, ready_report().records[11].materials)
  end)

  it("keeps the raw type", function()
    local records = ready_report().records
    assert.is_nil(records[1].type)
    assert.are.equal("钣金喷漆", records[6].type)
    assert.are.equal("一般维修", records[11].type)
  end)

  it("derives categories (heuristic)", function()
    assert.are.same({
      "repair",      -- FSA Q323
      "repair",      -- 安装电动踏板; 安置脚垫
      "repair",      -- no content
      "maintenance", -- 换机油机滤常规保养检查
      "maintenance", -- 基础保养服务包 ...; 常规保养
      "bodywork",    -- 钣金喷漆
      "repair",      -- 一般维修
      "bodywork",    -- 钣金喷漆 wins over 常规保养
      "repair",      -- 一般维修; 购买...卡子
      "maintenance", -- 常规保养; 更换机油机滤常规保养
      "repair",      -- 一般维修; 右前门打不开
    }, pluck(ready_report().records, "category"))
  end)

  it("dates records from epoch-ms mainTainDate when repairDate is missing", function()
    local decoded = load_fixture("vendor_report_ready.json")
    for _, raw in ipairs(decoded.data.detail.normalRepairRecords) do raw.repairDate = nil end
    local report = normalize.report(decoded, "ready", nil)
    assert.are.same(LISTING_REPAIR_DATES, pluck(report.records, "date"))
  end)

  it("converts mainTainDate at opts.utc_offset_hours", function()
    local decoded = load_fixture("vendor_report_ready.json")
    decoded.data.detail.normalRepairRecords[1].repairDate = nil
    local report = normalize.report(decoded, "ready", nil, { utc_offset_hours = 0 })
    -- 1381161600000 is 2013-10-07T16:00Z: the 7th in UTC, the 8th in UTC+8
    assert.are.equal("2013-10-07", report.records[1].date)
  end)

  it("builds the component, exterior and structural lists", function()
    local report = ready_report()
    assert.are.same({ "2015-10-31", "2015-11-10" }, pluck(report.component_records, "date"))
    assert.are.same({ "2014-05-12", "2016-02-19" }, pluck(report.exterior_records, "date"))
    assert.are.same({}, report.structural_records)
    assert.are.same({ name = "BRKET - TRANSMISSION HE", quantity = 1 }, report.component_records[2].materials[3])
    assert.are.same({}, report.exterior_records[1].materials) -- no materal key
    assert.are.equal(9, #report.exterior_records[2].materials)
    assert.are.same({ "bodywork", "bodywork" }, pluck(report.exterior_records, "category"))
  end)

  it("keeps the decoded original as raw", function()
    local decoded = load_fixture("vendor_report_ready.json")
    local report = normalize.report(decoded, "ready", "X")
    assert.are.equal(decoded, report.raw)
  end)
end)

describe("normalize.report on the vendor's no-records sample", function()
  local report = normalize.report(load_fixture("vendor_report_no_records.json"), "no_records", "ORDER-2")

  it("carries status, code and message", function()
    assert.are.equal("no_records", report.status)
    assert.are.equal("ORDER-2", report.order_id)
    assert.are.equal(1206, report.code)
    assert.are.equal("无维修保养记录", report.message)
  end)

  it("has empty lists and absent fields", function()
    assert.are.same({}, report.records)
    assert.are.same({}, report.component_records)
    assert.are.same({}, report.exterior_records)
    assert.are.same({}, report.structural_records)
    assert.are.same({}, report.flags)
    assert.are.same({}, report.vehicle)
    assert.is_nil(report.mileage_estimate)
    assert.is_nil(report.last_repair_date)
  end)
end)

describe("normalize.report on malformed shapes", function()
  it("refuses a body that is not a table", function()
    assert.are.same({ nil, "report body is not an object" }, { normalize.report("{}", "ready") })
    assert.are.same({ nil, "report body is not an object" }, { normalize.report(nil, "ready") })
    assert.are.same({ nil, "report body is not an object" }, { normalize.report(42, "ready") })
  end)

  it("treats a detail that is an array or a string as absent", function()
    for _, detail in ipairs({ { 1, 2 }, { { resultCode = 1205 } }, "1205", 7, true }) do
      local report = normalize.report({ code = "0", data = { description = "查询成功", detail = detail } }, "ready")
      assert.is_nil(report.code)
      assert.are.equal("查询成功", report.message)
      assert.are.same({}, report.records)
    end
  end)

  it("treats data of the wrong type as absent", function()
    local report = normalize.report({ code = "0", data = "oops" }, "pending", "A")
    assert.are.equal("pending", report.status)
    assert.is_nil(report.message)
    assert.are.same({}, report.records)
  end)

  it("takes the numeric resultCode of the order response as it is", function()
    assert.are.equal(1200, normalize.report(body_with({ resultCode = 1200, resultMsg = "购买成功" }), "ready").code)
  end)

  it("falls back to data.description for the message", function()
    assert.are.equal("查询成功,有报告", normalize.report(body_with({ resultCode = "1205" }), "ready").message)
  end)

  it("treats an object in place of a record list as absent", function()
    assert.are.same({}, records_of({ first = { repairDate = "2014-01-01" } }))
    assert.are.same({}, records_of("2014-01-01"))
  end)

  it("skips records that are not tables", function()
    local records = records_of({ "a record?", { repairDate = "2014-01-01" }, 3, cjson.null, { mileage = "5" } })
    assert.are.same({ "2014-01-01" }, pluck(records, "date"))
    assert.are.equal(2, #records)
    assert.are.equal(5, records[2].mileage)
  end)

  it("gives nil fields and empty lists for an empty record", function()
    assert.are.same({ { items = {}, materials = {}, category = "repair" } }, records_of({ {} }))
  end)

  it("accepts flags as '1'/'0' strings and rejects anything else", function()
    local flags = normalize.report(body_with({
      carFireFlag = "1", carWaterFlag = "0", carComponentRecordsFlag = 2,
      carConstructRecordsFlag = "yes", carOutsideRecordsFlag = true,
    }), "ready").flags
    assert.are.same({ fire = true, flood = false }, flags)
  end)

  it("turns garbage numbers into nil", function()
    local report = normalize.report(body_with({
      mileageEstimate = "abc", mileageEveryYear = "12km", mainTainTimes = "",
      makeDate = "2014-05",
      normalRepairRecords = { { mileage = "0x10" }, { mileage = {} } },
    }), "ready")
    assert.is_nil(report.mileage_estimate)
    assert.is_nil(report.mileage_per_year)
    assert.is_nil(report.maintenance_per_year)
    assert.is_nil(report.vehicle.year)
    assert.are.same({}, pluck(report.records, "mileage"))
  end)

  it("ignores text fields of the wrong type", function()
    local vehicle = normalize.report(body_with({ vin = 12345, brand = { "x" }, modelName = "  " }), "ready").vehicle
    assert.are.same({}, vehicle)
  end)

  it("never raises, whatever value sits in any field", function()
    local weird = { {}, { 1, 2 }, { a = 1 }, "x", "", " 1 ", -1, 0, 1e308, -1e308, 0.5, true, false, cjson.null }
    local keys = {
      "resultCode", "resultMsg", "vin", "makeDate", "carFireFlag", "mileageEstimate", "lastMainTainTime",
      "normalRepairRecords", "componentAnalyzeRepairRecords", "constructAnalyzeRepairRecords",
    }
    local record_keys = { "content", "repairDate", "mainTainDate", "materal", "material", "mileage", "type" }
    local failures = {}
    local function try(body)
      local ok, result = pcall(normalize.report, body, "ready", nil)
      if not ok or type(result) ~= "table" then failures[#failures + 1] = tostring(result) end
    end
    for _, value in ipairs(weird) do
      for _, key in ipairs(keys) do try(body_with({ [key] = value })) end
      for _, key in ipairs(record_keys) do try(body_with({ normalRepairRecords = { { [key] = value } } })) end
      try({ data = value })
      try({ data = { detail = value } })
    end
    assert.are.same({}, failures)
  end)
end)

describe("record sorting", function()
  it("sorts by date ascending, keeps ties in input order, puts undated records last", function()
    local raw = {
      { repairDate = "2015-01-02", content = "b" },
      { content = "undated-1" },
      { repairDate = "2014-01-01", content = "a" },
      { mainTainDate = "1420128000000", content = "c" }, -- 2015-01-01T16:00Z: 2015-01-02 in UTC+8
      { repairDate = "garbage", content = "undated-2" },
      { repairDate = "2015-01-02", content = "d" },
    }
    local items = {}
    for i, record in ipairs(records_of(raw)) do items[i] = record.items[1] end
    assert.are.same({ "a", "b", "c", "d", "undated-1", "undated-2" }, items)
  end)

  it("is stable over many ties", function()
    local raw, expected = {}, {}
    for i = 1, 60 do
      raw[i] = { repairDate = (i % 3 == 0) and "2014-01-01" or "2013-01-01", content = tostring(i) }
    end
    for i = 1, 60 do if i % 3 ~= 0 then expected[#expected + 1] = tostring(i) end end
    for i = 1, 60 do if i % 3 == 0 then expected[#expected + 1] = tostring(i) end end
    local items = {}
    for i, record in ipairs(records_of(raw)) do items[i] = record.items[1] end
    assert.are.same(expected, items)
  end)
end)

describe("record fields", function()
  local function only_record(raw) return records_of({ raw })[1] end

  it("splits materials at the last colon", function()
    assert.are.same({
      { name = "Filter: type A", quantity = 2 },
      { name = "机油", quantity = 4 },
      { name = "Oil 5W-30", quantity = 1.5 },
    }, only_record({ materal = "Filter: type A:2; 机油：4;Oil 5W-30 : 1.5 ; ; " }).materials)
  end)

  it("keeps an entry without a numeric quantity whole, as the name", function()
    assert.are.same({ { name = "螺丝:若干" }, { name = "胶水" }, { name = ":3" } },
      only_record({ materal = "螺丝:若干; 胶水; :3" }).materials)
  end)

  it("accepts the correctly spelled 'material' key", function()
    assert.are.same({ { name = "雨刮", quantity = 2 } }, only_record({ material = "雨刮:2; " }).materials)
  end)

  it("splits content on full-width semicolons as well", function()
    assert.are.same({ "更换机油", "四轮定位", "洗车" }, only_record({ content = " 更换机油；四轮定位; ；洗车 " }).items)
  end)

  it("categorizes by type or items", function()
    assert.are.equal("bodywork", only_record({ type = "钣金喷漆" }).category)
    assert.are.equal("bodywork", only_record({ content = "后杠喷漆" }).category)
    assert.are.equal("maintenance", only_record({ content = "基础保养" }).category)
    assert.are.equal("maintenance", only_record({ content = "更换机滤" }).category)
    assert.are.equal("repair", only_record({ type = "一般维修", content = "更换刹车片" }).category)
  end)

  it("prefers repairDate over mainTainDate", function()
    assert.are.equal("2014-02-03", only_record({ repairDate = "2014-02-03", mainTainDate = 1381161600000 }).date)
  end)
end)

describe("normalize.date", function()
  -- Literals from `date -u -d @$((SECONDS + 28800)) +%F` (UTC+8).
  local at_utc_plus_8 = {
    { 1381161600000, "2013-10-08" }, { 1381161599999, "2013-10-07" }, -- midnight crossing
    { 1456675200000, "2016-02-29" }, { 1456675199999, "2016-02-28" }, -- into the leap day
    { 1456761600000, "2016-03-01" }, { 1456761599999, "2016-02-29" }, -- out of it
    { 946656000000, "2000-01-01" }, { 946655999999, "1999-12-31" },
    { 951753600000, "2000-02-29" }, { 951840000000, "2000-03-01" },   -- 2000 is a leap year
    { 4107513600000, "2100-03-01" }, { 4107513599999, "2100-02-28" }, -- 2100 is not
    { 0, "1970-01-01" }, { -28800000, "1970-01-01" }, { -28800001, "1969-12-31" },
  }

  it("converts epoch milliseconds in UTC+8 by default", function()
    for _, case in ipairs(at_utc_plus_8) do
      assert.are.equal(case[2], normalize.date(case[1]), "epoch ms " .. case[1])
    end
  end)

  it("accepts epoch milliseconds written as a string", function()
    for _, case in ipairs(at_utc_plus_8) do
      assert.are.equal(case[2], normalize.date(string.format("%.0f", case[1])), "epoch ms " .. case[1])
    end
  end)

  it("uses the given UTC offset", function()
    assert.are.equal("1970-01-01", normalize.date(0, 0))
    assert.are.equal("1969-12-31", normalize.date(-1, 0))
    assert.are.equal("2013-10-07", normalize.date(1381161600000, 0))
    assert.are.equal("2013-10-07", normalize.date(1381161600000, -5))
  end)

  it("accepts the text formats", function()
    assert.are.equal("2016-06-23", normalize.date("2016-06-23"))
    assert.are.equal("2016-06-23", normalize.date("2016-06-23 10:11:12"))
    assert.are.equal("2016-06-23", normalize.date("2016/06/23"))
    assert.are.equal("2016-06-03", normalize.date("2016/6/3"))
    assert.are.equal("2016-02-29", normalize.date(" 2016-02-29 "))
  end)

  it("does not shift text dates by the offset", function()
    assert.are.equal("2016-06-23", normalize.date("2016-06-23 23:59:59", -12))
  end)

  it("rejects impossible dates and other text", function()
    for _, value in ipairs({
      "2016-02-30", "2015-02-29", "1900-02-29", "2016-13-01", "0000-00-00", "2016-06", "2016-06-23x",
      "2016-06/23", "abc", "", "99999999999999999999", {}, true,
    }) do
      assert.is_nil(normalize.date(value), tostring(value))
    end
  end)

  it("rejects non-finite and out-of-range epoch values without raising", function()
    assert.is_nil(normalize.date(1 / 0))
    assert.is_nil(normalize.date(-1 / 0))
    assert.is_nil(normalize.date(0 / 0))
    assert.is_nil(normalize.date(1e300))
  end)
end)

describe("normalize.number", function()
  it("reads numbers and decimal strings", function()
    assert.are.equal(29, normalize.number("29"))
    assert.are.equal(1.9, normalize.number("1.9"))
    assert.are.equal(-3, normalize.number(" -3 "))
    assert.are.equal(117369, normalize.number(117369))
  end)

  it("returns nil for anything else", function()
    for _, value in ipairs({ "", "abc", "12km", "0x10", "1e5", "nan", "inf", "1.2.3", {}, true }) do
      assert.is_nil(normalize.number(value), tostring(value))
    end
    assert.is_nil(normalize.number(0 / 0))
    assert.is_nil(normalize.number(1 / 0))
  end)

  it("gives integral values the integer subtype on Lua 5.3+", function()
    if not math.type then
      assert.are.equal(26394, normalize.number("26394"))
      return
    end
    assert.are.equal("integer", math.type(normalize.number(117369.0)))
    assert.are.equal("float", math.type(normalize.number("1.9")))
  end)
end)
