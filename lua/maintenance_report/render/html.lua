-- One self-contained HTML page for a normalized report: no scripts, no
-- external fonts, images or stylesheets. A vehicle header, the risk flags as
-- badges, an inline SVG chart of mileage against date (maintenance, repair
-- and bodywork visits drawn with different shapes), the records table, and a
-- print stylesheet for A4. Every piece of report text is HTML-escaped.
--
-- Chart markup, for tools and specs: every dated record is exactly one SVG
-- element with class "point point-<category>" (plus "no-mileage", drawn on
-- the date axis, when the record has no mileage) and data-date/data-mileage
-- attributes. Each flag is one element with class "badge" and data-flag.
local civil_date = require "maintenance_report.civil_date"
local text = require "maintenance_report.render.text"

local html = {}

local ESCAPES = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;" }

--- Text safe in element content and in quoted attribute values.
function html.escape(s)
  if s == nil then return "" end
  return (tostring(s):gsub("[%z\1-\8\11\12\14-\31\127]", ""):gsub("[&<>\"']", ESCAPES))
end
local esc = html.escape

local CATEGORY_COLORS = { maintenance = "#2e7d32", repair = "#e65100", bodywork = "#c62828" }

-- Days since 1970-01-01 for "YYYY-MM-DD" (nil for anything else): the chart's x axis.
local days = civil_date.parse
html.days = days

-- A round step giving about `count` intervals over [0, max].
local function nice_step(max, count)
  local raw = max / count
  local mag = 10 ^ math.floor(math.log(raw) / math.log(10))
  for _, f in ipairs{ 1, 2, 2.5, 5, 10 } do
    if f * mag >= raw then return f * mag end
  end
  return 10 * mag
end

local function fmt(n)
  local s = string.format("%.1f", n)
  return (s:gsub("%.0$", ""))
end

-- The mark for one record, centred on (x, y).
local function mark(category, x, y, attrs, title, hollow)
  local color = CATEGORY_COLORS[category] or "#555"
  local fill = hollow and "#fff" or color
  local style = string.format('fill="%s" stroke="%s" stroke-width="1.5"', fill, color)
  local inner = title and ("<title>" .. esc(title) .. "</title>") or ""
  if category == "maintenance" then
    return string.format('<circle %s cx="%s" cy="%s" r="4.5" %s>%s</circle>', attrs, fmt(x), fmt(y), style, inner)
  elseif category == "bodywork" then
    return string.format('<polygon %s points="%s,%s %s,%s %s,%s" %s>%s</polygon>', attrs,
      fmt(x), fmt(y - 5.5), fmt(x - 5), fmt(y + 4), fmt(x + 5), fmt(y + 4), style, inner)
  end
  return string.format('<rect %s x="%s" y="%s" width="8" height="8" %s>%s</rect>', attrs,
    fmt(x - 4), fmt(y - 4), style, inner)
end

