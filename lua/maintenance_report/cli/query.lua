-- `maintenance-report query`: orders a report (paid), polls until it is
-- final and prints it. On --max-wait it prints the order id and the command
-- that resumes waiting, and exits 6.
local config = require "maintenance_report.cli.config"
local exit = require "maintenance_report.cli.exit"
local hints = require "maintenance_report.cli.hints"
local output = require "maintenance_report.cli.output"

local M = {}

function M.describe(cmd)
  cmd:summary("Order a report for a VIN (paid), wait for it and print it.")
  cmd:description("Places ONE paid order (about ¥17), polls the report until it is ready or has "
    .. "no records, and prints it. If --max-wait runs out first, prints the order id and the "
    .. "command that resumes waiting; no new order is needed then.")
  config.add_order_options(cmd)
  config.add_format_options(cmd)
  config.add_poll_options(cmd)
  config.add_connection_options(cmd)
  cmd:epilog(exit.HELP)
end

--- Prints the pending state and the resume command; returns 6.
function M.pending(err, args)
  local report = { status = "pending", order_id = err.order_id, code = err.code }
  local ok, werr = output.write(args, output.render(report, args))
  if not ok then hints.fail(werr, args) end
  local waited = args.max_wait and string.format(" after %gs", args.max_wait) or ""
  output.say(string.format("%s: order %s: the report is still pending%s", output.PROGRAM, err.order_id, waited))
  output.say("hint: " .. hints.hint(err, args))
  return exit.CODES.pending
end

--- Prints a final report; a write failure is reported like any other error.
function M.emit(report, args)
  local code, err = output.emit_report(report, args)
  if not code then return hints.fail(err, args) end
  return code
end

function M.run(args)
  local client, err = config.client(args)
  if not client then return hints.fail(err, args) end
  local report
  report, err = client:query{
    vin = args.vin, engine_number = args.engine_number, plate_number = args.plate_number,
    poll_interval = args.poll_interval, max_wait = args.max_wait,
  }
  if report then return M.emit(report, args) end
  if err.kind == "pending" and err.order_id then return M.pending(err, args) end
  return hints.fail(err, args)
end

return M
