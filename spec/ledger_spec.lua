-- ledger:begin's decision for every state, on the memory store with a virtual clock.
local ledger = require "maintenance_report.ledger"
local memory = require "maintenance_report.ledger.memory"

local VEHICLE = { vin = "LSVAU2180N2183294", engine_number = "EA888", plate_number = "京A12345" }

-- A ledger on a virtual clock: clock.now (epoch) and clock.mono advance only when told.
local function virtual()
  local clock = { now = 1000, mono = 0 }
  local L = ledger.new{ store = memory.new{ monotime = function() return clock.mono end },
    now = function() return clock.now end, monotime = function() return clock.mono end,
    sleep = function(s) clock.mono = clock.mono + s end }
  return L, clock
end

local function order_placed(L, order_id)
  local d = assert(L:begin(VEHICLE))
  assert.are.equal("order", d.action)
  assert(d.claim:intent())
  assert(d.claim:placed(order_id, "REQ-" .. order_id))
  d.claim:release()
end

describe("ledger.key", function()
  it("joins the normalized parts with tabs, missing parts empty", function()
    assert.are.equal("LSVAU2180N2183294\tEA888\t京A12345", ledger.key(VEHICLE))
    assert.are.equal("LSVAU2180N2183294\t\t", ledger.key{ vin = "LSVAU2180N2183294", plate_number = "" })
    assert.are.same({ "LSVAU2180N2183294", "EA888", "京A12345" }, { ledger.split_key(ledger.key(VEHICLE)) })
  end)

  it("raises for a missing VIN and for parts that could break the key or the file format", function()
    assert.has_error(function() ledger.key{ plate_number = "京A12345" } end)
    assert.has_error(function() ledger.key{ vin = "A\tB" } end)
    assert.has_error(function() ledger.key{ vin = "A", engine_number = 'x"y' } end)
    assert.has_error(function() ledger.key{ vin = "A", plate_number = "京A 12345" } end)
    assert.has_error(function() ledger.key("LSVAU2180N2183294") end)
  end)
end)

