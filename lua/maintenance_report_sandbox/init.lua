-- Sandbox process control: starts a private nginx (lua-nginx-module) that
-- emulates the API gateway and both vendor endpoints on 127.0.0.1, and stops
-- it again. Plain Lua (5.1/LuaJIT/5.4) driving shell utilities; no luaposix.
--
--   local sandbox = require "maintenance_report_sandbox"
--   local sb = assert(sandbox.start{ pending_polls = 2 })
--   -- sb.base_url, sb.port, sb.secret_id, sb.secret_key
--   sb:stats(); sb:reset(); sb:stop()
local nginx = require "maintenance_report_sandbox.nginx_runner"
local nginx_conf = require "maintenance_report_sandbox.nginx_conf"
local scenarios = require "maintenance_report_sandbox.scenarios"
local shell = require "maintenance_report_sandbox.shell"

local q = shell.quote

local M = {}

M.defaults = {
  secret_id = "AKIDsandbox",
  secret_key = "sandbox-secret",
  pending_polls = 1,
  latency_ms = 0,
  workers = 1,
}

M.scenarios = scenarios.scenarios
M.scenario_names = scenarios.names
M.scenario_of = scenarios.decode

-- A check-digit-valid VIN that triggers a scenario (see docs/sandbox.md).
function M.scenario_vin(name, variant)
  return assert(scenarios.vin(name, variant))
end

-- Directory holding maintenance_report/ (nginx loads the handler from there).
local function lua_root()
  local src = debug.getinfo(1, "S").source
  local root = src:match("^@(.*)/maintenance_report_sandbox/init%.lua$")
  if not root and package.searchpath then
    local path = package.searchpath("maintenance_report_sandbox.handler", package.path)
    root = path and path:match("^(.*)/maintenance_report_sandbox/handler%.lua$")
  end
  root = root or "."
  if root:sub(1, 1) ~= "/" then
    local cwd = assert(shell.capture("pwd"))
    root = root == "." and cwd or (cwd .. "/" .. root:gsub("^%./", ""))
  end
  return root
end

-- The sh function stop_nginx PID PREFIX, for the foreground CLI script.
M.STOP_FN = nginx.STOP_FN

local Sandbox = {}
Sandbox.__index = Sandbox

function Sandbox:url(path)
  return self.base_url .. (path or "")
end

function Sandbox:error_log()
  return self.server:error_log()
end

local function decode_json(s)
  local ok, cjson = pcall(require, "cjson.safe")
  if ok then return cjson.decode(s) end
  return require("dkjson").decode(s)
end

local function admin(self, method, name)
  local out, rc = shell.run(string.format("curl -sS --noproxy '*' --max-time 10 -X %s %s",
    method, q(string.format("http://127.0.0.1:%d/__sandbox/%s", self.port, name))))
  if rc ~= 0 then return nil, "sandbox admin call failed: " .. out end
  local data = decode_json(out)
  if type(data) ~= "table" then return nil, "bad admin answer: " .. out end
  return data
end

-- {orders=N, orders_by_vin={[vin]=n}, order_ids_by_vin={[vin]={id, ...}} (the ids
-- issued), order_times={epoch seconds, arrival order}, report_reads=N}
function Sandbox:stats()
  local s, err = admin(self, "GET", "stats")
  if not s then return nil, err end
  -- JSON numbers decode as floats under Lua 5.4; counts are integers.
  local by_vin = {}
  for vin, n in pairs(s.orders_by_vin or {}) do by_vin[vin] = math.floor(n) end
  local times = {}
  for i, t in ipairs(s.order_times or {}) do times[i] = t end
  local ids = {}
  for vin, list in pairs(s.order_ids_by_vin or {}) do ids[vin] = list end
  return {
    orders = math.floor(s.orders),
    orders_by_vin = by_vin,
    order_ids_by_vin = ids,
    order_times = times,
    report_reads = math.floor(s.report_reads),
  }
end

-- {orders=N, vins=N (distinct VINs ordered), repeat_vins=N (VINs ordered more than
-- once), report_reads=N}: the counters of stats() without its per-VIN lists.
function Sandbox:counts()
  local s, err = admin(self, "GET", "counts")
  if not s then return nil, err end
  local out = {}
  for _, k in ipairs{ "orders", "vins", "repeat_vins", "report_reads" } do out[k] = math.floor(s[k] or 0) end
  return out
end

function Sandbox:reset()
  local ok, err = admin(self, "POST", "reset")
  return ok and true or nil, err
end

-- Stops nginx, waits for the master to exit and removes the prefix.
-- Idempotent; also runs when the server object is collected.
function Sandbox:stop()
  return self.server:stop()
