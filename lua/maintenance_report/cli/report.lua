-- `maintenance-report report ORDER_ID`: reads a report (free). Prints the
-- report or its pending state; with --wait, polls until it is final.
local config = require "maintenance_report.cli.config"
local exit = require "maintenance_report.cli.exit"
local hints = require "maintenance_report.cli.hints"
local output = require "maintenance_report.cli.output"
local query = require "maintenance_report.cli.query"
local validate = require "maintenance_report.validate"

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

local WHERE_IDS_ARE = "order ids are printed by `order`, `query` and `batch`, and `" .. output.PROGRAM
  .. " ledger list` shows those ordered from this machine"

--- The order id, or nil, err (invalid_input) before anything is sent: the library's rule (letters,
--- digits, '_' and '-'), and at least one digit, which every order id has and words do not.
function M.check_order_id(s)
  local id, problem = validate.order_id(s)
  if not id then return nil, config.usage_error(problem, { field = "order_id", hint = WHERE_IDS_ARE }) end
  if not id:find("%d") then
    return nil, config.usage_error(("'%s' is not an order id (it has no digit)"):format(id),
      { field = "order_id", hint = WHERE_IDS_ARE })
  end
  return id
end

-- The vendor answers an id it does not know with its generic failure (code -1): no retry helps
-- a mistyped id, so the hint says to check it first.
local function unknown_id_hint(err, id)
  if type(err) == "table" and err.kind == "api" and not err.hint then
    err.hint = ("the API has no report for order id %s, or failed to read it: check the id (%s); "
      .. "if it is right, reading again later is free"):format(id, WHERE_IDS_ARE)
  end
  return err
end

function M.run(args)
  local id, id_err = M.check_order_id(args.order_id)
  if not id then return hints.fail(id_err, args) end
  args.order_id = id
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
  return hints.fail(unknown_id_hint(err, args.order_id), args)
end

return M
