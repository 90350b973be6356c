-- `maintenance-report batch INPUT`: one paid order per distinct vehicle, each
-- row a client:start_query on the order ledger that query and order share
-- (coroutine tasks on the client's scheduler; no thread or process per VIN).
-- The ledger is the batch's only record: the client writes the intent right
-- before an order request leaves (once a transport slot is free), the order
-- id the moment it arrives and the final report, so a crash or Ctrl-C never
-- loses an id and a re-run polls placed orders, reuses final reports and
-- never orders again a vehicle whose outcome is unknown (--retry-unknown).
--
--   --concurrency N  HTTP requests in flight (the scheduler's max_in_flight)
--   --rate R         new orders per second: a row that will order starts in
--                    the next slot of a token bucket with a burst of 1 (slots
--                    1/R apart); rows that only poll or reuse start at once
--   --max-active N   rows in progress at once (live tasks), for huge inputs
local backoff = require "maintenance_report.backoff"
local config = require "maintenance_report.cli.config"
local csv = require "maintenance_report.cli.csv"
local exit = require "maintenance_report.cli.exit"
local hints = require "maintenance_report.cli.hints"
local json = require "maintenance_report.json"
local ledger_lib = require "maintenance_report.ledger"
local output = require "maintenance_report.cli.output"
local progress_lib = require "maintenance_report.cli.progress"
local terminal = require "maintenance_report.cli.terminal"

local count = output.count

local M = {}

M.DEFAULTS = { concurrency = 8, rate = 5, unit_price = 17, max_active = 1000, max_wait = 900 }

-- Order failures after which no further order can succeed: stop ordering.
-- (a spent budget or an unreachable Redis ledger refuses every further order alike)
local STOP_KINDS = { auth = true, forbidden = true, quota_exceeded = true, not_found = true, tls = true,
  ledger = true, budget_exceeded = true, store_unavailable = true }
-- So many network failures in a row (each provably not placed) stop ordering too.
local MAX_NETWORK_FAILURES = 5
local RATE_LIMIT_RETRIES = 3

-- Exit status ranking: the most serious unfinished row decides; money at stake first.
local EXIT_RANK = { [7] = 8, [1] = 7, [3] = 6, [8] = 5, [4] = 4, [5] = 3, [6] = 2, [2] = 1 }

local FINAL = { ready = true, no_records = true }

-- The rows of a parse, csv.parse's list or csv.stream's { count =, each = }: an
-- iterator, and their number.
local function each_row(rows)
  if rows.each then return rows.each() end
  local i = 0
  return function()
    i = i + 1
    return rows[i]
  end
end
M.each_row = each_row

local function row_count(rows)
  return rows.count or #rows
end

-- This run's result per VIN, kept small for batches of 100,000. A row that ended
-- final without an error keeps no table of its own: its order id and report are
-- in the ledger, recorded the moment each arrived, and its output line takes them
-- from there; for a streamed row (with an index) only a small code in an array is
-- kept. Other rows keep { status =, order_id =, reused =, error = } by VIN.
-- M.result(results, row) reads either; record(row, r) (the second value) writes.
local SHARED, BY_CODE = {}, {}
for status in pairs(FINAL) do
  SHARED[status] = {}
  for _, reused in ipairs{ false, true } do
    local r = { status = status, reused = reused or nil }
    BY_CODE[#BY_CODE + 1] = r
    SHARED[status][reused] = #BY_CODE
  end
end
local CODES = {} -- the private key of the codes array in a results table
-- A code with its line in the spool: code + SPOOL_SPAN × (offset + 1), exact in a
-- double (LuaJIT) and an integer (5.4) for any spool below 2^49 bytes.
local SPOOL_SPAN = 8

local function new_results()
  local results = { [CODES] = {} }
  -- spooled_at: where the row's output line starts in the spool (see M.open_spool), if it is there
  local function record(row, r, spooled_at)
    if FINAL[r.status] and not r.error then
      local code = SHARED[r.status][r.reused and true or false]
      if row.index then
        results[CODES][row.index] = spooled_at and code + SPOOL_SPAN * (spooled_at + 1) or code
      else
        results[row.vin] = BY_CODE[code]
      end
    else
      results[row.vin] = { status = r.status, order_id = r.order_id, reused = r.reused, ordered = r.ordered,
        error = r.error and { kind = r.error.kind, order_outcome = r.error.order_outcome, message = r.error.message } }
    end
  end
  return results, record
end

--- This run's result for a row (nil: not finished by this run).
function M.result(results, row)
  local r = results[row.vin]
  if r == nil and row.index and results[CODES] then
    local packed = results[CODES][row.index]
    r = packed and BY_CODE[packed % SPOOL_SPAN]
  end
  return r
end

--- Where this run spooled the row's output line, or nil.
function M.spooled_at(results, row)
  local packed = row.index and results[CODES] and results[CODES][row.index]
  if not packed or packed < SPOOL_SPAN then return nil end
  return math.floor(packed / SPOOL_SPAN) - 1
end

-- The output lines of rows this run finished with a report it fetched, kept on
-- disk until the output is rebuilt: the rebuild copies them, where reading each
-- back from the ledger would decode the whole record (raw included) and encode
-- the report again. Unlinked once open, so it goes with the process however that
-- ends. After a failed write nothing in it is trusted: those rows take the ledger's
-- path, as every row did before.
local Spool = {}
Spool.__index = Spool

--- A spool on an open file f (read and write, empty).
function M.spool_of(f)
  return setmetatable({ f = f, size = 0 }, Spool)
end

--- A spool file next to path (same directory, a name of this process), or nil.
function M.open_spool(path)
  local name = ("%s.spool-%d-%d"):format(path, require("maintenance_report.core").getpid(), math.random(1, 2 ^ 30))
  local f = io.open(name, "w+b")
  if not f then return nil end
  os.remove(name)
  return M.spool_of(f)
end

--- Appends text as one line; its offset, or nil once the spool has failed.
function Spool:put(text)
  if not self.f then return nil end
  local at = self.size
  if not self.f:write(text, "\n") then
    self:close()
    return nil
  end
  self.size = at + #text + 1
  return at
end

--- The line at offset at, or nil (no spool, a failed flush, a failed read).
function Spool:get(at)
  if not (self.f and at) then return nil end
  if not self.flushed then
    -- A failed flush, or one of the C library's own (a full buffer, a fork) whose
    -- error nobody saw, leaves bytes out of some line: then the file is short of
    -- what was written, and no line is trusted.
    if not self.f:flush() or self.f:seek("end") ~= self.size then
      self:close()
      return nil
    end
    self.flushed = true
  end
  if not self.f:seek("set", at) then return nil end
  return self.f:read("*l")
end

function Spool:close()
  if self.f then self.f:close() end
  self.f = nil
end

function M.describe(cmd)
  cmd:summary("Order and collect reports for many VINs (paid: one order per distinct VIN).")
  cmd:description("INPUT is CSV or plain lines vin[,engine_number[,plate_number]], with an optional "
    .. "header row; blank lines and # comments are skipped. Each distinct VIN is ordered once (about ¥17 "
    .. "each), then polled until final. One JSON line per VIN goes to --output (rebuilt from the ledger "
    .. "at the end, replaced whole) or stdout; progress and a summary go to stderr. Every order goes "
    .. "through the order ledger shared with query and order: re-running the same command polls placed "
    .. "orders, reuses final reports younger than --reuse and never orders a vehicle twice.")
  cmd:argument("input", "Input file (CSV or one VIN per line).")
  cmd:option("-o --output", "Write the JSON lines to FILE (replaced whole) instead of stdout."):argname("<file>")
  cmd:option("--concurrency", "Most HTTP requests in flight.", tostring(M.DEFAULTS.concurrency))
    :convert(config.integer_converter("--concurrency", 1, 100000))
  cmd:option("--rate", "Most new orders per second.", tostring(M.DEFAULTS.rate))
    :convert(config.number_converter("--rate", 0, true))
  cmd:option("--plan-rate-limit", "The usage plan's limit in requests per second, when known: all requests "
    .. "(orders and polls) stay below it from the first; without it, the gateway's X-RateLimit-Limit "
    .. "is used once an answer has carried it."):convert(config.number_converter("--plan-rate-limit", 0, true))
  config.add_poll_options(cmd, M.DEFAULTS.max_wait)
  cmd:flag("--strict", "Stop before any order if a row is invalid (default: skip invalid rows).")
  config.add_ledger_options(cmd, { reuse = true })
  cmd:option("--unit-price", "Price of one order, for the cost summary.", tostring(M.DEFAULTS.unit_price))
    :convert(config.number_converter("--unit-price", 0, false))
  cmd:option("--max-active", "Most VINs in progress at once.", tostring(M.DEFAULTS.max_active))
    :convert(config.integer_converter("--max-active", 1))
  cmd:flag("-n --dry-run", "Read the input and the ledger, print the plan and the cost; send nothing and "
    .. "change nothing.")
  cmd:flag("-q --quiet", "No progress output.")
  cmd:option("--progress-interval", "Seconds between progress lines when stderr is not a terminal.", "5")
    :convert(config.number_converter("--progress-interval", 0, true))
  config.add_connection_options(cmd)
  cmd:epilog(exit.HELP .. [[


Batch exit status: 0 when every row got a report (ready or no records); otherwise the code
of the most serious unfinished row: 7 unknown order outcome (may have been charged), 1 internal,
3 auth, 8 ledger, 4 network, 5 API error, 6 still pending (re-run to resume), 2 invalid rows skipped.]])
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

local function is_unknown(err)
  return type(err) == "table" and (err.order_outcome == "unknown" or err.kind == "unknown_outcome")
end

--- The ledger fields of a row.
function M.fields(row)
  return { vin = row.vin, engine_number = row.engine_number, plate_number = row.plate_number }
end

--- What the client will do for a row, from its ledger entry (read only): "order", "poll",
--- "reuse" or "unknown". opts: reuse (seconds), fresh, retry_unknown, now (epoch seconds).
function M.plan(entry, opts)
  local state = entry and entry.state
  if state == nil or state == "not_placed" then return "order" end
  if FINAL[state] then
    local age = (opts.now or os.time()) - (entry.updated_at or 0)
    if not opts.fresh and (opts.reuse or 0) > 0 and age < opts.reuse then return "reuse" end
    return "order"
  end
  if state == "placed" then return "poll" end
  return opts.retry_unknown and "order" or "unknown"
end

--- Runs the batch. ctx: client, ledger, rows (from csv.parse), write_line(text) (optional: stream
--- lines as rows finish), progress, rate, max_wait, poll_interval, reuse, fresh, retry_unknown,
--- max_active, now, sleep, say, args. Returns the per-row results
--- { [vin] = { status=, order_id=, error=, reused=, ordered= } }, the counters and the error
--- that stopped ordering, if any.
function M.execute(ctx)
  local client, L, rows = ctx.client, ctx.ledger, ctx.rows
  local settings = client:settings() -- its clock and retry schedule, so a 429 here backs off like one there
  local now = ctx.now or settings.now
  local sleep = ctx.sleep or settings.sleep
  local say = ctx.say or output.say
  -- Rows by final state (the summary's), plus what progress shows; active: rows in progress.
  local c = { done = 0, ordered = 0, active = 0, unknown_new = 0, resumed = 0, reused = 0 }
  local results, record = new_results()
  local stop -- the error that stopped ordering
  local network_failures = 0
  local next_slot = now()
  local interval = 1 / ctx.rate
  local retries = {} -- rate-limited rows waiting for their backoff: { row=, attempt=, at= }
  local active = 0
  -- Rows are pulled from the input one at a time; upcoming is the next one not
  -- started yet (nil at the end) and upcoming_plan what its ledger entry says.
  local pull = each_row(rows)
  local upcoming, upcoming_plan = pull(), nil
  local function advance()
    upcoming, upcoming_plan = pull(), nil
  end

  -- Writes the row's line (streaming) and keeps a slim result (no report) so memory stays flat.
  -- A report this run fetched (not reused: the client marks a reused one) is spooled as
  -- the line the rebuild would make of the ledger's record of it, which holds that report.
  local function finish(row, r)
    r.line, r.input, r.vin = row.line, row.input, row.vin
    c.done = c.done + 1
    c[r.status] = (c[r.status] or 0) + 1
    if ctx.write_line then ctx.write_line(json.encode(r, { skip_keys = { raw = true } })) end
    local spooled_at
    if ctx.spool and row.index and FINAL[r.status] and not r.error and not r.reused and type(r.report) == "table" then
      -- scrubbed before it reaches the disk, as every line the batch writes
      spooled_at = ctx.spool:put(output.scrub(M.line(row, { status = r.status },
        { state = r.status, order_id = r.order_id, report = r.report })))
    end
    record(row, r, spooled_at)
  end

  local function stop_ordering(err)
    if stop then return end
    stop = err
    say(output.PROGRAM .. ": " .. tostring(err) .. "; no further orders are placed")
    local hint = hints.hint(err, ctx.args)
    if hint then say("hint: " .. hint) end
  end

  local function on_result(row, plan, attempt, report, err)
    local ordered = plan == "order" and (report and not report.reused or (err and err.order_id)) and true or nil
    if ordered then
      c.ordered = c.ordered + 1
      network_failures = 0
    elseif plan == "poll" then
      c.resumed = c.resumed + 1
    end
    if report then
      if report.reused then c.reused = c.reused + 1 end
      finish(row, { status = report.status, order_id = report.order_id, report = report,
        reused = report.reused or nil, ordered = ordered })
      return
    end
    if is_unknown(err) then
      if err.kind ~= "unknown_outcome" then c.unknown_new = c.unknown_new + 1 end
      finish(row, { status = "unknown", order_id = err.order_id, error = error_fields(err) })
      return
    end
    if err.order_id then
      if err.kind == "ledger" then stop_ordering(err) end
      finish(row, { status = err.kind == "pending" and "pending" or "failed", order_id = err.order_id,
        error = error_fields(err), ordered = ordered })
      return
    end
    if err.kind == "network" then network_failures = network_failures + 1 end
    if STOP_KINDS[err.kind] or network_failures >= MAX_NETWORK_FAILURES then stop_ordering(err) end
    if err.kind == "rate_limited" and attempt <= RATE_LIMIT_RETRIES and not stop then
      retries[#retries + 1] = { row = row, attempt = attempt + 1,
        at = now() + backoff.delay(attempt, settings.retry_base, settings.retry_max_delay, settings.random) }
      return
    end
    finish(row, { status = "failed", error = error_fields(err) })
  end

  local function start(row, plan, attempt)
    active = active + 1
    c.active = active
    local handle, err = client:start_query{
      vin = row.vin, engine_number = row.engine_number, plate_number = row.plate_number,
      poll_interval = ctx.poll_interval, max_wait = ctx.max_wait,
      reuse = ctx.reuse, fresh = ctx.fresh or nil, retry_unknown = ctx.retry_unknown or nil,
      on_done = function(h)
        active = active - 1
        c.active = active
        local failure = h:error()
        if failure ~= nil then
          -- A bug in a task: keep going with the others, report it.
          say(output.PROGRAM .. ": internal error for line " .. tostring(row.line) .. ": "
            .. tostring(failure):gsub("[\r\n].*$", ""))
          finish(row, { status = "failed", error = { kind = "internal", message = tostring(failure) } })
          return
        end
        local ok, problem = pcall(on_result, row, plan, attempt, h:result())
        if not ok then
          finish(row, { status = "failed", error = { kind = "internal", message = tostring(problem) } })
        end
      end,
    }
    if not handle then
      active = active - 1
      c.active = active
      finish(row, { status = "failed", error = error_fields(err) })
    end
  end

  -- The next row to start, or nil and how long to wait for one.
  local function next_row(t)
    for i, r in ipairs(retries) do
      if r.at <= t then
        if t < next_slot then return nil, next_slot - t end
        table.remove(retries, i)
        return r.row, "order", r.attempt
      end
    end
    local row = upcoming
    if row == nil then return nil end
    if not upcoming_plan then -- read once, not again while it waits for its order slot
      local entry, err = L:get(M.fields(row))
      if err then
        advance()
        stop_ordering(err)
        finish(row, { status = "failed", error = error_fields(err) })
        return next_row(t)
      end
      upcoming_plan = M.plan(entry, { reuse = ctx.reuse, fresh = ctx.fresh, retry_unknown = ctx.retry_unknown })
    end
    local plan = upcoming_plan
    if plan == "order" then
      if stop then
        advance()
        finish(row, { status = "skipped", error = { kind = stop.kind,
          message = "not ordered: ordering stopped after an earlier " .. tostring(stop.kind) .. " error" } })
        return next_row(t)
      end
      if t < next_slot then return nil, next_slot - t end
    end
    advance()
    return row, plan, 1
  end

  while true do
    local wait
    while active < ctx.max_active do
      local t = now()
      local row, plan, attempt = next_row(t)
      if not row then
        wait = plan
        break
      end
      if plan == "order" then next_slot = math.max(t, next_slot) + interval end
      start(row, plan, attempt)
    end
    if active == 0 and upcoming == nil and #retries == 0 then break end
    local timeout = 0.1
    if wait then timeout = math.min(timeout, wait) end
    for _, r in ipairs(retries) do timeout = math.min(timeout, math.max(0, r.at - now())) end
    if active > 0 then
      client:step(timeout)
    elseif timeout > 0 then
      sleep(timeout)
    end
    if ctx.progress then ctx.progress:tick(c) end
  end
  return results, c, stop
end

-- The status a row shows from its ledger entry alone (a row this run did not finish).
local ENTRY_STATUS = { ready = "ready", no_records = "no_records", placed = "pending", unknown = "unknown",
  intent = "unknown", not_placed = "failed" }

--- One output line per input row: this run's result over the row's ledger entry, which
--- supplies the order id and the stored report. Returns the JSON text.
function M.line(row, result, entry)
  local line = { line = row.line, vin = row.vin, input = row.input }
  if result then
    line.status, line.order_id, line.error, line.reused = result.status, result.order_id, result.error,
      result.reused
  elseif entry then
    line.status = ENTRY_STATUS[entry.state] or "failed"
    if type(entry.reason) == "table" and not FINAL[entry.state] then
      line.error = { kind = entry.reason.kind, message = entry.reason.message,
        order_outcome = (entry.state == "unknown" or entry.state == "intent") and "unknown" or nil }
    end
  else
    line.status = "skipped"
    line.error = { kind = "not_run", message = "not reached by this run: re-run to continue" }
  end
  if entry then
    line.order_id = line.order_id or entry.order_id
    if FINAL[line.status] and FINAL[entry.state] and type(entry.report) == "table" then line.report = entry.report end
  end
  return json.encode(line, { skip_keys = { raw = true } })
end

--- Writes every row's line to path through a temp file renamed over it: an interrupted
--- write leaves the previous file whole. invalid: the invalid rows' lines first. spool
--- (optional): the lines this run spooled, taken from there instead of the ledger.
function M.rebuild(path, L, parsed, results, spool)
  local tmp = path .. ".tmp"
  local f, err = io.open(tmp, "wb")
  if not f then return nil, "cannot write " .. tmp .. ": " .. tostring(err) end
  local ok, werr = true, nil
  -- scrubbed: a spooled line already is (finish scrubs it before it reaches the disk)
  local function put(text, scrubbed)
    if ok then ok, werr = f:write(scrubbed and text or output.scrub(text), "\n") end
  end
  for _, bad in ipairs(parsed.invalid) do
    put(json.encode{ line = bad.line, input = bad.input or { text = bad.text }, status = "invalid",
      error = { kind = "invalid_input", message = bad.error } })
  end
  for row in each_row(parsed.rows) do
    local spooled = spool and spool:get(M.spooled_at(results, row))
    if spooled then
      put(spooled, true)
    else
      local entry = L:get(M.fields(row)) -- a read failure leaves this run's result alone
      put(M.line(row, M.result(results, row), entry))
    end
  end
  local closed, cerr = f:close()
  if ok and not closed then ok, werr = nil, cerr end
  if not ok then
    os.remove(tmp)
    return nil, "cannot write " .. tmp .. ": " .. tostring(werr)
  end
  local renamed, rerr = os.rename(tmp, path)
  if not renamed then
    os.remove(tmp)
    return nil, "cannot replace " .. path .. ": " .. tostring(rerr)
  end
  return true
end

-- Exit status from the rows' outcomes (see the epilog).
function M.exit_status(rows, results, invalid_count)
  local worst, worst_rank = 0, 0
  local function consider(code)
    local rank = EXIT_RANK[code] or 0
    if rank > worst_rank then worst, worst_rank = code, rank end
  end
  if invalid_count > 0 then consider(exit.CODES.usage) end
  for row in each_row(rows) do
    local r = M.result(results, row)
    if not r then
      consider(exit.CODES.internal)
    elseif r.status == "pending" then
      consider(exit.CODES.pending)
    elseif r.status == "unknown" then
      consider(exit.CODES.unknown)
    elseif r.status == "failed" or r.status == "skipped" then
      consider(r.error and r.error.kind and exit.code(r.error) or exit.CODES.api)
    end
  end
  return worst
end

-- Lists the first 20 items (of total, default #items).
local function list_some(say, title, items, fmt, total)
  total = total or #items
  if total == 0 then return end
  say(title)
  for i, item in ipairs(items) do
    if i > 20 then
      say(string.format("  … and %d more (see the output lines)", total - 20))
      break
    end
    say("  " .. fmt(item))
  end
end

function M.summary(say, parsed, results, c, ctx)
  local order = { "ready", "no_records", "pending", "failed", "unknown", "skipped" }
  local counts = {}
  local unknown = {} -- the first rows with an unknown outcome, and their number
  local unknown_count = 0
  for row in each_row(parsed.rows) do
    local r = M.result(results, row)
    local status = r and r.status or "failed"
    counts[status] = (counts[status] or 0) + 1
    if status == "unknown" then
      unknown_count = unknown_count + 1
      if #unknown <= 20 then unknown[#unknown + 1] = row end
    end
  end
  say(string.format("batch summary: %s, %s skipped, %s skipped",
    count(row_count(parsed.rows), "distinct VIN"), count(#parsed.duplicates, "duplicate row"),
    count(#parsed.invalid, "invalid row")))
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
  if c.reused > 0 or c.resumed > 0 then
    say(string.format("from the ledger: %s reused, %s polled (no new charge)",
      count(c.reused, "report"), count(c.resumed, "placed order")))
  end
  list_some(say, "VINs with an unknown order outcome (check your orders in the API marketplace console before "
    .. "ordering them again; then re-run with --retry-unknown to order them):", unknown, function(row)
      return string.format("line %d: %s", row.line, row.vin)
    end, unknown_count)
  local price = ctx.unit_price
  local stats = ctx.ledger:stats() or { orders = 0, by_state = {} }
  say(string.format("spent this run: %s × %s = %s; ledger total: %s = %s",
    count(c.ordered, "order"), money(price), money(c.ordered * price), count(stats.orders, "order"),
    money(stats.orders * price)))
  if unknown_count > 0 then
    say(string.format("possibly charged as well: %s with an unknown outcome (up to %s; %d of them "
      .. "this run)", count(unknown_count, "order"), money(unknown_count * price), c.unknown_new))
  end
end

local function stdout_writer(line)
  io.stdout:write(output.scrub(line), "\n")
  io.stdout:flush()
end

-- The ledger for a dry run, read only: none (false) when the file does not exist yet.
-- Its store may not write at all (a torn last line stays as it is), and it takes the
-- file lock only when the lock file exists, so that a dry run creates no file either.
local function open_for_dry_run(args)
  local path, err = config.ledger_path(args)
  if not path then return nil, err end
  if config.is_ledger_url(path) then return config.open_ledger(args) end
  local f = io.open(path, "rb")
  if not f then return false, path end
  f:close()
  local core = require "maintenance_report.core"
  local lock_file = io.open(path .. ".lock", "rb")
  if lock_file then lock_file:close() end
  local L, lerr = ledger_lib.file(path, {
    append = function() return nil, "a dry run writes nothing" end,
    fsync_dir = function() return true end,
    flock = lock_file and core.flock or function() return { release = function() end } end,
  })
  if not L then return nil, lerr end
  return L, path
end

-- The plan line: what the ledger says each row will do. L may be false (no ledger yet).
local function say_plan(args, parsed, L, path)
  local plan = { order = 0, poll = 0, reuse = 0, unknown = 0 }
  for row in each_row(parsed.rows) do
    local entry, err
    if L then entry, err = L:get(M.fields(row)) end
    if err then return nil, err end
    local p = M.plan(entry, { reuse = args.reuse, fresh = args.fresh, retry_unknown = args.retry_unknown })
    plan[p] = plan[p] + 1
  end
  output.say(string.format("batch: %s: %d to order (up to %s), %s to poll and %s "
    .. "to reuse from the ledger %s, %d with an unknown outcome%s", count(row_count(parsed.rows), "VIN"), plan.order,
    money(plan.order * args.unit_price), count(plan.poll, "placed order"), count(plan.reuse, "report"), path,
    plan.unknown,
    plan.unknown > 0 and " (not ordered again; see --retry-unknown)" or ""))
  return true
end

local function dry_run(args, parsed)
  local L, path = open_for_dry_run(args)
  if L == nil then return hints.fail(path, args) end
  local ok, err = say_plan(args, parsed, L, path)
  if L then L:close() end
  if not ok then return hints.fail(err, args) end
  -- As the real run would: invalid rows skipped are exit 2.
  if #parsed.invalid > 0 then
    output.say(string.format("%s: %s would be skipped", output.PROGRAM, count(#parsed.invalid, "invalid row")))
    return exit.CODES.usage
  end
  return exit.CODES.ok
end

-- Most of a batch's garbage dies young (a VIN's requests, responses and report):
-- Lua 5.4's generational collector frees it without sweeping what stays (the
-- ledger's index), and keeps the heap near what is live. LuaJIT has no such
-- mode: a shorter pause keeps its heap within 1.5x of what is live.
local function tune_gc()
  if not pcall(collectgarbage, "generational") then collectgarbage("setpause", 150) end
end

function M.run(args)
  tune_gc()
  local say = output.say
  local parsed, perr = csv.read_file(args.input, { stream = true })
  if not parsed then return hints.fail(config.usage_error(perr), args) end
  for _, bad in ipairs(parsed.invalid) do
    say(string.format("%s: line %d: %s", args.input, bad.line, bad.error))
  end
  for _, dup in ipairs(parsed.duplicates) do
    say(string.format("%s: line %d: duplicate of line %d (%s): ordered once", args.input, dup.line,
      dup.first_line, dup.vin))
  end
  if args.strict and #parsed.invalid > 0 then
    say(string.format("%s: %s; nothing was ordered (--strict)", output.PROGRAM, count(#parsed.invalid, "invalid row")))
    return exit.CODES.usage
  end
  if args.dry_run then return dry_run(args, parsed) end

  local L, path = config.open_ledger(args)
  if not L then return hints.fail(path, args) end
  local ok, result = pcall(M.run_with_ledger, args, parsed, L, path)
  L:close()
  if not ok then error(result, 0) end
  return result
end

function M.run_with_ledger(args, parsed, L, path)
  local say = output.say
  local planned, perr = say_plan(args, parsed, L, path)
  if not planned then return hints.fail(perr, args) end
  local core = require "maintenance_report.core"
  local tty = terminal.isatty(2)
  local progress = progress_lib.new{ total = row_count(parsed.rows), tty = tty, now = core.monotime,
    interval = args.progress_interval, quiet = args.quiet,
    width = tty and not args.quiet and progress_lib.terminal_width() or nil }
  -- step_budget: a batch has no frame to share; longer calls mean fewer loop turns.
  local extra = { max_in_flight = args.concurrency, ledger = L, ledger_path = path,
    plan_rate_limit = args.plan_rate_limit, step_budget = 0.01 }
  if args.verbose then
    local printer = output.event_printer()
    extra.on_event = function(ev)
      progress:clear()
      printer(ev)
    end
  end
  local client, cerr = config.client(args, extra)
  if not client then return hints.fail(cerr, args) end
  local to_file = args.output and args.output ~= "-"
  if to_file then
    -- Fail before any order when the output cannot be written at all.
    local f, ferr = io.open(args.output .. ".tmp", "wb")
    if not f then return hints.fail(config.usage_error("cannot write " .. args.output .. ": " .. tostring(ferr)),
      args) end
    f:close()
    os.remove(args.output .. ".tmp")
  else
    for _, bad in ipairs(parsed.invalid) do
      stdout_writer(json.encode{ line = bad.line, input = bad.input or { text = bad.text }, status = "invalid",
        error = { kind = "invalid_input", message = bad.error } })
    end
  end

  local function say_clean(line)
    progress:clear()
    say(line)
  end
  local ctx = {
    client = client, ledger = L, rows = parsed.rows, write_line = not to_file and stdout_writer or nil,
    spool = to_file and M.open_spool(args.output) or nil,
    progress = progress, rate = args.rate, max_wait = args.max_wait, poll_interval = args.poll_interval,
    reuse = args.reuse, fresh = args.fresh, retry_unknown = args.retry_unknown, max_active = args.max_active,
    say = say_clean, args = args, unit_price = args.unit_price,
  }
  local results, counters, stopped = {}, nil, nil
  local ok, err = pcall(function() results, counters, stopped = M.execute(ctx) end)
  if to_file then
    local written, werr = M.rebuild(args.output, L, parsed, results or {}, ctx.spool)
    if ctx.spool then ctx.spool:close() end
    if not written then say(output.PROGRAM .. ": " .. werr .. "; every order id is in the ledger " .. path) end
  end
  if not ok then
    progress:clear()
    if exit.is_interrupt(err) then
      say(string.format("every order id so far is in the ledger %s: re-run the same command to resume "
        .. "(placed orders are polled, none is ordered twice)", path))
    end
    error(err, 0)
  end
  progress:finish(counters)
  M.summary(say, parsed, results, counters, ctx)
  if stopped and stopped.kind ~= "ledger" then
    local hint = hints.hint(stopped, args)
    if hint then say("hint: " .. hint) end
  end
  return M.exit_status(parsed.rows, results, #parsed.invalid)
end

return M
