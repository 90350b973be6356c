-- `maintenance-report batch INPUT`: one paid order per distinct VIN, run on
-- the client's shared scheduler (coroutine tasks; no thread or process per
-- VIN), with a durable journal so that a crash or Ctrl-C never loses an
-- order id and a re-run never orders a VIN twice.
--
--   --concurrency N  HTTP requests in flight (the scheduler's max_in_flight)
--   --rate R         new orders per second: each order takes the next slot of
--                    a token bucket with a burst of 1 (slots 1/R apart); a task
--                    waiting for its slot sleeps on the scheduler, never blocks
--   --max-active N   VINs in progress at once (live tasks), for huge inputs
-- Each ordered VIN is then polled by client:wait_report inside its task, on
-- its own backoff schedule.
local backoff = require "maintenance_report.backoff"
local config = require "maintenance_report.cli.config"
local csv = require "maintenance_report.cli.csv"
local exit = require "maintenance_report.cli.exit"
local hints = require "maintenance_report.cli.hints"
local journal_lib = require "maintenance_report.cli.journal"
local json = require "maintenance_report.json"
local output = require "maintenance_report.cli.output"
local progress_lib = require "maintenance_report.cli.progress"
local scheduler = require "maintenance_report.scheduler"
local terminal = require "maintenance_report.cli.terminal"

local M = {}

M.DEFAULTS = { concurrency = 8, rate = 5, unit_price = 17, max_active = 1000, max_wait = 900 }

-- Order failures after which no further order can succeed: stop ordering.
local STOP_KINDS = { auth = true, forbidden = true, quota_exceeded = true, not_found = true, tls = true }
-- So many network failures in a row (each provably not placed) stop ordering too.
local MAX_NETWORK_FAILURES = 5
local RATE_LIMIT_RETRIES = 3

-- Exit status ranking: the most serious unfinished row decides.
local EXIT_RANK = { [3] = 5, [4] = 4, [5] = 3, [6] = 2, [2] = 1, [1] = 6 }

function M.describe(cmd)
  cmd:summary("Order and collect reports for many VINs (paid: one order per distinct VIN).")
  cmd:description("INPUT is CSV or plain lines vin[,engine_number[,plate_number]], with an optional "
    .. "header row; blank lines and # comments are skipped. Each distinct VIN is ordered once (about ¥17 "
    .. "each), then polled until final. One JSON line per VIN goes to --output (or stdout); progress and "
    .. "a summary go to stderr. The journal (default INPUT.journal) records every order before and after "
    .. "it is sent: re-running the same command resumes, polls known orders and never orders a VIN twice.")
  cmd:argument("input", "Input file (CSV or one VIN per line).")
  cmd:option("-o --output", "Write the JSON lines to FILE (replaced) instead of stdout."):argname("<file>")
  cmd:option("--journal", "Journal file (default: INPUT.journal)."):argname("<file>")
  cmd:option("--concurrency", "Most HTTP requests in flight.", tostring(M.DEFAULTS.concurrency))
    :convert(config.integer_converter("--concurrency", 1))
  cmd:option("--rate", "Most new orders per second.", tostring(M.DEFAULTS.rate))
    :convert(config.number_converter("--rate", 0, true))
  config.add_poll_options(cmd, M.DEFAULTS.max_wait)
  cmd:flag("--strict", "Stop before any order if a row is invalid (default: skip invalid rows).")
  cmd:flag("--retry-unknown", "Order again the VINs whose earlier order has an unknown outcome "
    .. "(they may have been charged already).")
  cmd:option("--unit-price", "Price of one order, for the cost summary.", tostring(M.DEFAULTS.unit_price))
    :convert(config.number_converter("--unit-price", 0, false))
  cmd:option("--max-active", "Most VINs in progress at once.", tostring(M.DEFAULTS.max_active))
    :convert(config.integer_converter("--max-active", 1))
  cmd:flag("-n --dry-run", "Read the input and the journal, print the plan and the cost; send nothing.")
  cmd:flag("-q --quiet", "No progress output.")
  cmd:option("--progress-interval", "Seconds between progress lines when stderr is not a terminal.", "5")
    :convert(config.number_converter("--progress-interval", 0, true))
  config.add_connection_options(cmd)
  cmd:epilog(exit.HELP .. [[


Batch exit status: 0 when every row got a report (ready or no records); otherwise the code
of the most serious unfinished row: 3 auth, 4 network, 5 API error or unknown order outcome,
6 still pending (re-run to resume), 2 invalid rows skipped.]])
end

local function money(n)
  return string.format("¥%.2f", n)
end

local function error_fields(err)
  if type(err) ~= "table" then return { kind = "internal", message = tostring(err) } end
  return {
    kind = err.kind, message = err.message, code = err.code ~= nil and tostring(err.code) or nil,
    http_status = err.http_status, request_id = err.request_id, order_outcome = err.order_outcome,
  }
end

--- Runs the batch. ctx: client, rows (from csv.parse), journal, write_line(text), progress,
--- rate, max_wait, poll_interval, retry_unknown, max_active, now, say.
--- Returns the per-row results { [vin] = {status=, order_id=, error=} } and counters.
function M.execute(ctx)
  local client, jr, rows = ctx.client, ctx.journal, ctx.rows
  local settings = client:settings() -- its clock and retry schedule, so a 429 here backs off like one there
  local now = ctx.now or settings.now
  local sched = client:scheduler()
  local say = ctx.say or output.say
  local c = { done = 0, ordered = 0, pending = 0, failed = 0, unknown_new = 0, resumed = 0 }
  local results = {}
  local stop -- the error that stopped ordering
  local network_failures = 0
  local next_slot = now()
  local interval = 1 / ctx.rate

  -- The token bucket (burst 1): each order takes the next free slot.
  local function take_slot()
    local t = now()
    local slot = math.max(t, next_slot)
    next_slot = slot + interval
    if slot > t then scheduler.sleep(slot - t) end
  end

  -- Writes the row's line; keeps only a slim result (no report) so memory stays flat.
  local function finish(row, r)
    r.line, r.input, r.vin = row.line, row.input, row.vin
    c.done = c.done + 1
    if r.status ~= "ready" and r.status ~= "no_records" then c.failed = c.failed + 1 end
    ctx.write_line(json.encode(r, { skip_keys = { raw = true } }))
    results[row.vin] = { status = r.status, order_id = r.order_id,
      error = r.error and { kind = r.error.kind, order_outcome = r.error.order_outcome } }
  end

  -- Places the order; returns order_id, or nil after finishing the row.
  local function place(row)
    for attempt = 1, RATE_LIMIT_RETRIES + 1 do
      take_slot()
      if stop then
        finish(row, { status = "skipped", error = { kind = stop.kind,
          message = "not ordered: ordering stopped after an earlier " .. tostring(stop.kind) .. " error" } })
        return nil
      end
      local ok, jerr = jr:write{ event = "ordering", vin = row.vin, line = row.line }
      if not ok then
        stop = { kind = "journal", message = jerr }
        say(output.PROGRAM .. ": " .. jerr .. "; no further orders are placed")
        finish(row, { status = "failed", error = { kind = "journal", message = jerr } })
        return nil
      end
      local order, err = client:create_order{ vin = row.vin, engine_number = row.engine_number,
        plate_number = row.plate_number }
      if order then
        -- First thing: the order id goes to the journal.
        ok, jerr = jr:write{ event = "ordered", vin = row.vin, order_id = order.order_id,
          request_id = order.request_id }
        c.ordered = c.ordered + 1
        network_failures = 0
        if not ok then
          say(string.format("%s: ORDER PLACED for %s: order id %s, but %s; no further orders are placed",
            output.PROGRAM, row.vin, order.order_id, jerr))
          stop = { kind = "journal", message = jerr }
        end
        return order.order_id
      end
      local outcome = err.order_outcome == "unknown" and "unknown" or "not_placed"
      jr:write{ event = "order_failed", vin = row.vin, kind = err.kind, message = err.message,
        http_status = err.http_status, request_id = err.request_id, order_outcome = outcome }
      if outcome == "unknown" then
        c.unknown_new = c.unknown_new + 1
        finish(row, { status = "unknown", error = error_fields(err) })
        return nil
      end
      if err.kind == "network" then network_failures = network_failures + 1 end
      if (STOP_KINDS[err.kind] or network_failures >= MAX_NETWORK_FAILURES) and not stop then
        stop = err
        say(output.PROGRAM .. ": " .. tostring(err) .. "; no further orders are placed")
        local hint = hints.hint(err, ctx.args)
        if hint then say("hint: " .. hint) end
      end
      if err.kind ~= "rate_limited" or attempt > RATE_LIMIT_RETRIES then
        finish(row, { status = "failed", error = error_fields(err) })
        return nil
      end
      scheduler.sleep(backoff.delay(attempt, settings.retry_base, settings.retry_max_delay, settings.random))
    end
  end

  local function process(row)
    local plan, order_id = jr:plan(row.vin)
    if plan == "unknown" and ctx.retry_unknown then plan = "order" end
    if plan == "unknown" then
      local s = jr.states[row.vin] or {}
      finish(row, { status = "unknown", error = {
        kind = s.last_error and s.last_error.kind or "unknown",
        message = "an earlier run sent this order but never recorded an order id; it may have been charged",
        order_outcome = "unknown" } })
      return
    end
    if plan == "order" then
      order_id = place(row)
      if not order_id then return end
    else
      c.resumed = c.resumed + 1
    end
    c.pending = c.pending + 1
    local report, err = client:wait_report(order_id, { poll_interval = ctx.poll_interval, max_wait = ctx.max_wait })
    c.pending = c.pending - 1
    if report then
      local s = jr.states[row.vin]
      if not (s and s.state == "done" and s.status == report.status) then
        jr:write{ event = "done", vin = row.vin, order_id = order_id, status = report.status }
      end
      finish(row, { status = report.status, order_id = order_id, report = report })
    else
      jr:write{ event = "report_failed", vin = row.vin, order_id = order_id, kind = err.kind,
        message = err.message, http_status = err.http_status, request_id = err.request_id }
      finish(row, { status = err.kind == "pending" and "pending" or "failed", order_id = order_id,
        error = error_fields(err) })
    end
  end

  local next_index, active = 1, 0
  local function on_done(handle, row)
    active = active - 1
    local failure = handle:error()
    if failure ~= nil then
      -- A bug in a task: keep going with the others, report it.
      say(output.PROGRAM .. ": internal error for line " .. tostring(row.line) .. ": "
        .. tostring(failure):gsub("[\r\n].*$", ""))
      if not results[row.vin] then
        finish(row, { status = "failed", error = { kind = "internal", message = tostring(failure) } })
      end
    end
  end

  while true do
    while active < ctx.max_active and next_index <= #rows do
      local row = rows[next_index]
      next_index = next_index + 1
      active = active + 1
      sched:spawn(process, function(handle) on_done(handle, row) end, row)
    end
    if active == 0 and next_index > #rows then break end
    sched:step(0.1)
    if ctx.progress then ctx.progress:tick(c) end
  end
  return results, c, stop
end

-- Exit status from the rows' outcomes (see the epilog).
function M.exit_status(rows, results, invalid_count)
  local worst, worst_rank = 0, 0
  local function consider(code)
    local rank = EXIT_RANK[code] or 0
    if rank > worst_rank then worst, worst_rank = code, rank end
  end
  if invalid_count > 0 then consider(exit.CODES.usage) end
  for _, row in ipairs(rows) do
    local r = results[row.vin]
    if not r then
      consider(exit.CODES.internal)
    elseif r.status == "pending" then
      consider(exit.CODES.pending)
    elseif r.status == "unknown" then
      consider(exit.CODES.api)
    elseif r.status == "failed" or r.status == "skipped" then
      consider(r.error and r.error.kind and exit.code(r.error) or exit.CODES.api)
    end
  end
  return worst
end

local function list_some(say, title, items, fmt)
  if #items == 0 then return end
  say(title)
  for i, item in ipairs(items) do
    if i > 20 then
      say(string.format("  … and %d more (see the output lines)", #items - 20))
      break
    end
    say("  " .. fmt(item))
  end
end

function M.summary(say, parsed, results, c, ctx)
  local order = { "ready", "no_records", "pending", "failed", "unknown", "skipped" }
  local counts = {}
  for _, row in ipairs(parsed.rows) do
    local r = results[row.vin]
    local status = r and r.status or "failed"
    counts[status] = (counts[status] or 0) + 1
  end
  say(string.format("batch summary: %d distinct VINs, %d duplicate rows skipped, %d invalid rows skipped",
    #parsed.rows, #parsed.duplicates, #parsed.invalid))
  local notes = {
    pending = "still pending: re-run the same command to keep polling (no new orders)",
    failed = "see the error in each output line",
    unknown = "order outcome unknown: may have been charged; NOT ordered again",
    skipped = "not ordered because ordering stopped; re-run once the cause is fixed",
  }
  for _, status in ipairs(order) do
    local n = counts[status] or 0
    if n > 0 or status == "ready" or status == "no_records" then
      say(string.format("  %-11s %6d%s", status, n, notes[status] and n > 0 and ("  " .. notes[status]) or ""))
    end
  end
  local unknown = {}
  for _, row in ipairs(parsed.rows) do
    local r = results[row.vin]
    if r and r.status == "unknown" then unknown[#unknown + 1] = row end
  end
  list_some(say, "VINs with an unknown order outcome (check your orders in the API marketplace console before "
    .. "ordering them again; then re-run with --retry-unknown to order them):", unknown, function(row)
      return string.format("line %d: %s", row.line, row.vin)
    end)
  local price = ctx.unit_price
  say(string.format("spent this run: %d orders × %s = %s; journal total: %d orders = %s",
    c.ordered, money(price), money(c.ordered * price), ctx.journal.orders, money(ctx.journal.orders * price)))
  if c.unknown_new > 0 then
    say(string.format("possibly charged as well: %d orders with an unknown outcome (up to %s)",
      c.unknown_new, money(c.unknown_new * price)))
  end
end

local function open_output(path)
  if not path or path == "-" then
    return function(line) io.stdout:write(output.scrub(line), "\n") io.stdout:flush() end, function() end
  end
  local f, err = io.open(path, "wb")
  if not f then return nil, "cannot write " .. path .. ": " .. tostring(err) end
  return function(line)
    f:write(output.scrub(line), "\n")
    f:flush()
  end, function() f:close() end
end

function M.run(args)
  local say = output.say
  local parsed, perr = csv.read_file(args.input)
  if not parsed then return hints.fail(config.usage_error(perr), args) end
  for _, bad in ipairs(parsed.invalid) do
    say(string.format("%s: line %d: %s", args.input, bad.line, bad.error))
  end
  for _, dup in ipairs(parsed.duplicates) do
    say(string.format("%s: line %d: duplicate of line %d (%s): ordered once", args.input, dup.line,
      dup.first_line, dup.vin))
  end
  if args.strict and #parsed.invalid > 0 then
    say(string.format("%s: %d invalid rows; nothing was ordered (--strict)", output.PROGRAM, #parsed.invalid))
    return exit.CODES.usage
  end

  local path = args.journal or (args.input .. ".journal")
  local lock, lerr = journal_lib.lock(path)
  if not lock then return hints.fail(config.usage_error(lerr), args) end
  local ok, result = pcall(M.run_locked, args, parsed, path, lock.pid)
  journal_lib.unlock(lock)
  if not ok then error(result, 0) end
  return result
end

function M.run_locked(args, parsed, path, pid)
  local say = output.say
  local jr, jerr = journal_lib.open(path)
  if not jr then return hints.fail(config.usage_error(jerr), args) end
  if jr.corrupt > 0 then
    say(string.format("%s: ignored %d unreadable journal lines (a torn line after a crash is normal)",
      path, jr.corrupt))
  end

  local plan = { order = 0, resume = 0, unknown = 0 }
  for _, row in ipairs(parsed.rows) do
    local p = jr:plan(row.vin)
    if p == "unknown" and args.retry_unknown then p = "order" end
    plan[p] = plan[p] + 1
  end
  say(string.format("batch: %d VINs: %d to order (up to %s), %d to resume from the journal, %d with an unknown "
    .. "outcome%s", #parsed.rows, plan.order, money(plan.order * args.unit_price), plan.resume, plan.unknown,
    plan.unknown > 0 and " (not ordered again; see --retry-unknown)" or ""))
  if args.dry_run then return exit.CODES.ok end

  local core = require "maintenance_report.core"
  local progress = progress_lib.new{ total = #parsed.rows, tty = terminal.isatty(2), now = core.monotime,
    interval = args.progress_interval, quiet = args.quiet }
  local extra = { max_in_flight = args.concurrency }
  if args.verbose then
    local printer = output.event_printer()
    extra.on_event = function(ev)
      progress:clear()
      printer(ev)
    end
  end
  local client, cerr = config.client(args, extra)
  if not client then return hints.fail(cerr, args) end
  local write_line, close_output = open_output(args.output)
  if not write_line then return hints.fail(config.usage_error(close_output), args) end

  local run_ok, run_err = jr:write{ event = "run", input = args.input, pid = pid }
  if not run_ok then
    close_output()
    return hints.fail(config.usage_error(run_err), args)
  end
  for _, bad in ipairs(parsed.invalid) do
    write_line(json.encode{ line = bad.line, input = bad.input or { text = bad.text }, status = "invalid",
      error = { kind = "invalid_input", message = bad.error } })
  end

  local function say_clean(line)
    progress:clear()
    say(line)
  end
  local ctx = {
    client = client, rows = parsed.rows, journal = jr, write_line = write_line, progress = progress,
    rate = args.rate, max_wait = args.max_wait, poll_interval = args.poll_interval,
    retry_unknown = args.retry_unknown, max_active = args.max_active, say = say_clean, args = args,
    unit_price = args.unit_price,
  }
  local results, counters, stopped
  local ok, err = pcall(function() results, counters, stopped = M.execute(ctx) end)
  close_output()
  if not ok then
    progress:clear()
    if tostring(err):find("interrupted!$") then
      say(string.format("every order id so far is in the journal %s: re-run the same command to resume", path))
    end
    error(err, 0)
  end
  progress:finish(counters)
  M.summary(say, parsed, results, counters, ctx)
  if stopped and stopped.kind ~= "journal" then
    local hint = hints.hint(stopped, args)
    if hint then say("hint: " .. hint) end
  end
  return M.exit_status(parsed.rows, results, #parsed.invalid)
end

return M
