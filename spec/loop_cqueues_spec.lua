-- The cqueues adapter in a real controller (Debian's lua-cqueues), next to another
-- task: an echo server on 127.0.0.1 that must keep answering within 20 ms.
local cqueues = require "cqueues"
local csocket = require "cqueues.socket"
local mr = require "maintenance_report"
local sandbox = require "maintenance_report_sandbox"
local cq_loop = require "maintenance_report.loop.cqueues"

describe("cqueues adapter", function()
  local sb
  lazy_setup(function() sb = assert(sandbox.start{ latency_ms = 1000 }) end)
  lazy_teardown(function() if sb then sb:stop() end end)

  it("runs 5 queries while an echo server in the same controller answers within 20 ms", function()
    local client = assert(mr.new{ endpoint = sb.base_url, secret_id = sb.secret_id, secret_key = sb.secret_key })
    local cq = cqueues.new()
    local server = assert(csocket.listen{ host = "127.0.0.1", port = 0 })
    local _, _, port = server:localname()
    local queries_done, statuses = 0, {}
    local rtts = {}
    cq:wrap(function() -- the echo server: one connection, line by line
      local conn = assert(server:accept(5))
      for line in conn:lines("*l") do assert(conn:write(line, "\n")) end
      conn:close()
    end)
    cq:wrap(function() -- its user: a ping every 20 ms while the queries run
      local conn = assert(csocket.connect{ host = "127.0.0.1", port = port })
      while queries_done < 5 do
        local sent = cqueues.monotime()
        assert(conn:write("ping\n"))
        assert.are.equal("ping", conn:read("*l"))
        rtts[#rtts + 1] = cqueues.monotime() - sent
        cqueues.sleep(0.02)
      end
      conn:close()
      server:close()
    end)
    local pump = cq_loop.attach(cq, client)
    for i = 1, 5 do
      client:start_query{ vin = sandbox.scenario_vin("normal", 820 + i), on_done = function(h)
        queries_done = queries_done + 1
        statuses[#statuses + 1] = (h:result() or {}).status
      end }
    end
    local deadline = cqueues.monotime() + 30
    while not cq:empty() and cqueues.monotime() < deadline do assert(cq:step(1)) end
    pump:close()
    client:close()
    assert.are.same({ "ready", "ready", "ready", "ready", "ready" }, statuses)
    local max = 0
    for _, t in ipairs(rtts) do max = math.max(max, t) end
    assert.is_true(#rtts >= 20, "only " .. #rtts .. " pings")
    assert.is_true(max <= 0.020, ("the echo server took %.1f ms to answer"):format(max * 1000))
    io.stderr:write(("\ncqueues: 5 queries, %d pings, slowest echo %.2f ms, %d pump wake-ups\n"):format(
      #rtts, max * 1000, pump.wakeups))
  end)
end)
