-- batch.execute on a real scheduler with a fake client (no HTTP) and a fake
-- clock: a bug inside one VIN's task is reported for that row only, through
-- the scheduler's public handle API; a 429 is retried after the client's one
-- backoff formula (full jitter: uniform in [0, retry_base) for the first retry);
-- and a row's plan comes from its ledger entry, read without changing it.
local batch = require "maintenance_report.cli.batch"
local cli = require "helpers.cli_run"
local defaults = require "maintenance_report.defaults"
local errors = require "maintenance_report.errors"
local ledger = require "maintenance_report.ledger"
local scheduler = require "maintenance_report.scheduler"

-- A client whose start_query runs `query(vin, now)` as a task, on a clock that only moves when slept.
local function fake_client(query)
  local t = 0
  local function now() return t end
  local function sleep(s) t = t + s end
  local sched = scheduler.new{
    transport = { submit = function() error("no HTTP in this spec") end, perform = function() return {} end },
    now = now, sleep = sleep,
  }
  local settings = { now = now, sleep = sleep, retry_base = defaults.CLIENT.retry_base,
    retry_max_delay = defaults.CLIENT.retry_max_delay, random = math.random }
  return {
    settings = function() return settings end,
    start_query = function(_, args)
      return sched:spawn(function() return query(args.vin, t) end, args.on_done)
    end,
    step = function(_, timeout) return sched:step(timeout) end,
  }
end

