-- Runs a private nginx (Debian's, with lua-nginx-module) from a temp prefix on
-- loopback: for the sandbox, the specs and the benchmarks. Never touches /etc/nginx.
-- Plain Lua 5.1/5.4 with shell utilities, since Lua 5.4 has no posix module here.
local shell = require "maintenance_report_sandbox.shell"

local q = shell.quote

local nginx = {}

nginx.quote = shell.quote
nginx.STOP_FN = shell.STOP_FN

-- Runs a shell command; returns ok, combined output.
function nginx.run(command)
  local out, rc = shell.run(command)
  return rc == 0, out
end

local PORT_MIN, PORT_MAX = 20000, 60999
local PREFIX_PATTERN = "/maintenance%-report%-[%w%-]+%.[%w]+$"

local function file_exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

local function write_file(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

function nginx.read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

-- /usr/sbin is often not on a normal user's PATH.
function nginx.find_binary(explicit)
  if explicit then return explicit end
  local env = os.getenv("MAINTENANCE_REPORT_NGINX")
  if env and env ~= "" then return env end
  for _, p in ipairs({ "/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/openresty/nginx/sbin/nginx" }) do
    if file_exists(p) then return p end
  end
  return "nginx"
end

-- Where Debian keeps the dynamic lua module; nil when it is compiled in (OpenResty).
function nginx.find_modules(explicit)
  if explicit ~= nil then return explicit or nil end
  for _, d in ipairs({ "/usr/lib/nginx/modules", "/usr/share/nginx/modules", "/usr/lib64/nginx/modules" }) do
    if file_exists(d .. "/ngx_http_lua_module.so") then return d end
  end
  return nil
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

local function free_port(avoid)
  local port
  repeat port = shell.random_int(PORT_MIN, PORT_MAX) until port ~= avoid and not port_listening(port)
  return port
end

-- The config for opts.http: the http{} body, ${PORT} and ${PREFIX} substituted.
local function render_http(opts, ctx)
  local lua_path = (opts.lua_path or "") .. "/usr/share/lua/5.1/?.lua;/usr/share/lua/5.1/?/init.lua;;"
  local lines = {}
  if ctx.modules_dir then
    lines[#lines + 1] = "load_module " .. ctx.modules_dir .. "/ndk_http_module.so;"
    lines[#lines + 1] = "load_module " .. ctx.modules_dir .. "/ngx_http_lua_module.so;"
  end
  local http = opts.http:gsub("%${PORT}", tostring(ctx.port)):gsub("%${PREFIX}", ctx.prefix)
  for _, line in ipairs{
    ctx.run_as_root and "user root;" or "",
    "worker_processes " .. (opts.workers or 1) .. ";",
    "pid " .. ctx.prefix .. "/nginx.pid;",
    "error_log " .. ctx.prefix .. "/error.log " .. (opts.log_level or "warn") .. ";",
    opts.main or "",
    "events { worker_connections " .. (opts.worker_connections or 4096) .. "; }",
    "http {",
    "  access_log off;",
    "  client_body_temp_path " .. ctx.prefix .. "/tmp/body;",
    "  proxy_temp_path " .. ctx.prefix .. "/tmp/proxy;",
    "  fastcgi_temp_path " .. ctx.prefix .. "/tmp/fastcgi;",
    "  uwsgi_temp_path " .. ctx.prefix .. "/tmp/uwsgi;",
    "  scgi_temp_path " .. ctx.prefix .. "/tmp/scgi;",
    "  lua_package_path " .. q(lua_path) .. ";",
    opts.lua_cpath and ("  lua_package_cpath " .. q(opts.lua_cpath .. ";;") .. ";") or "",
    http,
    "}",
  } do lines[#lines + 1] = line end
  return table.concat(lines, "\n") .. "\n"
end

-- "K='v' …" for the command line; nginx passes only `env`-listed names to workers.
local function env_prefix(env)
  local names = {}
  for name in pairs(env or {}) do
    assert(tostring(name):match("^[%a_][%w_]*$"), "nginx.start: bad environment variable name")
    names[#names + 1] = name
  end
  table.sort(names)
  local parts = {}
  for _, name in ipairs(names) do parts[#parts + 1] = name .. "=" .. q(env[name]) .. " " end
  return table.concat(parts)
end

-- Starts nginx once on the chosen ports. Returns pid, or nil, output.
local function launch(binary, prefix, conf_text, env)
  write_file(prefix .. "/nginx.conf", conf_text)
  local pidfile = q(prefix .. "/nginx.pid")
  -- nginx binds its listeners before it daemonises, so exit status 0 means
  -- the port accepts connections. The pid file is written just after the
  -- fork, hence the short wait for it.
  local out, rc = shell.run(string.format(
    "%s%s -p %s -c %s -e %s && _i=0 && "
      .. "while [ ! -s %s ] && [ $_i -lt 500 ]; do sleep 0.01; _i=$((_i + 1)); done && cat %s",
    env_prefix(env), q(binary), q(prefix .. "/"), q(prefix .. "/nginx.conf"), q(prefix .. "/error.log"),
    pidfile, pidfile))
  local pid = rc == 0 and out:match("(%d+)%s*$")
  if not pid then return nil, out end
  return tonumber(pid)
end

-- Keeps nginx from outliving the Lua process that started it (a crash or
-- kill -9 skips stop() and finalizers): checks once a second.
local function start_watchdog(owner_pid, nginx_pid, prefix)
  local script = shell.STOP_FN .. string.format([[
trap 'kill $! 2>/dev/null; exit 0' TERM
while alive %d && alive %d; do sleep 1 & wait $!; done
alive %d && stop_nginx %d %s
]], owner_pid, nginx_pid, nginx_pid, nginx_pid, q(prefix))
  return tonumber((shell.capture("sh -c " .. q(script) .. " >/dev/null 2>&1 </dev/null & echo $!")))
end

local Server = {}
Server.__index = Server

function Server:error_log()
  return nginx.read_file(self.prefix .. "/error.log") or ""
end

--- Stops nginx, waits for its master to exit and removes the prefix. Idempotent.
function Server:stop()
  if self.stopped then return true end
  self.stopped = true
  local cmd = shell.STOP_FN
  if self.watchdog_pid then
    cmd = cmd .. string.format("kill -TERM %d 2>/dev/null\n", self.watchdog_pid)
  end
  shell.run(cmd .. string.format("stop_nginx %d %s", self.pid, q(self.prefix)))
  return true
end
Server.__close = Server.stop

-- Stops the server when the object is collected or the Lua state closes.
-- Tables get no __gc in Lua 5.1/LuaJIT; newproxy userdata do.
local function attach_finalizer(server)
  local stop = function() server:stop() end
  if newproxy then -- luacheck: ignore 113 (5.1/LuaJIT only)
    local proxy = newproxy(true) -- luacheck: ignore 113
    getmetatable(proxy).__gc = stop
    server._finalizer = proxy
  else
    server._finalizer = setmetatable({}, { __gc = stop })
  end
end

local function remove_prefix(prefix)
  if prefix and prefix:match(PREFIX_PATTERN) then shell.run("rm -rf " .. q(prefix)) end
end

--- Starts nginx on 127.0.0.1. The config comes from one of:
---   opts.http: the http{} body, with ${PORT} and ${PREFIX} substituted (plus
---     workers, main, lua_path, lua_cpath, log_level, worker_connections);
---   opts.render(ctx): the whole config, ctx = {prefix, port, tls_port,
---     modules_dir, run_as_root}.
--- Other options: port (nil/0: a free random one, retried when taken), tls (a
--- second port is chosen as ctx.tls_port), files ({name = content} written into
--- the prefix first), env ({NAME = value} for the nginx process; workers see
--- only names the config lists with `env`), label (of the temp prefix),
--- watchdog (default true), binary, modules_dir. Returns a server {pid, port, tls_port, prefix, stop()}
--- or nil, err.
function nginx.start(opts)
  assert(type(opts) == "table" and (type(opts.http) == "string" or type(opts.render) == "function"),
    "nginx.start: opts.http or opts.render is required")
  local label = opts.label or "nginx"
  local prefix, err = shell.capture('mktemp -d "${TMPDIR:-/tmp}/maintenance-report-' .. label .. '.XXXXXX"')
  if not prefix then return nil, "mktemp failed: " .. tostring(err) end
  local ctx = {
    prefix = prefix,
    modules_dir = nginx.find_modules(opts.modules_dir),
    -- As root, workers would switch to "nobody", who may not read the checkout.
    run_as_root = shell.capture("id -u") == "0",
  }
  local ok, setup_err = pcall(function()
    assert(shell.capture("mkdir " .. q(prefix .. "/tmp") .. " && chmod 755 " .. q(prefix)))
    for name, content in pairs(opts.files or {}) do write_file(prefix .. "/" .. name, content) end
  end)
  if not ok then
    remove_prefix(prefix)
    return nil, tostring(setup_err)
  end

  local binary = nginx.find_binary(opts.binary)
  local fixed = opts.port and opts.port > 0
  local pid, out
  for _ = 1, (fixed and 1 or 25) do
    ctx.port = fixed and opts.port or free_port()
    ctx.tls_port = opts.tls and free_port(ctx.port) or nil
    local rendered, conf = pcall(function()
      return opts.render and opts.render(ctx) or render_http(opts, ctx)
    end)
    if rendered then
      pid, out = launch(binary, prefix, conf, opts.env)
    else
      out = tostring(conf)
    end
    -- nginx cannot report an ephemeral port: pick a random one and retry when it is taken.
    if pid or not tostring(out):find("Address already in use", 1, true) then break end
  end
  if not pid then
    remove_prefix(prefix)
    return nil, "nginx did not start: " .. tostring(out)
  end
  local server = setmetatable({ pid = pid, port = ctx.port, tls_port = ctx.tls_port, prefix = prefix,
    conf = prefix .. "/nginx.conf", stopped = false }, Server)
  if opts.watchdog ~= false then
    local owner = tonumber((shell.capture("echo $PPID")))
    if owner then server.watchdog_pid = start_watchdog(owner, pid, prefix) end
  end
  attach_finalizer(server)
  return server
end

return nginx
