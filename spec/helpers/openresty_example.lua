-- The OpenResty example (examples/openresty) as a user runs it, for specs:
-- its http-level include listening on a runner's port, the `env` lines of its
-- nginx.conf, and a node started with the sandbox's credentials in its environment.
local nginx = require "maintenance_report_sandbox.nginx_runner"
local shell = require "helpers.shell"

local example = {}

local ROOT = shell.run("pwd")
example.ROOT = ROOT
example.DIR = ROOT .. "/examples/openresty"
example.LUA_PATH = ("%s/lua/?.lua;%s/lua/?/init.lua;%s/?.lua;"):format(ROOT, ROOT, example.DIR)
example.LUA_CPATH = ROOT .. "/build/luajit/?.so"

--- The example's include, on ${PORT}. settings (optional): a Lua table constructor,
--- configured after the shipped settings.
function example.http(settings)
  local conf = assert(shell.read_file(example.DIR .. "/maintenance_report.conf"))
  local rendered, n = conf:gsub("listen 127%.0%.0%.1:8080;", "listen 127.0.0.1:${PORT};")
  assert(n == 1, "the example no longer listens on 127.0.0.1:8080")
  if settings then
    rendered, n = rendered:gsub('(require%("vehicle_report"%)%.configure%b{})', function(shipped)
      return shipped .. '\n  require("vehicle_report").configure' .. settings
    end)
    assert(n == 1, "the example no longer configures vehicle_report in init_by_lua_block")
  end
  return rendered
end

--- The `env` directives of the example's nginx.conf.
function example.env_lines()
  local lines = {}
  for line in assert(shell.read_file(example.DIR .. "/nginx.conf")):gmatch("[^\n]+") do
    if line:match("^env ") then lines[#lines + 1] = line end
  end
  return table.concat(lines, "\n")
end

--- A node of the example in front of sandbox sb: nginx.start's server.
--- opts: settings, extra_http, workers (2), env (more environment variables).
function example.start(sb, opts)
  opts = opts or {}
  local env = { MAINTENANCE_REPORT_SECRET_ID = sb.secret_id, MAINTENANCE_REPORT_SECRET_KEY = sb.secret_key,
    MAINTENANCE_REPORT_ENDPOINT = sb.base_url }
  for k, v in pairs(opts.env or {}) do env[k] = v end
  return nginx.start{
    http = example.http(opts.settings) .. (opts.extra_http or ""), workers = opts.workers or 2,
    main = example.env_lines(), lua_path = example.LUA_PATH, lua_cpath = example.LUA_CPATH, env = env,
  }
end

return example
