-- Runs bin/maintenance-report as a lua5.4 subprocess, the way users do, and
-- captures stdout, stderr and the exit code. The MAINTENANCE_REPORT_*
-- variables of the caller's environment never leak in: each run gets exactly
-- the ones it asks for. Each run also gets its own empty XDG_STATE_HOME, so
-- that the default order ledger never carries over from one run (or from the
-- user's own) to another: a spec that wants runs to share one passes
-- MAINTENANCE_REPORT_LEDGER, --ledger or XDG_STATE_HOME.
local shell = require "helpers.shell"

local cli = {}

local function capture(command)
  local p = assert(io.popen(command))
  local out = p:read("*a")
  p:close()
  return out
end

cli.ROOT = capture("pwd"):gsub("%s+$", "")
cli.BIN = cli.ROOT .. "/bin/maintenance-report"

cli.quote = shell.quote
local q = cli.quote

local ENV_NAMES = {
  "MAINTENANCE_REPORT_SECRET_ID", "MAINTENANCE_REPORT_SECRET_KEY", "MAINTENANCE_REPORT_ENDPOINT",
  "MAINTENANCE_REPORT_SOURCE", "MAINTENANCE_REPORT_CAFILE", "MAINTENANCE_REPORT_DEBUG", "NO_COLOR",
  "MAINTENANCE_REPORT_LEDGER", "XDG_STATE_HOME", "MAINTENANCE_REPORT_REDIS_PASSWORD", "MAINTENANCE_REPORT_BUDGET",
}

local read = shell.read_file
cli.read = read
cli.write = shell.write_file

--- A fresh temporary directory (removed by cli.cleanup()).
local dirs = {}
function cli.tmpdir()
  local dir = capture("mktemp -d \"${TMPDIR:-/tmp}/mr-cli-spec.XXXXXX\""):gsub("%s+$", "")
  dirs[#dirs + 1] = dir
  return dir
end

function cli.cleanup()
  for _, dir in ipairs(dirs) do os.execute("rm -rf " .. q(dir)) end
  dirs = {}
end

local function env_prefix(env)
  if not (env and env.XDG_STATE_HOME) then
    local with_state = { XDG_STATE_HOME = cli.tmpdir() .. "/state" }
    for k, v in pairs(env or {}) do with_state[k] = v end
    env = with_state
  end
  local words = { "env" }
  for _, name in ipairs(ENV_NAMES) do words[#words + 1] = "-u " .. name end
  local names = {}
  for k in pairs(env or {}) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do words[#words + 1] = k .. "=" .. q(env[k]) end
  return table.concat(words, " ")
end
cli.env_prefix = env_prefix

--- The shell command that runs the CLI (bin, default cli.BIN) with args (a list of words)
--- and env (a table).
function cli.command(args, env, bin)
  local words = { env_prefix(env), "lua5.4", q(bin or cli.BIN) }
  for _, a in ipairs(args) do words[#words + 1] = q(a) end
  return table.concat(words, " ")
end

--- Runs the CLI; returns {out=, err=, code=}. opts.stdin: a file to read stdin from;
--- opts.bin: another copy of bin/maintenance-report.
function cli.run(args, env, opts)
  opts = opts or {}
  local dir = cli.tmpdir()
  local cmd = cli.command(args, env, opts.bin) .. " >" .. q(dir .. "/out") .. " 2>" .. q(dir .. "/err")
    .. " <" .. q(opts.stdin or "/dev/null") .. "; echo $?"
  local code = tonumber((capture(cmd):match("(%d+)%s*$")))
  return { out = read(dir .. "/out") or "", err = read(dir .. "/err") or "", code = code }
end

--- Starts the CLI in the background; returns { pid=, dir= } (its out, err and code files are in dir).
--- `env` execs the interpreter, so pid is lua5.4's own: signals go straight to it.
function cli.spawn(args, env)
  local dir = cli.tmpdir()
  local script = "(" .. cli.command(args, env) .. " >" .. q(dir .. "/out") .. " 2>" .. q(dir .. "/err")
    .. " </dev/null & echo $! >" .. q(dir .. "/pid") .. "; wait $!; echo $? >" .. q(dir .. "/code.tmp")
    .. "; mv " .. q(dir .. "/code.tmp") .. " " .. q(dir .. "/code") .. ") >/dev/null 2>&1 &"
  os.execute("sh -c " .. q(script))
  assert(cli.wait_until(function() return (read(dir .. "/pid") or ""):match("%d+") end, 10), "no pid")
  return { pid = tonumber(read(dir .. "/pid"):match("%d+")), dir = dir }
end

--- Waits (bounded) for a spawned CLI to exit; returns {out=, err=, code=}.
function cli.finish(p, seconds)
  assert(cli.wait_until(function() return read(p.dir .. "/code") end, seconds or 20), "the CLI did not exit")
  return { code = tonumber(read(p.dir .. "/code"):match("%d+")), out = read(p.dir .. "/out") or "",
    err = read(p.dir .. "/err") or "" }
end

--- env with extra's entries added (a new table; extra may be nil).
function cli.merge(env, extra)
  local out = {}
  for k, v in pairs(env or {}) do out[k] = v end
  for k, v in pairs(extra or {}) do out[k] = v end
  return out
end

--- The environment for a sandbox: endpoint and credentials.
function cli.sandbox_env(sb, extra)
  local env = {
    MAINTENANCE_REPORT_ENDPOINT = sb.base_url,
    MAINTENANCE_REPORT_SECRET_ID = sb.secret_id,
    MAINTENANCE_REPORT_SECRET_KEY = sb.secret_key,
  }
  for k, v in pairs(extra or {}) do env[k] = v or nil end
  return env
end

--- The lazy_setup and lazy_teardown functions of a spec file with a sandbox of its own
--- (busted's hooks are not visible from a helper module, so the file passes them on):
--- sandbox.start(opts) before the first test, on_start(sb, env) with it and its CLI
--- environment; after the last, the sandbox and every cli.tmpdir() go.
function cli.sandbox_hooks(opts, on_start)
  local sb
  local function start()
    sb = assert(require("maintenance_report_sandbox").start(opts))
    on_start(sb, cli.sandbox_env(sb))
  end
  local function stop()
    if sb then sb:stop() end
    cli.cleanup()
  end
  return start, stop
end

function cli.json(text)
  return require("cjson").decode(text)
end

--- Decoded JSON lines of a file or string (blank lines skipped).
function cli.json_lines(text)
  local out = {}
  for line in (text or ""):gmatch("[^\n]+") do out[#out + 1] = cli.json(line) end
  return out
end

--- Whether a program is on PATH (os.execute differs between Lua 5.1 and 5.2+).
function cli.has_command(name)
  local a, _, c = os.execute("command -v " .. q(name) .. " >/dev/null 2>&1")
  if type(a) == "number" then return a == 0 end
  return a == true and (c == nil or c == 0)
end

--- Whether a process is alive (a zombie nobody reaped yet counts as dead).
function cli.alive(pid)
  local f = io.open("/proc/" .. tonumber(pid) .. "/stat", "rb")
  if not f then return false end
  local stat = f:read("*a") or ""
  f:close()
  return not stat:find("^%d+ %(.*%) Z")
end

--- Polls cond() until it is true or `seconds` pass (a bounded wait on an
--- observable condition, not a sleep used as synchronisation).
function cli.wait_until(cond, seconds)
  local deadline = os.time() + seconds
  while not cond() do
    if os.time() > deadline then return false end
    os.execute("sleep 0.02")
  end
  return true
end

return cli
