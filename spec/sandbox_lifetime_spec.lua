-- The sandbox never outlives its owner: nginx stops within a second when the
-- Lua process that started it dies by any signal (kill -9, SIGTERM to its
-- process group as timeout(1) sends it), the private prefix goes with it, an
-- interrupt during start leaves no prefix, and the secret key is neither in a
-- readable file nor in any process's argv.
local shell = require "helpers.shell"
local cli = require "helpers.cli_run"

local q = shell.quote
local interpreter = os.getenv("MR_SPEC_LUA") or (rawget(_G, "jit") and "luajit" or "lua5.4")
local ROOT = cli.ROOT

-- A host that starts a sandbox, says where it is, then sleeps (no catch_signals:
-- a plain script, as users write them).
local HOST = [[
local sandbox = require "maintenance_report_sandbox"
local core = require "maintenance_report.core"
local sb = assert(sandbox.start{ secret_key = "lifetime-secret-key" })
local f = assert(io.open(arg[1], "wb"))
f:write(core.getpid(), " ", sb.pid, " ", sb.prefix, "\n")
f:close()
core.sleep(30)
]]

local function mode(path)
  return shell.run("stat -c %a " .. q(path))
end

describe("sandbox lifetime", function()
  local dir, env
  lazy_setup(function()
    dir = shell.run("mktemp -d")
    shell.write_file(dir .. "/host.lua", HOST)
    env = ("LUA_PATH=%s LUA_CPATH=%s"):format(
      q(ROOT .. "/lua/?.lua;" .. ROOT .. "/lua/?/init.lua;;"),
      q(ROOT .. "/build/" .. (interpreter == "luajit" and "luajit" or "lua5.4") .. "/?.so;;"))
  end)
  lazy_teardown(function() shell.run("rm -rf " .. q(dir)) end)

  local started = {}
  after_each(function()
    -- Whatever a failed case left: stop it by pid.
    for _, s in ipairs(started) do
      os.execute(("kill -KILL %d 2>/dev/null; kill -TERM %d 2>/dev/null; rm -rf %s"):format(s.owner, s.nginx,
        q(s.prefix)))
    end
    started = {}
  end)

  -- Starts `command` (which runs the host with info file `info`) in the background; returns
  -- {owner=, nginx=, prefix=} once the host has written it.
  local function start_host(command, info)
    os.execute(command .. " >/dev/null 2>&1 </dev/null &")
    assert(cli.wait_until(function() return (shell.read_file(info) or ""):find("\n") end, 20), "host did not start")
    local owner, nginx, prefix = shell.read_file(info):match("^(%d+) (%d+) (%S+)")
    local s = { owner = tonumber(owner), nginx = tonumber(nginx), prefix = prefix }
    started[#started + 1] = s
    assert.is_true(cli.alive(s.nginx))
    return s
  end

  -- Seconds from t0 (default now) until nginx is gone (at most `limit` + a little), polling.
  local function seconds_until_gone(pid, limit, t0)
    local core = require "maintenance_report.core"
    t0 = t0 or core.monotime()
    while cli.alive(pid) and core.monotime() - t0 < limit + 1 do os.execute("sleep 0.01") end
    return core.monotime() - t0
  end

  local function gone_with_prefix(s)
    assert.is_false(cli.alive(s.nginx), "nginx still runs")
    assert.is_true(cli.wait_until(function() return not io.open(s.prefix .. "/nginx.conf") end, 5),
      "prefix kept: " .. s.prefix)
  end

  it("stops nginx within 1 s of a kill -9 of its owner", function()
    local info = dir .. "/kill9"
    local s = start_host(("%s %s %s %s"):format(env, interpreter, q(dir .. "/host.lua"), q(info)), info)
    local t0 = require("maintenance_report.core").monotime()
    os.execute("kill -KILL " .. s.owner)
    local seconds = seconds_until_gone(s.nginx, 1, t0)
    io.write(("\n# nginx gone %.3f s after a kill -9 of its owner\n"):format(seconds))
    assert.is_true(seconds < 1, ("nginx outlived its owner by %.2f s"):format(seconds))
    gone_with_prefix(s)
  end)

  it("stops nginx when timeout(1) sends SIGTERM to the host's process group", function()
    local info = dir .. "/timeout"
    -- The host's sandbox goes under a TMPDIR of its own, so that what is left can be found
    -- even when the signal came while the sandbox was still starting (a loaded machine).
    local tmp = dir .. "/timeout-tmp"
    shell.run("mkdir -p " .. q(tmp))
    -- timeout runs the host in a process group of its own and signals the whole group.
    os.execute(("%s TMPDIR=%s timeout 2 %s %s %s >/dev/null 2>&1 </dev/null; echo done > %s &"):format(env,
      q(tmp), interpreter, q(dir .. "/host.lua"), q(info), q(info .. ".done")))
    assert.is_true(cli.wait_until(function() return shell.read_file(info .. ".done") end, 20), "timeout hung")
    local written = (shell.read_file(info) or ""):match("^(%d+) (%d+) (%S+)")
    if written then
      local owner, nginx, prefix = shell.read_file(info):match("^(%d+) (%d+) (%S+)")
      local s = { owner = tonumber(owner), nginx = tonumber(nginx), prefix = prefix }
      started[#started + 1] = s
      local seconds = seconds_until_gone(s.nginx, 1)
      assert.is_true(seconds < 1, ("nginx outlived timeout(1) by %.2f s"):format(seconds))
      gone_with_prefix(s)
    else
      io.write("\n# timeout(1) fired while the sandbox was starting\n")
    end
    -- Either way: nothing under the host's TMPDIR, no process naming it, within a second.
    -- "[/]tmp/…": a pattern that does not match the command line of the shell running pgrep
    local pattern = "[" .. tmp:sub(1, 1) .. "]" .. tmp:sub(2)
    local function leftovers()
      return shell.run("ls -A " .. q(tmp)) .. shell.run("pgrep -f " .. q(pattern) .. " || true")
    end
    assert.is_true(cli.wait_until(function() return leftovers() == "" end, 2),
      "the sandbox outlived timeout(1): " .. leftovers())
  end)

  it("leaves nothing when the owner dies by SIGTERM in the middle of the start", function()
    -- The signal comes from inside the start, after the prefix exists and before nginx
    -- is launched: a plain script has no handler, so only a guard outside it can clean up.
    local tmp = dir .. "/mid-start-tmp"
    shell.run("mkdir -p " .. q(tmp))
    shell.write_file(dir .. "/dies.lua", [[
local nginx = require "maintenance_report_sandbox.nginx_runner"
nginx.start{ render = function() os.execute("kill -TERM $PPID; sleep 5") end }
]])
    os.execute(("%s TMPDIR=%s %s %s >/dev/null 2>&1 </dev/null; echo done > %s &"):format(env, q(tmp),
      interpreter, q(dir .. "/dies.lua"), q(dir .. "/dies.done")))
    assert.is_true(cli.wait_until(function() return shell.read_file(dir .. "/dies.done") end, 20), "the host hung")
    assert.is_true(cli.wait_until(function() return shell.run("ls -A " .. q(tmp)) == "" end, 2),
      "the prefix outlived its owner: " .. shell.run("ls -A " .. q(tmp)))
  end)

  it("stops nginx on SIGTERM to the host's process group", function()
    local info = dir .. "/group"
    local s = start_host(("%s setsid %s %s %s"):format(env, interpreter, q(dir .. "/host.lua"), q(info)), info)
    -- setsid made the host its group's leader; dash's kill takes no group, procps' does
    os.execute("/bin/kill -TERM -- -" .. s.owner)
    local seconds = seconds_until_gone(s.nginx, 1)
    assert.is_true(seconds < 1, ("nginx outlived its group by %.2f s"):format(seconds))
    gone_with_prefix(s)
  end)

  it("keeps the secret key in a 0600 file in a 0700 prefix", function()
    local sandbox = require "maintenance_report_sandbox"
    local sb = assert(sandbox.start{ secret_key = "perm-check-key" })
    local ok, err = pcall(function()
      assert.are.equal("700", mode(sb.prefix))
      assert.matches("perm%-check%-key", shell.read_file(sb.prefix .. "/settings.lua"))
      assert.are.equal("600", mode(sb.prefix .. "/settings.lua"))
      assert.are.equal("600", mode(sb.prefix .. "/nginx.conf"))
    end)
    sb:stop()
    assert(ok, err)
  end)

  it("removes the prefix when Ctrl-C lands while nginx.start tries a port", function()
    local tmp = dir .. "/interrupt-tmp"
    shell.run("mkdir " .. q(tmp))
    -- A stand-in nginx that reports a taken port after sending the host SIGINT, as a Ctrl-C
    -- during nginx's bind retries does: the interrupt lands while start waits for it.
    local fake = dir .. "/fake-nginx"
    shell.write_file(fake, "#!/bin/sh\nkill -INT \"$HOST_PID\"\n"
      .. "echo 'bind() to 127.0.0.1 failed (98: Address already in use)'\nexit 1\n")
    shell.run("chmod +x " .. q(fake))
    shell.write_file(dir .. "/interrupt.lua", ([[
local nginx = require "maintenance_report_sandbox.nginx_runner"
local pid = require("maintenance_report.core").getpid()
local ok, err = pcall(nginx.start, { http = "", binary = %q, env = { HOST_PID = tostring(pid) }, watchdog = false })
io.write(ok and "returned" or tostring(err), "\n")
]]):format(fake))
    local out = shell.run(("TMPDIR=%s %s %s %s 2>&1"):format(q(tmp), env, interpreter, q(dir .. "/interrupt.lua")))
    assert.matches("interrupted!", out)
    assert.are.equal("", shell.run("ls -A " .. q(tmp)))
  end)
end)

describe("maintenance-report sandbox in the foreground", function()
  lazy_teardown(cli.cleanup)

  it("keeps the secret out of argv and stops nginx within 1 s of a kill -9", function()
    local p = cli.spawn({ "sandbox", "--port", "0", "--secret-key", "argv-check-key" }, {})
    local ready = cli.wait_until(function() return (cli.read(p.dir .. "/out") or ""):find("sandbox ready") end, 20)
    local err = cli.read(p.dir .. "/err") or ""
    local nginx_pid, prefix = err:match("nginx pid (%d+), prefix (%S+);")
    if not ready or not nginx_pid then
      os.execute("kill -KILL " .. p.pid)
      error("sandbox did not start: " .. err)
    end
    nginx_pid = tonumber(nginx_pid)
    -- The CLI has become the foreground sh (same pid): its argv, its children's and nginx's lack the key.
    local pids = { tostring(p.pid), tostring(nginx_pid) }
    for child in shell.run("ps -o pid= --ppid " .. p.pid .. " || true"):gmatch("%d+") do pids[#pids + 1] = child end
    local leaked = shell.run(("cd /proc && grep -l 'argv-check-[k]ey' %s/cmdline 2>/dev/null || true"):format(
      table.concat(pids, "/cmdline ")))
    os.execute("kill -KILL " .. p.pid)
    local core = require "maintenance_report.core"
    local t0 = core.monotime()
    while cli.alive(nginx_pid) and core.monotime() - t0 < 3 do os.execute("sleep 0.01") end
    local seconds = core.monotime() - t0
    if cli.alive(nginx_pid) then os.execute("kill -TERM " .. nginx_pid) end
    assert.are.equal("", leaked)
    assert.matches("secret_key=argv%-check%-key", cli.read(p.dir .. "/out"))
    assert.is_true(seconds < 1, ("nginx outlived the sandbox command by %.2f s"):format(seconds))
    assert.is_true(cli.wait_until(function() return not io.open(prefix .. "/nginx.conf") end, 5), "prefix kept")
  end)
end)
