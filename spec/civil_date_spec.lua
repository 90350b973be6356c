-- maintenance_report.civil_date against GNU date (coreutils), over day counts
-- around 1970, 2000 (a leap century), 2100 (not one), leap days, far past and future;
-- and its users (the HTML chart's axis, `sign --date`) give the same answers.
local civil_date = require "maintenance_report.civil_date"
local cli = require "helpers.cli_run"

-- "YYYY-MM-DD" from `date -u -d @SECONDS +%F` for each day count, in one call.
local function gnu_dates(day_counts)
  local dir = cli.tmpdir()
  local lines = {}
  for i, z in ipairs(day_counts) do lines[i] = string.format("@%d", z * 86400) end
  cli.write(dir .. "/in", table.concat(lines, "\n") .. "\n")
  local p = assert(io.popen("date -u -f " .. cli.quote(dir .. "/in") .. " +%F"))
  local out = {}
  for line in p:lines() do out[#out + 1] = line end
  p:close()
  assert.are.equal(#day_counts, #out, "date answered every day")
  return out
end

local function days_of(y, m, d) return civil_date.days_from_civil(y, m, d) end

describe("civil_date", function()
  after_each(function() cli.cleanup() end)

  it("agrees with GNU date both ways for every day of 1968-1972, 1999-2001, 2099-2101 and samples", function()
    local counts = {}
    local function range(from, to) for z = from, to do counts[#counts + 1] = z end end
    range(-731, 1095)        -- 1968-01-01 .. 1972-12-31 (1968 and 1972 leap, 1970 the epoch)
    range(10592, 11687)      -- 1999-01-01 .. 2001-12-31 (2000: leap, divisible by 400)
    range(47117, 48211)      -- 2099-01-01 .. 2101-12-31 (2100: not leap, divisible by 100)
    for z = -719162, 2932896, 9973 do counts[#counts + 1] = z end -- 0001-01-01 .. 9999-12-31, sparse
    local expected = gnu_dates(counts)
    for i, z in ipairs(counts) do
      assert.are.equal(expected[i], civil_date.format(z), "day " .. z)
      local y, m, d = expected[i]:match("^(%d+)-(%d+)-(%d+)$")
      assert.are.equal(z, days_of(tonumber(y), tonumber(m), tonumber(d)), expected[i])
      assert.are.equal(z, civil_date.parse(expected[i]), expected[i])
    end
  end)

  it("knows the leap days: 2000-02-29 and 2024-02-29 exist, 1900-02-29 and 2100-02-29 do not", function()
    for _, s in ipairs{ "2000-02-29", "2024-02-29", "1972-02-29" } do assert.is_number(civil_date.parse(s), s) end
    for _, s in ipairs{ "1900-02-29", "2100-02-29", "2023-02-29", "2023-04-31", "2023-13-01", "2023-00-10",
                        "2023-01-00", "2023-1-01", "x" } do
      assert.is_nil(civil_date.parse(s), s)
    end
    assert.are.equal(0, civil_date.parse("1970-01-01"))
    assert.are.same({ 2000, 2, 29 }, { civil_date.civil_from_days(11016) })
  end)

  it("is what the HTML chart uses for its axis", function()
    local html = require "maintenance_report.render.html"
    assert.are.equal(civil_date.parse("2013-10-08"), html.days("2013-10-08"))
    assert.are.equal(gnu_dates{ html.days("2024-02-29") }[1], "2024-02-29")
  end)

  it("gives `sign --date` the epoch seconds GNU date gives", function()
    local sign = require "maintenance_report.cli.sign"
    for _, date in ipairs{ "Sun, 06 Nov 1994 08:49:37 GMT", "Tue, 29 Feb 2000 23:59:59 GMT",
                           "Fri, 31 Dec 2100 00:00:01 GMT", "Thu, 01 Jan 1970 00:00:00 GMT" } do
      local p = assert(io.popen("date -u -d " .. cli.quote(date) .. " +%s"))
      local expected = tonumber(p:read("*l"))
      p:close()
      assert.are.equal(expected, sign.parse_http_date(date), date)
    end
    assert.is_nil(sign.parse_http_date("Mon, 29 Feb 2100 00:00:00 GMT"))
  end)
end)
