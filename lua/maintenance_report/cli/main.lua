-- The CLI's entry: the subcommand table, the one error handler and the exit.
-- bin/maintenance-report (a checkout) requires it after putting lua/ and
-- build/<abi>/ on the paths; the launcher a LuaRocks install puts on PATH
-- (bin/maintenance-report.sh) runs this file as a script, and it then puts
-- its own tree on the paths (share/lua/<v>/ and lib/lua/<v>/).
local M = {}

-- Subcommand -> module with describe(command) and run(args) -> exit code.
-- The sandbox is another rock: without it, every other subcommand still works.
M.COMMANDS = {
  { "query", "maintenance_report.cli.query" },
  { "order", "maintenance_report.cli.order" },
  { "report", "maintenance_report.cli.report" },
  { "batch", "maintenance_report.cli.batch" },
  { "ledger", "maintenance_report.cli.ledger" },
  { "sign", "maintenance_report.cli.sign" },
  { "doctor", "maintenance_report.cli.doctor" },
  { "sandbox", "maintenance_report_sandbox.cli", optional_rock = "maintenance-report-sandbox" },
}

M.PROGRAM = "maintenance-report"

--- The interpreter's name as users type it: lua5.4 or luajit.
function M.interpreter()
  if rawget(_G, "jit") then return "luajit" end
  return "lua" .. _VERSION:match("%d+%.%d+")
end

--- Puts the module root `lua_dir` (holding maintenance_report/) and the C
--- module directory for this interpreter first on the paths.
function M.add_paths(lua_dir, so_dir)
  package.path = lua_dir .. "/?.lua;" .. lua_dir .. "/?/init.lua;" .. package.path
  if so_dir then package.cpath = so_dir .. "/?.so;" .. package.cpath end
end

--- The paths for a main.lua at `file` inside a LuaRocks tree (T/share/lua/<v>/maintenance_report/cli/):
--- lua_dir, so_dir; nil when the file is not laid out that way.
function M.tree_paths(file)
  local tree, version = file:match("^(.*)/share/lua/([%d.]+)/maintenance_report/cli/main%.lua$")
  if not tree then return nil end
  return tree .. "/share/lua/" .. version, tree .. "/lib/lua/" .. version
end

-- What a failed require says, when it is about loading rather than a bug in a module.
local function load_failure(message)
  local module = message:match("module '([^']+)' not found")
  if module then return "not_found", module end
  module = message:match("error loading module '([^']+)'")
  if module then return "unloadable", module end
  return nil
end

