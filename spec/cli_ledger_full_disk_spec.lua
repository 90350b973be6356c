-- A full disk at the moment the order id is written: the ledger lives on a
-- 64 KiB tmpfs, padded so that the intent records (written and armed) still fit
-- in the file's last allocated page but the `placed` record does not, with the rest of the
-- tmpfs filled. The order goes out and is answered; the CLI must still print
-- the order id (a real one: `report ID` reads it), exit non-zero with a clear
-- message, and re-runs must neither truncate the ledger nor order again (the
-- intent record makes the vehicle unknown). Needs root (mount); pending otherwise.
local sandbox = require "maintenance_report_sandbox"
local cli = require "helpers.cli_run"
local ledger = require "maintenance_report.ledger"

local q = cli.quote
local PAGE = 4096

local function sh_ok(command)
  local a, _, c = os.execute(command)
  if type(a) == "number" then return a == 0 end
  return a == true and (c == nil or c == 0)
end

local function size(path)
  return #(cli.read(path) or "")
end

local function lines(path)
  local out = {}
  for line in (cli.read(path) or ""):gmatch("[^\n]*\n") do out[#out + 1] = line end
  return out
end

describe("a full disk when the order id is written to the ledger", function()
  local sb, env, disk
  lazy_setup(function()
    sb = assert(sandbox.start{ pending_polls = 0, secret_key = "full-disk-spec-key" })
    env = cli.sandbox_env(sb)
    disk = cli.tmpdir() .. "/disk"
    assert(sh_ok("mkdir -p " .. q(disk)))
    if not sh_ok("mount -t tmpfs -o size=64k tmpfs " .. q(disk) .. " 2>/dev/null") then disk = nil end
  end)
  lazy_teardown(function()
    if disk then os.execute("umount " .. q(disk)) end
    if sb then sb:stop() end
    cli.cleanup()
  end)

  it("prints the order id, exits 8, and a re-run never truncates the ledger or orders again", function()
    if not disk then
      pending("cannot mount a tmpfs here (needs root)")
      return
    end
    local vin = sandbox.scenario_vin("normal", 4242)
    -- The sizes of the intent and placed records, from a run on an ordinary disk
    -- (same VIN length, 32-hex ids, 10-digit times: the same sizes).
    local scratch = cli.tmpdir() .. "/ledger"
    local probe = cli.run({ "order", "--vin", sandbox.scenario_vin("normal", 4243), "--ledger", scratch }, env)
    assert.are.equal(0, probe.code, probe.err)
    local probe_lines = lines(scratch)
    assert.are.equal(4, #probe_lines) -- header, intent, its arming, placed
    -- everything written before the request left, and the record of its answer
    local intent_len, placed_len = #probe_lines[2] + #probe_lines[3], #probe_lines[4]

    -- Pad the ledger so that the intent and its arming end inside the first page and the placed
    -- record cannot.
    local path = disk .. "/ledger"
    local L = assert(ledger.file(path))
    local target = PAGE - intent_len - math.floor(placed_len / 2)
    local function pad(serial, owner_len)
      local d = assert(L:begin({ vin = sandbox.scenario_vin("normal", serial) }, { owner = ("x"):rep(owner_len) }))
      assert(d.claim:intent())
      d.claim:release()
    end
    local before = size(path)
    pad(1, 1000)
    local base = size(path) - before - 1000
    pad(2, target - size(path) - base)
    L:close()
    assert.are.equal(target, size(path))
    -- Fill the rest of the tmpfs.
    os.execute("dd if=/dev/zero of=" .. q(disk .. "/fill") .. " bs=1024 2>/dev/null")
    assert.is_false(sh_ok("(dd if=/dev/zero of=" .. q(disk .. "/probe") .. " bs=4096 count=1) 2>/dev/null"),
      "the tmpfs is not full")
    os.remove(disk .. "/probe")

    local args = { "query", "--vin", vin, "--ledger", path, "--poll-interval", "0.05" }
    local r = cli.run(args, env)
    assert.are.equal(8, r.code, r.err)
    assert.are.equal(1, sb:stats().orders_by_vin[vin], "the order was sent once")
    local order_id = r.err:match("order (%x+) was placed, but the ledger could not record it")
    assert.truthy(order_id, r.err)
    assert.are.equal(32, #order_id)
    assert.truthy(r.err:find("keep this id", 1, true), r.err)
    -- a real order: reading it is free and works
    local read = cli.run({ "report", order_id }, env)
    assert.are.equal(0, read.code, read.err)

    -- Re-runs while the disk is still full: nothing sent, nothing truncated.
    local after_first = cli.read(path)
    for _, again_args in ipairs{ args, { "order", "--vin", vin, "--ledger", path } } do
      local again = cli.run(again_args, env)
      assert.are_not.equal(0, again.code, again.err)
      assert.are.equal(1, sb:stats().orders_by_vin[vin], "a re-run ordered again")
      assert.are.equal(after_first, cli.read(path):sub(1, #after_first), "the ledger was truncated")
    end

    -- With space again: the vehicle is unknown (may have been charged), never ordered by itself.
    os.remove(disk .. "/fill")
    local unknown = cli.run(args, env)
    assert.are.equal(7, unknown.code, unknown.err)
    assert.are.equal(1, sb:stats().orders_by_vin[vin])
    local show = cli.run({ "ledger", "show", vin, "--ledger", path, "--format", "json" }, env)
    assert.are.equal(0, show.code, show.err)
    assert.are.equal("unknown", cli.json(show.out)[1].state)
  end)
end)
