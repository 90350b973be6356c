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

-- Written 0600: settings files carry the sandbox's secret key.
local function write_file(path, text)
  assert(shell.capture("umask 077 && : > " .. q(path)))
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
    "umask 077 && %s%s -p %s -c %s -e %s && _i=0 && "
      .. "while [ ! -s %s ] && [ $_i -lt 500 ]; do sleep 0.01; _i=$((_i + 1)); done && cat %s",
    env_prefix(env), q(binary), q(prefix .. "/"), q(prefix .. "/nginx.conf"), q(prefix .. "/error.log"),
    pidfile, pidfile))
  local pid = rc == 0 and out:match("(%d+)%s*$")
  if not pid then return nil, out end
  return tonumber(pid)
end

-- The shape both sentinels below share. It runs in its own session (setsid)
-- with INT/TERM/HUP ignored, so signals meant for the owner's group do not
-- kill it first. `reader` reads fd 3, the pipe only the owner writes to: the
-- owner's death closes it and the read ends at once. A child that inherited
-- the pipe (os.execute does not close it) would hold it open, so a poller
-- checks `alive` every `interval` seconds and ends the reader when it fails.
-- Reader and poller inherit the ignored TERM, so they are ended with KILL.
-- `after` runs once the reader has ended, with $status its exit status.
-- Returns the pipe or nil.
local function launch_sentinel(reader, alive, interval, after)
  local script = shell.STOP_FN .. string.format([[
trap '' INT TERM HUP
exec 3<&0 </dev/null >/dev/null 2>&1
( %s ) &
reader=$!
exec 3<&-
( while %s; do sleep %s; done; kill -KILL $reader 2>/dev/null ) &
poller=$!
wait $reader
status=$?
kill -KILL $poller 2>/dev/null
%s
]], reader, alive, interval, after)
  local launcher = shell.has_command("setsid") and "exec setsid sh -c " or "exec sh -c "
  return io.popen(launcher .. q(script), "w")
end

-- Keeps nginx from outliving the Lua process that started it, however that
-- process ends (a crash, kill -9, SIGTERM to its whole process group as
-- timeout(1) sends, which skip stop() and finalizers): the pipe's end, the
-- owner's death or nginx's own makes it stop nginx and remove the prefix.
-- Returns the pipe (closing it stops nginx) or nil.
local function start_watchdog(owner_pid, nginx_pid, prefix)
  return launch_sentinel("exec cat <&3 >/dev/null", string.format("alive %d && alive %d", owner_pid, nginx_pid),
    "1", string.format("stop_nginx %d %s", nginx_pid, q(prefix)))
end

-- Covers the start itself, from the moment the prefix exists until the
-- watchdog runs: an owner killed meanwhile (SIGTERM to its group, as timeout(1)
-- sends it to a plain script with no handler) would leave the prefix, and a
-- launched nginx, which daemonises into its own session, with nobody to stop
-- them. The guard waits for a line on its pipe: "dismiss" (the watchdog has
-- taken over, or nginx.start cleaned up itself) ends it; the pipe's end or the
-- owner's death (polled every 0.1 s) makes it stop nginx by its pid file, once
-- the launch has written one (nginx writes it right after it forks; a second
-- at most, for a launch the signal cut short), and remove the prefix.
local function start_guard(owner_pid, prefix)
  local conf, pidfile = q(prefix .. "/nginx.conf"), q(prefix .. "/nginx.pid")
  return launch_sentinel('read -r word <&3; [ "$word" = dismiss ]', string.format("alive %d", owner_pid), "0.1",
    string.format([[
[ "$status" -eq 0 ] && exit 0
_i=0
while [ -e %s ] && [ ! -s %s ] && [ "$_i" -lt 100 ]; do sleep 0.01; _i=$((_i + 1)); done
stop_nginx "$(cat %s 2>/dev/null)" %s]], conf, pidfile, pidfile, q(prefix)))
end

local function dismiss_guard(guard)
  if not guard then return end
  pcall(guard.write, guard, "dismiss\n")
  pcall(io.close, guard)
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
  shell.run(shell.STOP_FN .. string.format("stop_nginx %d %s", self.pid, q(self.prefix)))
  -- Its pipe closed, the watchdog finds nginx gone and exits; close waits for it.
  if self.watchdog then pcall(io.close, self.watchdog) end
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

