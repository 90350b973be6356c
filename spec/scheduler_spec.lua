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
  world.cancelled = {}
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
  function transport.cancel(_, id)
    world.cancelled[#world.cancelled + 1] = id
    local known = pending[id] ~= nil
    pending[id] = nil
    return known
  end
  function world.in_transport()
    local n = 0
    for _ in pairs(pending) do n = n + 1 end
    return n
  end
  world.transport = transport
  return world
end

-- On the virtual world's clock CPU time stands still too, so that the CPU budget (tested
-- on its own below) never cuts a call short on a slow run (valgrind, a loaded machine).
local function new_scheduler(world, max_in_flight)
  return scheduler.new{ transport = world.transport, now = world.now, sleep = world.sleep,
    max_in_flight = max_in_flight, cpu_clock = function() return 0 end }
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

describe("scheduler handles", function()
  it("handle:error() gives the Lua error a task raised, and nil otherwise", function()
    local world = virtual_world()
    local s = new_scheduler(world)
    local raised = { "a bug" }
    local broken = s:spawn(function() error(raised) end)
    local failed_call = s:spawn(function() return nil, { kind = "network" } end)
    local fine = s:spawn(function() return 1 end)
    assert.is_nil(broken:error()) -- not finished yet
    s:run()
    assert.are.equal(raised, broken:error())
    assert.has_error(function() broken:result() end, raised)
    assert.is_nil(failed_call:error()) -- a nil, err result is not a raised error
    assert.is_nil(fine:error())
  end)

  it("cancels a task before it ever ran", function()
    local world = virtual_world()
    local s = new_scheduler(world)
    local ran = false
    local h = s:spawn(function() ran = true end)
    assert.is_true(h:cancel())
    assert.are.equal(0, s:pending())
    assert.are.equal(0, s:step(0))
    assert.is_false(ran)
    local value, err = h:result()
    assert.is_nil(value)
    assert.are.equal("cancelled", err.kind)
    assert.is_false(err.sent)
  end)

  it("cancels a queued request: it is never submitted and its slot goes to the next", function()
    local world = virtual_world()
    local s = new_scheduler(world, 1)
    local calls = {}
    local first = s:spawn(function() return scheduler.request{ url = "first", delay = 1 } end)
    local second = s:spawn(function() return scheduler.request{ url = "second", delay = 1 } end,
      function(h) calls[#calls + 1] = h end)
    local third = s:spawn(function() return scheduler.request{ url = "third", delay = 1 } end)
    assert.are.equal(3, s:step(0))
    assert.are.equal(1, #world.submitted) -- max_in_flight 1: second and third wait for a slot
    assert.is_true(second:cancel())
    assert.are.same({ second }, calls) -- on_done ran, once, before cancel returned
    assert.is_true(second:done())
    local value, err = second:result()
    assert.is_nil(value)
    assert.are.equal("cancelled", err.kind)
    assert.is_false(err.sent)
    assert.is_false(err.in_flight)
    assert.matches("^cancelled: ", tostring(err))
    s:run()
    assert.are.same({ "first", "third" }, { world.submitted[1].url, world.submitted[2].url })
    assert.are.equal("first", (first:result()).body)
    assert.are.equal("third", (third:result()).body)
    assert.is_false(second:cancel()) -- finished: a no-op
    assert.are.equal(1, #calls)
    assert.are.same({}, world.cancelled)
  end)

  it("cancels an in-flight request in the transport; the task is never resumed", function()
    local world = virtual_world()
    local s = new_scheduler(world, 1)
    local after_request = false
    local h = s:spawn(function()
      scheduler.request{ url = "slow", delay = 10 }
      after_request = true
      return scheduler.request{ url = "never", delay = 1 }
    end)
    local waiting = s:spawn(function() return scheduler.request{ url = "next", delay = 1 } end)
    s:step(0)
    assert.are.equal(1, #world.submitted)
    assert.is_true(h:cancel())
    assert.are.same({ 1 }, world.cancelled) -- the id submit returned
    assert.are.equal(0, world.in_transport())
    local _, err = h:result()
    assert.are.equal("cancelled", err.kind)
    assert.is_true(err.sent) -- it may have reached the server
    assert.is_true(err.in_flight)
    s:run()
    assert.is_false(after_request)
    -- the freed slot went to the waiting task; the slow request was not waited for
    assert.are.same({ "slow", "next" }, { world.submitted[1].url, world.submitted[2].url })
    assert.are.equal(2, #world.submitted)
    assert.are.equal(1, world.time)
    assert.are.equal("next", (waiting:result()).body)
  end)

  it("keeps the slot of a cancelled transfer the transport cannot stop, and ignores its answer", function()
    local world = virtual_world()
    world.transport.cancel = nil
    local s = new_scheduler(world, 1)
    local resumed = false
    local h = s:spawn(function()
      scheduler.request{ url = "unstoppable", delay = 2 }
      resumed = true
    end)
    local other = s:spawn(function() return scheduler.request{ url = "other", delay = 1 } end)
    s:step(0)
    assert.is_true(h:cancel())
    s:run()
    assert.is_false(resumed)
    -- max_in_flight 1 held: "other" went out only once the transfer had finished, at t=2
    assert.are.equal(3, world.time)
    assert.are.equal(1, world.max_seen)
    assert.are.equal("other", (other:result()).body)
  end)

  it("cancels a sleeping task: its timer is dropped and not waited for", function()
    local world = virtual_world()
    local s = new_scheduler(world)
    local woke = false
    local h = s:spawn(function()
      scheduler.sleep(10)
      woke = true
      return scheduler.request{ url = "never" }
    end)
    assert.are.equal(1, s:step(0))
    assert.is_true(h:cancel())
    assert.are.equal(0, s:step(100))
    assert.are.equal(0, world.time)
    assert.are.same({}, world.waits) -- no sleep, no perform: nothing was left to wait for
    assert.is_false(woke)
    assert.are.equal(0, #world.submitted)
    local _, err = h:result()
    assert.are.equal("cancelled", err.kind)
  end)

  it("a cancelled sleeper in the middle of the heap does not disturb the others", function()
    local world = virtual_world()
    local s = new_scheduler(world)
    local woke = {}
    local handles = {}
    for _, d in ipairs{ 1, 2, 3 } do
      handles[d] = s:spawn(function() scheduler.sleep(d); woke[#woke + 1] = d end)
    end
    s:step(0)
    handles[2]:cancel()
    s:run()
    assert.are.same({ 1, 3 }, woke)
    assert.are.equal(3, world.time)
  end)

  it("refuses to cancel a task from inside itself", function()
    local world = virtual_world()
    local s = new_scheduler(world)
    local h
    h = s:spawn(function() h:cancel() end)
    s:run()
    assert.matches("the task is running", tostring(h:error()))
  end)

  it("lets one task cancel another, which then never runs again", function()
    local world = virtual_world()
    local s = new_scheduler(world)
    local victim_woke = false
    local victim = s:spawn(function() scheduler.sleep(1); victim_woke = true end)
    local killer = s:spawn(function() scheduler.sleep(0.5); return victim:cancel() end)
    s:run()
    assert.is_true(killer:result())
    assert.is_false(victim_woke)
    assert.are.equal(0.5, world.time)
  end)

  it("lets one task cancel another that was about to run", function()
    local world = virtual_world()
    local s = new_scheduler(world)
    local second_ran = false
    local second
    local first = s:spawn(function() return second:cancel() end)
    second = s:spawn(function() second_ran = true end)
    assert.are.equal(0, s:step(0))
    assert.is_true(first:result())
    assert.is_false(second_ran)
    assert.are.equal("cancelled", select(2, second:result()).kind)
  end)

  it("raises an error from on_done out of cancel(), after the handle is finished", function()
    local world = virtual_world()
    local s = new_scheduler(world)
    local h = s:spawn(function() scheduler.sleep(1) end, function() error("on_done broke", 0) end)
    s:step(0)
    assert.has_error(function() h:cancel() end, "on_done broke")
    assert.is_true(h:done())
    assert.are.equal(0, s:pending())
    assert.are.equal("cancelled", select(2, h:result()).kind)
  end)
end)

describe("scheduler on_done errors", function()
  it("are raised by step after the bookkeeping, one per call, none lost", function()
    local world = virtual_world()
    local s = new_scheduler(world)
    local finished = {}
    local function on_done(name)
      return function()
        finished[#finished + 1] = name
        if name ~= "quiet" then error(name .. " broke", 0) end
      end
    end
    local loud1 = s:spawn(function() return scheduler.request{ url = "1", delay = 1 } end, on_done("first"))
    local quiet = s:spawn(function() return scheduler.request{ url = "2", delay = 1 } end, on_done("quiet"))
    local loud2 = s:spawn(function() return scheduler.request{ url = "3", delay = 1 } end, on_done("second"))
    local sleeper = s:spawn(function() scheduler.sleep(10); return "slept" end)
    assert.has_error(function() s:step(5) end, "first broke")
    -- raised as soon as the callbacks ran, not after the rest of the 5 s timeout
    assert.are.equal(1, world.time)
    -- every completion of that round was handled: no handle's state was lost
    assert.are.same({ "first", "quiet", "second" }, finished)
    for _, h in ipairs{ loud1, quiet, loud2 } do assert.is_true(h:done()) end
    assert.are.equal("2", (quiet:result()).body)
    assert.are.equal(1, s:pending())
    -- the next call raises the next one before it does anything else
    local late_ran = false
    s:spawn(function() late_ran = true end)
    assert.has_error(function() s:step(20) end, "second broke")
    assert.is_false(late_ran)
    assert.are.equal(1, world.time)
    assert.are.equal(2, s:pending())
    assert.are.equal(0, s:step(20))
    assert.is_true(late_ran)
    assert.are.equal("slept", sleeper:result())
  end)

  it("are raised without waiting for the rest of the work", function()
    local world = virtual_world()
    local s = new_scheduler(world)
    s:spawn(function() return scheduler.request{ url = "slow", delay = 10 } end)
    s:spawn(function() end, function() error("quick broke", 0) end)
    assert.has_error(function() s:step(5) end, "quick broke")
    assert.are.equal(0, world.time)
    assert.are.equal(1, s:pending())
  end)

  it("propagate out of run()", function()
    local world = virtual_world()
    local s = new_scheduler(world)
    s:spawn(function() end, function() error({ code = 7 }) end)
    local ok, err = pcall(s.run, s)
    assert.is_false(ok)
    assert.are.same({ code = 7 }, err) -- the value on_done raised, unchanged
  end)
end)

describe("several schedulers", function()
  -- A blocking transport recording what it was asked, next to the multi side.
  local function recording(world)
    world.blocking = {}
    function world.transport.request(_, req)
      world.blocking[#world.blocking + 1] = req
      return { status = 200, body = "blocking " .. req.url }
    end
    return world
  end

  -- What a client does: its own scheduler when inside one of its tasks, else block.
  local function owned_request(s, world, req)
    if s:running() then return s:request(req) end
    return world.transport:request(req)
  end

  it("know which one runs the calling coroutine", function()
    local world_a, world_b = virtual_world(), virtual_world()
    local a, b = new_scheduler(world_a), new_scheduler(world_b)
    assert.is_false(a:running())
    local seen
    a:spawn(function()
      seen = { a = a:running(), b = b:running(), current = scheduler.current(),
        nested = coroutine.wrap(function() return a:running() end)() }
    end)
    a:run()
    assert.are.same({ a = true, b = false, current = a, nested = false }, seen)
  end)

  it("send B's requests through B's transport from inside a task of A", function()
    local world_a, world_b = recording(virtual_world()), recording(virtual_world())
    local a, b = new_scheduler(world_a), new_scheduler(world_b)
    local h = a:spawn(function()
      local blocked = owned_request(b, world_b, { url = "b-blocking" })
      local task = b:spawn(function() return owned_request(b, world_b, { url = "b-task", delay = 1 }) end)
      b:run() -- B's loop, driven from inside A's task
      return blocked.body, (task:result()).body, owned_request(a, world_a, { url = "a-own", delay = 1 }).body
    end)
    a:run()
    assert.are.same({ "blocking b-blocking", "b-task", "a-own" }, { h:result() })
    assert.are.same({ "b-blocking" }, { world_b.blocking[1].url })
    assert.are.equal(1, #world_b.blocking)
    assert.are.same({ "b-task" }, { world_b.submitted[1].url })
    assert.are.equal(1, #world_b.submitted)
    assert.are.same({ "a-own" }, { world_a.submitted[1].url })
    assert.are.equal(1, #world_a.submitted)
    assert.are.equal(0, #world_a.blocking)
  end)

  it("refuse s:request and s:sleep outside their own tasks", function()
    local world_a, world_b = virtual_world(), virtual_world()
    local a, b = new_scheduler(world_a), new_scheduler(world_b)
    assert.has_error(function() a:request{ url = "x" } end)
    assert.has_error(function() scheduler.request{ url = "x" } end)
    local h = a:spawn(function() b:request{ url = "x" } end)
    local z = a:spawn(function() b:sleep(1) end)
    a:run()
    assert.matches("not inside one of this scheduler's tasks", tostring(h:error()))
    assert.matches("not inside one of this scheduler's tasks", tostring(z:error()))
    assert.are.equal(0, #world_a.submitted + #world_b.submitted)
  end)

  it("do not take someone else's \"http\" yield for a request", function()
    local world = virtual_world()
    local s = new_scheduler(world)
    local h = s:spawn(function() return coroutine.yield("http", { url = "foreign" }) end)
    s:run()
    assert.are.equal(0, #world.submitted)
    assert.is_nil(h:result()) -- resumed at once with nothing
  end)
end)

describe("scheduler foreign yields", function()
  it("resume a task that yields something else once per step, and step still returns", function()
    local world = virtual_world()
    local s = new_scheduler(world)
    local turns = 0
    local h = s:spawn(function()
      while turns < 3 do
        turns = turns + 1
        coroutine.yield("not a request")
      end
      return "left"
    end)
    assert.are.equal(1, s:step(0))
    assert.are.equal(1, turns)
    assert.are.equal(1, s:step(0))
    assert.are.equal(2, turns)
    s:run()
    assert.are.equal("left", h:result())
  end)
end)

describe("scheduler before_send", function()
  it("runs once a slot is free, right before the request is handed to the transport", function()
    local world = virtual_world()
    local s = new_scheduler(world, 1)
    local log = {}
    local function task(name)
      return function()
        local resp = s:request({ url = name, delay = 1 }, function()
          -- what the transport had taken when the hook ran
          log[#log + 1] = name .. "@" .. #world.submitted
          return true
        end)
        return resp.body
      end
    end
    local a = s:spawn(task("a"))
    local b = s:spawn(task("b"))
    s:run()
    assert.are.same({ "a" }, { a:result() })
    assert.are.same({ "b" }, { b:result() })
    -- b's hook ran only after a's request finished and freed the one slot
    assert.are.same({ "a@0", "b@1" }, log)
  end)

  it("keeps the request from the transport when it returns nil, err, or raises", function()
    local world = virtual_world()
    local s = new_scheduler(world, 4)
    local refused = s:spawn(function()
      return s:request({ url = "x" }, function() return nil, "disk full" end)
    end)
    local raised = s:spawn(function()
      return s:request({ url = "y" }, function() error("hook broke") end)
    end)
    s:run()
    local value, err = refused:result()
    assert.is_nil(value)
    assert.are.same({ not_sent_because = "disk full", request_bytes = 0 }, err)
    value, err = raised:result()
    assert.is_nil(value)
    assert.truthy(tostring(err.not_sent_because):find("hook broke", 1, true))
    assert.are.equal(0, #world.submitted)
  end)

  it("is never run for a request cancelled while it waited for a slot", function()
    local world = virtual_world()
    local s = new_scheduler(world, 1)
    local ran = 0
    s:spawn(function() return s:request{ url = "first", delay = 1 } end)
    local queued = s:spawn(function()
      return s:request({ url = "second" }, function() ran = ran + 1 return true end)
    end)
    s:step(0)
    queued:cancel()
    s:run()
    assert.are.equal(0, ran)
    assert.are.equal(1, #world.submitted)
  end)
end)

-- The virtual world's transport, with the socket interface: each request is one
-- "socket" (fd 100 + id) that becomes readable when its answer is due.
local function socket_world()
  local world = virtual_world()
  local t = world.transport
  local changes, watching = {}, {}
  local submit = t.submit
  function t.submit(self, req)
    local id, err = submit(self, req)
    if id then
      changes[#changes + 1] = { fd = 100 + id, events = "r" }
      watching[100 + id] = id
    end
    return id, err
  end
  function t.watch()
    local out = changes
    changes = {}
    return out, nil
  end
  function t.timeout() return nil, nil end
  function t.socket_action(_, fd)
    world.actions = (world.actions or 0) + 1
    if fd == nil then return {} end
    local id = watching[fd]
    if not id then return {} end
    watching[fd] = nil
    changes[#changes + 1] = { fd = fd, events = "remove" }
    -- the answer is due now: perform(0) hands it over
    return t.perform(t, 0)
  end
  return world
end

describe("scheduler socket interface", function()
  it("tells the host what to watch and when, and runs on its events", function()
    local world = socket_world()
    local s = new_scheduler(world, 8)
    local h = s:spawn(function()
      scheduler.sleep(2)
      return scheduler.request{ url = "u", delay = 1 }.body
    end)
    local changes, timeout = s:watch()
    assert.are.same({}, changes)
    assert.are.equal(0, timeout) -- the new task is ready now
    s:socket_action(nil)
    changes, timeout = s:watch()
    assert.are.same({}, changes)
    assert.are.equal(2, timeout) -- its sleep, a timer of the scheduler
    world.time = 2
    s:socket_action(nil)
    changes, timeout = s:watch()
    assert.are.same({ { fd = 101, events = "r" } }, changes)
    assert.are.equal(scheduler.MAX_TIMEOUT, timeout) -- this transport knows no deadline of its own
    world.time = 3
    assert.are.equal(0, s:socket_action(101, "r"))
    assert.are.equal("u", h:result())
    changes, timeout = s:watch()
    assert.are.same({ { fd = 101, events = "remove" } }, changes)
    assert.is_nil(timeout) -- nothing left: the host may stop watching
  end)

  it("counts retry back-offs and poll waits into the timeout", function()
    local world = socket_world()
    local s = new_scheduler(world, 8)
    s:spawn(function() scheduler.sleep(0.25) end)
    s:spawn(function() scheduler.sleep(0.75) end)
    s:socket_action(nil)
    local _, timeout = s:watch()
    assert.are.equal(0.25, timeout)
    assert.are.equal(0.25, s:timeout())
  end)

  it("calls the wakeup when work starts or is cancelled outside its own calls", function()
    local world = socket_world()
    local s = new_scheduler(world, 8)
    local wakeups = 0
    s:set_wakeup(function() wakeups = wakeups + 1 end)
    local h = s:spawn(function() scheduler.sleep(5) end)
    assert.are.equal(1, wakeups)
    s:socket_action(nil)
    h:cancel()
    assert.are.equal(2, wakeups)
    s:set_wakeup(nil)
    s:spawn(function() end)
    assert.are.equal(2, wakeups)
    assert.has_error(function() s:set_wakeup(42) end)
  end)

  it("refuses a transport without the socket interface, and bad arguments", function()
    local plain = new_scheduler(virtual_world(), 8)
    assert.has_error(function() plain:watch() end)
    assert.has_error(function() plain:socket_action(nil) end)
    local s = new_scheduler(socket_world(), 8)
    assert.has_error(function() s:socket_action(-1) end)
    assert.has_error(function() s:socket_action(1.5) end)
    assert.has_error(function() s:socket_action(3, 7) end)
  end)
end)

describe("scheduler CPU budget", function()
  -- A CPU clock that each task advances by the cost it claims.
  local function budget_world(budget)
    local world = virtual_world()
    world.cpu = 0
    local s = scheduler.new{ transport = world.transport, now = world.now, sleep = world.sleep,
      budget = budget, cpu_clock = function() return world.cpu end }
    return world, s
  end

  it("resumes tasks only while the budget lasts, and the rest on the next calls", function()
    local world, s = budget_world(0.001)
    local ran = {}
    for i = 1, 5 do
      s:spawn(function()
        world.cpu = world.cpu + 0.0004 -- 0.4 ms of work each
        ran[#ran + 1] = i
      end)
    end
    s:step(0)
    -- 0.4 ms, then 0.8 ms: a third (0.8 + 0.4 > 1) waits for the next call
    assert.are.same({ 1, 2 }, ran)
    s:step(0)
    assert.are.same({ 1, 2, 3, 4 }, ran)
    s:step(0)
    assert.are.same({ 1, 2, 3, 4, 5 }, ran)
    assert.are.equal(0, s:pending())
  end)

  it("always resumes one task per call, however long it takes", function()
    local world, s = budget_world(0.001)
    local ran = 0
    for _ = 1, 3 do
      s:spawn(function()
        world.cpu = world.cpu + 0.005
        ran = ran + 1
      end)
    end
    for expected = 1, 3 do
      s:step(0)
      assert.are.equal(expected, ran)
    end
  end)

  it("keeps the order: what was left goes before what became ready later", function()
    local world, s = budget_world(0.001)
    local order = {}
    for i = 1, 3 do
      s:spawn(function()
        world.cpu = world.cpu + 0.0008
        order[#order + 1] = i
        if i == 1 then s:spawn(function() order[#order + 1] = "late" end) end
      end)
    end
    while s:pending() > 0 do s:step(0) end
    assert.are.same({ 1, 2, 3, "late" }, order)
  end)

  it("tells a host with work left over to call again at once", function()
    local world = socket_world()
    world.cpu = 0
    local s = scheduler.new{ transport = world.transport, now = world.now, sleep = world.sleep,
      cpu_clock = function() return world.cpu end }
    for _ = 1, 4 do s:spawn(function() world.cpu = world.cpu + 0.002 end) end
    s:socket_action(nil)
    assert.are.equal(3, s:pending())
    assert.are.equal(0, s:timeout())
  end)
end)
