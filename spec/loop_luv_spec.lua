-- The luv adapter in a real libuv loop (Debian's lua-luv), against the sandbox:
-- the loop wakes only for socket events and due timers, never to poll.
local uv = require "luv"
local core = require "maintenance_report.core"
local mr = require "maintenance_report"
local sandbox = require "maintenance_report_sandbox"
local luv_loop = require "maintenance_report.loop.luv"

-- The regular build's budget (make test, both interpreters). Under the sanitizers (make asan
-- sets MR_SPEC_SANITIZED) CPU times mean nothing: one first callback took 11 ms there.
local CPU_SCALE = os.getenv("MR_SPEC_SANITIZED") and math.huge or 1
local STEP_CPU = 0.002 * CPU_SCALE -- CPU seconds one callback may spend in the client
-- A call in which the collector swept (the heap shrank) also did GC work for the
-- whole process, which the client does not bound; it gets this much instead, and so
-- does one other call of the run (examples/game_loop.lua, OUTLIER_STEP_CPU, says why).
local GC_STEP_CPU = 0.005 * CPU_SCALE

-- Times every socket_action the adapter makes: CPU time of this thread, not wall time
-- (curl's resolver threads run beside the loop).
local function timed(client)
  local cpu = { max = 0, max_gc = 0, calls = 0, gc_calls = 0, over = {}, preempted_calls = 0 }
  local socket_action = client.socket_action
  client.socket_action = function(...)
    local heap = collectgarbage("count")
    local switches = core.thread_usage().involuntary_switches
    local started = core.thread_cputime()
    local r = socket_action(...)
    local spent = core.thread_cputime() - started
    cpu.calls = cpu.calls + 1
    if collectgarbage("count") < heap then
      cpu.gc_calls = cpu.gc_calls + 1
      if spent > cpu.max_gc then cpu.max_gc = spent end
    else
      local preempted = core.thread_usage().involuntary_switches > switches
      if preempted then cpu.preempted_calls = cpu.preempted_calls + 1 end
      if spent > STEP_CPU then
        cpu.over[#cpu.over + 1] = ("%.2f ms%s"):format(spent * 1000, preempted and " (preempted)" or "")
      end
      if spent > cpu.max then cpu.max = spent end
    end
    return r
  end
  return cpu
end

describe("luv adapter", function()
  local sb
  lazy_setup(function() sb = assert(sandbox.start{ latency_ms = 1000 }) end)
  lazy_teardown(function() if sb then sb:stop() end end)

  local function new_client(events)
    return assert(mr.new{ endpoint = sb.base_url, secret_id = sb.secret_id, secret_key = sb.secret_key,
      on_event = function(e) events[#events + 1] = e end })
  end

  it("runs 20 queries with wake-ups only for sockets and timers", function()
    local events = {}
    local client = new_client(events)
    local cpu = timed(client)
    local attached = luv_loop.attach(client, { uv = uv })
    local before = assert(sb:stats())
    local done = {}
    for i = 1, 20 do
      client:start_query{ vin = sandbox.scenario_vin("normal", 600 + i), on_done = function(h)
        done[#done + 1] = assert(h:result()).status
      end }
    end
    -- A guard against a hang: the queries take about 2 s.
    local guard = uv.new_timer()
    guard:start(30000, 0, function() attached:close() end)
    guard:unref()
    collectgarbage() -- the setup's garbage (and its finalizers) is not the client's
    local started = uv.hrtime()
    uv.run()
    local took = (uv.hrtime() - started) / 1e9
    attached:close()
    guard:close()
    uv.run("nowait")
    assert.are.equal(20, #done)
    for _, status in ipairs(done) do assert.are.equal("ready", status) end
    local after = assert(sb:stats())
    local exchanges = (after.orders - before.orders) + (after.report_reads - before.report_reads)
    local timers = 0
    for _, e in ipairs(events) do
      if e.event == "poll" or e.event == "retry" then timers = timers + 1 end
    end
    assert.are.equal(20, after.orders - before.orders)
    assert.is_true(attached.wakeups <= 5 * (exchanges + timers),
      ("%d wake-ups for %d exchanges and %d timers"):format(attached.wakeups, exchanges, timers))
    -- Polling at 100 Hz would be 100 timer wake-ups a second, over 200 here.
    assert.is_true(attached.timer_wakeups <= 2 * (exchanges + timers),
      ("%d timer wake-ups in %.2f s"):format(attached.timer_wakeups, took))
    assert.is_true(#cpu.over <= 1, #cpu.over .. " callbacks over 2 ms of CPU: " .. table.concat(cpu.over, ", "))
    assert.is_true(cpu.max <= GC_STEP_CPU, ("a callback took %.2f ms of CPU"):format(cpu.max * 1000))
    assert.is_true(cpu.max_gc <= GC_STEP_CPU,
      ("a callback with a GC sweep took %.2f ms of CPU"):format(cpu.max_gc * 1000))
    io.stderr:write(("\nluv: 20 queries, %d exchanges, %d timers, %d wake-ups (%d of the timer) in %.2f s; "
      .. "longest callback %.2f ms CPU, %d over 2 ms (%.2f ms in %d with a GC sweep; %d preempted)\n"):format(
      exchanges, timers, attached.wakeups, attached.timer_wakeups, took, cpu.max * 1000, #cpu.over,
      cpu.max_gc * 1000, cpu.gc_calls, cpu.preempted_calls))
    client:close()
  end)

  it("stops watching a cancelled query, and the loop ends", function()
    local client = new_client({})
    local attached = luv_loop.attach(client, { uv = uv })
    local handle = client:start_query{ vin = sandbox.scenario_vin("normal", 650) }
    -- Cancelled from a timer of the host, while its order is in flight (the sandbox takes 1 s).
    local t = uv.new_timer()
    t:start(300, 0, function() handle:cancel() end)
    local started = uv.hrtime()
    uv.run()
    local took = (uv.hrtime() - started) / 1e9
    attached:close()
    t:close()
    uv.run("nowait")
    local _, err = handle:result()
    assert.are.equal("cancelled", err.kind)
    assert.is_true(took < 0.9, ("the loop ran %.2f s after the cancel"):format(took))
    assert.is_nil(client:timeout())
    client:close()
  end)

  it("hands an on_done error to on_error and goes on (luv would end the process)", function()
    local client = new_client({})
    local errors = {}
    local attached = luv_loop.attach(client, { uv = uv, on_error = function(e) errors[#errors + 1] = e end })
    local other
    client:start_query{ vin = sandbox.scenario_vin("normal", 651), on_done = function() error("boom") end }
    client:start_query{ vin = sandbox.scenario_vin("normal", 652), on_done = function(h) other = h:result() end }
    uv.run()
    assert.are.equal(1, #errors)
    assert.matches("boom", tostring(errors[1]))
    assert.are.equal("ready", other.status)
    attached:close()
    uv.run("nowait")
    assert.are.equal(0, client:scheduler():pending())
    client:close()
  end)
end)
