-- The non-blocking API (start_query / step / handles) and the coroutine form
-- (mr.new{yield=}) against the sandbox, over the real curl multi transport.
local core = require "maintenance_report.core"
local mr = require "maintenance_report"
local sandbox = require "maintenance_report_sandbox"

local LATENCY = 0.5 -- seconds the sandbox takes to make a report

-- The first poll wait is first_poll_delay × (0.9 + 0.1 × random()); random = 1 puts it at
-- 1.2 × LATENCY, after the report is ready, so one query is one order + one poll.
local function new_client(sb, extra)
  local opts = { endpoint = sb.base_url, secret_id = sb.secret_id, secret_key = sb.secret_key,
    first_poll_delay = 1.2 * LATENCY, random = function() return 1 end }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return assert(mr.new(opts))
end

-- The parts of a report that do not depend on the order.
local function comparable(report)
  local copy = {}
  for k, v in pairs(report) do copy[k] = v end
  copy.order_id, copy.request_id, copy.raw = nil, nil, nil
  return copy
end

describe("event loop API", function()
  local sb
  lazy_setup(function() sb = assert(sandbox.start{ latency_ms = LATENCY * 1000 }) end)
  lazy_teardown(function() if sb then sb:stop() end end)

  it("completes handles, calls on_done once each, and matches the blocking query", function()
    local client = new_client(sb)
    local vin = sandbox.scenario_vin("normal", 101)
    local blocking = assert(client:query{ vin = vin })
    local calls = {}
    local handle = client:start_query{ vin = vin, on_done = function(h) calls[#calls + 1] = h end }
    local other = client:start_report(blocking.order_id, { on_done = function(h) calls[#calls + 1] = h end })
    assert.is_false(handle:done())
    assert.has_error(function() handle:result() end)
    local give_up = core.monotime() + 10
    while client:step(0.05) > 0 and core.monotime() < give_up do end
    assert.is_true(handle:done())
    assert.is_true(other:done())
    assert.are.equal(2, #calls)
    client:step(0) -- finished handles are not reported again
    assert.are.equal(2, #calls)
    local report = assert(handle:result())
    assert.are.same(comparable(blocking), comparable(report))
    assert.are_not.equal(blocking.order_id, report.order_id)
    assert.are.same(comparable(blocking), comparable(assert(other:result())))
    assert.are.equal(blocking.order_id, (other:result()).order_id)
  end)

  it("step(0) returns at once and step(t) waits at most about t", function()
    local client = new_client(sb)
    client:start_query{ vin = sandbox.scenario_vin("normal", 102) }
    -- "At once" is told by the thread never going to sleep (no voluntary context switch),
    -- which a loaded machine's preemptions (involuntary ones) do not blur as wall time would.
    local function sleeps_in(fn)
      local before = core.thread_usage().voluntary_switches
      local value = fn()
      return core.thread_usage().voluntary_switches - before, value
    end
    local slept, pending = sleeps_in(function() return client:step(0) end)
    assert.are.equal(1, pending)
    assert.are.equal(0, slept, "step(0) went to sleep")
    -- The report takes LATENCY, so a 0.1 s step cannot finish it: it must come back
    -- having waited its 0.1 s, and well before the report could be ready.
    local started = core.monotime()
    assert.are.equal(1, client:step(0.1))
    local took = core.monotime() - started
    assert.is_true(took >= 0.09 and took < 0.9 * LATENCY, "step(0.1) took " .. took .. " s")
    local give_up = core.monotime() + 10
    while client:step(1) > 0 and core.monotime() < give_up do end
    -- Nothing left: step(t) does not wait.
    slept, pending = sleeps_in(function() return client:step(5) end)
    assert.are.equal(0, pending)
    assert.are.equal(0, slept, "an idle step(5) went to sleep")
  end)

  it("runs 20 queries in parallel in about one report latency", function()
    local client = new_client(sb)
    local before = assert(sb:stats()).orders
    local handles = {}
    local started = core.monotime()
    for i = 1, 20 do handles[i] = client:start_query{ vin = sandbox.scenario_vin("normal", 200 + i) } end
    local give_up = started + 20
    while client:step(1) > 0 and core.monotime() < give_up do end
    local took = core.monotime() - started
    for i = 1, 20 do
      assert.is_true(handles[i]:done())
      assert.are.equal("ready", (assert(handles[i]:result())).status)
    end
    -- One after the other this would take 20 × 1.2 × LATENCY = 12 s.
    assert.is_true(took < 3 * LATENCY, ("20 parallel queries took %.2f s"):format(took))
    assert.are.equal(before + 20, assert(sb:stats()).orders)
  end)

  it("hands errors back through the handle", function()
    local client = new_client(sb)
    local handle = client:start_query{ vin = sandbox.scenario_vin("order_http_502", 0) }
    local give_up = core.monotime() + 10
    while client:step(0.1) > 0 and core.monotime() < give_up do end
    local report, err = handle:result()
    assert.is_nil(report)
    assert.are.equal("http", err.kind)
    assert.are.equal("unknown", err.order_outcome)
  end)
end)

-- A user's own scheduler: round-robin over coroutines, as a game loop or a small
-- event loop would have. With the yield option, query gives control back instead of blocking.
describe("coroutine form (mr.new{yield=})", function()
  local sb
  lazy_setup(function() sb = assert(sandbox.start{ latency_ms = LATENCY * 1000 }) end)
  lazy_teardown(function() if sb then sb:stop() end end)

  local function round_robin(tasks, give_up)
    local live = #tasks
    local rounds = 0
    while live > 0 and core.monotime() < give_up do
      rounds = rounds + 1
      for _, co in ipairs(tasks) do
        if coroutine.status(co) == "suspended" then
          assert(coroutine.resume(co))
          if coroutine.status(co) == "dead" then live = live - 1 end
        end
      end
      core.sleep(0.001) -- a real loop would wait for its own events here
    end
    return rounds
  end

  it("yields to the user's scheduler while queries run, with coroutine.yield", function()
    local client = new_client(sb, { yield = coroutine.yield })
    local results, ticks = {}, 0
    local tasks = {}
    for i = 1, 3 do
      tasks[i] = coroutine.create(function()
        results[i] = { client:query{ vin = sandbox.scenario_vin("normal", 300 + i) } }
      end)
    end
    -- Another task of the same loop: it must keep running while the queries wait.
    tasks[4] = coroutine.create(function()
      while not (results[1] and results[2] and results[3]) do
        ticks = ticks + 1
        coroutine.yield()
      end
    end)
    local started = core.monotime()
    local rounds = round_robin(tasks, started + 10)
    local took = core.monotime() - started
    for i = 1, 3 do
      assert.are.equal("ready", assert(results[i][1]).status)
    end
    assert.is_true(ticks > 50, "the other task ran only " .. ticks .. " times")
    assert.is_true(rounds > 50)
    -- The three queries overlapped instead of running one after the other.
    assert.is_true(took < 2.5 * LATENCY, ("3 cooperative queries took %.2f s"):format(took))
  end)

  it("accepts a custom yield function and still blocks outside coroutines", function()
    local yields = 0
    local client = new_client(sb, { yield = function()
      yields = yields + 1
      coroutine.yield("mr-wait")
    end })
    local result
    local co = coroutine.create(function()
      result = { client:query{ vin = sandbox.scenario_vin("normal", 311) } }
    end)
    round_robin({ co }, core.monotime() + 10)
    assert.are.equal("ready", assert(result[1]).status)
    assert.is_true(yields > 10, "yielded only " .. yields .. " times")
    -- Outside any coroutine there is nobody to yield to: the same client blocks.
    local before = yields
    assert.are.equal("ready", assert(client:query{ vin = sandbox.scenario_vin("normal", 312) }).status)
    assert.are.equal(before, yields)
  end)
end)

describe("examples/game_loop", function()
  local sb, saved_path
  lazy_setup(function()
    saved_path = package.path
    package.path = "./examples/?.lua;" .. package.path
    sb = assert(sandbox.start{ latency_ms = 1000 })
  end)
  lazy_teardown(function()
    package.path = saved_path
    if sb then sb:stop() end
  end)

  it("queries 5 VINs at 60 fps with every client:step under 2 ms of CPU", function()
    local game_loop = require "game_loop"
    local client = assert(mr.new{ endpoint = sb.base_url, secret_id = sb.secret_id, secret_key = sb.secret_key })
    local vins = {}
    for i = 1, 5 do vins[i] = sandbox.scenario_vin("normal", 400 + i) end
    collectgarbage() -- the setup's garbage is not the client's
    local stats = game_loop.run{ client = client, vins = vins, max_frames = 60 * 20 }
    for _, vin in ipairs(vins) do
      assert.are.equal("ready", assert(stats.results[vin].report, tostring(stats.results[vin].err)).status)
    end
    -- The queries took at least the sandbox's 1 s: the loop kept running meanwhile.
    assert.is_true(stats.frames >= 50, "only " .. stats.frames .. " frames")
    assert.are.equal(stats.frames, #stats.step_cpu)
    -- CPU, not wall time: on a loaded machine the OS may preempt any frame. The budget is
    -- the regular build's (make test, both interpreters); under the sanitizers (make asan)
    -- CPU times mean nothing (one first call took 11 ms there), so only the rest is checked.
    local over = game_loop.check(stats, os.getenv("MR_SPEC_SANITIZED") and math.huge or 1)
    assert.is_nil(over, over)
    local preempted = 0
    for _, p in ipairs(stats.step_preempted) do if p then preempted = preempted + 1 end end
    io.stderr:write(("\ngame loop: %d frames, longest client:step %.2f ms CPU (%.2f ms wall; %.2f ms in %d "
      .. "preempted), %d frames over 20 ms\n"):format(stats.frames, stats.max_step_cpu * 1000, stats.max_step * 1000,
      stats.max_preempted_step_cpu * 1000, preempted, stats.slow_frames))
  end)

  it("keeps its promise with one outlier step, not with two or with one over 5 ms", function()
    local game_loop = require "game_loop"
    local function stats_of(cpu, swept)
      local s = { step_cpu = cpu, step_swept = swept or {}, over_budget = {} }
      for i = 1, #cpu do s.step_swept[i] = s.step_swept[i] or false end
      return s
    end
    assert.is_nil(game_loop.check(stats_of{ 0.0005, 0.0019, 0.0001 }))
    assert.is_nil(game_loop.check(stats_of{ 0.0005, 0.0031, 0.0001 }))
    assert.are.equal("2 steps over 2 ms: frame 1: client:step took 2.10 ms of CPU; "
      .. "frame 3: client:step took 3.10 ms of CPU", game_loop.check(stats_of{ 0.0021, 0.0005, 0.0031 }))
    assert.are.equal("frame 2: client:step took 5.10 ms of CPU", game_loop.check(stats_of{ 0.0005, 0.0051 }))
    assert.is_nil(game_loop.check(stats_of({ 0.0045, 0.0031 }, { true, false })))
    assert.are.equal("frame 1: client:step took 5.50 ms of CPU (with a GC sweep)",
      game_loop.check(stats_of({ 0.0055 }, { true })))
    assert.is_nil(game_loop.check(stats_of{ 0.0021, 0.0031 }, math.huge))
  end)

  it("describes a step over budget with the kernel's part in it", function()
    -- What the assertion above prints when it fails: Lua 5.4's heap sizes are floats.
    local game_loop = require "game_loop"
    local stats = { step_cpu = { 0.0001, 0.0125 }, step_swept = { false, false }, over_budget = { [2] = {
      minor_faults = 9, major_faults = 0, involuntary_switches = 2, heap_kib = 515.25, heap_after_kib = 525.5 } } }
    assert.are.equal("frame 1: client:step took 0.10 ms of CPU", game_loop.describe_step(stats, 1))
    assert.are.equal("frame 2: client:step took 12.50 ms of CPU: 9 minor and 0 major page faults, "
      .. "2 preemptions, heap 515 → 526 KiB", game_loop.describe_step(stats, 2))
    stats.step_swept[1] = true
    assert.are.equal("frame 1: client:step took 0.10 ms of CPU (with a GC sweep)", game_loop.describe_step(stats, 1))
    stats.step_preempted = { false, true }
    assert.are.equal("frame 2: client:step took 12.50 ms of CPU (preempted): 9 minor and 0 major page faults, "
      .. "2 preemptions, heap 515 → 526 KiB", game_loop.describe_step(stats, 2))
  end)

  it("cancels what is left after max_frames, and every placed order keeps its id", function()
    local game_loop = require "game_loop"
    local client = assert(mr.new{ endpoint = sb.base_url, secret_id = sb.secret_id, secret_key = sb.secret_key })
    local vins = {}
    for i = 1, 3 do vins[i] = sandbox.scenario_vin("normal", 420 + i) end
    local before = assert(sb:stats()).orders
    local stats = game_loop.run{ client = client, vins = vins, max_frames = 3 } -- 50 ms; reports take 1 s
    assert.are.equal(0, client:step(0))
    local with_id, unknown = 0, 0
    for _, vin in ipairs(vins) do
      local err = assert(stats.results[vin], "on_done ran for every cancelled query").err
      assert.are.equal("cancelled", err.kind)
      if err.order_id then with_id = with_id + 1 end
      if err.order_outcome == "unknown" then unknown = unknown + 1 end
    end
    -- Each order the sandbox took is named by its id, or reported as maybe placed.
    local placed = assert(sb:stats()).orders - before
    assert.is_true(placed >= with_id and placed <= with_id + unknown,
      ("%d orders placed, %d ids kept, %d unknown"):format(placed, with_id, unknown))
    client:close()
  end)
end)

-- A transport that records every request handed to it (its URL), then passes it on.
local function recording(inner)
  local urls = {}
  local t = setmetatable({ urls = urls }, { __index = function(_, k)
    local v = inner[k]
    if type(v) ~= "function" then return v end
    return function(_, ...) return v(inner, ...) end
  end })
  function t.submit(_, req)
    urls[#urls + 1] = req.url
    return inner:submit(req)
  end
  function t.request(_, req)
    urls[#urls + 1] = req.url
    return inner:request(req)
  end
  return t
end

describe("cancelling a query", function()
  local sb
  lazy_setup(function() sb = assert(sandbox.start{ latency_ms = 1000 }) end)
  lazy_teardown(function() if sb then sb:stop() end end)

  -- A client whose queries are cancelled right after the order is placed.
  local function client_with_recorder()
    local transport = recording(require("maintenance_report.transport.curl").new{})
    local placed = 0
    local client = new_client(sb, { transport = transport, ledger_wait = 5, on_event = function(e)
      if e.event == "http" and e.op == "create_order" then placed = placed + 1 end
    end })
    return client, transport, function() return placed end
  end

  it("stops polling: a cancelled handle sends no further request", function()
    local client, transport, placed = client_with_recorder()
    local handle = client:start_query{ vin = sandbox.scenario_vin("normal", 501) }
    local give_up = core.monotime() + 10
    while placed() == 0 and core.monotime() < give_up do client:step(0.02) end
    assert.is_true(handle:cancel())
    local _, err = handle:result()
    assert.are.equal("cancelled", err.kind)
    local order_id = assert(err.order_id, "the cancelled query names its order")
    -- Another query on the same client runs well past the cancelled one's first poll time.
    local other = client:start_query{ vin = sandbox.scenario_vin("normal", 502) }
    while client:step(0.1) > 0 and core.monotime() < give_up + 10 do end
    assert.are.equal("ready", assert(other:result()).status)
    for _, url in ipairs(transport.urls) do
      assert.is_nil(url:find(order_id, 1, true), "a request for the cancelled order was sent: " .. url)
    end
  end)

  it("leaves the order in the ledger: a later query resumes it, with no new order", function()
    local client, _, placed = client_with_recorder()
    local vin = sandbox.scenario_vin("normal", 503)
    local handle = client:start_query{ vin = vin }
    local give_up = core.monotime() + 10
    while placed() == 0 and core.monotime() < give_up do client:step(0.02) end
    handle:cancel()
    local _, err = handle:result()
    local before = assert(sb:stats()).orders_by_vin[vin]
    local started = core.monotime()
    local report = assert(client:query{ vin = vin })
    assert.are.equal("ready", report.status)
    assert.are.equal(err.order_id, report.order_id)
    assert.are.equal(before, assert(sb:stats()).orders_by_vin[vin])
    assert.are.equal(1, before)
    -- It did not wait for the cancelled task's claim to time out (ledger_wait, 5 s).
    assert.is_true(core.monotime() - started < 4, "the later query waited for the ledger claim")
  end)
end)

describe("bounded work per step", function()
  local sb
  lazy_setup(function() sb = assert(sandbox.start{ latency_ms = 100 }) end)
  lazy_teardown(function() if sb then sb:stop() end end)

  it("takes the ledger's decision and sends the order in separate steps", function()
    -- step_budget 0: every call resumes one task up to its next checkpoint, no more.
    local transport = recording(require("maintenance_report.transport.curl").new{})
    local client = new_client(sb, { transport = transport, step_budget = 0 })
    local handle = assert(client:start_query{ vin = sandbox.scenario_vin("normal", 431) })
    client:step(0)
    assert.are.same({}, transport.urls, "the first step sent a request")
    local steps = 1
    while #transport.urls == 0 and steps < 10 do
      client:step(0)
      steps = steps + 1
    end
    assert.are.equal(2, steps)
    assert.truthy(transport.urls[1]:find("/maintenance/order?", 1, true), transport.urls[1])
    while not handle:done() do client:step(0.05) end
    assert.are.equal("ready", assert(handle:result()).status)
    client:close()
  end)

  it("refuses a step_budget out of range", function()
    local _, err = mr.new{ endpoint = sb.base_url, secret_id = sb.secret_id, secret_key = sb.secret_key,
      step_budget = -1 }
    assert.are.equal("invalid_input", err.kind)
    assert.truthy(err.message:find("step_budget", 1, true))
  end)
end)
