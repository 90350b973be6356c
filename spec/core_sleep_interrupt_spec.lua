-- core.sleep ends on a Ctrl-C even when the host never called
-- core.catch_signals: the interpreter's own SIGINT handler (lua.c, luajit.c)
-- sets a hook to raise "interrupted!", and the sleep must not outlast it.
local shell = require "helpers.shell"

local interpreter = os.getenv("MR_SPEC_LUA") or (rawget(_G, "jit") and "luajit" or "lua5.4")

local CHILD = [[
local core = require "maintenance_report.core"
local started = core.monotime()
local ok, err = pcall(function()
  io.write("waiting\n") io.flush()
  core.sleep(30)
end)
io.write(ok and "finished" or tostring(err), " after ", string.format("%.1f", core.monotime() - started), "\n")
]]

describe("core.sleep in a plain interpreter", function()
  local dir
  lazy_setup(function() dir = shell.run("mktemp -d") end)
  lazy_teardown(function() shell.run("rm -rf " .. shell.quote(dir)) end)

  it("ends a 30 s sleep at once on SIGINT (Ctrl-C), without catch_signals", function()
    local script = dir .. "/child.lua"
    shell.write_file(script, CHILD)
    local pid_file = dir .. "/pid"
    local p = assert(io.popen(("exec sh -c 'echo $$ > %s; exec %s %s'"):format(pid_file, interpreter,
      shell.quote(script))))
    assert.are.equal("waiting", p:read("*l"))
    local pid = assert(tonumber(shell.read_file(pid_file)))
    os.execute("kill -INT " .. pid)
    local out = p:read("*a")
    p:close()
    local seconds = tonumber(out:match("interrupted! after ([%d.]+)"))
    assert.truthy(seconds, out)
    assert.is_true(seconds < 5, out)
  end)
end)
