-- The file ledger: processes sharing it, a holder killed mid-order, damage,
-- torn writes, compaction and durability. Line checksums are verified with
-- python3's zlib.crc32, not with the code under test.
local ledger = require "maintenance_report.ledger"
local file = require "maintenance_report.ledger.file"
local shell = require "helpers.shell"
local tmp = require "helpers.ledger_tmp"

local q = shell.quote
local LUA = os.getenv("MR_SPEC_LUA") or "lua5.4"
local VEHICLE = { vin = "LSVAU2180N2183294", engine_number = "EA888", plate_number = "京A12345" }
local OTHER = { vin = "LSVAU2180N2183295" }
local THIRD = { vin = "LSVAU2180N2183296", plate_number = "粤BD12345" }

local function read(path) return assert(shell.read_file(path)) end

local function lines(path)
  local out = {}
  for line in read(path):gmatch("([^\n]*)\n") do out[#out + 1] = line end
  return out
end

local function write_lines(path, list)
  shell.write_file(path, table.concat(list, "\n") .. "\n")
end

-- python3 checks every record line: both CRC-32 fields, the key in plain text and the JSON body.
local function python_verify(path)
  local script = [[
import json, sys, zlib
lines = open(sys.argv[1], "rb").read().split(b"\n")
assert lines[-1] == b"", "no final newline"
assert lines[0].startswith(b"maintenance-report-ledger 2 ")
for line in lines[1:-1]:
    crc, rest = line.split(b" ", 1)
    assert int(crc, 16) == zlib.crc32(rest), line
    key_crc, rest2 = rest.split(b" ", 1)
    quoted, body = rest2.split(b'" ', 1)
    quoted += b'"'
    assert int(key_crc, 16) == zlib.crc32(quoted), line
    assert json.loads(body)["key"] == json.loads(quoted)
print(len(lines) - 2)
]]
  return tonumber(shell.run("python3 -c " .. q(script) .. " " .. q(path)))
end

local function order(L, fields, order_id, final)
  local d = assert(L:begin(fields))
  assert.are.equal("order", d.action)
  assert(d.claim:intent())
  if order_id then assert(d.claim:placed(order_id, "REQ-" .. order_id)) end
  if final then assert(d.claim:final("ready", { vin = fields.vin, records = {} })) end
  d.claim:release()
end

describe("ledger crc32", function()
  it("agrees with python3's zlib.crc32 on the check string, binary bytes and UTF-8", function()
    local crc32 = require "maintenance_report.ledger.crc32"
    local samples = { "123456789", "", "\0\255\128\1", "京A12345\tEA888", string.rep("ledger", 500) }
    local hex = {}
    for i, s in ipairs(samples) do
      samples[i] = s:gsub(".", function(c) return string.format("%02x", c:byte()) end)
      hex[i] = crc32.hex(s)
    end
    local expected = shell.run("python3 -c " .. q("import sys, zlib\nfor h in sys.argv[1:]: "
      .. "print('%08x' % zlib.crc32(bytes.fromhex(h[1:])))") .. " x" .. table.concat(samples, " x"))
    assert.are.equal(expected, table.concat(hex, "\n"))
    assert.are.equal("cbf43926", hex[1]) -- the CRC-32/ISO-HDLC check value
  end)
end)

describe("file ledger", function()
  local dir, path
  before_each(function()
    dir = tmp.dir()
    path = dir .. "/state/ledger"
  end)
  after_each(function() tmp.remove(dir) end)

  it("creates a 0700 directory and a 0600 file whose lines python's zlib.crc32 accepts", function()
    local L = assert(ledger.file(path))
    order(L, VEHICLE, "O-1", true)
    order(L, THIRD, nil)
    assert.are.equal("700", shell.run("stat -c %a " .. q(dir .. "/state")))
    assert.are.equal("600", shell.run("stat -c %a " .. q(path)))
    assert.are.equal(4, python_verify(path))
    L:close()
  end)

  it("survives a re-open with every state and version", function()
    local L = assert(ledger.file(path))
    order(L, VEHICLE, "O-1", true)
    order(L, OTHER, "O-2")
    L:close()
    local again = assert(ledger.file(path))
    local a, b = again:get(VEHICLE), again:get(OTHER)
    assert.are.same({ "ready", "O-1", 3, "placed", "O-2", 2 }, { a.state, a.order_id, a.version, b.state,
      b.order_id, b.version })
    assert.are.same({ vin = VEHICLE.vin, records = {} }, a.report)
  end)

  describe("between processes", function()
    it("gives exactly one of 10 concurrent begins from 3 processes an order; the 9 others poll it", function()
      local markers = dir .. "/markers"
      shell.run("mkdir " .. q(markers))
      assert(ledger.file(path)):close()
      local children = {}
      for i, tasks in ipairs{ 4, 3, 3 } do
        children[i] = assert(io.popen(("%s spec/helpers/ledger_child.lua race %s %s %d 9 2>&1")
          :format(LUA, q(path), q(markers), tasks)))
      end
      local counts, outputs = {}, {}
      for i, child in ipairs(children) do
        outputs[i] = child:read("*a")
        child:close()
        for action, order_id in outputs[i]:gmatch("ACTION (%S+) (%S*)") do
          local k = action .. ":" .. order_id
          counts[k] = (counts[k] or 0) + 1
        end
      end
      assert.are.same({ ["order:"] = 1, ["poll:RACE-1"] = 9 }, counts, table.concat(outputs, "\n"))
      assert.are.equal(9, #assert(shell.run("ls " .. q(markers))):gsub("%s+$", ""):gsub("[^\n]+", "x")
        :gsub("\n", ""))
      local entry = assert(assert(ledger.file(path)):get(VEHICLE))
      assert.are.same({ "placed", "RACE-1" }, { entry.state, entry.order_id })
    end)

    for _, stage in ipairs{ "intent", "armed", "placed" } do
      it("frees the key at once when a holder is SIGKILLed after writing " .. stage, function()
        local child = assert(io.popen(("%s spec/helpers/ledger_child.lua hold %s %s 2>&1"):format(LUA, q(path), stage)))
        local line = child:read("*l")
        local pid = tonumber(tostring(line):match("^HELD (%d+)$"))
        assert(pid, line)
        local L = assert(ledger.file(path))
        local d, err = L:begin(VEHICLE)
        assert.is_nil(d)
        assert.are.equal("ledger_busy", err.kind) -- the child really holds it
        shell.run("kill -9 " .. pid)
        child:close()
        d = assert(L:begin(VEHICLE))
        if stage == "intent" then -- killed before arming: the request never left
          assert.are.same({ "order", "not_placed" }, { d.action, d.claim.entry.state })
          d.claim:release()
        elseif stage == "armed" then
          assert.are.same({ "unknown", "unknown" }, { d.action, d.entry.state })
        else
          assert.are.same({ "poll", "KILL-1" }, { d.action, d.order_id })
          d.claim:release()
        end
      end)
    end
  end)

  describe("damage", function()
    -- Lines: 1 header, 2-3 VEHICLE intent+placed, 4-6 OTHER intent+placed+ready, 7 THIRD intent.
    local function populate()
      local L = assert(ledger.file(path))
      order(L, VEHICLE, "O-1")
      order(L, OTHER, "O-2", true)
      order(L, THIRD, nil)
      L:close()
    end

    local function flip(line_no, at_pattern)
      local list = lines(path)
      local line = list[line_no]
      local i = line:find(at_pattern) or error("pattern not found")
      list[line_no] = line:sub(1, i - 1) .. string.char((line:byte(i) + 1) % 256) .. line:sub(i + 1)
      write_lines(path, list)
    end

    it("makes the key of a damaged middle record unknown; other keys keep their state", function()
      populate()
      flip(3, "O%-1") -- VEHICLE's placed record: its order id
      local L = assert(ledger.file(path))
      local d = assert(L:begin(VEHICLE, { reuse = 1e9 }))
      assert.are.same({ "unknown", "unknown" }, { d.action, d.entry.state })
      assert.matches("line 3 is damaged", d.entry.reason.message, 1, true)
      d = assert(L:begin(OTHER, { reuse = 1e9 }))
      assert.are.same({ "reuse", "O-2" }, { d.action, d.entry.order_id })
      local report = assert(L:check())
      assert.is_false(report.ok)
      assert.are.same({ 3 }, { report.damaged[1].line })
      assert.are.same({ ledger.key(VEHICLE) }, report.damaged[1].keys)
      assert.is_nil(report.unreadable_line)
    end)

    it("refuses every decision when a damaged record names no readable key, until the line is removed",
      function()
        populate()
        flip(4, "LSVAU2180N2183295") -- OTHER's intent: inside the quoted key
        local L = assert(ledger.file(path))
        for _, fields in ipairs{ VEHICLE, OTHER, THIRD, { vin = "LSVAU2180N2183297" } } do
          local d, err = L:begin(fields, { retry_unknown = true })
          assert.is_nil(d)
          assert.are.same({ "ledger", 4 }, { err.kind, err.line })
          assert.matches("line 4", tostring(err), 1, true)
        end
        assert.are.equal(4, assert(L:check()).unreadable_line)
        assert.is_nil(L:compact())
        local list = lines(path)
        table.remove(list, 4) -- the user's repair, after checking the vendor's order list
        write_lines(path, list)
        local d = assert(assert(ledger.file(path)):begin(OTHER, { reuse = 1e9 }))
        assert.are.equal("reuse", d.action)
      end)

    it("ignores a torn last line and drops it before the next write", function()
      populate()
      local torn = file.encode_line(ledger.key(VEHICLE), { key = ledger.key(VEHICLE), state = "ready", version = 3 })
      shell.write_file(path, read(path) .. torn:sub(1, 40))
      local L = assert(ledger.file(path))
      assert.are.equal(40, assert(L:check()).torn_tail)
      local d = assert(L:begin(VEHICLE))
      assert.are.same({ "poll", "O-1" }, { d.action, d.order_id })
      assert(d.claim:final("ready", {}))
      d.claim:release()
      local report = assert(L:check())
      assert.are.same({ true, 0 }, { report.ok, report.torn_tail })
      assert.are.equal(4, python_verify(path)) -- compacted to one line per key, then the final
      assert.are.equal("ready", assert(assert(ledger.file(path)):get(VEHICLE)).state)
    end)
  end)

  describe("compaction", function()
    it("keeps every key's latest state, and a second open store follows the new file", function()
      local L = assert(ledger.file(path))
      local watcher = assert(ledger.file(path))
      order(L, VEHICLE, "O-1", true)
      order(L, OTHER, "O-2")
      order(L, THIRD, nil)
      local before = assert(L:list())
      assert(L:compact())
      assert.are.equal(3, python_verify(path))
      assert.are.same(before, assert(watcher:list()))
      assert.are.same(before, assert(assert(ledger.file(path)):list()))
      local d = assert(watcher:begin(OTHER))
      assert(d.claim:final("ready", {})) -- the version check passes across the rewrite
      d.claim:release()
      assert.are.equal(3, assert(L:get(OTHER)).version)
    end)

    it("runs by itself when records outnumber keys", function()
      local L = assert(ledger.file(path, { compact_min = 10, compact_ratio = 4 }))
      for _ = 1, 10 do order(L, VEHICLE, nil, true) end
      assert.is_true(#lines(path) < 12)
      assert.are.equal("ready", assert(L:get(VEHICLE)).state)
      assert.are.equal(20, assert(L:get(VEHICLE)).version)
    end)
  end)

  describe("durability", function()
    it("appends durably once per write, and a failed append is reported and leaves the old state", function()
      local core = require "maintenance_report.core"
      local calls, fail = 0, false
      local L = assert(ledger.file(path, { append = function(p, data)
        calls = calls + 1
        if fail then return nil, p .. ": No space left on device" end
        return core.append_durable(p, data)
      end }))
      local created = calls
      order(L, VEHICLE, "O-1")
      assert.are.equal(created + 2, calls)
      fail = true
      local d = assert(L:begin(VEHICLE))
      local ok, err = d.claim:final("ready", {})
      assert.is_nil(ok)
      assert.are.same({ "ledger", "O-1" }, { err.kind, err.order_id })
      assert.are.equal("placed", assert(L:get(VEHICLE)).state)
      d.claim:release()
      d = assert(L:begin(OTHER))
      ok = d.claim:intent()
      assert.is_nil(ok)
      d.claim:release()
      assert.is_nil(L:get(OTHER))
      local reopened = assert(ledger.file(path))
      assert.are.equal("placed", assert(reopened:get(VEHICLE)).state)
      assert.is_nil(reopened:get(OTHER))
    end)
  end)
end)