local function record_title(r)
  local parts = { r.date }
  if r.mileage then parts[#parts + 1] = text.number(r.mileage) .. " km" end
  parts[#parts + 1] = text.CATEGORY_LABELS[r.category] or "记录"
  if r.type then parts[#parts + 1] = r.type end
  if r.items and #r.items > 0 then parts[#parts + 1] = table.concat(r.items, "；") end
  return table.concat(parts, " · ")
end

--- The SVG chart for a list of records, or nil when no record has a date.
function html.chart(records)
  local W, H, L, R, T, B = 760, 300, 72, 16, 34, 36
  local pw, ph = W - L - R, H - T - B
  local dated, xmin, xmax, ymax = {}, nil, nil, 0
  for _, r in ipairs(records or {}) do
    local d = r.date and days(r.date)
    if d then
      dated[#dated + 1] = { r = r, d = d }
      xmin = xmin and math.min(xmin, d) or d
      xmax = xmax and math.max(xmax, d) or d
      if type(r.mileage) == "number" and r.mileage > ymax then ymax = r.mileage end
    end
  end
  if #dated == 0 then return nil end
  if xmax - xmin < 60 then xmin, xmax = xmin - 30, xmax + 30 end
  local ystep = nice_step(ymax > 0 and ymax or 1000, 5)
  local ytop = math.max(ystep, math.ceil((ymax > 0 and ymax or 1000) / ystep) * ystep)
  local function sx(d) return L + (d - xmin) / (xmax - xmin) * pw end
  local function sy(m) return T + ph - (m / ytop) * ph end

  local out = {}
  out[#out + 1] = string.format('<svg class="mileage-chart" xmlns="http://www.w3.org/2000/svg" '
    .. 'viewBox="0 0 %d %d" width="100%%" role="img" aria-label="里程随日期变化">', W, H)
  out[#out + 1] = "<desc>每条有日期的记录一个点：圆形为保养，方形为维修，三角形为钣金；"
    .. "空心点表示该记录没有里程数据。</desc>"
  -- grid and axes
  out[#out + 1] = '<g class="axis y-axis" font-size="11" fill="#555">'
  local tick = 0
  while tick <= ytop + 1e-9 do
    local y = sy(tick)
    out[#out + 1] = string.format('<line x1="%d" y1="%s" x2="%d" y2="%s" stroke="#e3e3e3"/>', L, fmt(y), L + pw, fmt(y))
    out[#out + 1] = string.format('<text x="%d" y="%s" text-anchor="end">%s</text>', L - 6, fmt(y + 4),
      esc(text.number(tick)))
    tick = tick + ystep
  end
  out[#out + 1] = string.format('<text x="14" y="%d" transform="rotate(-90 14 %d)" text-anchor="middle">'
    .. "里程（km）</text>", T + ph / 2, T + ph / 2)
  out[#out + 1] = "</g>"
  out[#out + 1] = '<g class="axis x-axis" font-size="11" fill="#555">'
  out[#out + 1] = string.format('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#999"/>', L, T + ph, L + pw, T + ph)
  local y0 = 1970 + math.floor(xmin / 365.2425)
  local y1 = 1970 + math.floor(xmax / 365.2425) + 1
  local ystep_years = math.max(1, math.ceil((y1 - y0) / 10))
  for year = y0, y1, ystep_years do
    local d = days(string.format("%04d-01-01", year))
    if d and d >= xmin and d <= xmax then
      local x = sx(d)
      out[#out + 1] = string.format('<line x1="%s" y1="%d" x2="%s" y2="%d" stroke="#999"/>', fmt(x), T + ph,
        fmt(x), T + ph + 5)
      out[#out + 1] = string.format('<text x="%s" y="%d" text-anchor="middle">%d</text>', fmt(x), T + ph + 18, year)
    end
  end
  out[#out + 1] = "</g>"
  -- the mileage line through the records that have one
  local line = {}
  for _, p in ipairs(dated) do
    if type(p.r.mileage) == "number" then line[#line + 1] = fmt(sx(p.d)) .. "," .. fmt(sy(p.r.mileage)) end
  end
  if #line > 1 then
    out[#out + 1] = '<polyline class="mileage-line" fill="none" stroke="#607d8b" stroke-width="1.5" points="'
      .. table.concat(line, " ") .. '"/>'
  end
  -- one mark per dated record
  out[#out + 1] = '<g class="points">'
  for _, p in ipairs(dated) do
    local r = p.r
    local category = CATEGORY_COLORS[r.category] and r.category or "repair"
    local has_mileage = type(r.mileage) == "number"
    local classes = "point point-" .. category .. (has_mileage and "" or " no-mileage")
    local attrs = string.format('class="%s" data-date="%s"%s', classes, esc(r.date),
      has_mileage and string.format(' data-mileage="%s"', esc(text.number(r.mileage))) or "")
    out[#out + 1] = mark(category, sx(p.d), has_mileage and sy(r.mileage) or (T + ph), attrs, record_title(r),
      not has_mileage)
  end
  out[#out + 1] = "</g>"
  -- legend
  out[#out + 1] = '<g class="legend" font-size="12" fill="#333">'
  local lx = L + 8
  for _, c in ipairs{ "maintenance", "repair", "bodywork" } do
    out[#out + 1] = mark(c, lx, 16, 'class="legend-mark"')
    out[#out + 1] = string.format('<text x="%d" y="20">%s</text>', lx + 9, text.CATEGORY_LABELS[c])
    lx = lx + 64
  end
  out[#out + 1] = mark("repair", lx, 16, 'class="legend-mark"', nil, true)
  out[#out + 1] = string.format('<text x="%d" y="20">无里程数据</text>', lx + 9)
  out[#out + 1] = "</g>"
  out[#out + 1] = "</svg>"
  return table.concat(out, "\n")
end

local STYLE = [[
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 960px; padding: 24px; color: #222; background: #fafafa;
  font: 14px/1.5 "Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei", sans-serif; }
header { border-bottom: 3px solid #1565c0; margin-bottom: 16px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 22px 0 8px; color: #1565c0; }
.meta { color: #666; margin: 0 0 10px; }
section { background: #fff; border: 1px solid #e0e0e0; border-radius: 6px; padding: 4px 16px 14px; margin: 12px 0; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0; }
dt { color: #666; }
dd { margin: 0; }
.badges { list-style: none; padding: 0; margin: 0; display: flex; flex-wrap: wrap; gap: 8px; }
.badge { padding: 3px 10px; border-radius: 12px; border: 1px solid; font-weight: 600; }
.badge-risk { color: #b71c1c; background: #ffebee; border-color: #ef9a9a; }
.badge-ok { color: #1b5e20; background: #e8f5e9; border-color: #a5d6a7; }
.badge-unknown { color: #616161; background: #f5f5f5; border-color: #bdbdbd; }
.notice { font-weight: 600; }
table { width: 100%; border-collapse: collapse; font-size: 13px; }
th, td { border-bottom: 1px solid #e0e0e0; padding: 4px 6px; text-align: left; vertical-align: top; }
th { background: #f0f4f8; }
td.num { text-align: right; white-space: nowrap; }
td.date { white-space: nowrap; }
tr.cat-bodywork td.cat { color: #c62828; font-weight: 600; }
tr.cat-maintenance td.cat { color: #2e7d32; }
tr.cat-repair td.cat { color: #e65100; }
svg.mileage-chart { display: block; max-width: 100%; height: auto; }
footer { color: #888; font-size: 12px; margin-top: 16px; }
@page { size: A4; margin: 14mm 12mm; }
@media print {
  body { background: #fff; max-width: none; padding: 0; font-size: 10pt; }
  section { border: none; padding: 0; margin: 8px 0; }
  .badge, th, svg { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  section.chart { break-inside: avoid; }
  thead { display: table-header-group; }
  tr { break-inside: avoid; }
  h2 { break-after: avoid; }
}
]]

local function dl(rows)
  local out = {}
  for _, row in ipairs(rows) do
    if row[2] ~= nil then
      out[#out + 1] = "<dt>" .. esc(row[1]) .. "</dt><dd>" .. esc(row[2]) .. "</dd>"
    end
  end
  if #out == 0 then return nil end
  return "<dl>\n" .. table.concat(out, "\n") .. "\n</dl>"
end

local function materials_text(materials)
  local out = {}
  for _, m in ipairs(materials or {}) do
    out[#out + 1] = tostring(m.name or "") .. (m.quantity and ("×" .. text.number(m.quantity)) or "")
  end
  return table.concat(out, "；")
end

local function records_table(records, class)
  local out = { '<table class="' .. class .. '">',
    "<thead><tr><th>日期</th><th>里程（km）</th><th>类别</th><th>类型</th><th>项目</th><th>材料</th></tr></thead>",
    "<tbody>" }
  for _, r in ipairs(records) do
    local category = r.category or "repair"
    out[#out + 1] = string.format('<tr class="cat-%s"><td class="date">%s</td><td class="num">%s</td>'
      .. '<td class="cat">%s</td><td>%s</td><td>%s</td><td>%s</td></tr>',
      esc(category), esc(r.date or "日期不详"), esc(r.mileage and text.number(r.mileage) or ""),
      esc(text.CATEGORY_LABELS[category] or category), esc(r.type or ""),
      esc(table.concat(r.items or {}, "；")), esc(materials_text(r.materials)))
  end
  out[#out + 1] = "</tbody></table>"
  return table.concat(out, "\n")
end

--- The whole page. opts.generated_at: a time stamp for the footer (optional).
function html.render(report, opts)
  opts = opts or {}
  local v = report.vehicle or {}
  local status = text.STATUS_LABELS[report.status] or tostring(report.status or "未知")
  local title = "车辆维修保养记录报告" .. (v.vin and (" · " .. v.vin) or "")
  local out = {
    "<!DOCTYPE html>",
    '<html lang="zh-CN">',
    "<head>",
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    "<title>" .. esc(title) .. "</title>",
    "<style>" .. STYLE .. "</style>",
    "</head>",
    "<body>",
    '<header class="report-header">',
    "<h1>车辆维修保养记录报告</h1>",
    '<p class="meta">订单号 <span class="order-id">' .. esc(report.order_id or "—") .. "</span> · 状态 "
      .. '<span class="status status-' .. esc(report.status or "unknown") .. '">' .. esc(status) .. "</span></p>",
    "</header>",
  }
  local vehicle = dl{
    { "车架号", v.vin }, { "品牌", v.brand }, { "厂商", v.manufacturer }, { "车系", v.series },
    { "车型", v.model }, { "年款", v.year and tostring(v.year) or nil }, { "变速箱", v.transmission },
    { "排量", v.displacement }, { "排放标准", v.emission_standard },
  }
  if vehicle then
    out[#out + 1] = '<section class="vehicle"><h2>车辆信息</h2>\n' .. vehicle .. "\n</section>"
  end
  if report.status == "pending" then
    out[#out + 1] = '<section class="status-note"><p class="notice">报告尚在生成中，请稍后再查询。</p></section>'
  elseif report.status == "no_records" then
    out[#out + 1] = '<section class="status-note"><p class="notice">该车辆没有维修保养记录。</p></section>'
  else
    local flags = report.flags or {}
    local badges = { '<section class="flags"><h2>风险项</h2>', '<ul class="badges">' }
    for _, f in ipairs(text.FLAGS) do
      local word, risky = text.flag_value(f[1], flags[f[1]])
      local class = risky and "badge-risk" or (risky == false and "badge-ok" or "badge-unknown")
      badges[#badges + 1] = string.format('<li class="badge %s" data-flag="%s" data-risky="%s">%s：%s</li>',
        class, f[1], risky == nil and "unknown" or tostring(risky), esc(f[2]), esc(word))
    end
    badges[#badges + 1] = "</ul></section>"
    out[#out + 1] = table.concat(badges, "\n")
    local mileage = dl{
      { "估算当前里程", report.mileage_estimate and (text.number(report.mileage_estimate) .. " 公里") or nil },
      { "年均行驶里程", report.mileage_per_year and (text.number(report.mileage_per_year) .. " 公里") or nil },
      { "年均保养次数", report.maintenance_per_year and text.number(report.maintenance_per_year) or nil },
      { "最近保养日期", report.last_maintenance_date },
      { "最近维修日期", report.last_repair_date },
    }
    if mileage then
      out[#out + 1] = '<section class="mileage"><h2>里程与保养</h2>\n' .. mileage .. "\n</section>"
    end
    local records = report.records or {}
    local chart = html.chart(records)
    out[#out + 1] = '<section class="chart"><h2>里程变化</h2>\n'
      .. (chart or '<p class="notice">没有带日期的记录，无法绘制里程图。</p>') .. "\n</section>"
    out[#out + 1] = string.format('<section class="records"><h2>维修保养记录（%d 条）</h2>', #records)
    out[#out + 1] = #records > 0 and records_table(records, "records-table") or "<p>（无记录）</p>"
    out[#out + 1] = "</section>"
    for _, l in ipairs{ { "component_records", "重要部件相关记录" }, { "structural_records", "结构件相关记录" },
                        { "exterior_records", "外观件相关记录" } } do
      local list = report[l[1]] or {}
      if #list > 0 then
        out[#out + 1] = string.format('<section class="%s"><h2>%s（%d 条）</h2>', l[1]:gsub("_", "-"), esc(l[2]),
          #list)
        out[#out + 1] = records_table(list, "records-table " .. l[1]:gsub("_", "-"))
        out[#out + 1] = "</section>"
      end
    end
  end
  out[#out + 1] = "<footer>类别（保养/维修/钣金）由记录内容推断，仅供参考。"
    .. (opts.generated_at and ("生成于 " .. esc(opts.generated_at) .. "。") or "") .. "</footer>"
  out[#out + 1] = "</body>"
  out[#out + 1] = "</html>"
  return table.concat(out, "\n") .. "\n"
end

return html
