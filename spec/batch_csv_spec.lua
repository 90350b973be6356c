-- Batch input parsing: headers, quotes, CRLF, BOM, blanks, comments, duplicates, invalid rows.
local csv = require "maintenance_report.cli.csv"

-- VINs with valid check digits (api.md's examples).
local A, B, C = "1G4AH59H45G118341", "WBAXW1104J0X16755", "1G1BN53E6NW128495"

local function vins(result)
  local out = {}
  for i, row in ipairs(result.rows) do out[i] = row.vin end
  return out
end

describe("batch input (csv.parse)", function()
  it("reads plain lines, one VIN per line", function()
    local r = csv.parse(A .. "\n" .. B .. "\n" .. C .. "\n")
    assert.are.same({ A, B, C }, vins(r))
    assert.are.same({ 1, 2, 3 }, { r.rows[1].line, r.rows[2].line, r.rows[3].line })
    assert.are.same({}, r.invalid)
  end)

  it("reads vin,engine_number,plate_number and normalizes them", function()
    local r = csv.parse(A .. ",abc-123,京A12345\n" .. B .. ",,粤B8K9M2\n" .. C .. ",X9\n")
    assert.are.equal("ABC-123", r.rows[1].engine_number)
    assert.are.equal("京A12345", r.rows[1].plate_number)
    assert.is_nil(r.rows[2].engine_number)
    assert.are.equal("粤B8K9M2", r.rows[2].plate_number)
    assert.are.equal("X9", r.rows[3].engine_number)
    assert.are.equal("abc-123", r.rows[1].input.engine_number) -- the input row as given
  end)

  it("skips a header row and maps its columns in any order", function()
    local r = csv.parse("plate_number,VIN,engine_number\n京A12345," .. A .. ",E1\n")
    assert.are.equal(1, r.header)
    assert.are.same({ A }, vins(r))
    assert.are.equal("京A12345", r.rows[1].plate_number)
    assert.are.equal("E1", r.rows[1].engine_number)
    assert.are.equal(2, r.rows[1].line)
  end)

  it("handles CRLF, a UTF-8 BOM, blank lines, spaces and # comments", function()
    local content = "\239\187\191vin,engine_number\r\n# a comment\r\n\r\n   \r\n  " .. A .. " , E2 \r\n"
      .. "  # indented comment\r\n" .. B .. "\r\n"
    local r = csv.parse(content)
    assert.are.same({ A, B }, vins(r))
    assert.are.equal("E2", r.rows[1].engine_number)
    assert.are.same({ 5, 7 }, { r.rows[1].line, r.rows[2].line })
    assert.are.same({}, r.invalid)
  end)

  it("supports quoted fields with commas and doubled quotes", function()
    assert.are.same({ "a,b", 'say "hi"', "" }, csv.split('"a,b","say ""hi""",'))
    local r = csv.parse('"' .. A .. '","E-1",""\n')
    assert.are.same({ A }, vins(r))
    assert.are.equal("E-1", r.rows[1].engine_number)
  end)

  it("reports broken quoting as an invalid row", function()
    local r = csv.parse('"' .. A .. '\n' .. B .. ',E"1\n' .. C .. "\n")
    assert.are.same({ C }, vins(r))
    assert.are.equal(2, #r.invalid)
    assert.are.same({ 1, 2 }, { r.invalid[1].line, r.invalid[2].line })
  end)

  it("reports invalid rows with their line numbers and the reason, and keeps the rest", function()
    local bad_check = A:sub(1, 8) .. "0" .. A:sub(10) -- wrong check digit
    local r = csv.parse(table.concat({
      "# header comment", A, "SBL666666BM9D933", bad_check, B .. ",bad engine!", C .. ",,京A1234", "x,y,z,w",
    }, "\n"))
    assert.are.same({ A }, vins(r))
    local lines = {}
    for i, bad in ipairs(r.invalid) do
      lines[i] = bad.line
      assert.is_string(bad.error)
    end
    assert.are.same({ 3, 4, 5, 6, 7 }, lines)
    assert.truthy(r.invalid[1].error:find("17", 1, true))
    assert.truthy(r.invalid[2].error:find("check digit", 1, true))
    assert.truthy(r.invalid[3].error:find("engine", 1, true))
    assert.truthy(r.invalid[4].error:lower():find("plate", 1, true))
  end)

  it("orders a VIN once: later rows with the same VIN (any case, spaces) are duplicates", function()
    local r = csv.parse(A .. "\n" .. B .. "\n" .. A:lower() .. "\n " .. A .. " ,E1\n")
    assert.are.same({ A, B }, vins(r))
    assert.are.equal(2, #r.duplicates)
    assert.are.same({ line = 3, vin = A, first_line = 1 }, r.duplicates[1])
    assert.are.equal(4, r.duplicates[2].line)
  end)

  it("gives nothing for an empty file or one with only comments", function()
    for _, content in ipairs{ "", "\n\n", "# only\n# comments\n", "\239\187\191" } do
      local r = csv.parse(content)
      assert.are.same({}, r.rows)
      assert.are.same({}, r.invalid)
    end
  end)
end)
