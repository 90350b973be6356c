-- Sandbox process control: starts a private nginx (lua-nginx-module) that
-- emulates the API gateway and both vendor endpoints on 127.0.0.1, and stops
-- it again. Plain Lua (5.1/LuaJIT/5.4) driving shell utilities; no luaposix.
--
--   local sandbox = require "maintenance_report.sandbox"
--   local sb = assert(sandbox.start{ pending_polls = 2 })
--   -- sb.base_url, sb.port, sb.secret_id, sb.secret_key
--   sb:stats(); sb:reset(); sb:stop()
local nginx_conf = require "maintenance_report.sandbox.nginx_conf"
local scenarios = require "maintenance_report.sandbox.scenarios"
local shell = require "maintenance_report.sandbox.shell"

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

local PORT_MIN, PORT_MAX = 20000, 60999
local PREFIX_PATTERN = "/maintenance%-report%-sandbox%.[%w]+$"

-- Directory holding maintenance_report/ (nginx loads the handler from there).
local function lua_root()
  local src = debug.getinfo(1, "S").source
  local root = src:match("^@(.*)/maintenance_report/sandbox/init%.lua$")
  if not root and package.searchpath then
    local path = package.searchpath("maintenance_report.sandbox.handler", package.path)
    root = path and path:match("^(.*)/maintenance_report/sandbox/handler%.lua$")
  end
  root = root or "."
  if root:sub(1, 1) ~= "/" then
    local cwd = assert(shell.capture("pwd"))
    root = root == "." and cwd or (cwd .. "/" .. root:gsub("^%./", ""))
  end
  return root
end

local function file_exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

local function find_nginx(opts)
  if opts.nginx then return opts.nginx end
  local env = os.getenv("MAINTENANCE_REPORT_NGINX")
  if env and env ~= "" then return env end
  -- /usr/sbin is often not on a normal user's PATH.
  for _, p in ipairs({ "/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/openresty/nginx/sbin/nginx" }) do
    if file_exists(p) then return p end
  end
  return "nginx"
end

local function find_modules(opts)
  if opts.modules_dir ~= nil then return opts.modules_dir or nil end
  for _, d in ipairs({ "/usr/lib/nginx/modules", "/usr/share/nginx/modules", "/usr/lib64/nginx/modules" }) do
    if file_exists(d .. "/ngx_http_lua_module.so") then return d end
  end
  return nil -- assume lua-nginx-module is compiled in (OpenResty)
end

