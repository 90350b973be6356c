-- Deterministic report generator: the same VIN always yields the same bytes,
-- in any worker, after any restart, under Lua 5.4 or LuaJIT. Everything is
-- drawn from a PRNG seeded by the VIN; nothing reads the clock.
local civil_date = require "maintenance_report.civil_date"
local json = require "maintenance_report_sandbox.json"
local prng = require "maintenance_report_sandbox.prng"
local scenarios = require "maintenance_report_sandbox.scenarios"
local vinlib = require "maintenance_report_sandbox.vin"
local wmi = require "maintenance_report_sandbox.wmi"

local M = {}

-- The sandbox's fixed "today" for reports. A real clock would make reports
-- change from day to day; model-year codes resolve to the cycle not after
-- REF_YEAR.
M.AS_OF = { 2026, 9, 30 }
M.REF_YEAR = 2026

local floor = math.floor

-- Day counts since 1970-01-01 (shared with the library: no os.time, which
-- depends on the local time zone).
local days_from_civil = civil_date.days_from_civil
M.days_from_civil = days_from_civil
local civil_from_days = civil_date.civil_from_days

local function date_string(days)
  local y, m, d = civil_from_days(days)
  return string.format("%04d-%02d-%02d", y, m, d)
end
M.date_string = date_string

-- The vendor writes mainTainDate as epoch milliseconds of midnight China time
-- (UTC+8), as a string: 2013-10-08 -> "1381161600000".
local function china_midnight_ms(days)
  return string.format("%d", (days * 86400 - 8 * 3600) * 1000)
end

-- Item pools: {content item, materials string}. Materials use the vendor's
-- "name:qty; " format.
local SERVICE_EXTRAS = {
  { "更换空气滤芯", "空气滤清器滤芯:1; " },
  { "更换空调滤芯", "空调滤清器:1; " },
  { "清洗节气门", "" },
  { "四轮动平衡", "平衡块:4; " },
  { "全车检查", "" },
  { "油路养护", "燃油系统清洗剂:1; " },
}
local EV_SERVICE = {
  { "检查高压系统", "" },
  { "更换空调滤芯", "空调滤清器:1; " },
  { "检查制动液", "" },
  { "轮胎换位", "" },
}
local MINOR_REPAIRS = {
  { "更换雨刮片", "雨刮片:2; " },
  { "更换蓄电池", "蓄电池:1; " },
  { "右前门打不开(更换右前门锁块)", "车门锁:1; 螺母:2; " },
  { "更换前刹车片", "前刹车片:1; " },
  { "空调不制冷检修", "空调制冷剂:1; " },
  { "更换轮胎", "轮胎:2; 气门嘴:2; " },
  { "仪表提示故障灯检查", "" },
  { "更换后刹车盘", "后刹车盘:2; 后刹车片:1; " },
}
local BODY_WORK = {
  { "前保险杠喷漆", "油漆:1; " },
  { "右后门钣金喷漆", "油漆:1; " },
  { "更换前风挡玻璃", "挡风玻璃:1; 玻璃胶:1; " },
  { "后杠刮擦修复", "油漆:1; " },
  { "左前翼子板钣金", "油漆:1; 卡扣:4; " },
  { "前部事故拆检更换前杠", "前保险杠:1; 前杠线束:1; " },
}
local COMPONENT_REPAIRS = {
  { "变速箱异响检修; 更换变速箱油及滤芯", "变速箱油:6; 变速箱滤芯:1; " },
  { "发动机漏油检修; 更换气门室盖垫", "气门室盖垫:1; 密封胶:1; " },
  { "更换转向机总成", "转向机总成:1; 转向助力油:1; " },
  { "更换前减震器", "减震器:2; 螺栓:4; " },
  { "更换发动机冷却水泵", "发动机冷却水泵:1; 水泵密封垫:2; 防冻液:2; " },
}
local STRUCTURE_REPAIRS = {
  { "左前纵梁校正", "油漆:2; " },
  { "右后翼子板切割更换", "后翼子板:1; 油漆:2; " },
  { "B柱钣金修复", "油漆:1; " },
  { "右前减震器座校正", "油漆:1; " },
}
local FLOOD_REPAIR = { "车辆泡水清洗; 更换地毯; 发动机进水检修", "地毯:1; 机油:4; 机油滤清器:1; " }
local FIRE_REPAIR = { "发动机舱起火维修; 更换线束", "发动机线束:1; 保险丝盒:1; " }

