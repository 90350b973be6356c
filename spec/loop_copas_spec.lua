-- The copas recipe in real copas 1.1.7 (Debian's lua-copas, installed for Lua 5.1/5.2:
-- run by LuaJIT): examples/copas/query.lua runs 5 queries next to a copas echo server,
-- which this spec pings from outside; every answer must come within 20 ms.
local echo_ping = require "helpers.echo_ping"

local ROOT = os.getenv("PWD")

describe("copas recipe (copas 1.1.7, LuaJIT)", function()
  it("runs 5 queries while the copas echo server keeps answering within 20 ms", function()
    local cmd = ("cd %q && LUA_PATH=%q LUA_CPATH=%q timeout 60 luajit examples/copas/query.lua 2>&1"):format(
      ROOT, ROOT .. "/lua/?.lua;" .. ROOT .. "/lua/?/init.lua;;", ROOT .. "/build/luajit/?.so;;")
    local rtts, out = echo_ping.run(cmd)
    local ready = 0
    for _ in out:gmatch(": ready ") do ready = ready + 1 end
    assert.are.equal(5, ready, out)
    assert.truthy(out:find("\ndone\n", 1, true) or out:find("^done\n"), out)
    local max = echo_ping.slowest(rtts)
    assert.is_true(#rtts >= 20, "only " .. #rtts .. " pings")
    assert.is_true(max <= 0.020, ("the echo server took %.1f ms to answer"):format(max * 1000))
    io.stderr:write(("\ncopas: 5 queries, %d pings, slowest echo %.2f ms\n"):format(#rtts, max * 1000))
  end)
end)
