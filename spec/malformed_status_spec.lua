-- A paid order whose reply has a status line libcurl cannot read: the request
-- left, so the order may have been bought. It must come back as outcome
-- "unknown", and no re-run of the batch may buy it again.
local mr = require "maintenance_report"
local fm = require "helpers.fault_matrix"
local cli = require "helpers.cli_run"

local VIN = "WBAXW1104J0X16755"

describe("an order answered with a malformed status line", function()
  local server
  lazy_setup(function() server = fm.start_fault_server() end)
  lazy_teardown(function()
    if server then server:stop() end
    cli.cleanup()
  end)

  local function path_count(path)
    return math.floor(server:counts()[path] or 0)
  end

  for _, shape in ipairs(fm.STATUS_LINES) do
    local fault = "status_" .. shape[1]

    it(shape[2] .. ": create_order says outcome unknown, sent once, not retried", function()
      local base = server.base .. "/f/" .. fault .. "/lib"
      local c = assert(mr.new{ secret_id = fm.SECRET_ID, secret_key = fm.SECRET_KEY, endpoint = base,
        timeout = 2, retries = 2, retry_base = 0.001 })
      local order, err = c:create_order{ vin = VIN }
      c:close()
      assert.is_nil(order)
      assert.are.equal("unknown", err.order_outcome)
      assert.is_true(err.sent)
      assert.is_false(err.retryable)
      assert.are.equal("protocol", err.kind)
      assert.are.equal(1, path_count("/f/" .. fault .. "/lib/maintenance/order"))
    end)

    it(shape[2] .. ": three batch runs place no second order", function()
      local dir = cli.tmpdir()
      local base = server.base .. "/f/" .. fault .. "/batch"
      cli.write(dir .. "/in.txt", VIN .. "\n")
      local env = { MAINTENANCE_REPORT_ENDPOINT = base, MAINTENANCE_REPORT_SECRET_ID = fm.SECRET_ID,
        MAINTENANCE_REPORT_SECRET_KEY = fm.SECRET_KEY }
      -- the runs share one ledger, as a user's runs share the default one
      local args = { "batch", dir .. "/in.txt", "--output", dir .. "/out.jsonl", "--poll-interval", "0.05",
        "--timeout", "2", "--ledger", dir .. "/ledger" }
      for run = 1, 3 do
        local r = cli.run(args, env)
        -- 7: the one exit code for "order outcome unknown: do not order again without checking"
        assert.are.equal(7, r.code, "run " .. run .. ": " .. r.err)
        assert.truthy(r.err:find(VIN, 1, true), "run " .. run .. " does not name the unknown VIN: " .. r.err)
      end
      assert.are.equal(1, path_count("/f/" .. fault .. "/batch/maintenance/order"))
      local rows = cli.json_lines(cli.read(dir .. "/out.jsonl"))
      local last = rows[#rows]
      assert.are.equal(VIN, last.vin)
      assert.are.equal("unknown", last.status)
    end)
  end
end)
