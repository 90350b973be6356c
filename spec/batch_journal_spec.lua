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

  it("locks the journal against a second run, in this process too, until it is released", function()
    local path = dir .. "/locked"
    local lock = assert(journal.lock(path))
    assert.are.equal(require("maintenance_report.core").getpid(), lock.pid)
    local none, err = journal.lock(path)
    assert.is_nil(none)
    assert.truthy(err:find("in use by another batch", 1, true), err)
    journal.unlock(lock)
    journal.unlock(lock) -- twice is harmless
    journal.unlock(assert(journal.lock(path)))
  end)

  it("refuses a journal whose lock file cannot be opened, saying why", function()
    local none, err = journal.lock(dir .. "/no/such/dir/j")
    assert.is_nil(none)
    assert.truthy(err:find("cannot lock the journal", 1, true), err)
  end)

  describe("after a run was killed (SIGKILL) while holding the lock", function()
    local lua = os.getenv("MR_SPEC_LUA") or "lua5.4"
    local HOLDER = [[
local journal = require "maintenance_report.cli.journal"
assert(journal.lock(arg[1]))
local f = assert(io.open(arg[2], "wb")) f:write("held") f:close()
while true do require("maintenance_report.core").sleep(1) end
]]
    -- Waits at a barrier (a file the spec creates once every racer is ready), then
    -- tries the lock; a winner keeps it until the spec has seen every result.
    local RACER = [[
local journal = require "maintenance_report.cli.journal"
local core = require "maintenance_report.core"
local path, dir, id = arg[1], arg[2], arg[3]
local function exists(p) local f = io.open(p, "rb") if f then f:close() end return f ~= nil end
local function put(p, s)
  local f = assert(io.open(p .. ".tmp", "wb")) f:write(s) f:close()
  assert(os.rename(p .. ".tmp", p))
end
local deadline = os.time() + 20
put(dir .. "/ready." .. id, "")
while not exists(dir .. "/go") do if os.time() > deadline then os.exit(3) end end
local lock, err = journal.lock(path)
put(dir .. "/result." .. id, lock and "won" or ("busy: " .. tostring(err)))
if lock then
  while not exists(dir .. "/release") and os.time() <= deadline do core.sleep(0.002) end
  journal.unlock(lock)
end
]]
    local function exists(p)
      local f = io.open(p, "rb")
      if f then f:close() end
      return f ~= nil
    end

    -- Starts the commands in the background at once; returns their pids.
    local function spawn(commands)
      local words = {}
      for _, c in ipairs(commands) do words[#words + 1] = c .. " >/dev/null 2>&1 & echo $!" end
      local p = assert(io.popen(table.concat(words, "; ")))
      local pids = {}
      for line in p:lines() do pids[#pids + 1] = assert(tonumber(line)) end
      p:close()
      return pids
    end

    local started = {}
    after_each(function()
      for _, pid in ipairs(started) do
        if cli.alive(pid) then os.execute("kill -9 " .. pid .. " 2>/dev/null") end
      end
      started = {}
    end)

    it("exactly one of two runs started together gets it, every time (40 trials)", function()
      local holder, racer = dir .. "/holder.lua", dir .. "/racer.lua"
      cli.write(holder, HOLDER)
      cli.write(racer, RACER)
      local double, none, odd = 0, 0, {}
      for trial = 1, 40 do
        local t = dir .. "/t" .. trial
        assert(os.execute("mkdir " .. cli.quote(t)))
        local path = t .. "/journal"
        local pid = spawn{ table.concat({ lua, cli.quote(holder), cli.quote(path), cli.quote(t .. "/held") }, " ") }[1]
        started[#started + 1] = pid
        assert.is_true(cli.wait_until(function() return exists(t .. "/held") end, 10), "holder took the lock")
        os.execute("kill -9 " .. pid)
        assert.is_true(cli.wait_until(function() return not cli.alive(pid) end, 10), "holder is gone")
        local racers = {}
        for id = 1, 2 do
          racers[id] = lua .. " " .. cli.quote(racer) .. " " .. cli.quote(path) .. " " .. cli.quote(t) .. " " .. id
        end
        for _, p in ipairs(spawn(racers)) do started[#started + 1] = p end
        assert.is_true(cli.wait_until(function() return exists(t .. "/ready.1") and exists(t .. "/ready.2") end, 10))
        cli.write(t .. "/go", "")
        assert.is_true(cli.wait_until(function() return exists(t .. "/result.1") and exists(t .. "/result.2") end,
          10))
        local won = 0
        for id = 1, 2 do
          local result = cli.read(t .. "/result." .. id)
          if result == "won" then
            won = won + 1
          elseif not result:find("in use by another batch", 1, true) then
            odd[#odd + 1] = result -- a loser must be told the journal is in use, nothing else
          end
        end
        if won > 1 then double = double + 1 elseif won == 0 then none = none + 1 end
        cli.write(t .. "/release", "")
      end
      assert.are.same({ double = 0, none = 0, odd = {} }, { double = double, none = none, odd = odd })
    end)
  end)
end)
