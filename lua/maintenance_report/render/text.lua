-- A readable summary of a normalized report, in Chinese, for a terminal.
--
-- render(report, {color = bool, query = {...}, analysis = {...}}) → text ending
-- in "\n": the queried identity and the analysis's verdict and findings first,
-- then the vendor's vehicle data, flags and records. With color, risky flags
-- and findings are highlighted with ANSI escapes; the CLI turns color on only
-- when stdout is a terminal. All report text is stripped of control
-- characters, so a report cannot move the cursor or change the terminal's state.
local analysis = require "maintenance_report.analysis"

local text = {}

local RED, GREEN, YELLOW, BOLD, DIM, RESET = "\27[1;31m", "\27[32m", "\27[33m", "\27[1m", "\27[2m", "\27[0m"

text.STATUS_LABELS = { ready = "已出报告", no_records = "无维修保养记录", pending = "报告生成中" }
text.CATEGORY_LABELS = { maintenance = "保养", repair = "维修", bodywork = "钣金" }

-- Risk flags in display order: key, label, and the value that is risky.
text.FLAGS = {
  { "fire", "火烧", true },
  { "flood", "水泡", true },
  { "structural", "结构件", true },
  { "major_component", "重要部件", true },
  { "exterior", "外观件", true },
  { "mileage_normal", "里程是否正常", false },
}

--- The label for a flag value: { word, risky (bool) or nil when unknown }.
function text.flag_value(key, value)
  if value == nil then return "未知", nil end
  if key == "mileage_normal" then
    if value then return "正常", false end
    return "异常", true
  end
  if value then return "有", true end
  return "无", false
end

-- No control characters (ESC included) from report text reach the terminal.
local function clean(s)
  if s == nil then return nil end
  return (tostring(s):gsub("[%z\1-\31\127]", " "))
end

