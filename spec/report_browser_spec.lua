-- The HTML report in a real browser: Debian's chromium, headless, driven by
-- playwright-core from npm (spec/browser/check_report.js; no browser download).
-- A normal, a rollback, a one-year and a no-records report at 1200 px and 390 px:
-- no table cell narrower than 4 characters, date labels on the chart, the queried
-- VIN, the findings section, no horizontal overflow at 390 px; print-to-PDF gives
-- A4 pages with the running header (VIN) and page numbers, through playwright and
-- through render.pdf (`--format pdf`). Screenshots and PDFs stay in
-- artifacts/report-browser/ (git-ignored). Runs under each interpreter: the browser
-- work is the same, and it is a few seconds.
local cjson = require "cjson"
local html = require "maintenance_report.render.html"
local pdf = require "maintenance_report.render.pdf"
local normalize = require "maintenance_report.normalize"
local fixtures = require "helpers.fixtures"
local cases = require "fixtures.analysis_cases"

local OUT = "artifacts/report-browser"
local QUERY = { vin = "WBAXW1104J0X16755", plate_number = "京A12345", engine_number = "N20B20A" }
local WIDTHS = { 1200, 390 }

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("*a")
  p:close()
  return out
end

local function write(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

local function chromium_path()
  local env = os.getenv(pdf.ENV)
  if env and env ~= "" then return env end
  return "/usr/bin/chromium"
end

local function reports()
  return {
    { name = "normal", report = fixtures.ready_report("ORDER-NORMAL") },
    { name = "rollback", report = cases.rollback() },
    { name = "one-year", report = cases.one_year() },
    { name = "no-records", report = normalize.report(fixtures.json("vendor_report_no_records.json"), "no_records",
      "ORDER-NR") },
  }
end

-- PDF facts from poppler: page sizes and the text of each page.
local function pdf_facts(path)
  local info = sh("pdfinfo -f 1 -l 999 '" .. path .. "'")
  local sizes = {}
  for w, h in info:gmatch("Page%s+%d+ size:%s+([%d.]+) x ([%d.]+) pts") do
    sizes[#sizes + 1] = { tonumber(w), tonumber(h) }
  end
  local pages = {}
  for page in (sh("pdftotext -layout '" .. path .. "' -") .. "\f"):gmatch("([^\f]*)\f") do
    if page:find("%S") then pages[#pages + 1] = page end
  end
  return sizes, pages
end

local function assert_a4_with_header(path)
  local sizes, pages = pdf_facts(path)
  assert.is_true(#sizes >= 1, "no pages in " .. path)
  assert.are.equal(#sizes, #pages, path)
  for i, s in ipairs(sizes) do
    -- A4 is 210 x 297 mm = 595.28 x 841.89 pt; Chromium rounds to whole CSS pixels
    assert.is_true(math.abs(s[1] - 595.28) < 1.5 and math.abs(s[2] - 841.89) < 1.5,
      ("page %d of %s is %g x %g pt"):format(i, path, s[1], s[2]))
    local page = pages[i]
    assert.truthy(page:find(QUERY.vin, 1, true), ("page %d of %s has no VIN in its header"):format(i, path))
    local n, total = page:match("第%s*(%d+)%s*页%s*/%s*共%s*(%d+)%s*页")
    assert.are.equal(tostring(i), n, ("page %d of %s: no page number"):format(i, path))
    assert.are.equal(tostring(#sizes), total, path)
  end
  return #sizes
end

describe("the HTML report in headless Chromium", function()
  local result

  setup(function()
    local chromium = chromium_path()
    assert(sh("test -x '" .. chromium .. "' && echo yes"):find("yes"),
      chromium .. " is missing: `make deps` installs chromium (or set $" .. pdf.ENV .. ")")
    assert(sh("test -f node_modules/playwright-core/package.json && echo yes"):find("yes"),
      "node_modules/playwright-core is missing: `make deps` runs npm ci")
    os.execute("mkdir -p " .. OUT)
    local manifest = { chromium = chromium, out_dir = OUT, widths = WIDTHS, cases = {} }
    for _, c in ipairs(reports()) do
      local file = OUT .. "/" .. c.name .. ".html"
      write(file, html.render(c.report, { query = QUERY, generated_at = os.time() }))
      manifest.cases[#manifest.cases + 1] = { name = c.name, file = file, vin = QUERY.vin }
    end
    write(OUT .. "/manifest.json", cjson.encode(manifest))
    local out = sh("node spec/browser/check_report.js " .. OUT .. "/manifest.json")
    local ok, decoded = pcall(cjson.decode, out:match("[^\n]*\n?$") or "")
    assert(ok and type(decoded) == "table", "the browser script failed:\n" .. out)
    result = decoded
  end)

  for _, name in ipairs{ "normal", "rollback", "one-year", "no-records" } do
    for _, width in ipairs(WIDTHS) do
      it(("%s report at %d px: identity, findings, date labels, cells, overflow"):format(name, width), function()
        local m = result.cases[name].widths[tostring(width)]
        assert.is_true(m.vinPresent, "the queried VIN is not on the page")
        assert.is_true(m.findings, "no findings section")
        assert.are.equal(0, #m.narrow, "cells narrower than 4 characters: " .. cjson.encode(m.narrow))
        if name == "no-records" then
          assert.are.equal(0, m.charts)
        else
          assert.is_true(m.cells > 0)
          assert.are.equal(1, m.charts, "exactly one chart is visible")
          assert.is_true(#m.dateLabels >= 2, "date labels: " .. cjson.encode(m.dateLabels))
          assert.is_true(m.minLabelPx >= 10, ("chart labels %.1f px high"):format(m.minLabelPx))
        end
        if width <= 420 then
          assert.is_true(m.scrollWidth <= m.clientWidth, ("overflow: %d > %d"):format(m.scrollWidth, m.clientWidth))
          if name ~= "no-records" then assert.is_true(m.cardRows > 0, "the table did not reflow into cards") end
        end
      end)
    end
  end

  it("shows month labels for the one-year history", function()
    for _, width in ipairs(WIDTHS) do
      for _, label in ipairs(result.cases["one-year"].widths[tostring(width)].dateLabels) do
        assert.truthy(label:match("^2016%-%d%d$"), label)
      end
    end
  end)

  it("prints to A4 with the VIN in the header and page numbers (playwright's print-to-PDF)", function()
    for _, name in ipairs{ "normal", "rollback", "one-year", "no-records" } do
      assert_a4_with_header(result.cases[name].pdf)
    end
    assert.is_true(assert_a4_with_header(result.cases.rollback.pdf) >= 2, "the rollback report spans pages")
  end)

  it("prints to A4 with header and page numbers through render.pdf (--format pdf)", function()
    local bytes = assert(pdf.render(html.render(cases.rollback(), { query = QUERY }), { chromium = chromium_path() }))
    write(OUT .. "/rollback-cli.pdf", bytes)
    assert.is_true(assert_a4_with_header(OUT .. "/rollback-cli.pdf") >= 2)
  end)

  it("kept its screenshots", function()
    for name, c in pairs(result.cases) do
      for _, width in ipairs(WIDTHS) do
        local shot = c.widths[tostring(width)].screenshot
        local f = io.open(shot, "rb")
        assert.truthy(f, name .. ": " .. shot)
        assert.are.equal("\137PNG", f:read(4))
        f:close()
      end
    end
    assert.is_true(result.seconds < 60, ("the browser took %.1f s"):format(result.seconds))
  end)
end)