local function write_file(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

-- sh snippet: stop an nginx master (TERM = fast shutdown), wait for it to
-- go, then remove the prefix. After 10 s it kills the master and workers.
local STOP_FN = shell.ALIVE_FN .. [[
stop_sandbox() {
  if [ -n "$1" ] && alive "$1"; then
    kill -TERM "$1" 2>/dev/null
    _i=0
    while alive "$1" && [ "$_i" -lt 1000 ]; do sleep 0.01; _i=$((_i + 1)); done
    if alive "$1"; then
      kill -KILL $(ps -o pid= --ppid "$1" 2>/dev/null) "$1" 2>/dev/null
    fi
  fi
  rm -rf "$2"
}
]]
M.STOP_FN = STOP_FN

local function remove_prefix(prefix)
  if prefix and prefix:match(PREFIX_PATTERN) then shell.run("rm -rf " .. q(prefix)) end
end

-- Whether something already listens on a TCP port (Linux /proc; false when
-- unknown). Saves nginx's bind retries, which take 2.5 s per taken port.
local function port_listening(port)
  local hex = string.format(":%04X ", port)
  for _, table_file in ipairs({ "/proc/net/tcp", "/proc/net/tcp6" }) do
    local f = io.open(table_file, "r")
    if f then
      for line in f:lines() do
        -- fields: sl local_address rem_address st ...; st 0A = LISTEN
        local laddr, st = line:match("^%s*%d+:%s+(%S+)%s+%S+%s+(%x%x)")
        if laddr and st == "0A" and (laddr .. " "):find(hex, 1, true) then
          f:close()
          return true
        end
      end
      f:close()
    end
  end
  return false
end

-- Starts nginx once on `port`. Returns pid, or nil, output.
local function launch(nginx, prefix, opts, port, tls_port)
  write_file(prefix .. "/nginx.conf", nginx_conf.render {
    prefix = prefix, port = port, workers = opts.workers, lua_root = opts.lua_root,
    modules_dir = opts.modules_dir, run_as_root = opts.run_as_root,
    tls_port = tls_port, tls_cert = opts.tls_cert, tls_key = opts.tls_key,
  })
  local pidfile = q(prefix .. "/nginx.pid")
  -- nginx binds its listeners before it daemonises, so exit status 0 means
  -- the port accepts connections. The pid file is written just after the
  -- fork, hence the short wait for it.
  local out, rc = shell.run(string.format(
    "%s -p %s -c %s -e %s && _i=0 && "
      .. "while [ ! -s %s ] && [ $_i -lt 500 ]; do sleep 0.01; _i=$((_i + 1)); done && cat %s",
    q(nginx), q(prefix .. "/"), q(prefix .. "/nginx.conf"), q(prefix .. "/error.log"), pidfile, pidfile))
  local pid = rc == 0 and out:match("(%d+)%s*$")
  if not pid then return nil, out end
  return tonumber(pid)
end

-- Keeps nginx from outliving the Lua process that started it (a crash or
-- kill -9 skips stop() and finalizers): checks once a second.
local function start_watchdog(owner_pid, nginx_pid, prefix)
  local script = STOP_FN .. string.format([[
trap 'kill $! 2>/dev/null; exit 0' TERM
while alive %d && alive %d; do sleep 1 & wait $!; done
alive %d && stop_sandbox %d %s
]], owner_pid, nginx_pid, nginx_pid, nginx_pid, q(prefix))
  return tonumber((shell.capture("sh -c " .. q(script) .. " >/dev/null 2>&1 </dev/null & echo $!")))
end

local Sandbox = {}
Sandbox.__index = Sandbox

function Sandbox:url(path)
  return self.base_url .. (path or "")
end

function Sandbox:error_log()
  return read_file(self.prefix .. "/error.log") or ""
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

-- {orders=N, orders_by_vin={[vin]=n}, order_times={epoch seconds, arrival
-- order}, report_reads=N}
function Sandbox:stats()
  local s, err = admin(self, "GET", "stats")
  if not s then return nil, err end
  -- JSON numbers decode as floats under Lua 5.4; counts are integers.
  local by_vin = {}
  for vin, n in pairs(s.orders_by_vin or {}) do by_vin[vin] = math.floor(n) end
  local times = {}
  for i, t in ipairs(s.order_times or {}) do times[i] = t end
  return {
    orders = math.floor(s.orders),
    orders_by_vin = by_vin,
    order_times = times,
    report_reads = math.floor(s.report_reads),
  }
end

function Sandbox:reset()
  local ok, err = admin(self, "POST", "reset")
  return ok and true or nil, err
end

-- Stops nginx, waits for the master to exit and removes the prefix.
-- Idempotent.
function Sandbox:stop()
  if self.stopped then return true end
  self.stopped = true
  local cmd = STOP_FN
  if self.watchdog_pid then
    cmd = cmd .. string.format("kill -TERM %d 2>/dev/null\n", self.watchdog_pid)
  end
  cmd = cmd .. string.format("stop_sandbox %d %s", self.pid, q(self.prefix))
  shell.run(cmd)
  return true
end
Sandbox.__close = Sandbox.stop

-- Finalizer that stops the sandbox when the object is collected or the Lua
-- state closes. Tables get no __gc in Lua 5.1/LuaJIT; newproxy userdata do.
local function attach_finalizer(sb)
  local stop = function() sb:stop() end
  if newproxy then -- luacheck: ignore 113 (5.1/LuaJIT only)
    local proxy = newproxy(true) -- luacheck: ignore 113
    getmetatable(proxy).__gc = stop
    sb._finalizer = proxy
  else
    sb._finalizer = setmetatable({}, { __gc = stop })
  end
end

local function int_option(v, default, name)
  if v == nil then return default end
  local n = tonumber(v)
  assert(n and n >= 0 and n == math.floor(n), name .. " must be a non-negative integer")
  return math.floor(n)
end

-- opts: port (nil or 0: random free port), secret_id, secret_key,
-- pending_polls, latency_ms, workers, watchdog (default true),
-- nginx (binary), modules_dir (false: lua module compiled in),
-- tls = {cert=, key=, port=} (PEM paths; adds a TLS listener on 127.0.0.1,
-- port nil/0: random free port; gives sb.tls_port and sb.tls_base_url).
-- Returns a sandbox object, or nil, message.
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
  local fixed_port = int_option(opts.port, 0, "port")
  local tls = opts.tls
  local fixed_tls_port = 0
  if tls ~= nil then
    assert(type(tls) == "table" and type(tls.cert) == "string" and type(tls.key) == "string",
      "tls must be a table with cert and key paths")
    fixed_tls_port = int_option(tls.port, 0, "tls.port")
  end

  local prefix, err = shell.capture('mktemp -d "${TMPDIR:-/tmp}/maintenance-report-sandbox.XXXXXX"')
  if not prefix then return nil, "mktemp failed: " .. tostring(err) end
  local conf = {
    workers = workers,
    lua_root = lua_root(),
    modules_dir = find_modules(opts),
    run_as_root = shell.capture("id -u") == "0",
    tls_cert = tls and tls.cert, tls_key = tls and tls.key,
  }
  local ok, setup_err = pcall(function()
    assert(shell.capture("mkdir " .. q(prefix .. "/tmp")))
    write_file(prefix .. "/settings.lua", nginx_conf.settings_lua(settings))
  end)
  if not ok then
    remove_prefix(prefix)
    return nil, tostring(setup_err)
  end

  local nginx = find_nginx(opts)
  local pid, port, tls_port, out
  local all_fixed = fixed_port > 0 and (not tls or fixed_tls_port > 0)
  for _ = 1, (all_fixed and 1 or 25) do
    port = fixed_port
    if port == 0 then
      repeat port = shell.random_int(PORT_MIN, PORT_MAX) until not port_listening(port)
    end
    if tls then
      tls_port = fixed_tls_port
      if tls_port == 0 then
        repeat tls_port = shell.random_int(PORT_MIN, PORT_MAX) until tls_port ~= port and not port_listening(tls_port)
      end
    end
    local launched, perr = pcall(function() pid, out = launch(nginx, prefix, conf, port, tls_port) end)
    if not launched then out = tostring(perr) end
    -- nginx cannot report an ephemeral port: pick a random one and retry
    -- when it is taken.
    if pid or all_fixed or not tostring(out):find("Address already in use", 1, true) then break end
    if fixed_port > 0 and tostring(out):find(":" .. fixed_port .. " failed", 1, true) then break end
  end
  if not pid then
    remove_prefix(prefix)
    return nil, "nginx did not start: " .. tostring(out)
  end

  local sb = setmetatable({
    prefix = prefix,
    pid = pid,
    port = port,
    base_url = string.format("http://127.0.0.1:%d/release", port),
    secret_id = settings.secret_id,
    secret_key = settings.secret_key,
    pending_polls = settings.pending_polls,
    latency_ms = settings.latency_ms,
    workers = workers,
    stopped = false,
  }, Sandbox)
  if tls_port then
    sb.tls_port = tls_port
    sb.tls_base_url = string.format("https://127.0.0.1:%d/release", tls_port)
  end
  if opts.watchdog ~= false then
    local owner = tonumber((shell.capture("echo $PPID")))
    if owner then sb.watchdog_pid = start_watchdog(owner, pid, prefix) end
  end
  attach_finalizer(sb)
  return sb
end

return M
