-- Runs a private nginx (Debian's, with lua-nginx-module) from a temp prefix on
-- loopback: for the sandbox, the specs and the benchmarks. Never touches /etc/nginx.
-- Plain Lua 5.1/5.4 with shell utilities, since Lua 5.4 has no posix module here.
local nginx = {}

nginx.BINARY = os.getenv("MR_NGINX") or "nginx"
nginx.MODULE_DIR = "/usr/lib/nginx/modules"

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
nginx.quote = quote

-- Runs a shell command; returns ok, combined output.
local function run(command)
  local pipe = io.popen(command .. " 2>&1; echo \"::exit=$?\"")
  if not pipe then return false, "cannot run " .. command end
  local out = pipe:read("*a")
  pipe:close()
  local body, code = out:match("^(.-)\n?::exit=(%d+)\n?$")
  return tonumber(code) == 0, body or out
end
nginx.run = run

local function write_file(path, content)
  local f, err = io.open(path, "wb")
  if not f then return nil, err end
  f:write(content)
  f:close()
  return true
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end
nginx.read_file = read_file

local is_root
local function running_as_root()
  if is_root == nil then
    local ok, out = run("id -u")
    is_root = ok and out == "0"
  end
  return is_root
end

-- A port in the dynamic range, different for every process and call.
local seeded = false
local function random_port()
  if not seeded then
    local ok, out = run("od -An -N4 -tu4 /dev/urandom")
    math.randomseed((ok and tonumber(out) or os.time()) % 2147483647)
    seeded = true
  end
  return math.random(20000, 60999)
end

local function render(opts, prefix, port)
  local lua_path = (opts.lua_path or "") .. "/usr/share/lua/5.1/?.lua;/usr/share/lua/5.1/?/init.lua;;"
  local lines = {
    "load_module " .. nginx.MODULE_DIR .. "/ndk_http_module.so;",
    "load_module " .. nginx.MODULE_DIR .. "/ngx_http_lua_module.so;",
    running_as_root() and "user root;" or "",
    "worker_processes " .. (opts.workers or 1) .. ";",
    "pid " .. prefix .. "/nginx.pid;",
    "error_log " .. prefix .. "/error.log " .. (opts.log_level or "warn") .. ";",
    opts.main or "",
    "events { worker_connections " .. (opts.worker_connections or 4096) .. "; }",
    "http {",
    "  access_log off;",
    "  client_body_temp_path " .. prefix .. "/tmp/body;",
    "  proxy_temp_path " .. prefix .. "/tmp/proxy;",
    "  fastcgi_temp_path " .. prefix .. "/tmp/fastcgi;",
    "  uwsgi_temp_path " .. prefix .. "/tmp/uwsgi;",
    "  scgi_temp_path " .. prefix .. "/tmp/scgi;",
    "  lua_package_path " .. quote(lua_path) .. ";",
    opts.lua_cpath and ("  lua_package_cpath " .. quote(opts.lua_cpath .. ";;") .. ";") or "",
    (opts.http:gsub("%${PORT}", tostring(port)):gsub("%${PREFIX}", prefix)),
    "}",
  }
  return table.concat(lines, "\n") .. "\n"
end

local Server = {}
Server.__index = Server

--- Starts nginx. opts.http is the http{} body; ${PORT} and ${PREFIX} are substituted.
-- opts: http (required), port (default: a free random one), workers, main, lua_path,
-- lua_cpath, log_level. Returns a server {port=, prefix=, stop=} or nil, err.
function nginx.start(opts)
  assert(type(opts) == "table" and type(opts.http) == "string", "nginx.start: opts.http is required")
  local ok, prefix = run("mktemp -d " .. quote((os.getenv("TMPDIR") or "/tmp") .. "/mr-nginx.XXXXXXXX"))
  if not ok then return nil, "mktemp failed: " .. prefix end
  run("mkdir -p " .. quote(prefix .. "/tmp") .. " && chmod 755 " .. quote(prefix))
  local conf = prefix .. "/nginx.conf"
  local last_err
  for _ = 1, (opts.port and 1 or 25) do
    local port = opts.port or random_port()
    assert(write_file(conf, render(opts, prefix, port)))
    -- In daemon mode nginx binds its listeners before it detaches: on exit 0, the port accepts.
    local started, out = run(table.concat({ quote(nginx.BINARY), "-p", quote(prefix), "-c", quote(conf),
      "-e", quote(prefix .. "/error.log") }, " "))
    if started then
      return setmetatable({ port = port, prefix = prefix, conf = conf }, Server)
    end
    last_err = out
    if not out:find("Address already in use", 1, true) then break end
  end
  run("rm -rf " .. quote(prefix))
  return nil, "nginx did not start: " .. tostring(last_err)
end

function Server:pid()
  -- The daemon writes its pid just after detaching; wait briefly for it.
  local ok, out = run("for i in $(seq 1 200); do [ -s " .. quote(self.prefix .. "/nginx.pid")
    .. " ] && break; sleep 0.01; done; cat " .. quote(self.prefix .. "/nginx.pid"))
  return ok and tonumber(out) or nil
end

function Server:error_log()
  return read_file(self.prefix .. "/error.log") or ""
end

--- Stops nginx, waits for its master to exit and removes the prefix. Idempotent.
function Server:stop()
  if self.stopped then return true end
  self.stopped = true
  local pid = self:pid()
  if pid then
    run("kill -TERM " .. pid .. " && timeout 10 tail --pid=" .. pid .. " -s 0.02 -f /dev/null")
  end
  run("rm -rf " .. quote(self.prefix))
  return true
end

return nginx
