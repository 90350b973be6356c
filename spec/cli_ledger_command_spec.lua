-- `maintenance-report ledger list|show|forget|stats|check` on a ledger built
-- with the library at fixed times (no network). China time is checked
-- against date(1) with TZ=Asia/Shanghai.
local cli = require "helpers.cli_run"
local ledger = require "maintenance_report.ledger"

local T0 = 1700000000
local PLACED_VIN, READY_VIN, UNKNOWN_VIN = "WBAXW1104J0X16755", "LSVAU2181KG095653", "LBV5S3103KT009578"

-- s as a Lua pattern that matches it literally.
local function literal(s)
  return (s:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0"))
end

local function china(t)
  local p = assert(io.popen("TZ=Asia/Shanghai date -d @" .. t .. " '+%Y-%m-%d %H:%M:%S'"))
  local s = p:read("*l")
  p:close()
  return s .. " +08:00"
end

-- A ledger with one placed, one ready and one unknown entry, written at T0, T0+60, T0+120.
local function build(path)
  local clock = T0
  local L = assert(ledger.file(path, { now = function() return clock end }))
  local d = assert(L:begin({ vin = PLACED_VIN, plate_number = "京A12345" }))
  assert(d.claim:intent())
  assert(d.claim:placed("0123456789abcdef0123456789abcdef", "req-1"))
  d.claim:release()
  clock = T0 + 60
  d = assert(L:begin({ vin = READY_VIN }))
  assert(d.claim:intent())
  assert(d.claim:placed("fedcba9876543210fedcba9876543210"))
  assert(d.claim:final("ready", { status = "ready", records = { {}, {} } }))
  d.claim:release()
  clock = T0 + 120
  d = assert(L:begin({ vin = UNKNOWN_VIN }))
  assert(d.claim:intent())
  assert(d.claim:unknown({ kind = "timeout", message = "no answer in 10 s", http_status = 504, request_id = "req-3" }))
  d.claim:release()
  L:close()
end

describe("maintenance-report ledger", function()
  local dir, path
  before_each(function()
    dir = cli.tmpdir()
    path = dir .. "/ledger"
    build(path)
  end)
  after_each(function() cli.cleanup() end)

  local function run(...)
    local args = { "ledger", ... }
    args[#args + 1] = "--ledger"
    args[#args + 1] = path
    return cli.run(args)
  end

  it("list: one line per entry, oldest first: state, VIN, plate, order id, China time", function()
    local r = run("list")
    assert.are.equal(0, r.code, r.err)
    local lines = {}
    for line in r.out:gmatch("[^\n]+") do lines[#lines + 1] = line end
    assert.are.equal(3, #lines)
    assert.truthy(lines[1]:find("^placed +" .. PLACED_VIN .. " 京A12345 +0123456789abcdef0123456789abcdef "
      .. literal(china(T0)) .. "$"), lines[1])
    assert.truthy(lines[2]:find("^ready +" .. READY_VIN .. " %- +fedcba9876543210fedcba9876543210 "), lines[2])
    assert.truthy(lines[3]:find("^unknown +" .. UNKNOWN_VIN .. " %- +%- +" .. literal(china(T0 + 120))),
      lines[3])
    local j = cli.json(run("list", "--format", "json").out)
    assert.are.equal(3, #j)
    assert.are.equal(T0, j[1].updated_at)
  end)

  it("show: every field, the last error included; --format json has the stored report", function()
    local r = run("show", UNKNOWN_VIN)
    assert.are.equal(0, r.code, r.err)
    assert.truthy(r.out:find("state: +unknown"), r.out)
    assert.truthy(r.out:find("last error: +timeout: no answer in 10 s %(http 504, request req%-3%)"), r.out)
    assert.truthy(r.out:find("updated_at: +" .. literal(china(T0 + 120))), r.out)
    local ready = cli.json(run("show", READY_VIN, "--format", "json").out)
    assert.are.equal("ready", ready[1].report.status)
    assert.are.equal(2, #ready[1].report.records)
    assert.are.equal(2, run("show", "1G1JC5444R7252367").code) -- no entry
  end)

  it("stats: entries by state, orders and money, unknown ones as possibly charged", function()
    local r = run("stats", "--unit-price", "17")
    assert.are.equal(0, r.code, r.err)
    assert.truthy(r.out:find("entries: 3", 1, true), r.out)
    assert.truthy(r.out:find("orders: 2 × ¥17.00 = ¥34.00", 1, true), r.out)
    assert.truthy(r.out:find("may have been charged: 1 order with an unknown outcome (up to ¥17.00)", 1, true),
      r.out)
    local j = cli.json(run("stats", "--format", "json", "--unit-price", "2").out)
    assert.are.same({ 1, 1, 1 }, { j.by_state.placed, j.by_state.ready, j.by_state.unknown })
    assert.are.equal(4, j.spent)
  end)

  it("forget: asks for --yes when not interactive, refuses while another process holds the vehicle", function()
    local r = run("forget", PLACED_VIN)
    assert.are.equal(2, r.code, r.err)
    assert.truthy(r.err:find("pass --yes", 1, true), r.err)
    assert.truthy(r.err:find("0123456789abcdef0123456789abcdef", 1, true), "the order id is shown first")
    assert.truthy(cli.read(path):find("0123456789abcdef0123456789abcdef", 1, true))
    -- held by this process (a poll claim, as a running query would hold it)
    local L = assert(ledger.file(path))
    local d = assert(L:begin({ vin = PLACED_VIN, plate_number = "京A12345" }))
    assert.are.equal("poll", d.action)
    local busy = run("forget", PLACED_VIN, "--yes")
    assert.are.equal(8, busy.code, busy.err)
    assert.truthy(run("show", PLACED_VIN).out:find("state: +placed"))
    d.claim:release()
    L:close()
    local ok = run("forget", PLACED_VIN, "--yes")
    assert.are.equal(0, ok.code, ok.err)
    assert.are.equal(2, run("show", PLACED_VIN).code)
    assert.are.equal(2, #cli.json(run("list", "--format", "json").out))
  end)

  it("check: ok for a clean ledger; exit 8 naming a damaged line", function()
    local clean = run("check")
    assert.are.equal(0, clean.code, clean.err)
    assert.truthy(clean.out:find("%d+ records, 3 keys: ok\n$"), clean.out)
    local line_count = select(2, cli.read(path):gsub("\n", ""))
    local f = assert(io.open(path, "ab"))
    f:write("0badc0de this line is damaged\n")
    f:close()
    local r = run("check")
    assert.are.equal(8, r.code, r.err)
    assert.truthy(r.out:find("DAMAGED", 1, true), r.out)
    assert.truthy(r.out:find("line " .. (line_count + 1) .. ": checksum mismatch", 1, true), r.out)
    assert.are.equal(8, run("check", "--format", "json").code)
  end)

  it("reads a ledger that does not exist without creating it", function()
    local missing = dir .. "/none/ledger"
    local r = cli.run{ "ledger", "list", "--ledger", missing }
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("", r.out)
    assert.are.equal(0, cli.run{ "ledger", "stats", "--ledger", missing }.code)
    assert.is_nil(cli.read(missing))
  end)
end)
