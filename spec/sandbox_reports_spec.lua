-- Generated reports: plausible, self-consistent, in the vendor's quirky
-- format, and byte-for-byte deterministic per VIN (across workers,
-- restarts, and Lua 5.4 vs LuaJIT).
local sandbox = require "maintenance_report_sandbox"
local reports = require "maintenance_report_sandbox.reports"
local http = require "helpers.sandbox_http"

-- Independent date arithmetic: whole days since 1970-01-01 by counting.
local function is_leap(y) return (y % 4 == 0 and y % 100 ~= 0) or y % 400 == 0 end
local MONTH_DAYS = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }
local function epoch_days(date)
  local y, m, d = date:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)$")
  y, m, d = tonumber(y), tonumber(m), tonumber(d)
  local days = 0
  for year = 1970, y - 1 do days = days + (is_leap(year) and 366 or 365) end
  for month = 1, m - 1 do days = days + MONTH_DAYS[month] + ((month == 2 and is_leap(y)) and 1 or 0) end
  return days + d - 1
end

local function decode(vin) return assert(http.json(reports.ready_json(vin))) end

-- A spread of VINs: known WMIs, unknown ones, odd lengths.
local function sample_vins()
  local wmis = { "LSV", "LFV", "LHG", "LVS", "LGB", "LBV", "WBA", "SAL", "JTD", "LSG", "LVG", "LFM", "LDC",
                 "LGW", "LB3", "LGX", "LS5", "LZW", "LVV", "LJD", "LBE", "LE4", "WDD", "WAU", "LFP", "LSJ",
                 "LNB", "LRW", "5YJ", "WVW", "JHM", "KMH", "VF1", "1G4", "ZFA", "XTA" }
  local years = "ABCDEFGHJKLMNPRSTVWXY123456789"
  local vins = {}
  for i, wmi in ipairs(wmis) do
    for j = 0, 4 do
      local k = (i * 5 + j) % #years + 1
      vins[#vins + 1] = string.format("%sAB2BM0%s%s%06d", wmi, years:sub(k, k), "N", i * 1000 + j)
    end
  end
  vins[#vins + 1] = "SBL666666BM9D933" -- the listing's own 16-character sample
  return vins
end

describe("generated report", function()
  it("takes brand and manufacturer from the WMI", function()
    local expected = {
      LSV = { "大众", "上汽大众" }, LFV = { "大众", "一汽-大众" }, LHG = { "本田", "广汽本田" },
      LVS = { "福特", "长安福特" }, LGB = { "日产", "东风日产" }, LBV = { "宝马", "华晨宝马" },
      SAL = { "路虎", "进口路虎" }, LGX = { "比亚迪" }, LB3 = { "吉利" }, LRW = { "特斯拉", "特斯拉上海" },
      LE4 = { "奔驰", "北京奔驰" }, LBE = { "现代", "北京现代" }, LGW = { nil, "长城汽车" },
      WBA = { "宝马" }, WDD = { "奔驰" }, WAU = { "奥迪" }, JTD = { "丰田" }, VF1 = { "雷诺" },
    }
    for wmi, want in pairs(expected) do
      local d = decode(wmi .. "AB2BM0KN000123").data.detail
      if want[1] then assert.are.equal(want[1], d.brand, wmi) end
      if want[2] then assert.are.equal(want[2], d.manufacturer, wmi) end
      assert.truthy(d.modelName:find(d.brand, 1, true), wmi)
    end
  end)

  it("falls back to a plausible maker for an unknown WMI", function()
    local d = decode("ZZZAB2BM0KN000123").data.detail
    assert.truthy(#d.brand > 0 and #d.manufacturer > 0)
  end)

  it("takes the model year from position 10, in the cycle that is not in the future", function()
    local cases = { A = "2010", E = "2014", J = "2018", L = "2020", S = "2025", T = "2026",
                    V = "1997", Y = "2000", ["1"] = "2001", ["9"] = "2009" }
    for code, year in pairs(cases) do
      local d = decode("LSVAB2BM0" .. code .. "N000123").data.detail
      assert.are.equal(year, d.makeDate, code)
      assert.truthy(d.modelName:find("^" .. year .. "款"), d.modelName)
    end
  end)

  it("masks the VIN like the vendor: 2 chars, 6 asterisks, last 5", function()
    assert.are.equal("LS******00123", decode("LSVAB2BM0KN000123").data.detail.vin)
  end)

  it("keeps the vendor's types and formats", function()
    for _, vin in ipairs(sample_vins()) do
      local d = decode(vin).data.detail
      assert.are.equal("1205", d.resultCode)
      assert.is_string(d.mileageEveryYear)
      assert.truthy(d.mileageEveryYear:match("^%d+$"))
      assert.is_string(d.mainTainTimes)
      assert.truthy(d.mainTainTimes:match("^%d+%.%d$"), d.mainTainTimes)
      assert.is_number(d.mileageEstimate)
      assert.are.equal(math.floor(d.mileageEstimate), d.mileageEstimate)
      for _, flag in ipairs({ "carFireFlag", "carWaterFlag", "carComponentRecordsFlag",
                              "carConstructRecordsFlag", "carOutsideRecordsFlag", "mileageIsNormalFlag" }) do
        assert.truthy(d[flag] == 0 or d[flag] == 1, flag)
      end
      for _, r in ipairs(d.normalRepairRecords) do
        assert.truthy(r.mileage:match("^%d+$"))
        -- "name:qty; name:qty; " and "item; item; "
        assert.truthy(r.materal == "" or r.materal:gsub("[^:;]+:%d+; ", "") == "", r.materal)
        if r.content then
          assert.truthy(r.content ~= "" and r.content:gsub("[^;]+; ", "") == "", r.content)
        end
        -- midnight China time (UTC+8), epoch milliseconds, as a string
        assert.are.equal(string.format("%d", (epoch_days(r.repairDate) * 86400 - 8 * 3600) * 1000), r.mainTainDate)
      end
    end
  end)

  it("agrees with the vendor's own date example (2013-10-08 -> 1381161600000)", function()
    assert.are.equal(1381161600000, (epoch_days("2013-10-08") * 86400 - 8 * 3600) * 1000)
  end)

  it("has a plausible history consistent with its summary fields and flags", function()
    for _, vin in ipairs(sample_vins()) do
      local d = decode(vin).data.detail
      local records = d.normalRepairRecords
      assert.is_true(#records >= 1, vin)
      local year_start = epoch_days(d.makeDate .. "-01-01")
      local last_service, prev_day, prev_km = "", -1, -1
      local services = 0
      for _, r in ipairs(records) do
        local day, km = epoch_days(r.repairDate), tonumber(r.mileage)
        assert.is_true(day >= year_start, vin .. " " .. r.repairDate)
        assert.is_true(day > prev_day, vin)
        assert.is_true(km > prev_km, vin)
        prev_day, prev_km = day, km
        if r.content and r.content:find("保养", 1, true) then
          services = services + 1
          last_service = r.repairDate
        end
      end
      local first, last = records[1], records[#records]
      assert.are.equal(last_service, d.lastMainTainTime, vin)
      assert.are.equal(last.repairDate, d.lastRepairTime, vin)
      local years = math.max((epoch_days(last.repairDate) - epoch_days(first.repairDate)) / 365, 1)
      assert.is_true(math.abs(tonumber(d.mileageEveryYear) - tonumber(last.mileage) / years) <= 1, vin)
      assert.is_true(math.abs(tonumber(d.mainTainTimes) - services / years) <= 0.051, vin)
      assert.is_true(d.mileageEstimate >= tonumber(last.mileage), vin)
      assert.are.equal(#d.outsideAnalyzeRepairRecords > 0 and 1 or 0, d.carOutsideRecordsFlag, vin)
      assert.are.equal(#d.componentAnalyzeRepairRecords > 0 and 1 or 0, d.carComponentRecordsFlag, vin)
      assert.are.equal(#d.constructAnalyzeRepairRecords > 0 and 1 or 0, d.carConstructRecordsFlag, vin)
      assert.are.equal(1, d.mileageIsNormalFlag)
      -- Routine service every 5,000-10,000 km or 6-12 months: between two
      -- services at most 12 months and (with noise) about 11,500 km.
      local prev
      for _, r in ipairs(records) do
        if r.content and r.content:find("保养", 1, true) then
          if prev then
            assert.is_true(epoch_days(r.repairDate) - epoch_days(prev.repairDate) <= 366, vin)
            assert.is_true(tonumber(r.mileage) - tonumber(prev.mileage) <= 11500, vin)
          end
          prev = r
        end
      end
      -- Analysis lists only hold records of the history.
      local in_history = {}
      for _, r in ipairs(records) do in_history[r.repairDate .. "/" .. r.mileage] = true end
      for _, list in ipairs({ "componentAnalyzeRepairRecords", "outsideAnalyzeRepairRecords",
                              "constructAnalyzeRepairRecords" }) do
        for _, r in ipairs(d[list]) do
          assert.is_true(in_history[r.repairDate .. "/" .. r.mileage], list)
        end
      end
      for _, r in ipairs(d.outsideAnalyzeRepairRecords) do
        assert.truthy(r.content:find("钣金喷漆", 1, true))
      end
    end
  end)

  it("shows variety across VINs: body work, repairs, missing keys, empty materials", function()
    local seen = {}
    for _, vin in ipairs(sample_vins()) do
      local d = decode(vin).data.detail
      if #d.outsideAnalyzeRepairRecords > 0 then seen.outside = true end
      if #d.componentAnalyzeRepairRecords > 0 then seen.component = true end
      if d.carOutsideRecordsFlag == 0 then seen.no_outside = true end
      for _, r in ipairs(d.normalRepairRecords) do
        if r.content == nil then seen.no_content = true end
        if r.type == nil then seen.no_type = true end
        if r.type == "一般维修" then seen.repair = true end
        if r.materal == "" then seen.empty_materal = true end
        if r.materal ~= "" then seen.materal = true end
      end
    end
    for _, key in ipairs({ "outside", "component", "no_outside", "no_content", "no_type", "repair",
                           "empty_materal", "materal" }) do
      assert.is_true(seen[key], key)
    end
  end)

  it("is the same bytes for the same VIN and different for another", function()
    local a = reports.ready_json("LSVAB2BM0KN000123")
    assert.are.equal(a, reports.ready_json("LSVAB2BM0KN000123"))
    assert.are.equal(a, reports.ready_json("lsvab2bm0kn000123"))
    assert.are_not.equal(a, reports.ready_json("LSVAB2BM0KN000124"))
  end)

  it("is the same bytes under Lua 5.4 and LuaJIT (nginx runs LuaJIT)", function()
    local script = "package.path='lua/?.lua;lua/?/init.lua;'..package.path;"
      .. "local r=require'maintenance_report_sandbox.reports';"
      .. "io.write(r.ready_json('SALGS2EF8EA102383'), r.ready_json('LRW3E7EK1NC000123'))"
    local out54, rc54 = http.sh("lua5.4 -e " .. http.quote(script))
    local outjit, rcjit = http.sh("luajit -e " .. http.quote(script))
    assert.are.equal(0, rc54, out54)
    assert.are.equal(0, rcjit, outjit)
    assert.are.equal(out54, outjit)
  end)
end)

describe("served reports", function()
  local VIN = "SALGS2EF8EA102383"

  local function read_report(sb)
    local res = http.report_ready(sb, http.order_id(sb, VIN))
    assert.are.equal(200, res.status)
    return res.body
  end

  it("are byte-identical across orders, workers and a restart", function()
    local sb = assert(sandbox.start { workers = 2 })
    local bodies = {}
    for i = 1, 6 do bodies[i] = read_report(sb) end
    sb:stop()
    local sb2 = assert(sandbox.start { workers = 1 })
    finally(function() sb2:stop() end)
    bodies[#bodies + 1] = read_report(sb2)
    for i = 2, #bodies do assert.are.equal(bodies[1], bodies[i]) end
    local d = http.json(bodies[1]).data.detail
    assert.are.equal("SA******02383", d.vin)
    assert.are.equal("路虎", d.brand)
  end)
end)
