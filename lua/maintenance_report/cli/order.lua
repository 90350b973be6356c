-- `maintenance-report order`: places one paid order and prints its id.
local config = require "maintenance_report.cli.config"
local exit = require "maintenance_report.cli.exit"
local hints = require "maintenance_report.cli.hints"
local json = require "maintenance_report.json"
local output = require "maintenance_report.cli.output"
local terminal = require "maintenance_report.cli.terminal"

local M = {}

function M.describe(cmd)
  cmd:summary("Place one paid order for a VIN and print the order id.")
  cmd:description("Places ONE paid order (about ¥17) and prints the order id, or with --format json "
    .. "the order as JSON. Read the report later with `maintenance-report report ORDER_ID --wait`.")
  config.add_order_options(cmd)
  cmd:option("--format", "Output format: text (the order id) or json.", "text"):choices{ "text", "json" }
  cmd:option("-o --output", "Write the output to FILE instead of stdout."):argname("<file>")
  config.add_connection_options(cmd)
  cmd:epilog(exit.HELP)
end

function M.run(args)
  local client, err = config.client(args)
  if not client then return hints.fail(err, args) end
  local order
  order, err = client:create_order{ vin = args.vin, engine_number = args.engine_number,
    plate_number = args.plate_number }
  if not order then return hints.fail(err, args) end
  local content
  if args.format == "json" then
    content = json.encode({ order_id = order.order_id, code = order.code, message = order.message,
      request_id = order.request_id }, { indent = "  " }) .. "\n"
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
