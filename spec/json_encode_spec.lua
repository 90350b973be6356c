-- core.json_encode, json.encode's C writer (issue 13, target 3): the same bytes
-- as the Lua writer it replaced (json.encode_lua, the reference) on random
-- values with every rule in play. Its cost against cjson.encode is a figure of
-- bench/json_encode.lua, not a test: a timed bound fails under ASan, which
-- instruments our writer and not cjson.
local json = require "maintenance_report.json"
local core = require "maintenance_report.core"
local normalize = require "maintenance_report.normalize"
local analysis = require "maintenance_report.analysis"
local cli = require "helpers.cli_run"

local STRINGS = { "", "a", "京A12345", "7系(17/08-)", "ok\255 京", "\0\1\31\127\"\\/", "\237\160\128",
  "\240\144\128\128", "\244\144\128\128", "\192\128", "\224\128\128", "é", "\226\130", "x\n\r\t\b\f" }
local KEYS = { "status", "records", "vin", "zeta", "alpha", "items", "report", "error", "raw", "materials" }

-- LuaJIT formats 17-digit numbers with its own rounding (ties differ from glibc's):
-- there, floats get at most 15 significant digits, which both writers print alike.
local jit = rawget(_G, "jit")
local function float()
  local x = (math.random() - 0.5) * 10 ^ math.random(-30, 30)
  if jit then x = tonumber(string.format("%.15g", x)) end
  return x
end

local function random_value(depth)
  local r = math.random(10)
  if depth > 4 or r <= 3 then
    local k = math.random(8)
    if k == 1 then return STRINGS[math.random(#STRINGS)]
    elseif k == 2 then return math.random(-1000, 1000)
    elseif k == 3 then return float()
    elseif k == 4 then return math.random() < 0.5
    elseif k == 5 then return json.null
    elseif k == 6 then return core.json_null
    elseif k == 7 then return 2 ^ 53 + math.random(100) * 2
    else return jit and 0.5 or 1e-310 * math.random() end
  elseif r <= 6 then
    local t = {}
    for i = 1, math.random(0, 5) do t[i] = random_value(depth + 1) end
    if math.random() < 0.3 then json.array(t) end
    return t
  end
  local t = {}
  for _ = 1, math.random(0, 6) do
    local k = math.random(3) == 1 and STRINGS[math.random(#STRINGS)] or KEYS[math.random(#KEYS)]
    t[k] = random_value(depth + 1)
  end
  if math.random() < 0.2 then t[math.random(3)] = "a number key" end
  return t
end

local function report()
  local raw = cli.read("spec/fixtures/vendor_report_ready.json")
  local r = normalize.report(core.json_decode(raw), "ready", "0123456789abcdef0123456789abcdef")
  r.analysis = analysis.analyze(r)
  return r
end

describe("json.encode in C", function()
  it("writes what the Lua writer writes, byte for byte", function()
    math.randomseed(13)
    local options = { {}, { indent = "  " }, { skip_keys = { raw = true } }, { list_keys = { alpha = true } } }
    for _ = 1, 3000 do
      local v = random_value(0)
      for _, opts in ipairs(options) do assert.are.equal(json.encode_lua(v, opts), json.encode(v, opts)) end
    end
    local r = report()
    assert.are.equal(json.encode_lua(r), json.encode(r))
    assert.are.equal(json.encode_lua(r, { indent = "  " }), json.encode(r, { indent = "  " }))
  end)

  it("refuses what the Lua writer refuses, with its messages", function()
    local cycle = {}
    cycle.me = cycle
    for _, bad in ipairs{ { 0 / 0 }, { x = 1 / 0 }, { y = -1 / 0 }, { f = print }, cycle, coroutine.create(print) } do
      local ok_c, err_c = pcall(json.encode, bad)
      local ok_lua, err_lua = pcall(json.encode_lua, bad)
      assert.is_false(ok_c)
      assert.is_false(ok_lua)
      assert.are.equal(err_lua, err_c)
    end
  end)

  -- LuaJIT's stack holds about 65,000 slots: an object's keys cannot all stay on it.
  it("writes objects of 100,000 keys, nested too, as the Lua writer does", function()
    local big, inner = {}, {}
    for i = 1, 100000 do big["k" .. i] = i end
    for i = 1, 300 do inner["n" .. i] = { i, { ["x" .. i] = true } } end
    big.inner, big[7] = inner, "a number key"
    assert.are.equal(json.encode_lua(big), json.encode(big))
    assert.are.equal(json.encode_lua(inner, { indent = " " }), json.encode(inner, { indent = " " }))
  end)
end)
