-- `maintenance-report order`: places one paid order and prints its id.
local common = require "maintenance_report.cli.common"
local json = require "maintenance_report.render.json"

local M = {}

function M.describe(cmd)
  cmd:summary("Place one paid order for a VIN and print the order id.")
  cmd:description("Places ONE paid order (about ¥17) and prints the order id, or with --format json "
    .. "the order as JSON. Read the report later with `maintenance-report report ORDER_ID --wait`.")
  common.add_order_options(cmd)
  cmd:option("--format", "Output format: text (the order id) or json.", "text"):choices{ "text", "json" }
  cmd:option("-o --output", "Write the output to FILE instead of stdout."):argname("<file>")
  common.add_connection_options(cmd)
  cmd:epilog(common.EXIT_HELP)
end

function M.run(args)
  local client, err = common.client(args)
  if not client then return common.fail(err, args) end
  local order
  order, err = client:create_order{ vin = args.vin, engine_number = args.engine_number,
    plate_number = args.plate_number }
  if not order then return common.fail(err, args) end
  local content
  if args.format == "json" then
    content = json.encode({ order_id = order.order_id, code = order.code, message = order.message,
      request_id = order.request_id }, { indent = "  " }) .. "\n"
  else
    content = order.order_id .. "\n"
  end
  local ok, werr = common.write(args, content)
  if not ok then
    -- The order exists: make sure its id is not lost with the file.
    common.say(common.PROGRAM .. ": order " .. order.order_id .. " placed, but " .. tostring(werr.message))
    return common.EXIT.internal
  end
  if common.isatty(2) or args.verbose then
    common.say("order placed; read the report with: " .. common.resume_command(order.order_id, {
      endpoint = args.endpoint, secret_id = args.secret_id, secret_key_file = args.secret_key_file,
      source = args.source, cafile = args.cafile, insecure = args.insecure }))
  end
  return common.EXIT.ok
end

return M
