-- The cqueues recipe in a real controller (Debian's lua-cqueues): examples/cqueues/query.lua
-- runs 5 queries next to an echo server in the same controller, which this spec pings from
-- outside. The example runs as its own process, as a cqueues server would, so its heap
-- is its own, not the spec runner's after hundreds of specs.
local echo_ping = require "helpers.echo_ping"

local ROOT = os.getenv("PWD")
local interpreter = os.getenv("MR_SPEC_LUA") or (rawget(_G, "jit") and "luajit" or "lua5.4")
-- The regular build: every echo within 20 ms. Under the sanitizers (make asan) the bound is
-- 250 ms: a quarter of the sandbox's 1 s answer, so a pump that waited for the server still fails.
local ECHO_BOUND = os.getenv("MR_SPEC_SANITIZED") and 0.250 or 0.020

describe("cqueues recipe", function()
  it(("runs 5 queries while an echo server in the same controller answers within %d ms"):format(
      ECHO_BOUND * 1000), function()
    local cmd = ("cd %q && timeout 60 %s examples/cqueues/query.lua 2>&1"):format(ROOT, interpreter)
    local rtts, out = echo_ping.run(cmd)
    local ready = 0
    for _ in out:gmatch(": ready ") do ready = ready + 1 end
    assert.are.equal(5, ready, out)
    local wakeups = tonumber(out:match("\ndone, (%d+) pump wake%-ups\n"))
    assert.truthy(wakeups, out)
    local max = echo_ping.slowest(rtts)
    assert.is_true(#rtts >= 20, "only " .. #rtts .. " pings")
    assert.is_true(max <= ECHO_BOUND, ("the echo server took %.1f ms to answer"):format(max * 1000))
    io.stderr:write(("\ncqueues: 5 queries, %d pings, slowest echo %.2f ms, %d pump wake-ups\n"):format(
      #rtts, max * 1000, wakeups))
  end)
end)
