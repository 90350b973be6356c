-- batch.execute on a real scheduler with a fake client (no HTTP) and a fake
-- clock: a bug inside one VIN's task is reported for that row only, through
-- the scheduler's public handle API; a 429 is retried after the client's one
-- backoff formula (full jitter: uniform in [0, retry_base) for the first retry).
local batch = require "maintenance_report.cli.batch"
local cli = require "helpers.cli_run"
local defaults = require "maintenance_report.defaults"
local errors = require "maintenance_report.errors"
local journal = require "maintenance_report.cli.journal"
local scheduler = require "maintenance_report.scheduler"

-- A client whose create_order is `create_order(vin, now)`, on a clock that only moves when slept.
local function fake_client(create_order)
  local t = 0
  local function now() return t end
  local sched = scheduler.new{
    transport = { submit = function() error("no HTTP in this spec") end, perform = function() return {} end },
    now = now, sleep = function(s) t = t + s end,
  }
  local settings = { now = now, retry_base = defaults.CLIENT.retry_base,
    retry_max_delay = defaults.CLIENT.retry_max_delay, random = math.random }
  return {
    settings = function() return settings end,
    scheduler = function() return sched end,
    create_order = function(_, order) return create_order(order.vin, t) end,
    wait_report = function(_, order_id) return { status = "ready", order_id = order_id } end,
  }
end

local function run(client, vins, dir)
  local rows, lines, said = {}, {}, {}
  for i, vin in ipairs(vins) do rows[i] = { vin = vin, line = i, input = { vin = vin } } end
  local results = batch.execute{
    client = client, rows = rows, journal = assert(journal.open(dir .. "/journal")),
    write_line = function(l) lines[#lines + 1] = cli.json(l) end, rate = 1e9, max_active = 100,
    max_wait = 10, poll_interval = 1, say = function(l) said[#said + 1] = l end,
  }
  return results, lines, said
end

describe("batch.execute", function()
  local dir
  before_each(function() dir = cli.tmpdir() end)
  after_each(function() cli.cleanup() end)

  it("reports a Lua error raised in one VIN's task as that row's internal failure and goes on", function()
    local client = fake_client(function(vin)
      if vin == "BUG" then error("simulated bug\nsecond line") end
      return { order_id = "O-" .. vin }
    end)
    local results, lines, said = run(client, { "A", "BUG", "C" }, dir)
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
    local calls = {} -- vin -> the clock at each create_order
    local client = fake_client(function(vin, now)
      calls[vin] = calls[vin] or {}
      table.insert(calls[vin], now)
      if #calls[vin] == 1 then
        return nil, errors.new("rate_limited", "API rate limit exceeded", { http_status = 429 })
      end
      return { order_id = "O-" .. vin }
    end)
    local vins = {}
    for i = 1, 30 do vins[i] = "V" .. i end
    local results = run(client, vins, dir)
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
end)
