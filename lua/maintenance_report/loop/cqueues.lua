-- Drives a client inside a cqueues controller: a pump coroutine waits, with
-- cqueues.poll, on one pollable per socket curl watches (pollfd/events), on a
-- condition that start_query and cancel signal, and on the client's next deadline.
-- Other coroutines of the controller run meanwhile; on_done callbacks run in the pump.
--
--   local cqueues = require "cqueues"
--   local cq = cqueues.new()
--   local pump = require("maintenance_report.loop.cqueues").attach(cq, client)
--   client:start_query{ vin = vin, on_done = function(h) ... end }
--   assert(cq:loop())     -- returns once the queries and the controller's other work are done
--   pump:close()
local cqueues = require "cqueues"
local condition = require "cqueues.condition"

local options = require "maintenance_report.options"

local M = {}

local ATTACH_RULES = { on_error = { type = "function" } }

-- One socket curl watches, in the form cqueues.poll takes.
local Watched = {}
Watched.__index = Watched
function Watched:pollfd() return self.fd end
function Watched:events() return self.want end

local Pump = {}
Pump.__index = Pump

local unpack = table.unpack or unpack -- luacheck: ignore 143

-- The pump: runs while the client has work, then ends (a later start_query starts it again).
function Pump:_run()
  local client, watched = self.client, self.watched
  while not self.closed do
    local changes, timeout = client:watch()
    for _, change in ipairs(changes) do
      local w = watched[change.fd]
      if change.events == "remove" then
        -- before curl closes it (the core keeps it open until the next watch())
        if w then cqueues.cancel(w) end
        watched[change.fd] = nil
      elseif w then
        w.want = change.events
      else
        watched[change.fd] = setmetatable({ fd = change.fd, want = change.events }, Watched)
      end
    end
    if timeout == nil then break end
    local list = { self.wakeup }
    for _, w in pairs(watched) do list[#list + 1] = w end
    list[#list + 1] = timeout
    local ready = { cqueues.poll(unpack(list)) }
    self.wakeups = self.wakeups + 1
    local any = false
    for _, obj in ipairs(ready) do
      if getmetatable(obj) == Watched and watched[obj.fd] == obj then
        any = true
        -- "": cqueues says the socket is ready, not for what; curl looks itself.
        self:_call(obj.fd, "")
      end
    end
    if not any then self:_call(nil) end -- the deadline, or a wakeup: run what is due
  end
  for fd, w in pairs(watched) do -- closed with sockets still watched: the controller forgets them
    cqueues.cancel(w)
    watched[fd] = nil
  end
  self.running = false
end

function Pump:_call(fd, events)
  local ok, err = pcall(self.client.socket_action, self.client, fd, events)
  if not ok then self.on_error(err) end
end

function Pump:_start()
  if self.running or self.closed then return end
  self.running = true
  self.cq:wrap(function() self:_run() end)
end

--- Stops the pump (the client stays usable).
function Pump:close()
  self.closed = true
  self.client:set_wakeup(nil)
  self.wakeup:signal()
end

--- Attaches client to the controller cq. opts.on_error(err): an error an on_done raised
--- (default: raised, which ends cq:loop() with it).
function M.attach(cq, client, opts)
  opts = opts or {}
  options.check("loop.cqueues.attach", opts, ATTACH_RULES, 2)
  local self = setmetatable({ cq = cq, client = client, watched = {}, wakeup = condition.new(),
    wakeups = 0, running = false, closed = false, on_error = opts.on_error or error }, Pump)
  client:set_wakeup(function()
    self.wakeup:signal()
    self:_start()
  end)
  self:_start()
  return self
end

return M