describe("ledger:begin", function()
  it("orders a new key, then polls the placed order instead of ordering again", function()
    local L = virtual()
    order_placed(L, "O-1")
    local d = assert(L:begin(VEHICLE))
    assert.are.same({ "poll", "O-1", "placed" }, { d.action, d.order_id, d.entry.state })
    assert.is_table(d.claim)
    d.claim:release()
    local entry = assert(L:get(VEHICLE))
    assert.are.same({ "placed", "O-1", "REQ-O-1", 2 }, { entry.state, entry.order_id, entry.request_id, entry.version })
  end)

  it("tells a takeover (the holder died while polling) from a resume (it stopped and released)", function()
    local L = ledger.memory{ track_takeovers = true }
    order_placed(L, "O-1")
    local d = assert(L:begin(VEHICLE))
    assert.are.same({ "poll", false }, { d.action, d.taken_over })
    assert(d.claim:polling())
    -- this holder dies: its claim ends without a release (a shm ttl, a Redis PX, a dropped flock)
    L.store:release(d.claim.key, d.claim.token)
    d = assert(L:begin(VEHICLE))
    assert.are.same({ "poll", true }, { d.action, d.taken_over })
    d.claim:release()
  end)

  it("reuses a final report younger than `reuse` seconds, and orders again when older, when fresh, or at 0",
    function()
      local L, clock = virtual()
      order_placed(L, "O-1")
      local d = assert(L:begin(VEHICLE))
      assert(d.claim:final("ready", { vin = VEHICLE.vin, records = {} }))
      d.claim:release()
      clock.now = clock.now + 59
      d = assert(L:begin(VEHICLE, { reuse = 60 }))
      assert.are.same({ "reuse", "ready", VEHICLE.vin, "O-1" }, { d.action, d.entry.state, d.entry.report.vin,
        d.entry.order_id })
      assert.is_nil(d.claim)
      d = assert(L:begin(VEHICLE, { reuse = 60, fresh = true }))
      assert.are.equal("order", d.action)
      d.claim:release()
      d = assert(L:begin(VEHICLE, { reuse = 0 }))
      assert.are.equal("order", d.action)
      d.claim:release()
      clock.now = clock.now + 1 -- 60 s old
      d = assert(L:begin(VEHICLE, { reuse = 60 }))
      assert.are.equal("order", d.action)
      d.claim:release()
      assert.are.equal(1, assert(L:stats()).reused)
    end)

  it("treats no_records as final too", function()
    local L = virtual()
    order_placed(L, "O-1")
    local d = assert(L:begin(VEHICLE))
    assert(d.claim:final("no_records", {}))
    d.claim:release()
    assert.are.equal("reuse", assert(L:begin(VEHICLE, { reuse = 10 })).action)
  end)

  it("orders again after not_placed, keeping why it was not placed until then", function()
    local L = virtual()
    local d = assert(L:begin(VEHICLE))
    assert(d.claim:intent())
    assert(d.claim:not_placed{ kind = "network", message = "connection refused", sent = false, secret = "s" })
    d.claim:release()
    local entry = assert(L:get(VEHICLE))
    assert.are.same({ kind = "network", message = "connection refused" }, entry.reason)
    d = assert(L:begin(VEHICLE))
    assert.are.equal("order", d.action)
    d.claim:release()
  end)

  it("stops at unknown unless retry_unknown is set", function()
    local L = virtual()
    local d = assert(L:begin(VEHICLE))
    assert(d.claim:intent())
    assert(d.claim:unknown{ kind = "timeout", message = "no answer", request_id = "R1", http_status = 504 })
    d.claim:release()
    d = assert(L:begin(VEHICLE))
    assert.are.same({ "unknown", "timeout", "R1", 504 }, { d.action, d.entry.reason.kind, d.entry.reason.request_id,
      d.entry.reason.http_status })
    assert.is_nil(d.claim)
    d = assert(L:begin(VEHICLE, { retry_unknown = true }))
    assert.are.equal("order", d.action)
    d.claim:release()
  end)

  it("reads an unarmed intent of this boot whose writer is gone as not placed: the request never left", function()
    local L = virtual()
    local d = assert(L:begin(VEHICLE))
    assert(d.claim:intent())
    d.claim:release() -- gone before arming, that is, before the request's first byte
    d = assert(L:begin(VEHICLE))
    assert.are.equal("order", d.action)
    assert.are.equal("not_placed", d.claim.entry.state)
    d.claim:release()
  end)

  it("reads an unarmed intent from another boot of the machine as unknown (an unsynced arm may be lost)", function()
    local L = virtual()
    local d = assert(L:begin(VEHICLE))
    assert(d.claim:intent())
    d.claim:release()
    L.store.entries[ledger.key(VEHICLE)].boot_id = "another-boot"
    d = assert(L:begin(VEHICLE))
    assert.are.same({ "unknown", "unknown" }, { d.action, d.entry.state })
  end)

  it("reads an armed intent whose writer let go of the claim as unknown, and records that", function()
    local L = virtual()
    local d = assert(L:begin(VEHICLE))
    assert(d.claim:intent())
    assert(d.claim:arm())
    d.claim:release() -- the writer is gone without an outcome
    d = assert(L:begin(VEHICLE, { reuse = 1e6, fresh = false }))
    assert.are.same({ "unknown", "unknown" }, { d.action, d.entry.state })
    assert.are.equal("unknown", assert(L:get(VEHICLE)).state)
    d = assert(L:begin(VEHICLE, { retry_unknown = true }))
    assert.are.equal("order", d.action)
    d.claim:release()
  end)

  it("keeps the order id when a placed order turns unknown", function()
    local L = virtual()
    order_placed(L, "O-7")
    local d = assert(L:begin(VEHICLE))
    assert(d.claim:unknown{ kind = "protocol", message = "bad answer" })
    d.claim:release()
    local entry = assert(L:get(VEHICLE))
    assert.are.same({ "unknown", "O-7" }, { entry.state, entry.order_id })
  end)

  it("refuses a second holder with ledger_busy when wait is 0, without sleeping", function()
    local L = virtual()
    local first = assert(L:begin(VEHICLE))
    local slept = false
    local d, err = L:begin(VEHICLE, { sleep = function() slept = true end })
    assert.is_nil(d)
    assert.are.equal("ledger_busy", err.kind)
    assert.is_false(slept)
    assert.matches("LSVAU2180N2183294 EA888 京A12345", tostring(err), 1, true)
    first.claim:release()
  end)

  it("gives up after `wait` seconds of the waiter's own sleep", function()
    local L, clock = virtual()
    local first = assert(L:begin(VEHICLE))
    local sleeps = 0
    local function sleep(s) sleeps = sleeps + 1 clock.mono = clock.mono + s end
    local d, err = L:begin(VEHICLE, { wait = 1, sleep = sleep })
    assert.is_nil(d)
    assert.are.equal("ledger_busy", err.kind)
    assert.is_true(clock.mono >= 1 and clock.mono < 1.01)
    assert.is_true(sleeps > 1 and sleeps < 50)
    first.claim:release()
  end)

  it("lets two tasks race for one key: one orders, the other waits and then polls the same order", function()
    local L, clock = virtual()
    local actions = {}
    local function task(name, work)
      return coroutine.create(function()
        local d = assert(L:begin(VEHICLE, { wait = 30, sleep = function(s)
          clock.mono = clock.mono + s
          coroutine.yield()
        end }))
        actions[#actions + 1] = name .. ":" .. d.action .. (d.order_id and ":" .. d.order_id or "")
        work(d)
        d.claim:release()
      end)
    end
    local a = task("a", function(d)
      assert(d.claim:intent())
      coroutine.yield() -- the request is in flight: b must wait, not order
      assert(d.claim:placed("O-9"))
    end)
    local b = task("b", function() end)
    assert(coroutine.resume(a))
    assert(coroutine.resume(b))
    assert.are.same({ "a:order" }, actions)
    assert(coroutine.resume(b)) -- still waiting
    assert.are.same({ "a:order" }, actions)
    assert(coroutine.resume(a))
    while coroutine.status(b) ~= "dead" do assert(coroutine.resume(b)) end
    assert.are.same({ "a:order", "b:poll:O-9" }, actions)
  end)

  it("raises for a claim used out of order", function()
    local L = virtual()
    order_placed(L, "O-1")
    local d = assert(L:begin(VEHICLE))
    assert.has_error(function() d.claim:intent() end)
    assert.has_error(function() d.claim:not_placed{ kind = "network", message = "x" } end)
    assert.has_error(function() d.claim:final("done", {}) end)
    d.claim:release()
    assert.has_error(function() d.claim:final("ready", {}) end)
    d = assert(L:begin({ vin = "LSVAU2180N2183295" }))
    assert.has_error(function() d.claim:placed("O-2") end)
    assert.has_error(function() d.claim:placed(nil) end)
    d.claim:release()
  end)

  it("checks its options: unknown ones raise, out-of-range ones return invalid_input", function()
    local L = virtual()
    assert.has_error(function() L:begin(VEHICLE, { reuse_seconds = 1 }) end)
    assert.has_error(function() L:begin(VEHICLE, { wait = "1" }) end)
    local d, err = L:begin(VEHICLE, { reuse = -1 })
    assert.is_nil(d)
    assert.are.equal("invalid_input", err.kind)
    assert.are.equal("order", assert(L:begin(VEHICLE)).action) -- the refused call held nothing
  end)
end)

describe("ledger:begin when the store fails", function()
  local function failing(overrides)
    local store = memory.new()
    for name, fn in pairs(overrides) do store[name] = fn end
    return ledger.new{ store = store }
  end

  it("returns a ledger error, never order, when the claim or the read fails", function()
    local d, err = failing{ claim = function() return nil, "disk on fire" end }:begin(VEHICLE)
    assert.is_nil(d)
    assert.are.same({ "ledger", true }, { err.kind, tostring(err):find("disk on fire", 1, true) ~= nil })
    local released = 0
    local L = failing{ read = function() return nil, "unreadable" end,
      release = function() released = released + 1 return true end }
    d, err = L:begin(VEHICLE)
    assert.is_nil(d)
    assert.are.equal("ledger", err.kind)
    assert.are.equal(1, released)
  end)

  it("fails intent when the write fails, so the caller never sends", function()
    local L = failing{ cas = function() return nil, "no space left on device" end }
    local d = assert(L:begin(VEHICLE))
    local ok, err = d.claim:intent()
    assert.is_nil(ok)
    assert.are.equal("ledger", err.kind)
    assert.is_nil(L:get(VEHICLE))
  end)

  it("puts the order id into the error when placed cannot be recorded", function()
    local store = memory.new()
    local L = ledger.new{ store = store }
    local d = assert(L:begin(VEHICLE))
    assert(d.claim:intent())
    store.cas = function() return nil, "disk full" end
    local ok, err = d.claim:placed("O-5", "R-5")
    assert.is_nil(ok)
    assert.are.same({ "ledger", "O-5" }, { err.kind, err.order_id })
    assert.matches("O-5", tostring(err), 1, true)
  end)

  it("refuses an entry in a state it does not know", function()
    local store = memory.new()
    store.entries[ledger.key(VEHICLE)] = { key = ledger.key(VEHICLE), state = "charged?", version = 1 }
    local d, err = ledger.new{ store = store }:begin(VEHICLE)
    assert.is_nil(d)
    assert.are.equal("ledger", err.kind)
  end)
end)

describe("ledger list, stats and forget", function()
  it("lists by update time, counts states and orders, forgets only a free key", function()
    local L, clock = virtual()
    order_placed(L, "O-1")
    clock.now = clock.now + 5
    local other = { vin = "LSVAU2180N2183295" }
    local d = assert(L:begin(other))
    assert(d.claim:intent())
    assert(d.claim:not_placed{ kind = "tls", message = "handshake failed" })
    local list = assert(L:list())
    assert.are.same({ "placed", "not_placed" }, { list[1].state, list[2].state })
    local stats = assert(L:stats())
    assert.are.same({ 2, 1, 1, 1, 0 }, { stats.entries, stats.orders, stats.by_state.placed,
      stats.by_state.not_placed, stats.by_state.unknown })
    local ok, err = L:forget(other)
    assert.is_nil(ok)
    assert.are.equal("ledger_busy", err.kind)
    d.claim:release()
    assert.is_true(L:forget(other))
    assert.is_nil(L:get(other))
    assert.are.equal(1, #assert(L:list()))
  end)
end)
