-- Runs a client next to copas 1.x (Debian's lua-copas: copas 1.1.7, for Lua 5.1 and
-- 5.2, so LuaJIT here). That copas has no timers (no copas.sleep or copas.pause) and
-- its select sees only its own sockets, so the client cannot live in a copas thread.
-- Instead one loop turns both: copas.step(wait) serves copas' sockets and returns as
-- soon as one is ready, then client:step(0) does the client's bounded work. While
-- queries run, wait is at most max_wait (10 ms): curl's sockets are looked at 100
-- times a second at most, and copas' own sockets are served the moment they are ready.
--
--   local copas = require "copas"
--   local copas_loop = require "maintenance_report.loop.copas"
--   copas.addserver(server, handler)
--   client:start_query{ vin = vin, on_done = function(h) ... end }  -- on_done runs in the loop
--   copas_loop.loop(copas, client, { until_done = function() return finished end })
local options = require "maintenance_report.options"

local M = {}

M.MAX_WAIT = 0.01

local LOOP_RULES = { until_done = { type = "function" }, max_wait = options.number(0, 60),
  idle_wait = options.number(0, 60) }

--- One turn: copas.step for at most the client's next deadline (capped at max_wait
--- while the client has work, idle_wait when it has none), then client:step(0).
--- Returns the number of the client's handles still running.
function M.step(copas, client, max_wait, idle_wait)
  local wait = client:timeout()
  wait = wait and math.min(wait, max_wait or M.MAX_WAIT) or (idle_wait or max_wait or M.MAX_WAIT)
  copas.step(wait)
  return client:step(0)
end

--- Turns until opts.until_done() is true (default: until the client has no work left).
--- opts.max_wait, opts.idle_wait: seconds, as in M.step. Returns true, or nil, err for a
--- value out of range.
function M.loop(copas, client, opts)
  opts = opts or {}
  local ok, err = options.check("loop.copas.loop", opts, LOOP_RULES, 2)
  if not ok then return nil, err end
  local done = opts.until_done or function() return client:scheduler():pending() == 0 end
  while not done() do M.step(copas, client, opts.max_wait, opts.idle_wait) end
  return true
end

return M
