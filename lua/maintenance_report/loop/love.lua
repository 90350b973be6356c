-- A pump for frame-driven hosts (LÖVE's love.update, any game loop): each frame
-- advances the client by a bounded amount of work, client:step(0), which never waits.
-- It also keeps what a frame cost the client, in CPU time of the game's thread.
--
--   local pump = require("maintenance_report.loop.love").new(client)
--   function love.update(dt) pump:update() end   -- on_done callbacks run here
--
-- pump.frames, pump.last_cpu (seconds), pump.max_cpu (over frames in which Lua's collector
-- did not sweep), pump.max_gc_cpu (frames in which it did: that sweep collected the whole
-- game's garbage, not only the client's), pump.last_swept; pump:update() → handles running.
local core = require "maintenance_report.core"

local M = {}

local Pump = {}
Pump.__index = Pump

function M.new(client)
  return setmetatable({ client = client, frames = 0, max_cpu = 0, max_gc_cpu = 0, last_cpu = 0,
    last_swept = false }, Pump)
end

function Pump:update()
  local heap = collectgarbage("count")
  local started = core.thread_cputime()
  local running = self.client:step(0)
  local spent = core.thread_cputime() - started
  local swept = collectgarbage("count") < heap
  self.frames, self.last_cpu, self.last_swept = self.frames + 1, spent, swept
  if swept then
    if spent > self.max_gc_cpu then self.max_gc_cpu = spent end
  elseif spent > self.max_cpu then
    self.max_cpu = spent
  end
  return running
end

return M
