-- render/text: a Chinese summary with labelled flags, highlighting only when asked, and a timeline.
local text = require "maintenance_report.render.text"
local normalize = require "maintenance_report.normalize"
local fixtures = require "helpers.fixtures"
local fixture = fixtures.json


local function ready()
  return fixtures.ready_report("ORDER-TXT")
end

local function lines_with(s, needle)
  local out = {}
  for line in s:gmatch("[^\n]+") do
    if line:find(needle, 1, true) then out[#out + 1] = line end
  end
  return out
end

describe("render.text", function()
  it("labels the vehicle, the six flags, mileage and the last dates", function()
    local r = ready()
    local s = text.render(r)
    for _, label in ipairs{ "火烧", "水泡", "结构件", "重要部件", "外观件", "里程是否正常" } do
      assert.are.equal(1, #lines_with(s, label .. " "), label)
    end
    assert.truthy(s:find(r.vehicle.brand, 1, true))
    assert.truthy(s:find(r.vehicle.vin, 1, true))
    assert.truthy(s:find(r.last_maintenance_date, 1, true))
    assert.truthy(s:find(r.last_repair_date, 1, true))
    assert.truthy(s:find(text.number(r.mileage_estimate), 1, true))
    assert.truthy(s:find(text.number(r.mileage_per_year), 1, true))
    assert.truthy(s:find("ORDER-TXT", 1, true))
  end)

  it("says 有 for a raised flag and 无 for a clear one, and 异常 for implausible mileage", function()
    local r = ready()
    r.flags = { fire = true, flood = false, structural = nil, major_component = true, exterior = false,
                mileage_normal = false }
    local s = text.render(r)
    assert.truthy(lines_with(s, "火烧 ")[1]:find("有", 1, true))
    assert.truthy(lines_with(s, "水泡 ")[1]:find("无", 1, true))
    assert.truthy(lines_with(s, "结构件 ")[1]:find("未知", 1, true))
    assert.truthy(lines_with(s, "里程是否正常 ")[1]:find("异常", 1, true))
  end)

  it("highlights risky flags with ANSI only when color is on", function()
    local r = ready()
    r.flags.fire = true
    local plain = text.render(r, { color = false })
    assert.falsy(plain:find("\27", 1, true))
    local colored = text.render(r, { color = true })
    local fire = lines_with(colored, "火烧 ")[1]
    assert.truthy(fire:find("\27%[1;31m"), fire)
    local flood = lines_with(colored, "水泡 ")[1]
    assert.falsy(flood:find("\27%[1;31m"), flood)
  end)

  it("lists every record in date order with date, mileage and items", function()
    local r = ready()
    local s = text.render(r)
    local positions = {}
    local timeline = assert(s:find("维修保养时间线", 1, true)) -- findings above may cite dates too
    for i, rec in ipairs(r.records) do
      local head = rec.date .. " "
      local at = s:find(head, timeline, true)
      assert.truthy(at, head)
      positions[i] = at
      if rec.mileage then
        local line = s:sub(at, (s:find("\n", at, true) or #s))
        assert.truthy(line:find(text.number(rec.mileage) .. " km", 1, true), line)
      end
      for _, item in ipairs(rec.items) do assert.truthy(s:find(item, 1, true), item) end
    end
    for i = 2, #positions do assert.is_true(positions[i] > positions[i - 1]) end
    assert.truthy(s:find("（" .. #r.records .. " 条）", 1, true))
  end)

  it("keeps control characters from the report away from the terminal", function()
    local r = ready()
    r.vehicle.brand = "Evil\27[2J\27]0;title\7Brand"
    local s = text.render(r, { color = false })
    assert.falsy(s:find("[%z\1-\9\11-\31]"))
    assert.truthy(s:find("Evil", 1, true))
  end)

  it("renders no-records and pending reports without a timeline", function()
    local nr = normalize.report(fixture("vendor_report_no_records.json"), "no_records", "O-NR")
    local s = text.render(nr)
    assert.truthy(s:find("无维修保养记录", 1, true))
    assert.falsy(s:find("时间线", 1, true))
    local p = text.render{ status = "pending", order_id = "O-PD" }
    assert.truthy(p:find("报告生成中", 1, true))
    assert.truthy(p:find("O-PD", 1, true))
  end)

  it("starts with the queried identity and the verdict, findings before the vehicle data", function()
    local cases = require "fixtures.analysis_cases"
    local s = text.render(cases.rollback(), { query = { vin = "WBAXW1104J0X16755", plate_number = "京A12345" },
      analysis = { as_of = cases.AS_OF } })
    local vin = s:find("WBAXW1104J0X16755", 1, true)
    local verdict = s:find("结论：高风险", 1, true)
    local rollback = s:find("里程回退", 1, true)
    local vehicle = s:find("车辆信息", 1, true)
    assert.truthy(vin and verdict and rollback and vehicle, s)
    assert.is_true(vin < verdict and verdict < rollback and rollback < vehicle)
    assert.truthy(s:find("京A12345", 1, true))
    assert.truthy(s:find("SA******02383", 1, true))
    assert.truthy(s:find("规则：", 1, true))
    local clean = text.render(cases.clean(), { analysis = { as_of = cases.AS_OF } })
    assert.truthy(clean:find("结论：无明显异常", 1, true))
    local nr = text.render(normalize.report(fixture("vendor_report_no_records.json"), "no_records", "O-NR"),
      { query = { vin = "WBAXW1104J0X16755" } })
    assert.truthy(nr:find("WBAXW1104J0X16755", 1, true))
  end)
end)
