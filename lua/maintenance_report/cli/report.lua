-- `maintenance-report report ORDER_ID`: reads a report (free). Prints the
-- report or its pending state; with --wait, polls until it is final.
local config = require "maintenance_report.cli.config"
local exit = require "maintenance_report.cli.exit"
local hints = require "maintenance_report.cli.hints"
local output = require "maintenance_report.cli.output"
local query = require "maintenance_report.cli.query"

local M = {}

function M.describe(cmd)
  cmd:summary("Read the report of an existing order (free); --wait polls until it is final.")
  cmd:description("Reads the report of ORDER_ID. Reading is free and never places an order. "
    .. "Without --wait, a report still being generated is printed as pending (exit 6).")
  cmd:argument("order_id", "The order id printed by `order`, `query` or `batch`.")
  cmd:flag("-w --wait", "Poll until the report is ready or has no records.")
  config.add_format_options(cmd)
  config.add_poll_options(cmd)
  config.add_connection_options(cmd)
  cmd:epilog(exit.HELP)
end

function M.run(args)
  local client, err = config.client(args)
  if not client then return hints.fail(err, args) end
  local report
  if args.wait then
    report, err = client:wait_report(args.order_id, { poll_interval = args.poll_interval, max_wait = args.max_wait })
  else
    report, err = client:get_report(args.order_id)
  end
  if report then
    local code = query.emit(report, args)
    if report.status == "pending" and code == exit.CODES.pending then
      output.say("hint: the report is still being generated; wait for it with: "
        .. hints.resume_command(report.order_id or args.order_id, args))
    end
    return code
  end
  if err.kind == "pending" and err.order_id then return query.pending(err, args) end
  return hints.fail(err, args)
end

return M
