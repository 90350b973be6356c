-- A 60 fps loop that buys maintenance reports without taking the frame's time: each
-- frame does its own work, then calls client:step(0), which advances every started
-- query by a bounded amount of work and returns at once (HTTP runs in curl's multi
-- handle, poll waits are timers). The promise is about CPU: no client:step spends more
-- than 2 ms of the game thread's CPU (M.STEP_CPU); a step in which Lua's collector swept
-- also did GC work for the whole program, and gets M.GC_STEP_CPU; one other step of a run may
-- take up to M.OUTLIER_STEP_CPU (M.check says which). Wall-clock frame times
-- are reported too, but on a busy machine the OS may preempt any frame, whatever runs in it.
--
--   lua5.4 examples/game_loop.lua            starts its own sandbox (nothing is bought)
--   MAINTENANCE_REPORT_ENDPOINT=… MAINTENANCE_REPORT_SECRET_ID=… MAINTENANCE_REPORT_SECRET_KEY=… \
--     lua5.4 examples/game_loop.lua VIN…     real API: buys one report per VIN given
--
-- Needs LUA_PATH/LUA_CPATH on the checkout (see docs/event-loop.md).
local core = require "maintenance_report.core"
local mr = require "maintenance_report"

local M = {}

M.FRAME = 1 / 60        -- the frame budget: 16.7 ms
M.SLOW_FRAME = 0.020    -- a frame longer than this (wall clock) counts as dropped
M.STEP_CPU = 0.002      -- CPU seconds (of this thread) one client:step may take
M.GC_STEP_CPU = 0.005   -- the same for a step in which Lua's collector swept the whole heap
-- The bound for the one step of a run that may go over M.STEP_CPU: on the 2-core VM we test
-- on, a step whose work takes about 0.2 ms measured 2.1 ms, with the kernel's and the
-- hypervisor's time in the thread's clock. A slow piece of the client runs in every query,
-- so it shows in several steps, not one.
M.OUTLIER_STEP_CPU = 0.005

-- Stands in for the game's own per-frame work (physics, drawing…): busy for `seconds`.
local function simulate_work(seconds)
  local until_t = core.monotime() + seconds
  local x = 0
  while core.monotime() < until_t do x = x + 1 end
  return x
end

