-- The LÖVE example in the real engine (Debian's love 11.4, LuaJIT) under xvfb-run:
-- 5 queries finish while the game runs, and no frame gives the client more than 2 ms
-- of CPU. The example starts and stops its own sandbox (docs/event-loop.md).
local ROOT = os.getenv("PWD")

describe("LÖVE example", function()
  local dir
  lazy_setup(function() dir = assert(io.popen("mktemp -d")):read("l") end)
  lazy_teardown(function() if dir then os.execute("rm -rf '" .. dir .. "'") end end)

  it("runs 5 queries with every frame's client share under 2 ms of CPU", function()
    local result = dir .. "/result.lua"
    local shot = dir .. "/window.png"
    local cmd = ("cd %q && MR_LOVE_RESULT=%q MR_LOVE_SCREENSHOT=%q LUA_PATH=%q LUA_CPATH=%q timeout 90 "
      .. "xvfb-run -a love examples/love >%s/love.log 2>&1"):format(ROOT, result, shot,
      ROOT .. "/lua/?.lua;" .. ROOT .. "/lua/?/init.lua;;", ROOT .. "/build/luajit/?.so;;", dir)
    os.execute(cmd)
    local f = io.open(result)
    local log = io.open(dir .. "/love.log")
    assert.truthy(f, "love wrote no result: " .. (log and log:read("a") or ""))
    local r = load(f:read("a"))()
    f:close()
    if log then log:close() end
    assert.are.same({ "ready", "ready", "ready", "ready", "ready" }, r.statuses)
    -- The window drew the report: a PNG of it, far bigger than an empty black frame's.
    local png = assert(io.open(shot, "rb"), "no screenshot"):read("a")
    assert.are.equal("\137PNG", png:sub(1, 4))
    assert.is_true(#png > 5000, "the window looks empty (" .. #png .. " bytes)")
    assert.is_true(r.frames >= 30, "only " .. r.frames .. " frames")
    -- At most one frame over 2 ms, and none over 5 (examples/game_loop.lua, OUTLIER_STEP_CPU, says why).
    assert.is_true(#r.over <= 1, "frames over 2 ms of CPU in the client: " .. table.concat(r.over, "; "))
    assert.is_true(r.max_cpu <= 0.005, ("a frame gave the client %.2f ms of CPU"):format(r.max_cpu * 1000))
    -- A frame in which Lua's collector swept did GC work for the whole game as well.
    assert.is_true(r.max_gc_cpu <= 0.005, ("a frame with a GC sweep: %.2f ms of CPU"):format(r.max_gc_cpu * 1000))
    io.stderr:write(("\nlove: 5 queries in %d frames; longest client share %.2f ms CPU (%.2f ms with a GC sweep)\n")
      :format(r.frames, r.max_cpu * 1000, r.max_gc_cpu * 1000))
  end)
end)