-- A new private directory ${TMPDIR:-/tmp}/maintenance-report-LABEL.XXXXXX
-- (0700). Its name is chosen here, before it exists, so that an interrupt at
-- any point leaves nothing the caller could not remove.
local function new_prefix(label, on_name)
  local tmp = os.getenv("TMPDIR")
  if not tmp or tmp == "" then tmp = "/tmp" end
  local chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
  for _ = 1, 20 do
    local name = {}
    for i = 1, 8 do
      local k = shell.random_int(1, #chars)
      name[i] = chars:sub(k, k)
    end
    local prefix = tmp .. "/maintenance-report-" .. label .. "." .. table.concat(name)
    on_name(prefix)
    local out, rc = shell.run("mkdir -m 700 " .. q(prefix))
    if rc == 0 then
      out, rc = shell.run("mkdir -m 700 " .. q(prefix .. "/tmp"))
      if rc ~= 0 then return nil, "cannot create " .. prefix .. "/tmp: " .. out end
      return prefix
    end
    on_name(nil) -- not ours: another's with the same name, or none
    if not out:find("exists", 1, true) then return nil, "cannot create " .. prefix .. ": " .. out end
  end
  return nil, "cannot create a private directory in " .. tmp
end

-- nginx.start's work; `started` learns the prefix and the pid as they appear.
local function start_in(opts, started)
  local label = opts.label or "nginx"
  assert(label:match("^[%w%-]+$"), "nginx.start: label must be letters, digits and '-'")
  local owner = opts.watchdog ~= false and tonumber((shell.capture("echo $PPID"))) or nil
  local prefix, err = new_prefix(label, function(p) started.prefix = p end)
  if not prefix then return nil, err end
  if owner then started.guard = start_guard(owner, prefix) end
  local ctx = {
    prefix = prefix,
    modules_dir = nginx.find_modules(opts.modules_dir),
    -- As root, workers would switch to "nobody", who may not read the checkout.
    run_as_root = shell.capture("id -u") == "0",
  }
  local ok, setup_err = pcall(function()
    for name, content in pairs(opts.files or {}) do write_file(prefix .. "/" .. name, content) end
  end)
  if not ok then return nil, tostring(setup_err) end

  local binary = nginx.find_binary(opts.binary)
  local fixed = opts.port and opts.port > 0
  -- Known taken: say so now rather than after nginx's 2.5 s of bind retries.
  if fixed and port_listening(opts.port) then
    return nil, ("port %d on 127.0.0.1 is already in use; choose another (--port 0 picks a free one)")
      :format(opts.port), "port_in_use"
  end
  local pid, out
  for _ = 1, (fixed and 1 or 25) do
    ctx.port = fixed and opts.port or free_port()
    ctx.tls_port = opts.tls and free_port(ctx.port) or nil
    local rendered, conf = pcall(function()
      return opts.render and opts.render(ctx) or render_http(opts, ctx)
    end)
    if rendered then
      pid, out = launch(binary, prefix, conf, opts.env)
    elseif tostring(conf):find("interrupted!", 1, true) then
      error(conf, 0) -- a Ctrl-C, not a bad config: nginx.start cleans up and passes it on
    else
      out = tostring(conf)
    end
    started.pid = pid
    -- nginx cannot report an ephemeral port: pick a random one and retry when it is taken.
    if pid or not tostring(out):find("Address already in use", 1, true) then break end
  end
  if not pid then
    local in_use = tostring(out):find("Address already in use", 1, true) ~= nil
    return nil, "nginx did not start: " .. tostring(out), in_use and "port_in_use" or "nginx"
  end
  local server = setmetatable({ pid = pid, port = ctx.port, tls_port = ctx.tls_port, prefix = prefix,
    conf = prefix .. "/nginx.conf", stopped = false }, Server)
  if owner then server.watchdog = start_watchdog(owner, pid, prefix) end
  dismiss_guard(started.guard)
  started.guard = nil
  attach_finalizer(server)
  return server
end

--- Starts nginx on 127.0.0.1. The config comes from one of:
---   opts.http: the http{} body, with ${PORT} and ${PREFIX} substituted (plus
---     workers, main, lua_path, lua_cpath, log_level, worker_connections);
---   opts.render(ctx): the whole config, ctx = {prefix, port, tls_port,
---     modules_dir, run_as_root}.
--- Other options: port (nil/0: a free random one, retried when taken), tls (a
--- second port is chosen as ctx.tls_port), files ({name = content} written into
--- the prefix first, 0600), env ({NAME = value} for the nginx process; workers see
--- only names the config lists with `env`), label (of the temp prefix, letters,
--- digits and '-'), watchdog (default true), binary, modules_dir. Returns a server
--- {pid, port, tls_port, prefix, stop()} or nil, err, reason ("port_in_use" when a
--- fixed port is taken, "nginx" for any other failure to start).
--- The prefix is a 0700 directory; an error raised meanwhile (an interrupt)
--- stops what was started and removes it before it propagates.
function nginx.start(opts)
  assert(type(opts) == "table" and (type(opts.http) == "string" or type(opts.render) == "function"),
    "nginx.start: opts.http or opts.render is required")
  local started = {}
  local ok, server, err, reason = pcall(start_in, opts, started)
  if ok and server then return server end
  if started.pid then
    shell.run(shell.STOP_FN .. string.format("stop_nginx %d %s", started.pid, q(started.prefix)))
  else
    remove_prefix(started.prefix)
  end
  dismiss_guard(started.guard)
  if not ok then error(server, 0) end
  return nil, err, reason
end

return nginx
