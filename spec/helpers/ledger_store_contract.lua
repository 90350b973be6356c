-- The store contract every ledger store must meet (memory, file, shm), as
-- plain functions so that it runs under busted and inside nginx alike.
-- Each case gets open() → a fresh store and open_other() → a second handle on
-- the same data (another process's view: a second file store instance, the
-- same dict), and raises on the first broken promise.
local contract = {}

local KEY = "LSVAU2180N2183294\tEA888\t京A12345"
local OTHER_KEY = "LSVAU2180N2183294\t\t"

local function check(cond, message)
  if not cond then error("contract: " .. message, 2) end
end

local function entry(state, extra)
  local e = { key = KEY, vin = "LSVAU2180N2183294", engine_number = "EA888", plate_number = "京A12345",
    state = state, updated_at = 100 }
  for k, v in pairs(extra or {}) do e[k] = v end
  return e
end

contract.cases = {
  { "read of an absent key is nil with no error", function(env)
    local s = env.open()
    local value, err = s:read(KEY)
    check(value == nil and err == nil, "expected nil, nil")
  end },
  { "a claim is exclusive between tokens and handles; its holder may claim again", function(env)
    local s, t = env.open(), env.open_other()
    check(s:claim(KEY, "a", 60) == true, "first claim")
    check(s:claim(KEY, "b", 60) == false, "second token on the same handle must be refused")
    check(t:claim(KEY, "c", 60) == false, "second handle must be refused")
    check(s:claim(KEY, "a", 60) == true, "the holder refreshes")
    check(s:claim(OTHER_KEY, "b", 60) == true, "another key is independent")
  end },
  { "release is compare-and-delete", function(env)
    local s, t = env.open(), env.open_other()
    assert(s:claim(KEY, "a", 60))
    s:release(KEY, "b")
    t:release(KEY, "b")
    check(t:claim(KEY, "c", 60) == false, "a wrong token must not release")
    s:release(KEY, "a")
    check(t:claim(KEY, "c", 60) == true, "after release another handle may claim")
  end },
  { "cas writes only for the claim holder and the expected version, and bumps the version", function(env)
    local s, t = env.open(), env.open_other()
    local e = entry("intent")
    check(s:cas(KEY, "a", nil, e) == false, "cas without a claim must fail")
    check(s:read(KEY) == nil, "a refused cas must write nothing")
    assert(s:claim(KEY, "a", 60))
    check(t:cas(KEY, "z", nil, e) == false, "cas by a token that does not hold the claim must fail")
    check(s:cas(KEY, "a", 1, e) == false, "expected version 1 on an absent key must fail")
    check(s:cas(KEY, "a", nil, e) == true, "cas by the holder")
    check(e.version == 1, "the written entry gets version 1")
    local got = t:read(KEY)
    check(got and got.state == "intent" and got.version == 1 and got.key == KEY, "the other handle reads it")
    check(got.plate_number == "京A12345", "UTF-8 survives")
    local ok, current = s:cas(KEY, "a", nil, entry("placed"))
    check(ok == false and current and current.version == 1, "a stale version fails and returns the current entry")
    check(s:cas(KEY, "a", 1, entry("placed", { order_id = "O1" })) == true, "the next version")
    got = t:read(KEY)
    check(got.state == "placed" and got.order_id == "O1" and got.version == 2, "version 2 is read back")
  end },
  { "a version read back (a float after JSON in Lua 5.3+) is the version the next cas expects", function(env)
    local s, t = env.open(), env.open_other()
    assert(s:claim(KEY, "a", 60))
    assert(s:cas(KEY, "a", nil, entry("intent")))
    local got = t:read(KEY)
    check(s:cas(KEY, "a", got.version, entry("placed", { order_id = "O1" })) == true,
      "cas with version " .. got.version)
    got = t:read(KEY)
    check(s:cas(KEY, "a", got.version, entry("ready")) == true, "cas with version " .. got.version)
    check(t:read(KEY).version == 3, "three writes")
  end },
  { "entries are copies: changing what read returned changes nothing stored", function(env)
    local s = env.open()
    assert(s:claim(KEY, "a", 60))
    local e = entry("ready", { report = { vin = "X", records = { { mileage = 1 } } } })
    assert(s:cas(KEY, "a", nil, e))
    e.report.vin = "changed by the caller"
    local got = s:read(KEY)
    got.report.records[1].mileage = 999
    got = s:read(KEY)
    check(got.report.vin == "X" and got.report.records[1].mileage == 1, "stored entry changed through a reference")
  end },
  { "list returns every entry; delete needs the claim unless forced", function(env)
    local s, t = env.open(), env.open_other()
    assert(s:claim(KEY, "a", 60))
    assert(s:claim(OTHER_KEY, "a", 60))
    assert(s:cas(KEY, "a", nil, entry("ready")))
    local other = entry("not_placed", { key = OTHER_KEY, engine_number = "", plate_number = "" })
    assert(s:cas(OTHER_KEY, "a", nil, other))
    local list = assert(t:list())
    check(#list == 2, "list must hold 2 entries, got " .. #list)
    check(s:delete(KEY, "b") == false, "delete with a token that does not hold the claim must fail")
    check(s:read(KEY) ~= nil, "a refused delete must keep the entry")
    check(s:delete(KEY, "a") == true, "delete by the holder")
    check(t:read(KEY) == nil, "the other handle no longer sees it")
    check(#assert(t:list()) == 1, "list shrinks")
    check(t:delete(OTHER_KEY, nil) == true, "a forced delete")
    check(#assert(s:list()) == 0, "list is empty")
  end },
  { "budget reservations are all-or-nothing, exact in fen, shared between handles", function(env)
    local s, t = env.open(), env.open_other()
    local buckets = { { name = "day:2026-12-01", cap = 3400, ttl = 100 },
      { name = "month:2026-12", cap = 5000, ttl = 100 } }
    check(s:reserve(buckets, 1700) == true, "first reservation")
    check(t:reserve(buckets, 1700) == true, "second reservation, through the other handle")
    local ok, full = s:reserve(buckets, 1700)
    check(ok == false and full.index == 1 and full.spent == 3400, "the full day bucket refuses, and says so")
    local sums = assert(t:spent{ "day:2026-12-01", "month:2026-12", "day:2026-12-02" })
    check(sums["month:2026-12"] == 3400, "a refused reservation adds nothing to any bucket, got "
      .. tostring(sums["month:2026-12"]))
    check(sums["day:2026-12-02"] == 0, "an unused bucket has spent 0")
    check(s:unreserve({ { name = "day:2026-12-01" }, { name = "month:2026-12" } }, 1700) == true, "unreserve")
    check(t:reserve(buckets, 1700) == true, "room again after a release")
    ok, full = s:reserve(buckets, 1700)
    check(ok == false and full.index == 1, "full again")
    check(s:unreserve({ { name = "day:2026-12-09" } }, 1700) == true, "unreserving an empty bucket")
    check(assert(t:spent{ "day:2026-12-09" })["day:2026-12-09"] == 0, "a bucket never goes below 0")
  end },
}

--- Runs every case; returns { { name =, ok =, message = } }.
function contract.run(env)
  local results = {}
  for _, case in ipairs(contract.cases) do
    if env.reset then env.reset() end
    local ok, err = pcall(case[2], env)
    if env.cleanup then env.cleanup() end
    results[#results + 1] = { name = case[1], ok = ok, message = ok and nil or tostring(err) }
  end
  return results
end

return contract
