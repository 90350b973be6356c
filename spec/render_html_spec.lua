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
    assert.are.equal(1, #doc:find_all("svg"))
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
      if has_class(el, "point") then points[#points + 1] = el end
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
    assert.are.equal(1, #doc:find_all("svg"))
    assert.are.equal(0, #doc:find_all("b"))
    assert.truthy(page:find("&lt;script&gt;", 1, true))
    assert.truthy(page:find("a &amp; b", 1, true))
  end)

  it("renders no-records and pending pages without a chart", function()
    local nr = normalize.report(fixture("vendor_report_no_records.json"), "no_records", "O-NR")
    local doc = assert(parse(html.render(nr)))
    assert.are.equal(0, #doc:find_all("svg"))
    local pending = assert(parse(html.render{ status = "pending", order_id = "O-PD" }))
    assert.are.equal(0, #pending:find_all("svg"))
  end)
end)
