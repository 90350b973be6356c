-- `maintenance-report order`: places one paid order and prints its id,
-- through the order ledger: a vehicle that already has a placed order gets
-- that id back (no new charge); one whose earlier order has an unknown
-- outcome is not ordered again (exit 7) unless --retry-unknown.
local config = require "maintenance_report.cli.config"
local exit = require "maintenance_report.cli.exit"
local guard = require "maintenance_report.cli.guard"
local hints = require "maintenance_report.cli.hints"
local json = require "maintenance_report.json"
local output = require "maintenance_report.cli.output"
local terminal = require "maintenance_report.cli.terminal"

local M = {}

function M.describe(cmd)
  cmd:summary("Place one paid order for a VIN and print the order id.")
  cmd:description("Places ONE paid order (about ¥17) and prints the order id, or with --format json "
    .. "the order as JSON. Read the report later with `maintenance-report report ORDER_ID --wait`. "
    .. "If the order ledger already has a placed order for the vehicle, prints that id instead "
    .. "(no new order).")
  config.add_order_options(cmd)
  cmd:option("--format", "Output format: text (the order id) or json.", "text"):choices{ "text", "json" }
  cmd:option("-o --output", "Write the output to FILE instead of stdout."):argname("<file>")
  config.add_ledger_options(cmd)
  config.add_connection_options(cmd)
  cmd:epilog(exit.HELP)
end

function M.run(args)
  local L, path = config.open_ledger(args)
  if not L then return hints.fail(path, args) end
  local ctx = { args = args, command = "order", ledger = L, ledger_path = path }
  return guard.run(ctx, function() return M.place(args, L, path) end)
end

function M.place(args, L, path)
  local client, err = config.client(args, { ledger = L, ledger_path = path })
  if not client then return hints.fail(err, args) end
  local order
  order, err = client:create_order{ vin = args.vin, engine_number = args.engine_number,
    plate_number = args.plate_number, retry_unknown = args.retry_unknown or nil }
  if not order then return hints.fail(err, args) end
  if order.existing then
    output.say(("%s: the ledger already has order %s for this vehicle: no new order was placed"):format(
      output.PROGRAM, order.order_id))
  end
  local content
  if args.format == "json" then
    content = json.encode({ order_id = order.order_id, code = order.code, message = order.message,
      request_id = order.request_id, existing = order.existing or nil }, { indent = "  " }) .. "\n"
  else
    content = order.order_id .. "\n"
  end
  local ok, werr = output.write(args, content)
  if not ok then
    -- The order exists: make sure its id is not lost with the file.
    output.say(output.PROGRAM .. ": order " .. order.order_id .. " placed, but " .. tostring(werr.message))
    return exit.CODES.internal
  end
  if terminal.isatty(2) or args.verbose then
    output.say("order placed; read the report with: " .. hints.resume_command(order.order_id, {
      endpoint = args.endpoint, secret_id = args.secret_id, secret_key_file = args.secret_key_file,
      source = args.source, cafile = args.cafile, insecure = args.insecure }))
  end
  return exit.CODES.ok
end

return M
