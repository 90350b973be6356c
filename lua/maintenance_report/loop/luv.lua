-- Drives a client from a libuv loop (luv, Luvit, Neovim's vim.loop): one uv poll
-- handle per socket curl waits on, one uv timer for the client's next deadline
-- (curl's timeouts, poll waits, retry back-offs). The loop wakes only for those.
--
--   local attached = require("maintenance_report.loop.luv").attach(client, { uv = uv })
--   client:start_query{ vin = vin, on_done = function(h) ... end }  -- on_done runs in a uv callback
--   uv.run()                                                         -- returns once nothing is left
--   attached:close()                                                 -- stops and closes its handles
--   uv.run("nowait")                 -- outside callbacks: lets libuv finish closing them (a luv
--                                    -- loop left with closing handles crashes LuaJIT at exit)
--
-- opts.uv: the luv module (default require "luv"; in Neovim vim.loop).
-- opts.on_error(err): called with an error an on_done raised. luv ends the process on
-- an error raised in a callback, so the default writes it to stderr and goes on.
local options = require "maintenance_report.options"

local M = {}

local ATTACH_RULES = { uv = { type = "table" }, on_error = { type = "function" } }

local Attached = {}
Attached.__index = Attached

local function ms(seconds)
  return math.ceil(seconds * 1000)
end

-- Applies what the client wants watched now; called after every call into it.
function Attached:sync()
  if self.closed then return end
  local changes, timeout = self.client:watch()
  for _, change in ipairs(changes) do
    local fd, poll = change.fd, self.polls[change.fd]
    if change.events == "remove" then
      if poll then
        self.polls[fd] = nil
        poll:stop()
        poll:close()
      end
    else
      if not poll then
        poll = self.uv.new_poll(fd)
        self.polls[fd] = poll
      end
      poll:start(change.events, function(err, events)
        -- libuv may add "d" (disconnect) or "p"; curl wants readable/writable/error
        self:_event(fd, err and "e" or (events or ""):gsub("[^rw]", ""))
      end)
    end
  end
  if timeout then
    self.timer:start(ms(timeout), 0, function() self:_event(nil) end)
  else
    self.timer:stop()
  end
end

-- One wake-up: the client's work for it, then the watch list brought up to date,
-- even when an on_done raised.
function Attached:_event(fd, events)
  if self.closed then return end
  self.wakeups = self.wakeups + 1
  if fd == nil then self.timer_wakeups = self.timer_wakeups + 1 end
  local ok, err = pcall(self.client.socket_action, self.client, fd, events)
  self:sync()
  if not ok then self.on_error(err) end
end

--- Stops every handle this adapter opened; the client itself stays usable.
function Attached:close()
  if self.closed then return end
  self.closed = true
  self.client:set_wakeup(nil)
  for fd, poll in pairs(self.polls) do
    self.polls[fd] = nil
    poll:stop()
    poll:close()
  end
  self.timer:stop()
  self.timer:close()
end

function M.report_error(err)
  io.stderr:write("maintenance_report.loop.luv: an on_done raised: ", tostring(err), "\n")
end

--- Attaches client to a uv loop. Returns the adapter: .wakeups counts its callbacks,
--- .timer_wakeups those of its timer.
function M.attach(client, opts)
  opts = opts or {}
  options.check("loop.luv.attach", opts, ATTACH_RULES, 2)
  local uv = opts.uv or require "luv"
  local self = setmetatable({ client = client, uv = uv, polls = {}, timer = uv.new_timer(),
    wakeups = 0, timer_wakeups = 0, on_error = opts.on_error or M.report_error }, Attached)
  -- start_query or cancel from anywhere: look at the watch list on the next loop turn
  -- (never inside the client's own call).
  client:set_wakeup(function()
    if not self.closed then self.timer:start(0, 0, function() self:_event(nil) end) end
  end)
  self:sync()
  return self
end

return M