--- Runs the loop until every query is done (or max_frames). opts: client, vins,
--- work (seconds of simulated work per frame, default 5 ms), max_frames (then what is
--- left is cancelled), on_report(vin, report, err).
--- Returns {frames=, slow_frames=, max_frame=, step_times={…} (wall), max_step=,
--- step_cpu={…} (CPU seconds of this thread), step_swept={…} (true: the collector swept in
--- that step), step_preempted={…} (true: the kernel preempted the thread in it),
--- over_budget={[frame]={minor_faults=, major_faults=, involuntary_switches=, heap_kib=,
--- heap_after_kib=}} (steps over M.STEP_CPU: getrusage of
--- this thread, to tell the client's work from the kernel's), max_step_cpu= (steps neither swept
--- nor preempted), max_gc_step_cpu=, max_preempted_step_cpu=, results={vin={report, err}}}.
function M.run(opts)
  local client = opts.client
  local stats = { frames = 0, slow_frames = 0, max_frame = 0, step_times = {}, max_step = 0,
    step_cpu = {}, step_swept = {}, step_preempted = {}, over_budget = {}, max_step_cpu = 0, max_gc_step_cpu = 0,
    max_preempted_step_cpu = 0, results = {} }
  local running, handles = 0, {}
  for _, vin in ipairs(opts.vins) do
    running = running + 1
    handles[#handles + 1] = client:start_query{ vin = vin, on_done = function(handle)
      running = running - 1
      local report, err = handle:result()
      stats.results[vin] = { report = report, err = err }
      if opts.on_report then opts.on_report(vin, report, err) end
    end }
  end
  local max_frames = opts.max_frames or 60 * 60
  while running > 0 and stats.frames < max_frames do
    local frame_start = core.monotime()
    simulate_work(opts.work or 0.005)
    -- The client's share of the frame: what the game gives up for the queries.
    local heap = collectgarbage("count")
    local usage = core.thread_usage()
    local step_start, cpu_start = core.monotime(), core.thread_cputime()
    client:step(0)
    local step_time, step_cpu = core.monotime() - step_start, core.thread_cputime() - cpu_start
    -- A sweep (the heap shrank) collected the whole program's garbage, not only the client's.
    local heap_after = collectgarbage("count")
    local swept = heap_after < heap
    local now = core.thread_usage()
    local preempted = now.involuntary_switches > usage.involuntary_switches
    if step_cpu > M.STEP_CPU then
      -- Over budget: keep what tells the client's own work from the kernel's (getrusage's
      -- user/system split is sampled at the scheduler tick: no use at this scale).
      stats.over_budget[#stats.step_cpu + 1] = {
        minor_faults = now.minor_faults - usage.minor_faults, major_faults = now.major_faults - usage.major_faults,
        involuntary_switches = now.involuntary_switches - usage.involuntary_switches,
        heap_kib = heap, heap_after_kib = heap_after }
    end
    stats.step_cpu[#stats.step_cpu + 1] = step_cpu
    stats.step_swept[#stats.step_swept + 1] = swept
    stats.step_preempted[#stats.step_preempted + 1] = preempted
    if swept then
      if step_cpu > stats.max_gc_step_cpu then stats.max_gc_step_cpu = step_cpu end
    elseif preempted then
      if step_cpu > stats.max_preempted_step_cpu then stats.max_preempted_step_cpu = step_cpu end
    elseif step_cpu > stats.max_step_cpu then
      stats.max_step_cpu = step_cpu
    end
    stats.step_times[#stats.step_times + 1] = step_time
    if step_time > stats.max_step then stats.max_step = step_time end
    local spent = core.monotime() - frame_start
    if spent < M.FRAME then core.sleep(M.FRAME - spent) end -- vsync stand-in
    local frame_time = core.monotime() - frame_start
    stats.frames = stats.frames + 1
    if frame_time > stats.max_frame then stats.max_frame = frame_time end
    if frame_time > M.SLOW_FRAME then stats.slow_frames = stats.slow_frames + 1 end
  end
  -- Out of frames: stop what is left rather than leave it running unseen. on_done
  -- still reports each one: err.kind "cancelled", with err.order_id once an order was
  -- placed (resume it with wait_report) or err.order_outcome "unknown" mid-order.
  for _, handle in ipairs(handles) do handle:cancel() end
  return stats
end

--- One line on step i of stats (M.run's): its CPU, whether the collector swept in it, and
--- for a step over budget the page faults, preemptions and heap around it.
function M.describe_step(stats, i)
  local why = stats.over_budget[i]
  return ("frame %d: client:step took %.2f ms of CPU%s%s"):format(i, stats.step_cpu[i] * 1000,
    stats.step_swept[i] and " (with a GC sweep)" or (stats.step_preempted and stats.step_preempted[i]
      and " (preempted)" or ""), why and
    (": %d minor and %d major page faults, %d preemptions, heap %.0f → %.0f KiB"):format(why.minor_faults,
      why.major_faults, why.involuntary_switches, why.heap_kib, why.heap_after_kib) or "")
end

--- nil when stats (M.run's) keep the promise, else a line on the step that breaks it:
--- every step within M.STEP_CPU, except one within M.OUTLIER_STEP_CPU; a step in which the
--- collector swept within M.GC_STEP_CPU. scale multiplies the bounds (default 1).
function M.check(stats, scale)
  local over = {}
  scale = scale or 1
  for i, t in ipairs(stats.step_cpu) do
    if stats.step_swept[i] then
      if t > M.GC_STEP_CPU * scale then return M.describe_step(stats, i) end
    elseif t > M.OUTLIER_STEP_CPU * scale then
      return M.describe_step(stats, i)
    elseif t > M.STEP_CPU * scale then
      over[#over + 1] = i
    end
  end
  if #over > 1 then
    local lines = {}
    for _, i in ipairs(over) do lines[#lines + 1] = M.describe_step(stats, i) end
    return ("%d steps over %g ms: %s"):format(#over, M.STEP_CPU * 1000, table.concat(lines, "; "))
  end
  return nil
end

local function main(args)
  local sb, endpoint, id, key, vins
  endpoint = os.getenv("MAINTENANCE_REPORT_ENDPOINT")
  if endpoint and endpoint ~= "" then
    id, key = os.getenv("MAINTENANCE_REPORT_SECRET_ID"), os.getenv("MAINTENANCE_REPORT_SECRET_KEY")
    vins = args -- every report costs money: only the VINs the user names
    if #vins == 0 then
      io.stderr:write("with MAINTENANCE_REPORT_ENDPOINT set, name the VINs to buy on the command line\n")
      os.exit(2)
    end
  else
    local sandbox = require "maintenance_report_sandbox"
    sb = assert(sandbox.start{ latency_ms = 1000 })
    endpoint, id, key = sb.base_url, sb.secret_id, sb.secret_key
    vins = {}
    for i = 1, 5 do vins[i] = sandbox.scenario_vin("normal", i) end
    print("sandbox on " .. endpoint .. " (1 s per report)")
  end
  local client = assert(mr.new{ endpoint = endpoint, secret_id = id, secret_key = key })
  local ok, stats = pcall(M.run, { client = client, vins = vins, on_report = function(vin, report, err)
    print(("%s: %s"):format(vin, report and (report.status .. " " .. report.order_id) or tostring(err)))
  end })
  client:close()
  if sb then sb:stop() end
  if not ok then error(stats, 0) end
  print(("%d frames, %d longer than %d ms (longest %.1f ms); longest client:step %.2f ms CPU "
    .. "(limit %.0f ms; %.2f ms with a GC sweep, %.2f ms preempted), %.2f ms wall"):format(stats.frames,
    stats.slow_frames, M.SLOW_FRAME * 1000, stats.max_frame * 1000, stats.max_step_cpu * 1000, M.STEP_CPU * 1000,
    stats.max_gc_step_cpu * 1000, stats.max_preempted_step_cpu * 1000, stats.max_step * 1000))
  local over = M.check(stats)
  if over then
    io.stderr:write(over .. "\n")
    os.exit(1)
  end
end

-- require "game_loop" gives the module; running the file runs the demo.
if ... ~= "game_loop" then main({ ... }) end
return M
