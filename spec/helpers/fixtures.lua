-- The vendor listing's sample bodies under spec/fixtures/, raw or decoded.
local cjson = require "cjson"
local shell = require "helpers.shell"

local fixtures = {}

function fixtures.raw(name)
  return (assert(shell.read_file("spec/fixtures/" .. name), "no fixture " .. name))
end

function fixtures.json(name)
  return cjson.decode(fixtures.raw(name))
end

-- The listing's ready report, normalized, under the given order id.
function fixtures.ready_report(order_id)
  local normalize = require "maintenance_report.normalize"
  return normalize.report(fixtures.json("vendor_report_ready.json"), "ready", order_id)
end

return fixtures