--- The lines to print for an error that is a module that cannot be found or loaded
--- (nil for any other error): what failed, the loader's reason, and what to do.
function M.load_problem(message)
  local what, module = load_failure(tostring(message))
  if not what then return nil end
  local interp = M.interpreter()
  local lines = {}
  if what == "not_found" then
    lines[1] = ("%s: cannot find the Lua module '%s' (interpreter %s)"):format(M.PROGRAM, module, interp)
  else
    local reason = tostring(message):match("error loading module '[^']+' from file '[^']+':%s*([^\n]*)") or ""
    lines[1] = ("%s: cannot load the module '%s' with %s: %s"):format(M.PROGRAM, module, interp, reason)
  end
  local searched = {}
  for place in tostring(message):gmatch("no file '([^']+)'") do searched[#searched + 1] = place end
  if #searched > 0 then
    lines[#lines + 1] = "searched: " .. table.concat(searched, ", ")
  end
  if tostring(message):find("undefined symbol", 1, true) then
    lines[#lines + 1] = "hint: this C module was built for another Lua: a LuaJIT build (luarocks --lua-version 5.1) "
      .. "runs only under luajit, a Lua 5.4 build only under lua5.4; run the `maintenance-report` that "
      .. "LuaRocks installed (it picks the interpreter), or the matching interpreter"
  else
    lines[#lines + 1] = "hint: installed with LuaRocks into a tree? run `eval \"$(luarocks --lua-version 5.4 path "
      .. "--tree TREE)\"` (5.1 for LuaJIT) or the `maintenance-report` in TREE/bin; from a checkout, run "
      .. "bin/maintenance-report after `make`"
  end
  return lines
end

-- Stands in for a subcommand whose rock is not installed: takes any arguments
-- and says which rock to install (exit 2: nothing was sent).
local function missing_rock(name, rock, exit)
  return {
    describe = function(cmd)
      cmd:summary("(not installed: needs the " .. rock .. " rock)")
      cmd:handle_options(false)
      cmd:argument("args", "Ignored."):args("*")
    end,
    run = function()
      io.stderr:write(("%s: the %s subcommand needs the %s rock, which is not installed; "
        .. "install it with: luarocks install %s\n"):format(M.PROGRAM, name, rock, rock))
      return exit.CODES.usage
    end,
  }
end

-- The module, or for an optional rock that is absent, missing_rock's stand-in.
-- Any other failure to load is raised as it is.
local function load_command(c, exit)
  if not c.optional_rock then return require(c[2]) end
  local ok, module = pcall(require, c[2])
  if ok then return module end
  local top = c[2]:match("^[^.]+")
  if tostring(module):find("module '" .. top, 1, true) and tostring(module):find("not found", 1, true) then
    return missing_rock(c[1], c.optional_rock, exit)
  end
  error(module, 0)
end

--- "maintenance-report 0.1.0 (Lua 5.4, libcurl 7.88.1)".
function M.version_line()
  local mr = require "maintenance_report"
  local core = require "maintenance_report.core"
  local lua = rawget(_G, "jit") and rawget(_G, "jit").version or _VERSION
  return ("%s %s (%s, libcurl %s)"):format(M.PROGRAM, mr._VERSION, lua, tostring(core.curl_version))
end

local function run(exit)
  -- After this, SIGTERM raises the same "interrupted!" error as Ctrl-C (and the
  -- core's waits return early), so that every command prints the order ids it
  -- knows before it exits, whichever signal stops it.
  local core = require "maintenance_report.core"
  if core.catch_signals then core.catch_signals() end
  -- The secret key leaves the environment before any child process starts.
  require("maintenance_report.cli.config").take_secret_from_environment()
  local argparse = require "argparse"
  local parser = argparse(M.PROGRAM, "Vehicle maintenance-record API client and tools.")
  parser:command_target("command")
  parser:require_command(true)
  parser:epilog(exit.HELP)
  parser:help_max_width(100)
  parser:flag("--version", "Print the version and exit."):action(function()
    io.stdout:write(M.version_line(), "\n")
    os.exit(exit.CODES.ok, true)
  end)
  -- Usage errors (from argparse itself too) exit 2 with the usage of the subcommand at fault.
  parser.error = function(p, msg)
    io.stderr:write(("%s\n\nError: %s\n"):format(p:get_usage(), msg))
    os.exit(exit.CODES.usage, true)
  end

  local modules = {}
  for _, c in ipairs(M.COMMANDS) do
    modules[c[1]] = load_command(c, exit)
    modules[c[1]].describe(parser:command(c[1]))
  end

  local args = parser:parse()
  return modules[args.command].run(args)
end

-- The fallback when even the exit-code module cannot be loaded.
local FALLBACK_EXIT = { CODES = { ok = 0, internal = 1, usage = 2, environment = 9, interrupted = 130 },
  is_interrupt = function(e) return type(e) ~= "table" and tostring(e):find("interrupted!", 1, true) ~= nil end,
  debug_enabled = function()
    local v = os.getenv("MAINTENANCE_REPORT_DEBUG")
    return v ~= nil and not ({ [""] = 1, ["0"] = 1, ["false"] = 1, ["no"] = 1, ["off"] = 1 })[v:lower()]
  end }

--- Runs the CLI with the global `arg` and exits the process.
function M.main()
  local has_exit, exit = pcall(require, "maintenance_report.cli.exit")
  if not has_exit then exit = FALLBACK_EXIT end
  local debug_on = exit.debug_enabled()
  local function on_error(err)
    if exit.is_interrupt(err) then return { interrupted = true } end
    local message = tostring(err)
    if debug_on then message = debug.traceback(message, 2) end
    return { message = message, raw = tostring(err) }
  end
  local ok, result = xpcall(function() return run(exit) end, on_error)
  if ok then os.exit(result or 0, true) end
  io.stdout:flush()
  if result.interrupted then
    io.stderr:write(M.PROGRAM, ": interrupted\n")
    os.exit(exit.CODES.interrupted, true)
  end
  local problem = M.load_problem(result.raw)
  if problem then
    io.stderr:write(table.concat(problem, "\n"), "\n")
    if debug_on then io.stderr:write(result.message, "\n") end
    os.exit(exit.CODES.environment, true)
  end
  local line = tostring(result.message)
  if not debug_on then line = line:gsub("[\r\n].*$", "") end
  -- Secrets are registered with the output module; if it never loaded, none was read.
  local loaded, output = pcall(require, "maintenance_report.cli.output")
  if loaded then line = output.scrub(line) end
  io.stderr:write(M.PROGRAM, ": internal error: ", line, "\n")
  os.exit(exit.CODES.internal, true)
end

-- Run as a script by the installed launcher: arg[0] is this file.
local script = arg and arg[0]
if script and debug.getinfo(1, "S").source == "@" .. script then
  local lua_dir, so_dir = M.tree_paths(script)
  if lua_dir then M.add_paths(lua_dir, so_dir) end
  M.main()
end

return M
