-- A real redis-server on 127.0.0.1 for specs: its own temp directory, a free
-- port, the settings docs/fleet.md asks for (AOF with appendfsync always,
-- noeviction), and a watchdog that stops it when the spec process dies.
--   local server = redis_server.start{ password = "…" }  → server | raises
--   server.port, server.url, server:kill() (SIGKILL), server:restart(), server:stop()
local lib = require "maintenance_report_sandbox.shell"
local hiredis = require "maintenance_report.hiredis"

local q = lib.quote
local redis_server = {}

local Server = {}
Server.__index = Server

local function capture(cmd)
  local out, rc = lib.run(cmd)
  if rc ~= 0 then error("command failed: " .. cmd .. "\n" .. tostring(out), 3) end
  return (out:gsub("\n$", ""))
end

local function log_has(self, text)
  local f = io.open(self.dir .. "/redis.log", "r")
  if not f then return false end
  local log = f:read("*a")
  f:close()
  return log:find(text, 1, true) ~= nil
end

-- Polls PING for up to 10 s: readiness, not a sleep standing in for it. false: the port was taken.
local function wait_ready(self)
  local deadline = os.time() + 10
  repeat
    if log_has(self, "Address already in use") then return false end
    local conn = hiredis.connect("127.0.0.1", self.port, 0.2)
    if conn then
      if self.password then conn:call("AUTH", self.password) end
      local reply = conn:call("PING")
      conn:close()
      if reply == "PONG" then return true end
    end
    lib.run("sleep 0.02")
  until os.time() > deadline
  local log = lib.run("cat " .. q(self.dir .. "/redis.log"))
  error("redis-server did not answer on port " .. self.port .. ":\n" .. tostring(log))
end

function Server:launch()
  local conf = {
    "port " .. self.port, "bind 127.0.0.1", "dir " .. self.dir, "daemonize yes",
    "pidfile " .. self.dir .. "/redis.pid", "logfile " .. self.dir .. "/redis.log",
    "appendonly yes", "appendfsync always", "save \"\"", "maxmemory-policy noeviction",
  }
  if self.password then conf[#conf + 1] = "requirepass " .. self.password end
  if self.replica_of then
    conf[#conf + 1] = "replicaof 127.0.0.1 " .. self.replica_of.port
    if self.replica_of.password then conf[#conf + 1] = "masterauth " .. self.replica_of.password end
  end
  local f = assert(io.open(self.dir .. "/redis.conf", "w"))
  f:write(table.concat(conf, "\n"), "\n")
  f:close()
  lib.run("chmod 600 " .. q(self.dir .. "/redis.conf"))
  capture("rm -f " .. q(self.dir .. "/redis.pid") .. " " .. q(self.dir .. "/redis.log")
    .. " && redis-server " .. q(self.dir .. "/redis.conf"))
  if not wait_ready(self) then return false end
  self.pid = tonumber(capture("cat " .. q(self.dir .. "/redis.pid")))
  -- The watchdog: redis stops within a second of the spec process's death.
  local owner = tonumber(capture("echo $PPID"))
  local script = lib.ALIVE_FN .. ("while alive %d && alive %d; do sleep 1; done; alive %d && kill -KILL %d; "
    .. "alive %d || rm -rf %s"):format(owner, self.pid, self.pid, self.pid, owner, q(self.dir))
  self.watchdog = tonumber(capture("sh -c " .. q(script) .. " >/dev/null 2>&1 </dev/null & echo $!"))
  return true
end

-- From /dev/urandom: LuaJIT's math.random starts from the same seed in every process,
-- so back-to-back spec runs would try the same ports in the same order.
local function random_port()
  local f = assert(io.open("/dev/urandom", "rb"))
  local a, b = f:read(2):byte(1, 2)
  f:close()
  return 20000 + (a * 256 + b) % 12768
end

--- start{ password = optional, replica_of = another server (optional) } → a running server.
function redis_server.start(opts)
  opts = opts or {}
  local self = setmetatable({ password = opts.password, replica_of = opts.replica_of }, Server)
  self.dir = capture('mktemp -d "${TMPDIR:-/tmp}/maintenance-report-redis.XXXXXX"')
  -- Below Linux's ephemeral range (32768-60999), where outgoing connections take their
  -- ports; a port another listener holds still makes redis-server exit: then another.
  local launched = false
  for _ = 1, 20 do
    self.port = random_port()
    if not hiredis.connect("127.0.0.1", self.port, 0.2) and self:launch() then
      launched = true
      break
    end
  end
  assert(launched, "redis-server found no free port")
  self.url = "redis://127.0.0.1:" .. self.port .. "/0"
  if newproxy then -- luacheck: ignore 113 (5.1/LuaJIT: tables get no __gc)
    self._finalizer = newproxy(true) -- luacheck: ignore 113
    getmetatable(self._finalizer).__gc = function() self:stop() end
  else
    self._finalizer = setmetatable({}, { __gc = function() self:stop() end })
  end
  return self
end

local function wait_gone(pid)
  capture(lib.ALIVE_FN .. ("_i=0; while alive %d && [ $_i -lt 500 ]; do sleep 0.01; _i=$((_i+1)); done; "
    .. "! alive %d"):format(pid, pid))
end

local function stop_watchdog(self)
  if self.watchdog then lib.run("kill -TERM " .. self.watchdog .. " 2>/dev/null") end
  self.watchdog = nil
end

--- SIGKILL, as a crash would: what the AOF has survives.
function Server:kill()
  stop_watchdog(self)
  lib.run("kill -KILL " .. self.pid .. " 2>/dev/null")
  wait_gone(self.pid)
end

--- Starts it again on the same port and directory.
function Server:restart()
  assert(self:launch(), "redis-server could not listen on port " .. self.port .. " again")
end

function Server:stop()
  if self.stopped then return end
  self.stopped = true
  stop_watchdog(self)
  if self.pid then
    lib.run("kill -TERM " .. self.pid .. " 2>/dev/null")
    pcall(wait_gone, self.pid)
    lib.run("kill -KILL " .. self.pid .. " 2>/dev/null")
  end
  if self.dir and self.dir:match("/maintenance%-report%-redis%.") then lib.run("rm -rf " .. q(self.dir)) end
end

return redis_server
