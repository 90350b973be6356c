-- The shared scheduler, driven over a virtual clock and a scripted multi transport.
local scheduler = require "maintenance_report.scheduler"

-- A multi transport whose requests finish `delay` virtual seconds after submit.
local function virtual_world()
  local world = { time = 0, submitted = {}, max_seen = 0, waits = {} }
  local pending, next_id = {}, 0
  function world.now() return world.time end
  function world.sleep(s)
    world.waits[#world.waits + 1] = { "sleep", s }
    world.time = world.time + s
  end
  local transport = {}
  function transport.submit(_, req)
    if req.fail_submit then return nil, { kind = "invalid_request", message = "bad" } end
    next_id = next_id + 1
    pending[next_id] = { at = world.time + (req.delay or 1), req = req }
    world.submitted[#world.submitted + 1] = req
    local n = 0
    for _ in pairs(pending) do n = n + 1 end
    if n > world.max_seen then world.max_seen = n end
    return next_id
  end
  function transport.perform(_, timeout)
    world.waits[#world.waits + 1] = { "perform", timeout }
    local first
    for _, p in pairs(pending) do
      if not first or p.at < first then first = p.at end
    end
    if first and first > world.time then world.time = math.min(first, world.time + timeout) end
    local done = {}
    for id, p in pairs(pending) do
      if p.at <= world.time then
        pending[id] = nil
        done[#done + 1] = { id = id, response = { status = 200, body = p.req.url } }
      end
    end
    return done
  end
  world.transport = transport
  return world
end

local function new_scheduler(world, max_in_flight)
  return scheduler.new{ transport = world.transport, now = world.now, sleep = world.sleep,
    max_in_flight = max_in_flight }
end

describe("scheduler", function()
  it("runs tasks concurrently and returns their results", function()
    local world = virtual_world()
    local s = new_scheduler(world, 8)
    local handles = {}
    for i = 1, 5 do
      handles[i] = s:spawn(function(n)
        local resp = scheduler.request{ url = "u" .. n, delay = 1 }
        return resp.body, n
      end, nil, i)
    end
    s:run()
    for i = 1, 5 do
      assert.is_true(handles[i]:done())
      local body, n = handles[i]:result()
      assert.are.same({ "u" .. i, i }, { body, n })
    end
    -- all five ran side by side: one virtual second, not five
    assert.are.equal(1, world.time)
  end)

  it("caps requests in flight", function()
    local world = virtual_world()
    local s = new_scheduler(world, 3)
    for i = 1, 10 do s:spawn(function() return scheduler.request{ url = "u" .. i, delay = 1 } end) end
    s:run()
    assert.are.equal(3, world.max_seen)
    assert.are.equal(10, #world.submitted)
    assert.are.equal(4, world.time) -- ceil(10 / 3) rounds
  end)

  it("wakes sleepers in time order without busy waiting", function()
    local world = virtual_world()
    local s = new_scheduler(world)
    local order = {}
    for _, d in ipairs{ 3, 1, 2 } do
      s:spawn(function() scheduler.sleep(d); order[#order + 1] = d end)
    end
    s:run()
    assert.are.same({ 1, 2, 3 }, order)
    assert.are.equal(3, world.time)
    -- only timers: one sleep per wake-up, none of them zero
    for _, w in ipairs(world.waits) do
      assert.are.equal("sleep", w[1])
      assert.is_true(w[2] > 0)
    end
  end)

  it("never waits longer than the step timeout", function()
    local world = virtual_world()
    local s = new_scheduler(world)
    local h = s:spawn(function() return scheduler.request{ url = "slow", delay = 10 } end)
    assert.are.equal(1, s:step(0.25))
    assert.are.equal(0.25, world.time)
    assert.is_false(h:done())
    assert.are.equal(1, s:step(0))
    assert.are.equal(0.25, world.time)
  end)

  it("calls on_done once and keeps Lua errors for result()", function()
    local world = virtual_world()
    local s = new_scheduler(world)
    local calls = 0
    local h = s:spawn(function() error("boom") end, function() calls = calls + 1 end)
    s:run()
    assert.are.equal(1, calls)
    assert.is_true(h:done())
    assert.has_error(function() h:result() end)
    assert.has_error(function() s:spawn(function() end):result() end) -- not done yet
  end)

  it("hands submit failures back to the task", function()
    local world = virtual_world()
    local s = new_scheduler(world)
    local h = s:spawn(function() return scheduler.request{ fail_submit = true } end)
    s:run()
    local resp, err = h:result()
    assert.is_nil(resp)
    assert.are.equal("invalid_request", err.kind)
  end)

  it("lets finished handles be collected once the caller drops them", function()
    -- Under LuaJIT's weak tables (no ephemerons) a handle kept in the scheduler's
    -- weak-keyed map by its own coroutine would never be freed.
    local world = virtual_world()
    local s = new_scheduler(world)
    local tracker = setmetatable({}, { __mode = "k" })
    for i = 1, 50 do
      tracker[s:spawn(function() return scheduler.request{ url = "u" .. i, delay = 1 } end)] = true
    end
    s:run()
    collectgarbage()
    collectgarbage()
    assert.is_nil(next(tracker))
  end)

  it("knows which scheduler runs the current coroutine", function()
    local world = virtual_world()
    local s = new_scheduler(world)
    assert.is_nil(scheduler.current())
    local seen
    s:spawn(function() seen = scheduler.current() end)
    s:run()
    assert.are.equal(s, seen)
  end)
end)