end
Sandbox.__close = Sandbox.stop

-- The most each whole-number option may be: enough for any test, and small
-- enough to be written into nginx.conf and settings.lua as an integer.
M.LIMITS = { port = 65535, pending_polls = 1000000, latency_ms = 86400000, workers = 64, connections = 1000000,
  backlog = 65535 }

-- Descriptors for `connections` per worker: up to the hard limit nginx inherits
-- (nil when the soft limit already suffices or the limits cannot be read).
local function nofile_for(connections)
  -- /proc rather than `ulimit` in a shell: no child process while the sandbox starts.
  local f = io.open("/proc/self/limits", "r")
  local limits = f and f:read("*a") or ""
  if f then f:close() end
  local soft, hard = limits:match("Max open files%s+(%S+)%s+(%S+)")
  local want = connections + 256
  if soft == "unlimited" or (tonumber(soft) or math.huge) >= want then return nil end
  if hard == "unlimited" then return want end
  return tonumber(hard) and math.min(want, tonumber(hard)) or nil
end

local function int_option(v, default, name)
  if v == nil then return default end
  local n = tonumber(v)
  assert(n and n >= 0 and n == math.floor(n) and n <= M.LIMITS[name],
    name .. " must be a whole number from 0 to " .. M.LIMITS[name])
  return math.floor(n)
end

-- opts: port (nil or 0: random free port), secret_id, secret_key,
-- pending_polls, latency_ms, workers, connections (per worker, default 4096),
-- backlog (the listen queue, default 4096; the kernel caps it at
-- net.core.somaxconn), watchdog (default true),
-- nginx (binary), modules_dir (false: lua module compiled in),
-- tls = {cert=, key=} (PEM paths; adds a TLS listener on a free port of
-- 127.0.0.1; gives sb.tls_port and sb.tls_base_url).
-- Returns a sandbox object, or nil, message, reason ("port_in_use" when the
-- fixed port is taken, "nginx" when nginx did not start for another reason).
function M.start(opts)
  opts = opts or {}
  local d = M.defaults
  local latency = int_option(opts.latency_ms, d.latency_ms, "latency_ms")
  -- Time-based pending alone unless polls are asked for too.
  local polls_default = (latency > 0) and 0 or d.pending_polls
  local settings = {
    secret_id = opts.secret_id or d.secret_id,
    secret_key = opts.secret_key or d.secret_key,
    pending_polls = int_option(opts.pending_polls, polls_default, "pending_polls"),
    latency_ms = latency,
  }
  local workers = int_option(opts.workers, d.workers, "workers")
  if workers < 1 then workers = 1 end
  local connections = math.max(16, int_option(opts.connections, nginx_conf.CONNECTIONS, "connections"))
  local backlog = math.max(1, int_option(opts.backlog, nginx_conf.BACKLOG, "backlog"))
  local nofile = nofile_for(connections)
  local fixed_port = int_option(opts.port, 0, "port")
  local tls = opts.tls
  if tls ~= nil then
    assert(type(tls) == "table" and type(tls.cert) == "string" and type(tls.key) == "string",
      "tls must be a table with cert and key paths")
  end

  local lua_dir = lua_root()
  local server, err, reason = nginx.start {
    label = "sandbox",
    port = fixed_port > 0 and fixed_port or nil,
    tls = tls ~= nil,
    files = { ["settings.lua"] = nginx_conf.settings_lua(settings) },
    watchdog = opts.watchdog,
    binary = opts.nginx,
    modules_dir = opts.modules_dir,
    render = function(ctx)
      return nginx_conf.render {
        prefix = ctx.prefix, port = ctx.port, workers = workers, lua_root = lua_dir,
        connections = connections, backlog = backlog, nofile = nofile,
        modules_dir = ctx.modules_dir, run_as_root = ctx.run_as_root,
        tls_port = ctx.tls_port, tls_cert = tls and tls.cert, tls_key = tls and tls.key,
      }
    end,
  }
  if not server then return nil, err, reason end

  local sb = setmetatable({
    server = server,
    prefix = server.prefix,
    pid = server.pid,
    port = server.port,
    base_url = string.format("http://127.0.0.1:%d/release", server.port),
    secret_id = settings.secret_id,
    secret_key = settings.secret_key,
    pending_polls = settings.pending_polls,
    latency_ms = settings.latency_ms,
    workers = workers,
  }, Sandbox)
  if server.tls_port then
    sb.tls_port = server.tls_port
    sb.tls_base_url = string.format("https://127.0.0.1:%d/release", server.tls_port)
  end
  return sb
end

return M
