-- `maintenance-report batch` keeps little per VIN (issue 13, target 3): its
-- peak RSS (ru_maxrss of the batch process, read by GNU time at its exit)
-- grows by well under 8 KiB per VIN from 300 to 1,500 VINs. Before the file
-- ledger kept entries (reports included) in memory and the batch kept every
-- row, it grew by about 60 KiB per VIN. Memory, not time: a loaded machine
-- changes neither figure much.
local sandbox = require "maintenance_report_sandbox"
local cli = require "helpers.cli_run"

local BOUND_KIB_PER_VIN = 8

describe("batch memory", function()
  local sb, env
  local start, stop = cli.sandbox_hooks({ pending_polls = 0, workers = 2 }, function(s, e) sb, env = s, e end)
  lazy_setup(start)
  lazy_teardown(stop)

  -- Peak RSS in KiB of a batch of n new VINs (from offset), and its output lines.
  local function peak_rss(n, offset)
    local dir = cli.tmpdir()
    local f = assert(io.open(dir .. "/in.txt", "wb"))
    for i = 1, n do f:write(sandbox.scenario_vin("normal", offset + i), "\n") end
    f:close()
    local cmd = cli.command({ "batch", dir .. "/in.txt", "--output", dir .. "/out.jsonl", "--concurrency", "50",
      "--max-active", "200", "--rate", "100000", "--poll-interval", "0.05", "--quiet" },
      cli.merge(env, { MAINTENANCE_REPORT_LEDGER = dir .. "/ledger" }))
    local p = assert(io.popen("/usr/bin/time -f 'maxrss %M' -o " .. cli.quote(dir .. "/time") .. " " .. cmd
      .. " 2>" .. cli.quote(dir .. "/err") .. "; echo $?"))
    local code = tonumber(p:read("*a"):match("(%d+)%s*$"))
    p:close()
    assert.are.equal(0, code, cli.read(dir .. "/err"))
    local lines = cli.json_lines(cli.read(dir .. "/out.jsonl"))
    return tonumber(cli.read(dir .. "/time"):match("maxrss (%d+)")), lines
  end

  it("grows by less than " .. BOUND_KIB_PER_VIN .. " KiB of peak RSS per VIN", function()
    local small = peak_rss(300, 6000)
    local large, lines = peak_rss(1500, 7000)
    assert.are.equal(1500, #lines)
    for _, l in ipairs(lines) do assert.are.equal("ready", l.status) end
    local per_vin = (large - small) / 1200
    assert.is_true(per_vin < BOUND_KIB_PER_VIN, ("%.1f KiB per VIN (%d KiB at 300 VINs, %d at 1500)")
      :format(per_vin, small, large))
    assert.are.equal(1800, assert(sb:stats()).orders) -- each VIN ordered once
  end)
end)
