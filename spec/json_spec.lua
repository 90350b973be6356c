-- maintenance_report.json: shortest round-trip numbers (checked against
-- Python's repr, which prints the shortest string that reads back as the same
-- double), a stable key order, readable UTF-8, escaped control characters,
-- and one decoder for everything the CLI reads back.
local json = require "maintenance_report.json"
local cli = require "helpers.cli_run"

local function python_repr(numbers)
  local dir = cli.tmpdir()
  local lines = {}
  for i, n in ipairs(numbers) do lines[i] = string.format("%.17g", n) end -- exact: 17 digits round-trip
  cli.write(dir .. "/in", table.concat(lines, "\n") .. "\n")
  local p = assert(io.popen("python3 -c 'import sys\nfor l in sys.stdin: print(repr(float(l)))' < "
    .. cli.quote(dir .. "/in")))
  local out = {}
  for line in p:lines() do out[#out + 1] = line end
  p:close()
  assert.are.equal(#numbers, #out, "python3 answered every number")
  return out
end

-- The significant digits of a number's text ("1.80e+16" and "18000000000000000" both "18"):
-- equal digits and an equal value mean equally short and equally rounded, whatever the notation.
local function digits(text)
  local mantissa = assert(text:match("^-?([%d.]+)"), text)
  return (mantissa:gsub("%.", ""):gsub("^0+", ""):gsub("0+$", ""))
end

describe("maintenance_report.json", function()
  after_each(function() cli.cleanup() end)

  describe("numbers", function()
    it("prints the shortest form that reads back as the same double (as Python's repr does)", function()
      local numbers = { 1.6, 0.1, 0.1 + 0.2, 1 / 3, 2 / 3, 3.6, -2.5, 1e-7, 1.5e-5, 0.0001, 123.456,
        117369.5, 123456789012345.6, 125000000000000.5, math.pi, -math.pi, 2 ^ -1074, 2.2250738585072014e-308,
        1.7976931348623157e308, 1e300, 1e22, 2.0 ^ 54, 4.35, 0.57, 1.005, 2.675, 1e-300 * 3 }
      math.randomseed(20260101)
      for k = -12, 20 do
        for _ = 1, 6 do numbers[#numbers + 1] = (math.random() - 0.5) * 10 ^ k end
      end
      local expected = python_repr(numbers)
      local same_text = 0
      for i, n in ipairs(numbers) do
        local got = json.encode(n)
        assert.are.equal(digits(expected[i]), digits(got), string.format("%.17g", n))
        assert.are.equal(n, tonumber(got))
        assert.is_nil(got:find("%.0*$"), got) -- integral doubles print as integers
        -- Python writes integral doubles as "N.0" and switches to exponents at 1e16, %g at 1e17
        if expected[i]:gsub("%.0$", "") == got then same_text = same_text + 1 end
      end
      assert.is_true(same_text > #numbers - 10, same_text .. " of " .. #numbers)
    end)

    it("prints integers and integral doubles without a fraction", function()
      assert.are.equal("[117369,0,-2,9007199254740991,1500000000000000]",
        json.encode{ 117369.0, 0, -2, 2 ^ 53 - 1, 1.5e15 })
      if math.type then assert.are.equal("9223372036854775807", json.encode(math.maxinteger)) end
    end)

    it("refuses NaN and infinities with an error that says why", function()
      for _, bad in ipairs{ 0 / 0, math.huge, -math.huge } do
        local ok, err = pcall(json.encode, { mileage = bad })
        assert.is_false(ok)
        assert.truthy(tostring(err):find("JSON has no NaN or infinity", 1, true), tostring(err))
      end
      assert.has_error(function() json.encode{ f = print } end, "json.encode: cannot encode a function")
    end)
  end)

  it("orders keys the same way whatever the insertion order: known fields first, then alphabetical", function()
    local keys = { "zeta", "status", "vin", "alpha", "order_id", "mileage", "beta", "event" }
    local a, b = {}, {}
    for i = 1, #keys do a[keys[i]] = i end
    for i = #keys, 1, -1 do b[keys[i]] = i end
    assert.are.equal(json.encode(a), json.encode(b))
    assert.are.equal('{"event":8,"vin":3,"status":2,"order_id":5,"mileage":6,"alpha":4,"beta":7,"zeta":1}',
      json.encode(a))
  end)

  it("leaves UTF-8 and '/' alone, escapes control characters, quotes and backslashes", function()
    assert.are.equal('{"series":"7系(17/08-) 京A12345"}', json.encode{ series = "7系(17/08-) 京A12345" })
    assert.are.equal('"a\\"b\\\\c\\n\\r\\t\\b\\f\\u0000\\u0001\\u001b\\u007f"',
      json.encode('a"b\\c\n\r\t\b\f\0\1\27\127'))
    assert.are.equal('"ok\239\191\189 京"', json.encode("ok\255 京")) -- invalid byte → U+FFFD
  end)

  it("writes empty report lists as [], other empty tables as {}, and json.array as []", function()
    assert.are.equal('{"flags":{},"records":[],"list":[],"other":{}}',
      json.encode{ records = {}, flags = {}, other = {}, list = json.array() })
  end)

  it("indents on request, and what it writes decodes back to the same value", function()
    local value = { vin = "LVSHCAMB1CE000001", n = 1.6, list = { 1, "two", true, false },
      nested = { k = "v\n" } }
    local pretty = json.encode(value, { indent = "  " })
    assert.truthy(pretty:find('\n  "vin": "LVSHCAMB1CE000001"', 1, true), pretty)
    for _, text in ipairs{ json.encode(value), pretty } do
      local back = assert(json.decode(text))
      assert.are.same(value, back)
    end
  end)

  it("decodes through the core, with a typed error for bad text and json null for null", function()
    local none, err = json.decode('{"a":')
    assert.is_nil(none)
    assert.are.equal("invalid_input", err.kind)
    assert.truthy(tostring(err):find("invalid JSON", 1, true))
    local v = assert(json.decode('{"a":null,"b":[1,2]}'))
    assert.are.equal(require("maintenance_report.core").json_null, v.a)
    assert.are.equal('{"a":null,"b":[1,2]}', json.encode(v))
    assert.has_error(function() json.decode(nil) end)
  end)

  it("is the encoder of the OpenResty example", function()
    local saved = package.path
    package.path = cli.ROOT .. "/examples/openresty/?.lua;" .. package.path
    local ok, example = pcall(require, "vehicle_report")
    package.path = saved
    assert(ok, example)
    -- this key order (not alphabetical) is this encoder's
    assert.are.equal('{"error":{"order_id":"ORDER1","kind":"pending","message":"still pending",'
      .. '"order_outcome":"placed"}}',
      example.error_body{ kind = "pending", message = "still pending", order_id = "ORDER1" })
  end)
end)
