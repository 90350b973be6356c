-- `maintenance-report query`: orders a report (paid), polls until it is
-- final and prints it. On --max-wait it prints the order id and the command
-- that resumes waiting, and exits 6.
local common = require "maintenance_report.cli.common"

local M = {}

function M.describe(cmd)
  cmd:summary("Order a report for a VIN (paid), wait for it and print it.")
  cmd:description("Places ONE paid order (about ¥17), polls the report until it is ready or has "
    .. "no records, and prints it. If --max-wait runs out first, prints the order id and the "
    .. "command that resumes waiting; no new order is needed then.")
  common.add_order_options(cmd)
  common.add_format_options(cmd)
  common.add_poll_options(cmd)
  common.add_connection_options(cmd)
  cmd:epilog(common.EXIT_HELP)
end

--- Prints the pending state and the resume command; returns 6.
function M.pending(err, args)
  local report = { status = "pending", order_id = err.order_id, code = err.code }
  local ok, werr = common.write(args, common.render(report, args))
  if not ok then common.fail(werr, args) end
  local waited = args.max_wait and string.format(" after %gs", args.max_wait) or ""
  common.say(string.format("%s: order %s: the report is still pending%s", common.PROGRAM, err.order_id, waited))
  common.say("hint: " .. common.hint(err, args))
  return common.EXIT.pending
end

function M.run(args)
  local client, err = common.client(args)
  if not client then return common.fail(err, args) end
  local report
  report, err = client:query{
    vin = args.vin, engine_number = args.engine_number, plate_number = args.plate_number,
    poll_interval = args.poll_interval, max_wait = args.max_wait,
  }
  if report then return common.emit_report(report, args) end
  if err.kind == "pending" and err.order_id then return M.pending(err, args) end
  return common.fail(err, args)
end

return M
