-- The batch journal: durable JSON lines, what a re-run may do per VIN, torn lines, the lock.
local journal = require "maintenance_report.cli.journal"
local cli = require "helpers.cli_run"

local function read_lines(path)
  local out = {}
  for line in (cli.read(path) or ""):gmatch("[^\n]+") do out[#out + 1] = line end
  return out
end

describe("batch journal", function()
  local dir
  before_each(function() dir = cli.tmpdir() end)
  after_each(function() cli.cleanup() end)

  it("appends one JSON line per event and reads the states back", function()
    local path = dir .. "/j"
    local j = assert(journal.open(path))
    assert(j:write{ event = "ordering", vin = "V1", line = 1 })
    assert(j:write{ event = "ordered", vin = "V1", order_id = "O1" })
    assert(j:write{ event = "ordering", vin = "V2", line = 2 })
    assert(j:write{ event = "ordering", vin = "V3", line = 3 })
    assert(j:write{ event = "order_failed", vin = "V3", kind = "api", order_outcome = "not_placed" })
    assert(j:write{ event = "ordering", vin = "V4", line = 4 })
    assert(j:write{ event = "order_failed", vin = "V4", kind = "timeout", order_outcome = "unknown" })
    assert(j:write{ event = "ordering", vin = "V5", line = 5 })
    assert(j:write{ event = "ordered", vin = "V5", order_id = "O5" })
    assert(j:write{ event = "done", vin = "V5", order_id = "O5", status = "ready" })
    local lines = read_lines(path)
    assert.are.equal(10, #lines)
    for _, line in ipairs(lines) do
      local ev = cli.json(line)
      assert.is_string(ev.event)
      assert.is_number(ev.time)
    end

    local again = assert(journal.open(path))
    assert.are.same({ "resume", "O1" }, { again:plan("V1") })
    assert.are.equal("unknown", again:plan("V2")) -- intent without an order id
    assert.are.equal("order", again:plan("V3"))   -- provably not placed
    assert.are.equal("unknown", again:plan("V4")) -- unknown outcome
    assert.are.same({ "resume", "O5" }, { again:plan("V5") })
    assert.are.equal("order", again:plan("NEVER"))
    assert.are.equal(2, again.orders)
  end)

  it("never forgets an order id, whatever comes after it", function()
    local states = {}
    for _, ev in ipairs{
      { event = "ordering", vin = "V" }, { event = "ordered", vin = "V", order_id = "O" },
      { event = "report_failed", vin = "V", order_id = "O", kind = "pending" },
      { event = "ordering", vin = "V" }, -- a later intent (--retry-unknown elsewhere) does not hide it
      { event = "order_failed", vin = "V", order_outcome = "unknown" },
    } do journal.apply(states, ev) end
    assert.are.equal("O", states.V.order_id)
  end)

  it("tolerates a torn last line and corrupt lines, and keeps new lines separate", function()
    local path = dir .. "/torn"
    cli.write(path, '{"event":"ordering","vin":"V1","time":1}\n'
      .. '{"event":"ordered","vin":"V1","order_id":"O1","time":1}\n'
      .. 'garbage that is not json\n'
      .. '{"event":"ordering","vin":"V2","time":1}\n'
      .. '{"event":"ordered","vin":"V2","ord')
    local j = assert(journal.open(path))
    assert.are.equal(2, j.corrupt)
    assert.are.same({ "resume", "O1" }, { j:plan("V1") })
    assert.are.equal("unknown", j:plan("V2")) -- its id was torn away: never re-ordered automatically
    assert(j:write{ event = "ordering", vin = "V3" })
    local lines = read_lines(path)
    assert.truthy(lines[#lines]:find('^{"event":"ordering","vin":"V3",'), lines[#lines])
    local reread = assert(journal.open(path))
    assert.are.equal(2, reread.corrupt)
    assert.are.equal("unknown", reread:plan("V3"))
  end)

  it("refuses to proceed when the intent cannot be written", function()
    local j = assert(journal.open(dir .. "/x", { append = function() return nil, "disk full" end }))
    local ok, err = j:write{ event = "ordering", vin = "V" }
    assert.is_nil(ok)
    assert.truthy(err:find("disk full", 1, true))
    assert.are.equal("order", j:plan("V"))
  end)

  it("locks the journal against a second live run and takes over a dead one's lock", function()
    local path = dir .. "/locked"
    local lock = assert(journal.lock(path))
    -- a lock held by a live process (this shell's parent stays alive: use pid 1)
    journal.unlock(lock)
    os.execute("mkdir " .. cli.quote(path .. ".lock"))
    cli.write(path .. ".lock/pid", "1\n")
    local none, err = journal.lock(path)
    assert.is_nil(none)
    assert.truthy(err:find("in use", 1, true))
    -- a lock left by a process that is gone
    local p = io.popen("sh -c 'echo $$'")
    local dead = p:read("*l")
    p:close()
    cli.write(path .. ".lock/pid", dead .. "\n")
    local taken = assert(journal.lock(path))
    journal.unlock(taken)
    assert.is_nil(io.open(path .. ".lock/pid", "rb"))
  end)
end)