local TRIMS = { "舒适型", "豪华型", "精英版", "尊贵型", "运动版", "旗舰型" }
local TRANSMISSIONS = { "手自一体", "手自一体", "双离合", "CVT无级变速", "手动" }

local function emission_standard(year, entry)
  if entry.ev then return "纯电动" end
  if entry.import then
    if year <= 2000 then return "欧二" elseif year <= 2005 then return "欧三"
    elseif year <= 2009 then return "欧四" elseif year <= 2014 then return "欧五" end
    return "欧六"
  end
  if year <= 2000 then return "国一" elseif year <= 2004 then return "国二"
  elseif year <= 2007 then return "国三" elseif year <= 2012 then return "国四"
  elseif year <= 2018 then return "国五" end
  return "国六"
end

-- Builds a record; kind is one of "delivery", "service", "repair", "body",
-- "component", "structure", "flood", "fire".
local function new_record(rng, kind, days, mileage, items, materials)
  local content = table.concat(items, "; ") .. "; "
  local rtype
  if kind == "service" then
    -- Like the vendor data, some records carry no type.
    if rng:chance(85) then rtype = "常规保养" end
  elseif kind == "body" or kind == "structure" then
    rtype = "钣金喷漆"
  elseif kind ~= "delivery" then
    rtype = "一般维修"
  end
  -- The vendor leaves materials empty for many records.
  if kind == "service" and rng:chance(20) then materials = "" end
  -- Some vendor records have no content key at all.
  if kind == "delivery" and rng:chance(50) then content = nil end
  return {
    kind = kind, days = days, mileage = mileage, type = rtype,
    content = content, materials = materials,
  }
end

