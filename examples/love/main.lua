-- luacheck: globals love
-- LÖVE 11 example: queries VINs while the game runs, and shows the reports.
-- The client is pumped once per frame in love.update; its share of a frame is small
-- and bounded (docs/event-loop.md). Run from the checkout, after `make`:
--
--   LUA_PATH="$PWD/lua/?.lua;$PWD/lua/?/init.lua;;" LUA_CPATH="$PWD/build/luajit/?.so;;" love examples/love
--
-- Without MAINTENANCE_REPORT_ENDPOINT it starts its own sandbox (nothing is bought);
-- with it (and _SECRET_ID, _SECRET_KEY) it buys the VINs given after the directory.
-- MR_LOVE_RESULT=file: quit once every query is done and write the frame statistics
-- there (the spec does this under xvfb-run); MR_LOVE_SCREENSHOT=file.png: save the
-- window first.
local mr = require "maintenance_report"
local core = require "maintenance_report.core"
local text = require "maintenance_report.render.text"
local pump_mod = require "maintenance_report.loop.love"

local sb, client, pump
local vins, results, shown, first_report = {}, {}, nil, nil
local font, angle = nil, 0
local over = {} -- frames over 2 ms of CPU in the client (without a GC sweep), described
local quitting = false

local function cjk_font(size)
  for _, path in ipairs{ "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc" } do
    local f = io.open(path, "rb")
    if f then
      local data = love.filesystem.newFileData(f:read("a"), "cjk.ttc")
      f:close()
      return love.graphics.newFont(data, size)
    end
  end
  return love.graphics.newFont(size) -- Chinese labels show as boxes without a CJK font
end

local function write_result()
  local path = os.getenv("MR_LOVE_RESULT")
  if not path then return end
  local statuses = {}
  for i, vin in ipairs(vins) do
    local r = results[vin]
    statuses[i] = r and (r.report and r.report.status or ("error: " .. tostring(r.err))) or "missing"
  end
  local f = assert(io.open(path, "w"))
  local described = {}
  for i, o in ipairs(over) do described[i] = ("%q"):format(o) end
  f:write(("return { frames = %d, max_cpu = %.9f, max_gc_cpu = %.9f, over = { %s }, "
    .. "statuses = { %q, %q, %q, %q, %q } }"):format(pump.frames, pump.max_cpu, pump.max_gc_cpu,
    table.concat(described, ", "), unpack(statuses, 1, 5)))
  f:close()
end

function love.load(args)
  local endpoint = os.getenv("MAINTENANCE_REPORT_ENDPOINT")
  local id, key
  if endpoint and endpoint ~= "" then
    id, key = os.getenv("MAINTENANCE_REPORT_SECRET_ID"), os.getenv("MAINTENANCE_REPORT_SECRET_KEY")
    for _, vin in ipairs(args) do vins[#vins + 1] = vin end -- each one is bought
  else
    local sandbox = require "maintenance_report_sandbox"
    sb = assert(sandbox.start{ latency_ms = 1000 })
    endpoint, id, key = sb.base_url, sb.secret_id, sb.secret_key
    for i = 1, 5 do vins[i] = sandbox.scenario_vin("normal", 20 + i) end
  end
  client = assert(mr.new{ endpoint = endpoint, secret_id = id, secret_key = key })
  pump = pump_mod.new(client)
  font = cjk_font(14)
  collectgarbage() -- the font file's bytes, read once: collected now, not in some later frame
  for _, vin in ipairs(vins) do
    -- on_done runs inside pump:update, on the game's thread: it only keeps the result.
    -- What the game does with it (the text below) is its own frame work, done after the pump.
    client:start_query{ vin = vin, on_done = function(h)
      local report, err = h:result()
      results[vin] = { report = report, err = err }
      if report and not first_report then first_report = report end
    end }
  end
end

function love.update(dt)
  angle = angle + dt * 2 -- the game's own work
  -- The thread's page faults and preemptions around the client's share: a frame over
  -- budget then says whether the kernel had a part in it.
  local usage = core.thread_usage()
  local running = pump:update()
  if pump.last_cpu > 0.002 and not pump.last_swept then
    local now = core.thread_usage()
    over[#over + 1] = ("frame %d: %.2f ms of CPU, %d page faults, %d preemptions"):format(pump.frames,
      pump.last_cpu * 1000, now.minor_faults - usage.minor_faults,
      now.involuntary_switches - usage.involuntary_switches)
  end
  if first_report and not shown then shown = text.render(first_report, { color = false }) end
  if running == 0 and os.getenv("MR_LOVE_RESULT") and not quitting then
    quitting = true
    write_result()
    local shot = os.getenv("MR_LOVE_SCREENSHOT") -- a PNG of the window, then quit
    if shot then
      love.graphics.captureScreenshot(function(image)
        local f = assert(io.open(shot, "wb"))
        f:write(image:encode("png"):getString())
        f:close()
        love.event.quit()
      end)
    else
      love.event.quit()
    end
  end
end

function love.draw()
  love.graphics.setFont(font)
  local done = 0
  for _ in pairs(results) do done = done + 1 end
  love.graphics.print(("%d of %d reports  |  frame %d, longest client share %.2f ms CPU"):format(
    done, #vins, pump.frames, pump.max_cpu * 1000), 10, 10)
  love.graphics.push()
  love.graphics.translate(860, 30)
  love.graphics.rotate(angle) -- keeps turning while the queries run
  love.graphics.rectangle("fill", -12, -12, 24, 24)
  love.graphics.pop()
  if shown then love.graphics.print(shown, 10, 40) end
end

function love.quit()
  if client then client:close() end
  if sb then sb:stop() end
end