-- Terminal columns: CJK (U+3000 and up in the 3-byte range) and 4-byte characters take two.
function text.width(s)
  local w = 0
  for ch in s:gmatch("[%z\1-\127\194-\244][\128-\191]*") do
    local b = ch:byte()
    w = w + ((b >= 0xF0 or (b >= 0xE3 and #ch >= 3)) and 2 or 1)
  end
  return w
end

local function pad(s, width)
  local w = text.width(s)
  if w >= width then return s end
  return s .. string.rep(" ", width - w)
end

local function lpad(s, width)
  local w = text.width(s)
  if w >= width then return s end
  return string.rep(" ", width - w) .. s
end

--- 213195 → "213,195"; 3.6 → "3.6".
function text.number(n)
  if n == nil then return nil end
  if n ~= math.floor(n) then return (string.format("%.2f", n):gsub("0+$", ""):gsub("%.$", "")) end
  local s = string.format("%d", n)
  local sign, digits = s:match("^(-?)(%d+)$")
  digits = digits:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", "")
  return sign .. digits
end

local function km(n)
  if n == nil then return nil end
  return text.number(n) .. " 公里"
end

local function join(list, sep)
  local out = {}
  for _, item in ipairs(list or {}) do out[#out + 1] = clean(item) end
  return table.concat(out, sep)
end

local function materials_text(materials)
  local out = {}
  for _, m in ipairs(materials or {}) do
    local s = clean(m.name) or ""
    if m.quantity then s = s .. "×" .. text.number(m.quantity) end
    out[#out + 1] = s
  end
  return table.concat(out, "；")
end

local function paint(s, style, color)
  if not color or not style then return s end
  return style .. s .. RESET
end

-- Lines "  label  value" with the labels padded to one width.
local function fields(out, rows)
  local width = 0
  for _, row in ipairs(rows) do
    if row[2] ~= nil then width = math.max(width, text.width(row[1])) end
  end
  for _, row in ipairs(rows) do
    if row[2] ~= nil then out[#out + 1] = "  " .. pad(row[1], width) .. "  " .. row[2] end
  end
end

local function vehicle_section(out, report)
  local v = report.vehicle or {}
  local rows = {
    { "品牌", clean(v.brand) },
    { "厂商", clean(v.manufacturer) },
    { "车系", clean(v.series) },
    { "车型", clean(v.model) },
    { "年款", v.year and tostring(v.year) or nil },
    { "变速箱", clean(v.transmission) },
    { "排量", clean(v.displacement) },
    { "排放标准", clean(v.emission_standard) },
  }
  local any = false
  for _, row in ipairs(rows) do if row[2] then any = true end end
  if not any then return end
  out[#out + 1] = ""
  out[#out + 1] = "车辆信息"
  fields(out, rows)
end

local function flags_section(out, report, color)
  local flags = report.flags or {}
  out[#out + 1] = ""
  out[#out + 1] = "风险项"
  local width = 0
  for _, f in ipairs(text.FLAGS) do width = math.max(width, text.width(f[2])) end
  local risky_count = 0
  for _, f in ipairs(text.FLAGS) do
    local word, risky = text.flag_value(f[1], flags[f[1]])
    local shown
    if risky then
      risky_count = risky_count + 1
      shown = paint(word .. "  ⚠", RED, color)
    elseif risky == false then
      shown = paint(word, GREEN, color)
    else
      shown = paint(word, DIM, color)
    end
    out[#out + 1] = "  " .. pad(f[2], width) .. "  " .. shown
  end
  if risky_count > 0 then
    out[#out + 1] = "  " .. paint(string.format("注意：%d 项风险", risky_count), BOLD, color)
  end
end

local function mileage_section(out, report)
  local rows = {
    { "估算当前里程", km(report.mileage_estimate) },
    { "年均行驶里程", km(report.mileage_per_year) },
    { "年均保养次数", report.maintenance_per_year and text.number(report.maintenance_per_year) or nil },
    { "最近保养日期", clean(report.last_maintenance_date) },
    { "最近维修日期", clean(report.last_repair_date) },
  }
  local any = false
  for _, row in ipairs(rows) do if row[2] then any = true end end
  if not any then return end
  out[#out + 1] = ""
  out[#out + 1] = "里程与保养"
  fields(out, rows)
end

local function timeline_section(out, report, color)
  local records = report.records or {}
  out[#out + 1] = ""
  out[#out + 1] = string.format("维修保养时间线（%d 条）", #records)
  if #records == 0 then
    out[#out + 1] = "  （无记录）"
    return
  end
  local indent = string.rep(" ", 2 + 10 + 2 + 12 + 2)
  for _, r in ipairs(records) do
    local label = text.CATEGORY_LABELS[r.category] or "记录"
    local mileage = r.mileage and (text.number(r.mileage) .. " km") or "-"
    local tag = "[" .. label .. "]"
    if r.category == "bodywork" then tag = paint(tag, RED, color) end
    local head = "  " .. pad(clean(r.date) or "日期不详", 10) .. "  " .. lpad(mileage, 12) .. "  " .. tag
    if r.type then head = head .. " " .. clean(r.type) end
    out[#out + 1] = head
    if r.items and #r.items > 0 then out[#out + 1] = indent .. "项目：" .. join(r.items, "；") end
    if r.materials and #r.materials > 0 then out[#out + 1] = indent .. "材料：" .. materials_text(r.materials) end
  end
end

local function extra_lists(out, report)
  local lists = {
    { "component_records", "重要部件相关记录" },
    { "structural_records", "结构件相关记录" },
    { "exterior_records", "外观件相关记录" },
  }
  for _, l in ipairs(lists) do
    local records = report[l[1]] or {}
    if #records > 0 then
      out[#out + 1] = ""
      out[#out + 1] = string.format("%s（%d 条）", l[2], #records)
      for _, r in ipairs(records) do
        local line = "  " .. pad(clean(r.date) or "日期不详", 10)
        if r.mileage then line = line .. "  " .. lpad(text.number(r.mileage) .. " km", 12) end
        if r.items and #r.items > 0 then line = line .. "  " .. join(r.items, "；") end
        out[#out + 1] = line
      end
    end
  end
end

--- Rows naming the car: what was queried (opts.query, else report.query) beside the
--- vendor's masked VIN. Shared by the HTML page.
function text.identity_rows(report, query)
  query = query or report.query or {}
  local v = report.vehicle or {}
  return {
    { "查询车架号", query.vin },
    { "号牌", query.plate_number },
    { "发动机号", query.engine_number },
    { "报告车架号", v.vin and (v.vin .. (v.vin:find("*", 1, true) and "（厂商遮蔽）" or "")) or nil },
  }
end

local SEVERITY_PAINT = { high = RED, medium = YELLOW, info = DIM }
local VERDICT_PAINT = { high_risk = RED, attention = YELLOW, ok = GREEN }

local function findings_section(out, result, color)
  out[#out + 1] = ""
  local v = result.verdict
  out[#out + 1] = paint("结论：" .. v.zh, VERDICT_PAINT[v.level] or BOLD, color)
  if v.level == "no_records" then return end
  out[#out + 1] = "  " .. paint("规则：" .. v.rule, DIM, color)
  if #result.findings == 0 then
    out[#out + 1] = "  （未发现异常；截至 " .. result.as_of .. "）"
    return
  end
  out[#out + 1] = string.format("发现（%d 项，截至 %s）", #result.findings, result.as_of)
  for _, f in ipairs(result.findings) do
    local tag = "[" .. analysis.SEVERITY_LABELS[f.severity] .. "]"
    out[#out + 1] = "  " .. paint(tag, SEVERITY_PAINT[f.severity], color) .. " " .. clean(f.zh)
  end
end

--- The report as text. opts.color: ANSI highlighting; opts.query: the queried
--- {vin=, plate_number=, engine_number=}; opts.analysis: options for
--- analysis.analyze when the report carries no report.analysis.
function text.render(report, opts)
  opts = opts or {}
  local color = opts.color and true or false
  local out = {}
  out[#out + 1] = paint("车辆维修保养记录报告", BOLD, color)
  local status = text.STATUS_LABELS[report.status] or clean(report.status) or "未知"
  local head = {
    { "订单号", clean(report.order_id) },
    { "状态", status .. ((report.message and report.message ~= status) and ("（" .. clean(report.message) .. "）") or "") },
  }
  for _, row in ipairs(text.identity_rows(report, opts.query)) do head[#head + 1] = { row[1], clean(row[2]) } end
  fields(out, head)
  local result = report.analysis
  if result == nil then result = analysis.analyze(report, opts.analysis) end
  if result then findings_section(out, result, color) end
  if report.status == "pending" then
    out[#out + 1] = ""
    out[#out + 1] = "报告尚在生成中，请稍后再查询。"
    return table.concat(out, "\n") .. "\n"
  end
  vehicle_section(out, report)
  if report.status == "no_records" then
    out[#out + 1] = ""
    out[#out + 1] = "该车辆没有维修保养记录。"
    return table.concat(out, "\n") .. "\n"
  end
  flags_section(out, report, color)
  mileage_section(out, report)
  timeline_section(out, report, color)
  extra_lists(out, report)
  return table.concat(out, "\n") .. "\n"
end

return text