local function run(client, vins)
  local rows, lines, said = {}, {}, {}
  for i, vin in ipairs(vins) do rows[i] = { vin = vin, line = i, input = { vin = vin } } end
  local results = batch.execute{
    client = client, ledger = ledger.memory(), rows = rows,
    write_line = function(l) lines[#lines + 1] = cli.json(l) end, rate = 1e9, max_active = 100,
    max_wait = 10, poll_interval = 1, say = function(l) said[#said + 1] = l end,
  }
  return results, lines, said
end

describe("batch.execute", function()
  it("reports a Lua error raised in one VIN's task as that row's internal failure and goes on", function()
    local client = fake_client(function(vin)
      if vin == "BUG" then error("simulated bug\nsecond line") end
      return { status = "ready", order_id = "O-" .. vin }
    end)
    local results, lines, said = run(client, { "A", "BUG", "C" })
    assert.are.equal("ready", results.A.status)
    assert.are.equal("ready", results.C.status)
    assert.are.equal("failed", results.BUG.status)
    assert.are.equal("internal", results.BUG.error.kind)
    assert.are.equal(3, #lines)
    local bug_line
    for _, l in ipairs(lines) do if l.vin == "BUG" then bug_line = l end end
    assert.are.equal(2, bug_line.line)
    assert.truthy(bug_line.error.message:find("simulated bug", 1, true))
    assert.are.equal(1, #said)
    assert.truthy(said[1]:find("^maintenance%-report: internal error for line 2: .*simulated bug$"), said[1])
  end)

  it("retries a rate-limited order after the client's backoff delay, in [0, retry_base)", function()
    local calls = {} -- vin -> the clock at each order
    local client = fake_client(function(vin, now)
      calls[vin] = calls[vin] or {}
      table.insert(calls[vin], now)
      if #calls[vin] == 1 then
        return nil, errors.new("rate_limited", "API rate limit exceeded", { http_status = 429,
          order_outcome = "not_placed" })
      end
      return { status = "ready", order_id = "O-" .. vin }
    end)
    local vins = {}
    for i = 1, 30 do vins[i] = "V" .. i end
    local results = run(client, vins)
    local longest = 0
    for _, vin in ipairs(vins) do
      assert.are.equal("ready", results[vin].status)
      assert.are.equal(2, #calls[vin])
      local delay = calls[vin][2] - calls[vin][1]
      assert.is_true(delay >= 0 and delay < defaults.CLIENT.retry_base, vin .. " waited " .. delay)
      longest = math.max(longest, delay)
    end
    assert.is_true(longest > 0, "the delays are jittered, not all zero")
  end)

  it("counts an unknown outcome as unknown (never as nothing spent) and a reused report as reused", function()
    local client = fake_client(function(vin)
      if vin == "U" then
        return nil, errors.new("timeout", "no answer", { order_outcome = "unknown" })
      end
      return { status = "ready", order_id = "O-" .. vin, reused = vin == "R" or nil }
    end)
    local rows = { { vin = "U", line = 1 }, { vin = "R", line = 2 }, { vin = "N", line = 3 } }
    local results, c = batch.execute{ client = client, ledger = ledger.memory(), rows = rows, rate = 1e9,
      max_active = 10, max_wait = 1, poll_interval = 1, say = function() end }
    assert.are.equal("unknown", results.U.status)
    assert.are.equal(1, c.unknown_new)
    assert.are.equal(1, c.reused)
    assert.are.equal(1, c.ordered) -- N only: the reused report cost nothing
    assert.are.equal(7, batch.exit_status(rows, results, 0))
  end)
end)

describe("batch's spool of output lines", function()
  -- Rows F1, F2 get a fresh report, R a reused one, X fails; the ledger holds each
  -- row's final record as the client would have written it.
  local function spooled_run(spool, before_rebuild)
    local dir = cli.tmpdir()
    local client = fake_client(function(vin)
      if vin == "X" then return nil, errors.new("api", "refused", { order_outcome = "not_placed" }) end
      return { status = "ready", order_id = "O-" .. vin, reused = vin == "R" or nil,
        records = { { item = "oil " .. vin } }, raw = { secret_looking = "raw body" } }
    end)
    local L = ledger.memory()
    local rows = {}
    for i, vin in ipairs{ "F1", "R", "X", "F2" } do
      rows[i] = { vin = vin, line = i, index = i, input = { vin = vin } }
      if vin ~= "X" then
        local claim = assert(L:begin{ vin = vin }).claim
        assert(claim:intent())
        assert(claim:placed("O-" .. vin))
        assert(claim:final("ready", { status = "ready", order_id = "O-" .. vin,
          records = { { item = "oil " .. vin } }, raw = { secret_looking = "raw body" } }))
        claim:release()
      end
    end
    local results = batch.execute{ client = client, ledger = L, rows = rows, rate = 1e9, max_active = 10,
      max_wait = 1, poll_interval = 1, say = function() end, spool = spool }
    local reads = {}
    local counting = setmetatable({ get = function(_, fields)
      reads[#reads + 1] = fields.vin
      return L:get(fields)
    end }, { __index = L })
    if before_rebuild then before_rebuild() end
    local parsed = { rows = rows, invalid = {} }
    assert(batch.rebuild(dir .. "/spooled.jsonl", counting, parsed, results, spool))
    assert(batch.rebuild(dir .. "/ledger.jsonl", L, parsed, results))
    return cli.read(dir .. "/spooled.jsonl"), cli.read(dir .. "/ledger.jsonl"), reads
  end

  it("gives the rebuild the fresh reports' lines, the same bytes as the ledger's records make", function()
    local spool = batch.spool_of(assert(io.tmpfile()))
    local spooled, from_ledger, reads = spooled_run(spool)
    spool:close()
    assert.are.equal(from_ledger, spooled)
    assert.are.same({ "R", "X" }, reads) -- F1 and F2 came from the spool
    assert.truthy(spooled:find('"item":"oil F2"', 1, true))
    assert.is_nil(spooled:find("raw body", 1, true))
  end)

  it("is not trusted once a write has failed: every row comes from the ledger", function()
    local spool = batch.spool_of(assert(io.open("/dev/full", "w+b"))) -- writes are buffered, the flush fails
    local spooled, from_ledger, reads = spooled_run(spool)
    spool:close()
    assert.are.equal(from_ledger, spooled)
    assert.are.same({ "F1", "R", "X", "F2" }, reads)
  end)

  it("is not trusted when it is shorter than what was written (a flush whose error nobody saw)", function()
    local path = cli.tmpdir() .. "/spool"
    local spool = batch.spool_of(assert(io.open(path, "w+b")))
    local spooled, from_ledger, reads = spooled_run(spool, function()
      assert(spool.f:flush())
      assert(os.execute("truncate -s 10 " .. path))
    end)
    spool:close()
    assert.are.equal(from_ledger, spooled)
    assert.are.same({ "F1", "R", "X", "F2" }, reads)
  end)
end)

describe("batch.plan", function()
  local now = 1000000
  it("orders a new or not-placed vehicle, polls a placed one, refuses an unknown one", function()
    assert.are.equal("order", batch.plan(nil, {}))
    assert.are.equal("order", batch.plan({ state = "not_placed" }, {}))
    assert.are.equal("poll", batch.plan({ state = "placed", order_id = "O" }, { fresh = true }))
    assert.are.equal("unknown", batch.plan({ state = "unknown" }, {}))
    assert.are.equal("unknown", batch.plan({ state = "intent" }, {}))
    assert.are.equal("order", batch.plan({ state = "unknown" }, { retry_unknown = true }))
  end)

  it("reuses a final report younger than reuse, unless fresh", function()
    local entry = { state = "ready", updated_at = now - 3599 }
    assert.are.equal("reuse", batch.plan(entry, { reuse = 3600, now = now }))
    assert.are.equal("order", batch.plan(entry, { reuse = 3598, now = now }))
    assert.are.equal("order", batch.plan(entry, { reuse = 3600, now = now, fresh = true }))
    assert.are.equal("order", batch.plan(entry, { reuse = 0, now = now }))
  end)
end)