local function pick_items(rng, pool, n)
  local items, mats, used = {}, {}, {}
  for _ = 1, n do
    local i = rng:int(1, #pool)
    if not used[i] then
      used[i] = true
      items[#items + 1] = pool[i][1]
      mats[#mats + 1] = pool[i][2]
    end
  end
  return items, table.concat(mats)
end

local function service_record(rng, entry, days, mileage, service_no)
  local items, mats
  if entry.ev then
    items, mats = pick_items(rng, EV_SERVICE, rng:int(1, 3))
    table.insert(items, 1, "常规保养")
  else
    items, mats = pick_items(rng, SERVICE_EXTRAS, rng:int(0, 3))
    table.insert(items, 1, string.format("基础保养服务包 第%d次", service_no))
    table.insert(items, 1, "更换机油机滤常规保养")
    mats = string.format("机油:%d; 机油滤清器:1; ", rng:int(4, 6)) .. mats
  end
  return new_record(rng, "service", days, mileage, items, mats)
end

local function incident_record(rng, kind, days, mileage)
  local items, mats
  if kind == "repair" then
    items, mats = pick_items(rng, MINOR_REPAIRS, rng:int(1, 2))
    table.insert(items, 1, "一般维修")
  elseif kind == "body" then
    items, mats = pick_items(rng, BODY_WORK, rng:int(1, 2))
    table.insert(items, 1, "钣金喷漆")
  elseif kind == "component" then
    items, mats = pick_items(rng, COMPONENT_REPAIRS, 1)
    table.insert(items, 1, "一般维修")
  elseif kind == "structure" then
    items, mats = pick_items(rng, STRUCTURE_REPAIRS, rng:int(1, 2))
    table.insert(items, 1, "钣金喷漆")
  elseif kind == "flood" then
    items, mats = { "一般维修", FLOOD_REPAIR[1] }, FLOOD_REPAIR[2]
  else
    items, mats = { "一般维修", FIRE_REPAIR[1] }, FIRE_REPAIR[2]
  end
  return new_record(rng, kind, days, mileage, items, mats)
end

-- Service history in date order with strictly rising mileage: routine service
-- every 5,000-10,000 km or 6-12 months (whichever comes first), repairs and
-- body work in between.
local function history(rng, entry, model_year, as_of)
  local year_start = days_from_civil(model_year, 1, 1)
  local purchase = year_start + rng:int(0, 300)
  if purchase > as_of - 20 then purchase = as_of - 20 end
  if purchase < year_start then purchase = year_start end
  -- Dealer history stops when the owner stops visiting the dealer.
  local last_day = purchase + rng:int(1, 8) * 365 + rng:int(0, 364)
  if last_day > as_of then last_day = as_of end

  local km_per_year = rng:int(6000, 30000)
  local body_chance = rng:chance(30) and 15 or 4
  local special = {}
  if rng:chance(8) then special[#special + 1] = "structure" end
  if rng:chance(3) then special[#special + 1] = "flood" end
  if rng:chance(3) then special[#special + 1] = "fire" end

  local records = {}
  local day, mileage = purchase, rng:int(5, 60)
  records[1] = new_record(rng, "delivery", day, mileage,
    { "新车交付检查", "附件安装" }, "")

  -- Moves the odometer forward to a later day; always by at least 1 km.
  local function drive_to(new_day)
    local km = floor((new_day - day) * km_per_year / 365 * rng:int(85, 115) / 100)
    if km < 1 then km = 1 end
    day, mileage = new_day, mileage + km
  end

  local service_no = 0
  while true do
    local by_time = rng:int(182, 365)
    local by_km = floor(rng:int(5000, 10000) * 365 / km_per_year)
    local next_service = day + (by_time < by_km and by_time or by_km)
    if next_service > last_day then break end
    -- At most one unplanned visit between two services.
    if next_service - day > 20 then
      local kind
      if #special > 0 and rng:chance(25) then
        kind = table.remove(special, 1)
      elseif rng:chance(5) then
        kind = "component"
      elseif rng:chance(body_chance) then
        kind = "body"
      elseif rng:chance(35) then
        kind = "repair"
      end
      if kind then
        drive_to(day + rng:int(10, next_service - day - 10))
        records[#records + 1] = incident_record(rng, kind, day, mileage)
      end
    end
    drive_to(next_service)
    service_no = service_no + 1
    records[#records + 1] = service_record(rng, entry, day, mileage, service_no)
  end
  return records
end

-- Histories made for the report-content scenarios (scenarios.FINDINGS): a
-- regular one (a service every 5-7 months and 6,000-8,000 km from 2020-03 to
-- two months before the report clock), changed in one way per scenario.
local function regular_history(rng, entry, first_day, last_day)
  local day, mileage = first_day, rng:int(5, 60)
  local records = { new_record(rng, "delivery", day, mileage, { "新车交付检查", "附件安装" }, "") }
  local n = 0
  while true do
    day, mileage = day + rng:int(150, 210), mileage + rng:int(6000, 8000)
    if day > last_day then break end
    n = n + 1
    records[#records + 1] = service_record(rng, entry, day, mileage, n)
  end
  return records
end

-- A visit halfway between records i and i + 1.
local function insert_visit(rng, records, i, kind, items, materials)
  local a, b = records[i], records[i + 1]
  local r = new_record(rng, kind, floor((a.days + b.days) / 2), floor((a.mileage + b.mileage) / 2), items, materials)
  table.insert(records, i + 1, r)
end

local function shift_from(records, i, km)
  for j = i, #records do records[j].mileage = records[j].mileage + km end
end

local SHAPES = {}
function SHAPES.rollback(_, records)
  local k = floor(#records * 2 / 3)
  shift_from(records, k, 15000 + (records[k].mileage % 1000) - records[k].mileage)
end
function SHAPES.fast_mileage(_, records) shift_from(records, floor(#records / 2), 90000) end
function SHAPES.mileage_flag_abnormal(_, _, facts) facts.mileage_normal = 0 end
function SHAPES.structural(rng, records)
  insert_visit(rng, records, floor(#records / 2), "structure", { "钣金喷漆", "左前纵梁校正", "车身校正" }, "油漆:2; ")
end
function SHAPES.airbag(rng, records)
  insert_visit(rng, records, floor(#records / 2), "airbag", { "一般维修", "更换主驾驶安全气囊", "更换气囊控制模块" },
    "主驾驶气囊:1; 气囊控制模块:1; ")
end
function SHAPES.flood(rng, records)
  insert_visit(rng, records, floor(#records / 2), "flood", { "一般维修", FLOOD_REPAIR[1] }, FLOOD_REPAIR[2])
end
function SHAPES.fire(rng, records)
  insert_visit(rng, records, floor(#records / 2), "fire", { "一般维修", "发动机舱火烧维修", "线束烧蚀更换" },
    FIRE_REPAIR[2])
end
function SHAPES.major_component(rng, records)
  insert_visit(rng, records, floor(#records / 2), "component", { "一般维修", "更换变速箱总成" }, "变速箱总成:1; ")
end
function SHAPES.service_gap(_, records)
  local mid = floor(#records / 2)
  for _ = 1, 4 do table.remove(records, mid) end
end
function SHAPES.service_count_mismatch(_, _, facts) facts.services_per_year_factor = 2 end

local function scenario_history(rng, entry, name, as_of)
  local first = days_from_civil(2020, 3, 1) + rng:int(0, 30)
  local last = as_of - 60
  if name == "last_service_old" then last = as_of - 3 * 365 end
  if name == "one_year" then first, last = days_from_civil(2026, 1, 10) + rng:int(0, 5), days_from_civil(2026, 9, 1) end
  local records = regular_history(rng, entry, first, last)
  if name == "one_year" then
    -- services by time (every 5-7 months) give too few points in one year: add visits
    insert_visit(rng, records, 1, "repair", { "一般维修", "更换雨刮片" }, "雨刮片:2; ")
    insert_visit(rng, records, #records - 1, "body", { "钣金喷漆", "前保险杠喷漆" }, "油漆:1; ")
  end
  local facts = {}
  if SHAPES[name] then SHAPES[name](rng, records, facts) end
  return records, facts
end

local function record_json(r)
  local kv = {}
  if r.content then kv[#kv + 1] = "content"; kv[#kv + 1] = r.content end
  kv[#kv + 1] = "repairDate"; kv[#kv + 1] = date_string(r.days)
  kv[#kv + 1] = "materal"; kv[#kv + 1] = r.materials
  kv[#kv + 1] = "mileage"; kv[#kv + 1] = string.format("%d", r.mileage)
  kv[#kv + 1] = "mainTainDate"; kv[#kv + 1] = china_midnight_ms(r.days)
  if r.type then kv[#kv + 1] = "type"; kv[#kv + 1] = r.type end
  return json.object(kv)
end

-- Everything the report says about a VIN, as plain Lua data (exposed for
-- tests and for the handler's JSON rendering).
function M.facts(vin)
  vin = vin:upper()
  local rng = prng.new(vin)
  local entry = wmi.lookup(vin:sub(1, 3), function(n) return rng:int(1, n) end)
  local model_year = vinlib.model_year(vin:sub(10, 10), M.REF_YEAR) or (2008 + rng:int(0, 12))
  local as_of = days_from_civil(M.AS_OF[1], M.AS_OF[2], M.AS_OF[3])

  local series = entry.series[rng:int(1, #entry.series)]
  local displacement = series[rng:int(2, #series)]
  local transmission = entry.ev and "电动车单速变速箱"
    or (entry.import and "手自一体" or rng:pick(TRANSMISSIONS))
  local trim = rng:pick(TRIMS)
  local generation = string.format("(%02d/%02d-)",
    (model_year - rng:int(1, 3)) % 100, rng:int(1, 12))

  local records = history(rng, entry, model_year, as_of)
  local sc = scenarios.decode(vin)
  local shaped = {}
  if sc and scenarios.info(sc.name).phase == "0" and sc.name ~= "normal" then
    records, shaped = scenario_history(rng, entry, sc.name, as_of)
  end
  local services, component, outside, construct = 0, {}, {}, {}
  local last_service, fire, water = nil, 0, 0
  for _, r in ipairs(records) do
    if r.kind == "service" then
      services = services + 1
      last_service = r.days
    elseif r.kind == "component" or r.kind == "flood" or r.kind == "fire" or r.kind == "airbag" then
      component[#component + 1] = r
    elseif r.kind == "body" then
      outside[#outside + 1] = r
    elseif r.kind == "structure" then
      -- Structural repairs always come with body work.
      construct[#construct + 1] = r
      outside[#outside + 1] = r
    end
    if r.kind == "flood" then water = 1 end
    if r.kind == "fire" then fire = 1 end
  end

  local first, last = records[1], records[#records]
  local years = (last.days - first.days) / 365
  if years < 1 then years = 1 end
  local per_year = floor(last.mileage / years + 0.5)

  return {
    vin = vin,
    brand = entry.brand,
    manufacturer = entry.manufacturer,
    model_year = model_year,
    series_name = series[1] .. generation,
    model_name = string.format("%d款 %s %s %s %s %s", model_year, entry.brand,
      series[1], displacement, transmission, trim),
    transmission = transmission,
    displacement = displacement,
    effluent_standard = emission_standard(model_year, entry),
    records = records,
    component = component,
    outside = outside,
    construct = construct,
    fire = fire,
    water = water,
    last_service = last_service and date_string(last_service) or "",
    last_visit = date_string(last.days),
    services_per_year = string.format("%.1f", services / years * (shaped.services_per_year_factor or 1)
      + (shaped.services_per_year_factor and 1 or 0)),
    mileage_normal = shaped.mileage_normal or 1,
    mileage_per_year = per_year,
    mileage_estimate = last.mileage + floor(per_year * (as_of - last.days) / 365 + 0.5),
  }
end

local function records_json(list)
  local out = {}
  for i, r in ipairs(list) do out[i] = record_json(r) end
  return json.array(out)
end

local function flag(list) return #list > 0 and 1 or 0 end

-- The ready report body (resultCode "1205") for a VIN.
function M.ready_json(vin)
  local f = M.facts(vin)
  return json.encode(json.object {
    "code", "0",
    "message", "成功",
    "data", json.object {
      "result", "1",
      "description", "查询成功,有报告",
      "detail", json.object {
        "resultCode", "1205",
        "resultMsg", "已出报告",
        "brand", f.brand,
        "modelName", f.model_name,
        "seriesName", f.series_name,
        "vin", vinlib.mask(f.vin),
        "manufacturer", f.manufacturer,
        "makeDate", string.format("%d", f.model_year),
        "transmissionType", f.transmission,
        "displacement", f.displacement,
        "effluentStandard", f.effluent_standard,
        "carFireFlag", f.fire,
        "carWaterFlag", f.water,
        "carComponentRecordsFlag", flag(f.component),
        "carConstructRecordsFlag", flag(f.construct),
        "carOutsideRecordsFlag", flag(f.outside),
        -- Generated mileage always rises (so it is plausible), except in the
        -- rollback and fast_mileage scenarios, where the vendor did not notice.
        "mileageIsNormalFlag", f.mileage_normal,
        "mileageEstimate", f.mileage_estimate,
        "lastMainTainTime", f.last_service,
        "mainTainTimes", f.services_per_year,
        "lastRepairTime", f.last_visit,
        "mileageEveryYear", string.format("%d", f.mileage_per_year),
        "normalRepairRecords", records_json(f.records),
        "componentAnalyzeRepairRecords", records_json(f.component),
        "outsideAnalyzeRepairRecords", records_json(f.outside),
        "constructAnalyzeRepairRecords", records_json(f.construct),
      },
    },
  })
end

-- Fixed bodies of the other report states, in the vendor's shapes.
M.PENDING_JSON = '{"code":"0","message":"成功","data":{"result":"0","description":"报告生成中",'
  .. '"detail":{"resultCode":"1204","resultMsg":"报告生成中"}}}'
M.NO_RECORDS_JSON = '{"code":"0","message":"成功","data":{"result":"2","description":"查询成功,无记录",'
  .. '"detail":{"resultCode":"1206","resultMsg":"无维修保养记录"}}}'

return M
