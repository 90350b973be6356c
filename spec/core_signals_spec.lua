-- core.catch_signals(): SIGTERM and SIGINT become an "interrupted!" Lua error,
-- and the core's long waits end at once instead of running out. Each case runs
-- in a child interpreter, which the spec signals once it says it is waiting.
local shell = require "helpers.shell"

local interpreter = os.getenv("MR_SPEC_LUA") or (rawget(_G, "jit") and "luajit" or "lua5.4")

local CHILD = [[
local core = require "maintenance_report.core"
local what, port = ...
core.catch_signals()
local started = core.monotime()
local ok, err = pcall(function()
  io.write("waiting\n") io.flush()
  if what == "sleep" then
    core.sleep(30)
  else -- a blocking request to a listener that never answers
    core.session{ timeout = 30 }:request{ url = "http://127.0.0.1:" .. port .. "/" }
  end
  io.write("not interrupted\n")
end)
io.write(ok and "finished" or tostring(err), " after ", string.format("%.1f", core.monotime() - started),
  " signal ", tostring(core.signal_caught()), "\n")
]]

describe("core.catch_signals", function()
  local dir
  lazy_setup(function() dir = shell.run("mktemp -d") end)
  lazy_teardown(function() shell.run("rm -rf " .. shell.quote(dir)) end)

  local function run(signal, what, extra)
    local script = dir .. "/child.lua"
    shell.write_file(script, CHILD)
    local pid_file = dir .. "/pid"
    local p = assert(io.popen(("exec sh -c 'echo $$ > %s; exec %s %s %s %s'"):format(pid_file, interpreter,
      shell.quote(script), what, extra or "")))
    assert.are.equal("waiting", p:read("*l"))
    local pid = assert(tonumber(shell.read_file(pid_file)))
    os.execute("kill -" .. signal .. " " .. pid)
    local out = p:read("*a")
    p:close()
    return out
  end

  for _, case in ipairs{ { "TERM", 15 }, { "INT", 2 } } do
    it("turns SIG" .. case[1] .. " into an interrupted! error and ends a 30 s sleep at once", function()
      local out = run(case[1], "sleep")
      local seconds = tonumber(out:match("interrupted! after ([%d.]+)"))
      assert.truthy(seconds, out)
      assert.is_true(seconds < 5, out)
      assert.truthy(out:find("signal " .. case[2], 1, true), out)
    end)
  end

  it("ends a blocking request on SIGTERM (an ordinary failure, then the error)", function()
    -- a listener that accepts and never answers: the request would wait its 30 s
    local listener = assert(io.popen("exec python3 -c 'import os,socket,sys,time\n"
      .. "s=socket.socket(); s.bind((\"127.0.0.1\",0)); s.listen(8); s.settimeout(20)\n"
      .. "print(os.getpid(), s.getsockname()[1]); sys.stdout.flush()\n"
      .. "c=s.accept(); time.sleep(20)'"))  -- ends by itself too, even if this spec dies
    local listener_pid, port = listener:read("*l"):match("^(%d+) (%d+)$")
    assert.truthy(port)
    local ran, out = pcall(run, "TERM", "request", port)
    os.execute("kill -9 " .. listener_pid .. " 2>/dev/null") -- whatever happened: it is ours
    listener:close()
    assert(ran, out)
    local seconds = tonumber(out:match("interrupted! after ([%d.]+)"))
    assert.truthy(seconds, out)
    assert.is_true(seconds < 5, out)
    assert.is_nil(out:find("not interrupted", 1, true), out)
  end)
end)
