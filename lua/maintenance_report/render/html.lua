-- One self-contained HTML page for a normalized report: no scripts, no
-- external fonts, images or stylesheets. A header naming the car (the queried
-- VIN, plate and engine number beside the vendor's masked VIN), the analysis's
-- verdict and findings, the vendor's flags as badges, an inline SVG chart of
-- mileage against date (maintenance, repair and bodywork visits drawn with
-- different shapes, rollbacks in red), the records table, and a print
-- stylesheet for A4 with a running header and page numbers. At <= 420 px a
-- narrow chart replaces the wide one and the table reflows into cards. Every
-- piece of report text is HTML-escaped. The page names CJK fonts but embeds
-- none: the viewer needs one installed (Debian: fonts-noto-cjk).
--
-- Chart markup, for tools and specs: the page has two charts, svg.chart-wide and
-- svg.chart-narrow (one is hidden by CSS). In each, every dated record is exactly
-- one SVG element with class "point point-<category>" (plus "no-mileage", drawn
-- on the date axis, when the record has no mileage; "rollback-point" for the lower
-- reading of a rollback) and data-date/data-mileage attributes; date labels are
-- text.x-label; a rollback is g.rollback. Each flag is one element with class
-- "badge" and data-flag; each finding is li.finding with data-finding.
local analysis = require "maintenance_report.analysis"
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

-- Chart geometry per layout: the narrow one is drawn for phones (<= 420 px), where
-- the wide one's labels would shrink below legibility.
local LAYOUTS = {
  wide = { W = 760, H = 300, L = 72, R = 16, T = 34, B = 36, font = 11, ticks = 10, legend_gap = 70 },
  narrow = { W = 360, H = 280, L = 56, R = 12, T = 54, B = 34, font = 12, ticks = 4, legend_gap = 78 },
}

local function month_days(y, m) return days(string.format("%04d-%02d-01", y, m)) end

-- Date ticks over [xmin, xmax]: whole years for long histories, months (YYYY-MM)
-- for short ones, so that every chart has date labels.
local function date_ticks(xmin, xmax, max_ticks)
  local y0, m0 = civil_date.civil_from_days(xmin)
  local y1 = civil_date.civil_from_days(xmax)
  local ticks = {}
  local span_years = (xmax - xmin) / 365.2425
  if span_years >= 3 then
    local step = math.max(1, math.ceil(span_years / max_ticks))
    for year = y0 + 1, y1 do
      if (year - (y0 + 1)) % step == 0 then ticks[#ticks + 1] = { d = month_days(year, 1), label = tostring(year) } end
    end
  else
    local months = math.max(1, span_years * 12)
    local step = 12
    for _, s in ipairs{ 1, 2, 3, 4, 6, 12 } do
      if months / s <= max_ticks then step = s; break end
    end
    local y, m = y0, m0 + 1
    if m > 12 then y, m = y + 1, 1 end
    -- align to the step (January, April, July... for 3)
    while (m - 1) % step ~= 0 do
      m = m + 1
      if m > 12 then y, m = y + 1, 1 end
    end
    while true do
      local d = month_days(y, m)
      if d > xmax then break end
      ticks[#ticks + 1] = { d = d, label = string.format("%04d-%02d", y, m) }
      m = m + step
      while m > 12 do y, m = y + 1, m - 12 end
    end
  end
  if #ticks == 0 then
    ticks = { { d = xmin, label = civil_date.format(xmin) }, { d = xmax, label = civil_date.format(xmax) } }
  end
  return ticks
end
html.date_ticks = date_ticks

-- The rollbacks to draw: {from = {date, mileage}, to = {date, mileage}} from the findings.
local function rollbacks_of(result)
  local out = {}
  for _, f in ipairs(result and result.findings or {}) do
    local recs = f.supporting_records
    if f.id == "odometer_rollback" and recs and recs[1] and recs[2] then out[#out + 1] = { recs[1], recs[2] } end
  end
  return out
end

--- The SVG chart for a list of records, or nil when no record has a date.
--- opts.layout: "wide" (default) or "narrow"; opts.analysis: findings whose
--- rollbacks are drawn in red.
function html.chart(records, opts)
  opts = opts or {}
  local layout = opts.layout or "wide"
  local g = LAYOUTS[layout]
  local W, H, L, R, T, B = g.W, g.H, g.L, g.R, g.T, g.B
  local pw, ph = W - L - R, H - T - B
  local dated, xmin, xmax, ymax = {}, nil, nil, 0
  local present, missing_mileage = {}, false
  for _, r in ipairs(records or {}) do
    local d = r.date and days(r.date)
    if d then
      dated[#dated + 1] = { r = r, d = d }
      xmin = xmin and math.min(xmin, d) or d
      xmax = xmax and math.max(xmax, d) or d
      if type(r.mileage) == "number" then
        if r.mileage > ymax then ymax = r.mileage end
      else
        missing_mileage = true
      end
      present[CATEGORY_COLORS[r.category] and r.category or "repair"] = true
    end
  end
  if #dated == 0 then return nil end
  if xmax - xmin < 60 then xmin, xmax = xmin - 30, xmax + 30 end
  local ystep = nice_step(ymax > 0 and ymax or 1000, 5)
  local ytop = math.max(ystep, math.ceil((ymax > 0 and ymax or 1000) / ystep) * ystep)
  local function sx(d) return L + (d - xmin) / (xmax - xmin) * pw end
  local function sy(m) return T + ph - (m / ytop) * ph end
  local rollbacks = rollbacks_of(opts.analysis)

  local out = {}
  out[#out + 1] = string.format('<svg class="mileage-chart chart-%s" xmlns="http://www.w3.org/2000/svg" '
    .. 'viewBox="0 0 %d %d" width="100%%" role="img" aria-label="里程随日期变化">', layout, W, H)
  out[#out + 1] = "<desc>每条有日期的记录一个点：圆形为保养，方形为维修，三角形为钣金；"
    .. "空心点表示该记录没有里程数据；红色虚线标出里程回退。</desc>"
  -- grid and axes
  out[#out + 1] = string.format('<g class="axis y-axis" font-size="%d" fill="#555">', g.font)
  local tick = 0
  while tick <= ytop + 1e-9 do
    local y = sy(tick)
    out[#out + 1] = string.format('<line x1="%d" y1="%s" x2="%d" y2="%s" stroke="#e3e3e3"/>', L, fmt(y), L + pw, fmt(y))
    out[#out + 1] = string.format('<text class="y-label" x="%d" y="%s" text-anchor="end">%s</text>', L - 6,
      fmt(y + 4), esc(text.number(tick)))
    tick = tick + ystep
  end
  out[#out + 1] = string.format('<text x="12" y="%d" transform="rotate(-90 12 %d)" text-anchor="middle">'
    .. "里程（km）</text>", T + ph / 2, T + ph / 2)
  out[#out + 1] = "</g>"
  out[#out + 1] = string.format('<g class="axis x-axis" font-size="%d" fill="#555">', g.font)
  out[#out + 1] = string.format('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#999"/>', L, T + ph, L + pw, T + ph)
  for _, t in ipairs(date_ticks(xmin, xmax, g.ticks)) do
    local x = sx(t.d)
    out[#out + 1] = string.format('<line x1="%s" y1="%d" x2="%s" y2="%d" stroke="#999"/>', fmt(x), T + ph,
      fmt(x), T + ph + 5)
    out[#out + 1] = string.format('<text class="x-label" x="%s" y="%d" text-anchor="middle">%s</text>', fmt(x),
      T + ph + 18, esc(t.label))
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
  -- rollbacks: a thick red dashed drop from the peak to the lower reading, a ring and a label
  local dropped = {}
  for _, rb in ipairs(rollbacks) do
    local a, b = rb[1], rb[2]
    local da, db = a.date and days(a.date), b.date and days(b.date)
    if da and db and type(a.mileage) == "number" and type(b.mileage) == "number" then
      dropped[b.date .. "|" .. b.mileage] = true
      local x1, y1, x2, y2 = sx(da), sy(a.mileage), sx(db), sy(b.mileage)
      out[#out + 1] = string.format('<g class="rollback" data-from="%s" data-to="%s">', esc(a.date), esc(b.date))
      out[#out + 1] = string.format('<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#d50000" stroke-width="3.5" '
        .. 'stroke-dasharray="7 4"/>', fmt(x1), fmt(y1), fmt(x2), fmt(y2))
      out[#out + 1] = string.format('<circle cx="%s" cy="%s" r="9" fill="none" stroke="#d50000" stroke-width="2.5"/>',
        fmt(x2), fmt(y2))
      local anchor = x2 > L + pw * 0.6 and "end" or "start"
      local lx = anchor == "end" and x2 - 12 or x2 + 12
      out[#out + 1] = string.format('<text x="%s" y="%s" text-anchor="%s" font-size="%d" font-weight="700" '
        .. 'fill="#d50000">里程回退 −%s km</text>', fmt(lx), fmt(math.max(T + 12, y2 - 12)), anchor, g.font + 1,
        esc(text.number(a.mileage - b.mileage)))
      out[#out + 1] = "</g>"
    end
  end
  -- one mark per dated record
  out[#out + 1] = '<g class="points">'
  for _, p in ipairs(dated) do
    local r = p.r
    local category = CATEGORY_COLORS[r.category] and r.category or "repair"
    local has_mileage = type(r.mileage) == "number"
    local classes = "point point-" .. category .. (has_mileage and "" or " no-mileage")
      .. ((has_mileage and dropped[r.date .. "|" .. r.mileage]) and " rollback-point" or "")
    local attrs = string.format('class="%s" data-date="%s"%s', classes, esc(r.date),
      has_mileage and string.format(' data-mileage="%s"', esc(text.number(r.mileage))) or "")
    out[#out + 1] = mark(category, sx(p.d), has_mileage and sy(r.mileage) or (T + ph), attrs, record_title(r),
      not has_mileage)
  end
  out[#out + 1] = "</g>"
  -- legend: only what the chart shows
  local entries = {}
  for _, c in ipairs{ "maintenance", "repair", "bodywork" } do
    if present[c] then entries[#entries + 1] = { kind = c, label = text.CATEGORY_LABELS[c] } end
  end
  if missing_mileage then entries[#entries + 1] = { kind = "no-mileage", label = "无里程数据" } end
  if next(dropped) then entries[#entries + 1] = { kind = "rollback", label = "里程回退" } end
  out[#out + 1] = string.format('<g class="legend" font-size="%d" fill="#333">', g.font + 1)
  local lx, ly = L + 8, 16
  for _, e in ipairs(entries) do
    if lx + g.legend_gap > W then lx, ly = L + 8, ly + 18 end
    local item
    if e.kind == "no-mileage" then
      item = mark("repair", lx, ly, 'class="legend-mark"', nil, true)
    elseif e.kind == "rollback" then
      item = string.format('<line class="legend-mark" x1="%d" y1="%d" x2="%d" y2="%d" stroke="#d50000" '
        .. 'stroke-width="3.5" stroke-dasharray="5 3"/>', lx - 6, ly, lx + 6, ly)
    else
      item = mark(e.kind, lx, ly, 'class="legend-mark"')
    end
    out[#out + 1] = string.format('<g class="legend-entry" data-legend="%s">%s<text x="%d" y="%d">%s</text></g>',
      e.kind, item, lx + 10, ly + 4, esc(e.label))
    lx = lx + g.legend_gap + (text.width(e.label) > 4 and 30 or 0)
  end
  out[#out + 1] = "</g>"
  out[#out + 1] = "</svg>"
  return table.concat(out, "\n")
end

local FONT = '"Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei", sans-serif'

local STYLE = [[
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 960px; padding: 24px; color: #222; background: #fafafa;
  font: 14px/1.5 ]] .. FONT .. [[; }
header { border-bottom: 3px solid #1565c0; margin-bottom: 16px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 22px 0 8px; color: #1565c0; }
.meta { color: #666; margin: 0 0 6px; }
section { background: #fff; border: 1px solid #e0e0e0; border-radius: 6px; padding: 4px 16px 14px; margin: 12px 0; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0; }
dt { color: #666; }
dd { margin: 0; overflow-wrap: anywhere; }
dl.identity { margin: 0 0 10px; }
dl.identity dd { font-weight: 600; font-family: ui-monospace, "DejaVu Sans Mono", monospace, ]] .. FONT .. [[; }
.findings .verdict { display: inline-block; font-size: 18px; font-weight: 700; padding: 2px 12px; border-radius: 4px;
  margin: 8px 0 4px; border: 2px solid; }
.verdict-high_risk { color: #b71c1c; background: #ffebee; }
.verdict-attention { color: #e65100; background: #fff3e0; }
.verdict-ok { color: #1b5e20; background: #e8f5e9; }
.verdict-no_records { color: #616161; background: #f5f5f5; }
.rule { color: #666; font-size: 12px; margin: 4px 0 8px; }
ol.finding-list { margin: 0; padding-left: 0; list-style: none; }
.finding { padding: 4px 8px; margin: 4px 0; border-left: 4px solid; overflow-wrap: anywhere; }
.finding .severity { font-weight: 700; margin-right: 6px; }
.severity-high { border-color: #c62828; background: #fff5f5; }
.severity-high .severity { color: #c62828; }
.severity-medium { border-color: #ef6c00; background: #fffaf3; }
.severity-medium .severity { color: #ef6c00; }
.severity-info { border-color: #90a4ae; }
.severity-info .severity { color: #607d8b; }
.badges { list-style: none; padding: 0; margin: 0; display: flex; flex-wrap: wrap; gap: 8px; }
.badge { padding: 3px 10px; border-radius: 12px; border: 1px solid; font-weight: 600; }
.badge-risk { color: #b71c1c; background: #ffebee; border-color: #ef9a9a; }
.badge-ok { color: #1b5e20; background: #e8f5e9; border-color: #a5d6a7; }
.badge-unknown { color: #616161; background: #f5f5f5; border-color: #bdbdbd; }
.notice { font-weight: 600; }
table { width: 100%; border-collapse: collapse; font-size: 13px; }
th, td { border-bottom: 1px solid #e0e0e0; padding: 4px 6px; text-align: left; vertical-align: top;
  min-width: 5.5em; overflow-wrap: anywhere; } /* border-box: 4 characters plus the padding */
th { background: #f0f4f8; white-space: nowrap; }
td.date, td.num, td.cat { white-space: nowrap; }
td.num { text-align: right; }
td.type { min-width: 6.5em; }
td.items { min-width: 12em; }
td.materials { min-width: 8em; }
tr.cat-bodywork td.cat { color: #c62828; font-weight: 600; }
tr.cat-maintenance td.cat { color: #2e7d32; }
tr.cat-repair td.cat { color: #e65100; }
svg.mileage-chart { display: block; max-width: 100%; height: auto; }
svg.chart-narrow { display: none; }
footer { color: #888; font-size: 12px; margin-top: 16px; }
@media (max-width: 420px) {
  body { padding: 10px; }
  section { padding: 2px 8px 10px; }
  h1 { font-size: 19px; }
  svg.chart-wide { display: none; }
  svg.chart-narrow { display: block; }
  table.records-table, table.records-table tbody, table.records-table tr, table.records-table td { display: block; }
  table.records-table thead { display: none; }
  table.records-table tr { border: 1px solid #e0e0e0; border-radius: 6px; margin: 8px 0; padding: 4px 8px; }
  table.records-table td { border: none; padding: 2px 0; min-width: 0; white-space: normal;
    display: grid; grid-template-columns: 5em 1fr; gap: 8px; text-align: left; }
  table.records-table td::before { content: attr(data-label); color: #666; }
  table.records-table td:empty { display: none; }
}
@page { size: A4; margin: 18mm 12mm 16mm;
  @bottom-center { content: "第 " counter(page) " 页 / 共 " counter(pages) " 页"; font: 9pt ]] .. FONT .. [[; color: #555; }
}
@media print {
  body { background: #fff; max-width: none; padding: 0; font-size: 10pt; }
  section { border: none; padding: 0; margin: 8px 0; }
  .badge, th, svg, .finding, .verdict { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  section.chart { break-inside: avoid; }
  thead { display: table-header-group; }
  tr, .finding { break-inside: avoid; }
  h2 { break-after: avoid; }
}
]]

-- Text inside a CSS string: every ASCII byte that is not a letter, digit, space or
-- '-' as a hex escape, so nothing can close the string or the <style> element.
local function css_string(s)
  return '"' .. tostring(s):gsub("[%z\1-\127]", function(c)
    if c:match("[%w %-]") then return c end
    return string.format("\\%x ", c:byte())
  end) .. '"'
end

-- The running print header: the queried VIN (else the vendor's), and the order id.
local function print_header(report, query)
  local v = report.vehicle or {}
  local vin = query.vin or v.vin
  local left = "车辆维修保养记录报告" .. (vin and ("  车架号 " .. vin) or "")
  local right = report.order_id and ("订单号 " .. report.order_id) or ""
  return "@page { @top-left { content: " .. css_string(left) .. "; font: 9pt " .. FONT .. "; color: #555; }\n"
    .. "  @top-right { content: " .. css_string(right) .. "; font: 9pt " .. FONT .. "; color: #555; } }\n"
end

local function dl(rows, class)
  local out = {}
  for _, row in ipairs(rows) do
    if row[2] ~= nil then
      out[#out + 1] = "<dt>" .. esc(row[1]) .. "</dt><dd>" .. esc(row[2]) .. "</dd>"
    end
  end
  if #out == 0 then return nil end
  return "<dl" .. (class and (' class="' .. class .. '"') or "") .. ">\n" .. table.concat(out, "\n") .. "\n</dl>"
end

local function materials_text(materials)
  local out = {}
  for _, m in ipairs(materials or {}) do
    out[#out + 1] = tostring(m.name or "") .. (m.quantity and ("×" .. text.number(m.quantity)) or "")
  end
  return table.concat(out, "；")
end

local COLUMNS = { { "date", "日期" }, { "num", "里程（km）" }, { "cat", "类别" }, { "type", "类型" },
  { "items", "项目" }, { "materials", "材料" } }

local function records_table(records, class)
  local head = {}
  for i, c in ipairs(COLUMNS) do head[i] = "<th>" .. c[2] .. "</th>" end
  local out = { '<table class="' .. class .. '">', "<thead><tr>" .. table.concat(head) .. "</tr></thead>", "<tbody>" }
  for _, r in ipairs(records) do
    local category = r.category or "repair"
    local values = { r.date or "日期不详", r.mileage and text.number(r.mileage) or "",
      text.CATEGORY_LABELS[category] or category, r.type or "", table.concat(r.items or {}, "；"),
      materials_text(r.materials) }
    local cells = {}
    for i, c in ipairs(COLUMNS) do
      cells[i] = string.format('<td class="%s" data-label="%s">%s</td>', c[1], c[2], esc(values[i]))
    end
    out[#out + 1] = '<tr class="cat-' .. esc(category) .. '">' .. table.concat(cells) .. "</tr>"
  end
  out[#out + 1] = "</tbody></table>"
  return table.concat(out, "\n")
end

local function findings_section(result)
  local v = result.verdict
  local out = { '<section class="findings" id="findings"><h2>分析结论</h2>',
    string.format('<p class="verdict verdict-%s" data-level="%s">%s</p>', esc(v.level), esc(v.level), esc(v.zh)) }
  if v.level ~= "no_records" then
    out[#out + 1] = '<p class="rule">判定规则：' .. esc(v.rule) .. " 以上为基于记录的启发式判断（截至 "
      .. esc(result.as_of) .. "），仅供参考。</p>"
  end
  if #result.findings > 0 then
    out[#out + 1] = '<ol class="finding-list">'
    for _, f in ipairs(result.findings) do
      out[#out + 1] = string.format('<li class="finding severity-%s" data-finding="%s" data-severity="%s">'
        .. '<span class="severity">%s</span>%s<br><span class="finding-en" lang="en">%s</span></li>',
        esc(f.severity), esc(f.id), esc(f.severity), esc(analysis.SEVERITY_LABELS[f.severity] or f.severity),
        esc(f.zh), esc(f.en))
    end
    out[#out + 1] = "</ol>"
  elseif v.level ~= "no_records" then
    out[#out + 1] = '<p class="no-findings">未发现里程、事故或保养方面的异常。</p>'
  end
  out[#out + 1] = "</section>"
  return table.concat(out, "\n")
end

--- Epoch seconds as China time with the zone stated ("2026-12-01 08:05 北京时间（UTC+8）").
function html.china_time(t)
  return os.date("!%Y-%m-%d %H:%M", math.floor(t) + 8 * 3600) .. " 北京时间（UTC+8）"
end

--- The whole page. opts.generated_at: epoch seconds (shown in China time) or text,
--- for the footer; opts.query: the queried {vin=, plate_number=, engine_number=}
--- (default report.query); opts.analysis: options for analysis.analyze when the
--- report carries no report.analysis.
function html.render(report, opts)
  opts = opts or {}
  local v = report.vehicle or {}
  local query = opts.query or report.query or {}
  local status = text.STATUS_LABELS[report.status] or tostring(report.status or "未知")
  local vin = query.vin or v.vin
  local title = "车辆维修保养记录报告" .. (vin and (" · " .. vin) or "")
  local result = report.analysis
  if result == nil then result = analysis.analyze(report, opts.analysis) end
  local out = {
    "<!DOCTYPE html>",
    '<html lang="zh-CN">',
    "<head>",
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    "<title>" .. esc(title) .. "</title>",
    "<style>" .. STYLE .. print_header(report, query) .. "</style>",
    "</head>",
    "<body>",
    '<header class="report-header">',
    "<h1>车辆维修保养记录报告</h1>",
    '<p class="meta">订单号 <span class="order-id">' .. esc(report.order_id or "—") .. "</span> · 状态 "
      .. '<span class="status status-' .. esc(report.status or "unknown") .. '">' .. esc(status) .. "</span></p>",
  }
  local identity = dl(text.identity_rows(report, query), "identity")
  if identity then out[#out + 1] = identity end
  out[#out + 1] = "</header>"
  if result then out[#out + 1] = findings_section(result) end
  local vehicle = dl{
    { "品牌", v.brand }, { "厂商", v.manufacturer }, { "车系", v.series },
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
    local badges = { '<section class="flags"><h2>厂商风险标记</h2>', '<ul class="badges">' }
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
    local wide = html.chart(records, { layout = "wide", analysis = result })
    out[#out + 1] = '<section class="chart"><h2>里程变化</h2>\n'
      .. (wide and (wide .. "\n" .. html.chart(records, { layout = "narrow", analysis = result }))
        or '<p class="notice">没有带日期的记录，无法绘制里程图。</p>') .. "\n</section>"
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
  local generated = opts.generated_at
  if type(generated) == "number" then generated = html.china_time(generated) end
  out[#out + 1] = "<footer>类别（保养/维修/钣金）由记录内容推断；分析结论为基于关键词和阈值的启发式判断，仅供参考。"
    .. (generated and ("生成于 " .. esc(generated) .. "。") or "") .. "</footer>"
  out[#out + 1] = "</body>"
  out[#out + 1] = "</html>"
  return table.concat(out, "\n") .. "\n"
end

return html
