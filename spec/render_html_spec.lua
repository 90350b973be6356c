-- render/html: one self-contained, well-formed page; one chart point per dated record; flags as badges.
local html = require "maintenance_report.render.html"
local normalize = require "maintenance_report.normalize"
local parse = require "helpers.html_parse"
local fixtures = require "helpers.fixtures"
local fixture = fixtures.json


local function ready()
  return fixtures.ready_report("ORDER-HTML")
end

local function has_class(el, class)
  return (" " .. (el.attrs.class or "") .. " "):find(" " .. class .. " ", 1, true) ~= nil
end

local function count_dated(records)
  local n = 0
  for _, r in ipairs(records) do if r.date then n = n + 1 end end
  return n
end

describe("render.html", function()
  it("is one well-formed page with no scripts and no external resources", function()
    local page = html.render(ready())
    local doc = assert(parse(page))
    assert.are.equal(1, #doc:find_all("html"))
    assert.are.equal(2, #doc:find_all("svg"), "the wide chart and the narrow one")
    assert.are.equal(0, #doc:find_all("script"))
    assert.are.equal(0, #doc:find_all("link"))
    assert.are.equal(0, #doc:find_all("img"))
    for _, el in ipairs(doc.elements) do
      for name, value in pairs(el.attrs) do
        assert.falsy(name:match("^on"), "event handler attribute " .. name)
        if name == "src" or name == "href" then error("external reference: " .. value) end
      end
    end
    assert.falsy(page:find("url(", 1, true))
    assert.falsy(page:find("@import", 1, true))
  end)

  it("has a print stylesheet for A4", function()
    local page = html.render(ready())
    assert.truthy(page:find("@media print", 1, true))
    assert.truthy(page:find("size:%s*A4"))
  end)

  it("draws one chart point per dated record, maintenance and repair marked differently", function()
    local r = ready()
    -- one record without a date, one without mileage: only the dated one gets a point
    r.records[#r.records + 1] = { items = { "无日期" }, materials = {}, category = "repair" }
    r.records[#r.records + 1] = { date = "2017-01-05", items = { "无里程" }, materials = {}, category = "maintenance" }
    local doc = assert(parse(html.render(r)))
    local points = {}
    for _, el in ipairs(doc.elements) do
      if has_class(el, "point") and has_class(el.parent.parent, "chart-wide") then points[#points + 1] = el end
    end
    assert.are.equal(count_dated(r.records), #points)
    local shapes = {}
    for _, p in ipairs(points) do
      assert.truthy(p.attrs["data-date"])
      local category = (p.attrs.class or ""):match("point%-(%a+)")
      shapes[category] = shapes[category] or {}
      shapes[category][p.name] = true
      if not has_class(p, "no-mileage") then assert.truthy(tonumber((p.attrs["data-mileage"]:gsub(",", "")))) end
    end
    assert.truthy(shapes.maintenance and shapes.repair, "the fixture has maintenance and repair visits")
    for name in pairs(shapes.maintenance) do assert.is_nil(shapes.repair[name], "same shape: " .. name) end
    local no_mileage = 0
    for _, p in ipairs(points) do if has_class(p, "no-mileage") then no_mileage = no_mileage + 1 end end
    assert.are.equal(1, no_mileage)
  end)

  it("shows the six flags as badges, risky ones marked", function()
    local r = ready()
    local doc = assert(parse(html.render(r)))
    local badges = {}
    for _, el in ipairs(doc.elements) do
      if has_class(el, "badge") then badges[el.attrs["data-flag"]] = el end
    end
    for _, key in ipairs{ "fire", "flood", "structural", "major_component", "exterior", "mileage_normal" } do
      assert.truthy(badges[key], key)
    end
    -- the fixture: component and exterior records flagged, no fire
    assert.are.equal(r.flags.major_component, has_class(badges.major_component, "badge-risk"))
    assert.are.equal(r.flags.fire, has_class(badges.fire, "badge-risk"))
    assert.is_true(has_class(badges.fire, "badge-ok"))
    assert.truthy(badges.fire.text:find("火烧", 1, true))
  end)

  it("lists every record in the table", function()
    local r = ready()
    local doc = assert(parse(html.render(r)))
    local tables = {}
    for _, el in ipairs(doc:find_all("table")) do
      if has_class(el, "records-table") and not has_class(el, "component-records")
        and not has_class(el, "exterior-records") then tables[#tables + 1] = el end
    end
    assert.are.equal(1, #tables)
    local rows = 0
    for _, el in ipairs(doc:find_all("tr")) do
      if el.parent and el.parent.name == "tbody" and el.parent.parent == tables[1] then rows = rows + 1 end
    end
    assert.are.equal(#r.records, rows)
  end)

  it("escapes all report text", function()
    local r = ready()
    r.vehicle.brand = '<script>alert("x")</script>'
    r.records[1].items = { "<img src=x onerror=alert(1)>", "a & b" }
    r.records[1].type = "\"><svg onload=alert(1)>"
    r.order_id = "<b>id</b>"
    local page = html.render(r)
    local doc = assert(parse(page))
    assert.are.equal(0, #doc:find_all("script"))
    assert.are.equal(0, #doc:find_all("img"))
    assert.are.equal(2, #doc:find_all("svg"))
    assert.are.equal(0, #doc:find_all("b"))
    assert.truthy(page:find("&lt;script&gt;", 1, true))
    assert.truthy(page:find("a &amp; b", 1, true))
  end)

  local cases = require "fixtures.analysis_cases"
  local QUERY = { vin = "WBAXW1104J0X16755", plate_number = "京A12345", engine_number = "N20B20A" }

  local function page(report, opts)
    opts = opts or {}
    opts.analysis = opts.analysis or { as_of = cases.AS_OF }
    opts.query = opts.query or QUERY
    return assert(parse(html.render(report, opts)))
  end

  local function all_with(doc, class, inside)
    local out = {}
    for _, el in ipairs(doc.elements) do
      local ok = has_class(el, class)
      if ok and inside then
        local p = el.parent
        while p and not has_class(p, inside) do p = p.parent end
        ok = p ~= nil
      end
      if ok then out[#out + 1] = el end
    end
    return out
  end

  local function text_of(el)
    local parts = { el.text or "" }
    for _, c in ipairs(el.children or {}) do parts[#parts + 1] = text_of(c) end
    return table.concat(parts)
  end

  it("puts the verdict and the findings before the vehicle data", function()
    local raw = html.render(cases.rollback(), { analysis = { as_of = cases.AS_OF }, query = QUERY })
    assert.is_true(raw:find('class="findings"', 1, true) < raw:find('class="vehicle"', 1, true))
    local doc = assert(parse(raw))
    local verdict = all_with(doc, "verdict")[1]
    assert.are.equal("high_risk", verdict.attrs["data-level"])
    assert.truthy(text_of(verdict):find("高风险", 1, true))
    local found = {}
    for _, li in ipairs(all_with(doc, "finding")) do found[li.attrs["data-finding"]] = li end
    assert.truthy(found.odometer_rollback and found.mileage_flag_contradicted)
    assert.truthy(raw:find("判定规则", 1, true))
  end)

  it("names the car: the queried VIN, plate and engine number beside the vendor's masked VIN", function()
    for _, report in ipairs{ cases.rollback(),
        normalize.report(fixture("vendor_report_no_records.json"), "no_records", "O-NR"),
        { status = "pending", order_id = "O-PD" } } do
      local doc = page(report)
      local identity = text_of(all_with(doc, "identity")[1])
      for _, v in pairs(QUERY) do assert.truthy(identity:find(v, 1, true), report.status .. ": " .. v) end
    end
    local identity = text_of(all_with(page(cases.rollback()), "identity")[1])
    assert.truthy(identity:find("SA******02383", 1, true))
  end)

  it("writes the VIN into the print header and page numbers into the footer, escaped for CSS", function()
    local raw = html.render(cases.clean(), { query = { vin = 'X"}</style><b>' }, analysis = { as_of = cases.AS_OF } })
    assert.truthy(raw:find("@top-left", 1, true) and raw:find("counter(pages)", 1, true))
    assert.falsy(raw:find('X"}', 1, true))
    assert.falsy(raw:find("</style><b>", 1, true))
    assert.are.equal(0, #assert(parse(raw)):find_all("b"))
    assert.truthy(html.render(cases.clean(), { query = QUERY }):find("WBAXW1104J0X16755", 1, true))
  end)

  it("labels dates on every chart: years for long histories, months within one year", function()
    local long = page(cases.rollback())
    local labels = {}
    for _, t in ipairs(all_with(long, "x-label", "chart-wide")) do labels[#labels + 1] = t.text end
    assert.are.equal("2014,2015,2016,2017", table.concat(labels, ","))
    local short = page(cases.one_year())
    labels = {}
    for _, t in ipairs(all_with(short, "x-label", "chart-wide")) do labels[#labels + 1] = t.text end
    assert.is_true(#labels >= 4, table.concat(labels, ","))
    for _, l in ipairs(labels) do assert.truthy(l:match("^2016%-%d%d$"), l) end
    assert.is_true(#all_with(short, "x-label", "chart-narrow") >= 2)
    -- one record: still a date label
    local one = cases.clean()
    one.records = { one.records[2] }
    assert.is_true(#all_with(page(one), "x-label", "chart-wide") >= 1)
  end)

  it("draws a rollback in red between the two readings", function()
    local doc = page(cases.rollback())
    local drawn = all_with(doc, "rollback", "chart-wide")
    assert.are.equal(1, #drawn)
    assert.are.equal("2016-12-28", drawn[1].attrs["data-from"])
    assert.are.equal("2017-01-10", drawn[1].attrs["data-to"])
    local low = all_with(doc, "rollback-point", "chart-wide")
    assert.are.equal(1, #low)
    assert.are.equal("15,000", low[1].attrs["data-mileage"])
    assert.are.equal(0, #all_with(page(cases.clean()), "rollback"))
  end)

  it("shows legend entries only for what the chart has", function()
    local function legend(doc)
      local out = {}
      for _, el in ipairs(doc.elements) do
        if el.attrs["data-legend"] and has_class(el.parent.parent, "chart-wide") then
          out[#out + 1] = el.attrs["data-legend"]
        end
      end
      return table.concat(out, ",")
    end
    assert.are.equal("maintenance,repair", legend(page(cases.clean())))
    assert.are.equal("maintenance,repair,bodywork,rollback", legend(page(cases.rollback())))
    local r = cases.clean()
    r.records[#r.records + 1] = { date = "2016-12-01", items = {}, materials = {}, category = "repair" }
    assert.are.equal("maintenance,repair,no-mileage", legend(page(r)))
  end)

  it("labels every table cell for the phone layout's cards", function()
    for _, td in ipairs(page(cases.rollback()):find_all("td")) do
      assert.truthy(td.attrs["data-label"] and td.attrs["data-label"] ~= "")
    end
  end)

  it("gives the generation time in China time with the zone", function()
    local raw = html.render(cases.clean(), { generated_at = 1764547200 }) -- 2025-12-01T00:00:00Z
    assert.truthy(raw:find("2025-12-01 08:00 北京时间（UTC+8）", 1, true))
  end)

  it("renders no-records and pending pages without a chart", function()
    local nr = normalize.report(fixture("vendor_report_no_records.json"), "no_records", "O-NR")
    local doc = assert(parse(html.render(nr)))
    assert.are.equal(0, #doc:find_all("svg"))
    local pending = assert(parse(html.render{ status = "pending", order_id = "O-PD" }))
    assert.are.equal(0, #pending:find_all("svg"))
  end)
end)
