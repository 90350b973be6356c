-- Scheduler ownership and cancellation seen through real clients, each on a scripted
-- fake transport (blocking and multi side) over a virtual clock: which transport
-- carried which request, and what a cancelled handle still tells about its order.
local mr = require "maintenance_report"

local VIN = "1G4AH59H45G118341" -- a valid check digit (ISO 3779)
local ORDER_ANSWER = '{"code":"0","message":"ok","data":{"detail":{"orderId":"ORD-77","resultCode":0}}}'
local NO_API = '{"message":"There is no api match"}'

-- One fake transport: records every request, answers by path after `delay` virtual seconds.
local function fake_world()
  local world = { time = 0, blocking = {}, submitted = {}, cancelled = {} }
  local pending, next_id = {}, 0
  local function answer(req)
    local body = req.url:find("/maintenance/order", 1, true) and ORDER_ANSWER or NO_API
    return { status = body == NO_API and 404 or 200, headers = {}, body = body }
  end
  local transport = {}
  function transport.request(_, req)
    world.blocking[#world.blocking + 1] = req
    return answer(req)
  end
  function transport.submit(_, req)
    next_id = next_id + 1
    pending[next_id] = { at = world.time + 1, req = req }
    world.submitted[#world.submitted + 1] = req
    return next_id
  end
  function transport.perform(_, timeout)
    local first
    for _, p in pairs(pending) do
      if not first or p.at < first then first = p.at end
    end
    if first and first > world.time then world.time = math.min(first, world.time + timeout) end
    local done = {}
    for id, p in pairs(pending) do
      if p.at <= world.time then
        pending[id] = nil
        done[#done + 1] = { id = id, response = answer(p.req) }
      end
    end
    return done
  end
  function transport.cancel(_, id)
    world.cancelled[#world.cancelled + 1] = id
    pending[id] = nil
    return true
  end
  world.transport = transport
  return world
end

local function new_client(world)
  return assert(mr.new{ secret_id = "id", secret_key = "key", endpoint = "https://api.invalid",
    transport = world.transport, now = function() return world.time end,
    sleep = function(s) world.time = world.time + s end, random = function() return 1 end,
    retries = 0, first_poll_delay = 5,
    -- The world's clock is virtual, the CPU budget's is not: without a budget this large, a
    -- loaded machine ran out of it before one step(0) sent the order (the specs count steps).
    step_budget = 1 })
end

local function urls(list)
  local out = {}
  for i, req in ipairs(list) do out[i] = req.url:match("^https://api%.invalid([^?]*)") end
  return out
end

describe("clients on their own schedulers", function()
  for _, b_has_scheduler in ipairs{ false, true } do
    it("send B's requests through B's transport from inside a task of A"
        .. (b_has_scheduler and " (B's scheduler exists)" or ""), function()
      local world_a, world_b = fake_world(), fake_world()
      local a, b = new_client(world_a), new_client(world_b)
      if b_has_scheduler then b:scheduler() end
      local h = a:scheduler():spawn(function()
        local _, b_err = b:get_report("ORD-1")   -- blocks on B's transport
        local _, a_err = a:get_report("ORD-2")   -- yields to A's own scheduler
        return b_err.kind, a_err.kind
      end)
      while a:step(1) > 0 do end
      assert.are.same({ "not_found", "not_found" }, { h:result() })
      assert.are.same({ "/maintenance_report/get" }, urls(world_b.blocking))
      assert.are.same({}, world_b.submitted)
      assert.are.same({ "/maintenance_report/get" }, urls(world_a.submitted))
      assert.are.same({}, world_a.blocking)
    end)
  end
end)

describe("a client with the yield option inside another client's task", function()
  it("blocks on its own transport instead of yielding into the other scheduler", function()
    local world_a, world_b = fake_world(), fake_world()
    local a = new_client(world_a)
    local yields = 0
    local b = assert(mr.new{ secret_id = "id", secret_key = "key", endpoint = "https://api.invalid",
      transport = world_b.transport, now = function() return world_b.time end,
      sleep = function(s) world_b.time = world_b.time + s end, retries = 0,
      yield = function()
        yields = yields + 1
        -- A's scheduler would resume this at once, for ever: a busy loop inside a:step
        if yields > 100 then error("yielded into a scheduler that cannot wait for it") end
        coroutine.yield()
      end })
    local h = a:scheduler():spawn(function() return b:wait_report("ORD-3") end)
    while a:step(1) > 0 do end
    local _, err = h:result()
    assert.are.equal("not_found", err.kind)
    assert.are.equal(0, yields)
    assert.are.same({ "/maintenance_report/get" }, urls(world_b.blocking))
    assert.are.same({}, world_a.submitted)
  end)
end)

describe("a cancelled start_query", function()
  it("keeps the order id once the order is placed", function()
    local world = fake_world()
    local client = new_client(world)
    local seen
    local h = client:start_query{ vin = VIN, on_done = function(handle) seen = { handle:result() } end }
    client:step(2) -- the order answers at t=1; the first poll waits 5 s
    assert.are.same({ "/maintenance/order" }, urls(world.submitted))
    assert.is_true(h:cancel())
    local report, err = h:result()
    assert.is_nil(report)
    assert.are.equal("cancelled", err.kind)
    assert.are.equal("ORD-77", err.order_id)
    assert.matches("ORD%-77", tostring(err))
    assert.are.equal(err, seen[2]) -- on_done saw the same, complete error
    assert.are.equal(0, client:step(10))
    assert.are.equal(1, #world.submitted) -- no poll after the cancel
  end)

  it("says the order may exist when cancelled while the order request was in flight", function()
    local world = fake_world()
    local client = new_client(world)
    local h = client:start_query{ vin = VIN }
    client:step(0)
    assert.are.equal(1, #world.submitted)
    assert.is_true(h:cancel())
    assert.are.same({ 1 }, world.cancelled)
    local _, err = h:result()
    assert.are.equal("cancelled", err.kind)
    assert.are.equal("unknown", err.order_outcome)
    assert.is_true(err.sent)
  end)

  it("says nothing was ordered when cancelled before the order request left", function()
    local world = fake_world()
    local client = new_client(world)
    local h = client:start_query{ vin = VIN }
    assert.is_true(h:cancel()) -- before any step: the task never ran
    local _, err = h:result()
    assert.are.equal("cancelled", err.kind)
    assert.is_false(err.sent)
    assert.is_nil(err.order_outcome)
    assert.are.equal(0, #world.submitted)
  end)

  it("start_report: the cancel error names the order", function()
    local world = fake_world()
    local client = new_client(world)
    local h = client:start_report("ORD-9")
    client:step(0)
    assert.is_true(h:cancel())
    local _, err = h:result()
    assert.are.equal("cancelled", err.kind)
    assert.are.equal("ORD-9", err.order_id)
  end)
end)
