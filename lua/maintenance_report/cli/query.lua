-- `maintenance-report query`: orders a report (paid), polls until it is
-- final and prints it, all through the order ledger: a vehicle with a placed
-- order is polled (no new charge), a final report younger than --reuse is
-- printed again, and an earlier order with an unknown outcome stops the
-- command (exit 7) unless --retry-unknown. Once an order exists its id is
-- printed on every way out: a report, the deadline (exit 6), an error, an
-- output file that cannot be written, Ctrl-C or SIGTERM.
local config = require "maintenance_report.cli.config"
local exit = require "maintenance_report.cli.exit"
local guard = require "maintenance_report.cli.guard"
local hints = require "maintenance_report.cli.hints"
local output = require "maintenance_report.cli.output"

local M = {}

function M.describe(cmd)
  cmd:summary("Order a report for a VIN (paid), wait for it and print it.")
  cmd:description("Places ONE paid order (about ¥17), polls the report until it is ready or has "
    .. "no records, and prints it. If --max-wait runs out first, prints the order id and the "
    .. "command that resumes waiting; no new order is needed then. The order ledger records every "
    .. "order: running the same query again polls the placed order, reuses a final report younger "
    .. "than --reuse (default " .. config.DEFAULT_REUSE .. ") and never orders again a vehicle whose "
    .. "earlier order has an unknown outcome (exit 7) unless --retry-unknown.")
  config.add_order_options(cmd)
  config.add_format_options(cmd)
  config.add_poll_options(cmd)
  config.add_ledger_options(cmd, { reuse = true })
  config.add_connection_options(cmd)
  cmd:epilog(exit.HELP)
end

--- Prints the pending state and the resume command; returns 6.
function M.pending(err, args)
  local report = { status = "pending", order_id = err.order_id, code = err.code }
  local ok, werr = output.write(args, output.render(report, args))
  if not ok then output.say(output.PROGRAM .. ": " .. tostring(werr.message)) end
  local waited = args.max_wait and string.format(" after %gs", args.max_wait) or ""
  output.say(string.format("%s: order %s: the report is still pending%s", output.PROGRAM, err.order_id, waited))
  output.say("hint: " .. hints.hint(err, args))
  return exit.CODES.pending
end

--- Prints a final report. When it cannot be written, the order id is printed with a
--- free way to read it again, and the exit code is 1 (never 2: the order exists).
function M.emit(report, args)
  local code, err = output.emit_report(report, args)
  if code then return code end
  if report.order_id then
    output.say(("%s: order %s: the report was obtained, but %s"):format(output.PROGRAM, report.order_id,
      tostring(err.message)))
    output.say("hint: reading it again is free and never orders: " .. hints.resume_command(report.order_id,
      { format = args.format, endpoint = args.endpoint, secret_id = args.secret_id,
        secret_key_file = args.secret_key_file, source = args.source, cafile = args.cafile,
        insecure = args.insecure }) .. " --output FILE")
    return exit.CODES.internal
  end
  return hints.fail(err, args)
end

local function china_time(t)
  return os.date("!%Y-%m-%d %H:%M", math.floor(t) + 8 * 3600) .. " China time (UTC+8)"
end
M.china_time = china_time

function M.run(args)
  local L, path = config.open_ledger(args)
  if not L then return hints.fail(path, args) end
  local ctx = { args = args, command = "query", ledger = L, ledger_path = path }
  return guard.run(ctx, function()
    local client, err = config.client(args, { ledger = L, ledger_path = path })
    if not client then return hints.fail(err, args) end
    local report
    report, err = client:query{
      vin = args.vin, engine_number = args.engine_number, plate_number = args.plate_number,
      poll_interval = args.poll_interval, max_wait = args.max_wait,
      reuse = args.reuse, fresh = args.fresh or nil, retry_unknown = args.retry_unknown or nil,
    }
    if report then
      if report.reused then
        output.say(("%s: order %s: the ledger's report from %s (no new order; --fresh orders again)"):format(
          output.PROGRAM, tostring(report.order_id), china_time(report.ordered_at or os.time())))
      end
      return M.emit(report, args)
    end
    if err.kind == "pending" and err.order_id then return M.pending(err, args) end
    return hints.fail(err, args)
  end)
end

return M
