-- LuaRocks installs as README "Installing" gives them, into fresh trees:
-- `maintenance-report` from the tree's bin/ on PATH runs for a Lua 5.4 and
-- for a LuaJIT install, a second install into the same tree keeps a working
-- CLI, and a core that cannot be loaded is explained, not called a bug.
local lib = require "maintenance_report_sandbox.shell"

local q = lib.quote

local ROOT = (lib.capture("pwd"))

local INSTALLS = {
  { name = "Lua 5.4", args = "--lua-version 5.4", interpreter = "Lua 5.4" },
  { name = "LuaJIT", args = "--lua-version 5.1", vars = " LUA_INCDIR=/usr/include/luajit-2.1", interpreter = "LuaJIT" },
}

local function install(tree, how)
  local _, rc = lib.run(("cd %s && luarocks %s make --deps-mode=none --tree %s maintenance-report-scm-1.rockspec%s "
    .. ">>%s/build.log 2>&1"):format(q(ROOT), how.args, q(tree), how.vars or "", q(tree)))
  -- luarocks builds in the checkout: its objects must not shadow build/ (./?.so is on package.cpath).
  lib.run(("rm -f %s/maintenance_report/core.so %s/src/*.o; rmdir %s/maintenance_report"):format(
    q(ROOT), q(ROOT), q(ROOT)))
  assert(rc == 0, "luarocks make failed; see " .. tree .. "/build.log")
end

-- Runs `maintenance-report ARGS` as a user whose PATH has the tree's bin/ first
-- and nothing from this checkout on the Lua paths.
local function run_installed(tree, args, env)
  return lib.run(("cd %s && env -u LUA_PATH -u LUA_CPATH -u LUA_PATH_5_4 -u LUA_CPATH_5_4 PATH=%s:/usr/bin:/bin "
    .. "HOME=%s %s maintenance-report %s"):format(q(tree), q(tree .. "/bin"), q(tree), env or "", args))
end

local trees = {}
local function fresh_tree()
  local tree = assert(lib.capture('mktemp -d "${TMPDIR:-/tmp}/mr-install-spec.XXXXXX"'))
  trees[#trees + 1] = tree
  return tree
end

describe("a LuaRocks install", function()
  local sb
  lazy_setup(function()
    sb = assert(require("maintenance_report_sandbox").start{ pending_polls = 0 })
  end)
  lazy_teardown(function()
    if sb then sb:stop() end
    for _, tree in ipairs(trees) do lib.run("rm -rf " .. q(tree)) end
  end)

  for _, how in ipairs(INSTALLS) do
    it("puts a maintenance-report on PATH that runs, for " .. how.name, function()
      local tree = fresh_tree()
      install(tree, how)
      local out, rc = run_installed(tree, "--version")
      assert.are.equal(0, rc, out)
      assert.matches("^maintenance%-report " .. require("maintenance_report")._VERSION:gsub("%.", "%%.")
        .. " %(" .. how.interpreter, out)
      -- A command that needs the C core (HMAC) and the Lua modules of the tree.
      -- The whole query: the tree's modules, its core (HMAC, libcurl) and Debian's cjson.
      local vin = require("maintenance_report_sandbox").scenario_vin("normal", how.name == "LuaJIT" and 901 or 902)
      out, rc = run_installed(tree, ("query --vin %s --format json --ledger %s"):format(vin, q(tree .. "/ledger")),
        ("MAINTENANCE_REPORT_ENDPOINT=%s MAINTENANCE_REPORT_SECRET_ID=%s MAINTENANCE_REPORT_SECRET_KEY=%s"):format(
          q(sb.base_url), q(sb.secret_id), q(sb.secret_key)))
      assert.are.equal(0, rc, out)
      assert.matches('"status":%s*"ready"', out)
    end)
  end

  it("keeps a working CLI when LuaJIT is installed into the Lua 5.4 tree", function()
    local tree = fresh_tree()
    install(tree, INSTALLS[1])
    install(tree, INSTALLS[2])
    local out, rc = run_installed(tree, "--version")
    assert.are.equal(0, rc, out)
    assert.matches("%(Lua 5%.4", out)
  end)

  it("explains a core built for another interpreter (exit 9), with the searched file and a hint", function()
    local tree = fresh_tree()
    install(tree, INSTALLS[1])
    -- luajit cannot load a core built against Lua 5.4: what a wrong wrapper would do.
    local out, rc = lib.run(("cd / && env -u LUA_PATH -u LUA_CPATH luajit -e %s %s --version"):format(
      q("package.cpath = " .. ("%q"):format(tree .. "/lib/lua/5.4/?.so;") .. " .. package.cpath"),
      q(tree .. "/share/lua/5.4/maintenance_report/cli/main.lua")))
    assert.are.equal(9, rc, out)
    assert.matches("cannot load the module 'maintenance_report.core' with luajit", out, 1, true)
    assert.matches("undefined symbol", out, 1, true)
    assert.matches("hint: ", out, 1, true)
    assert.not_matches("internal error", out, 1, true)
  end)

  it("explains a module that is not on the path (exit 9), naming luarocks path", function()
    local tree = fresh_tree()
    install(tree, INSTALLS[1])
    lib.run("rm " .. q(tree .. "/lib/lua/5.4/maintenance_report/core.so"))
    local out, rc = run_installed(tree, "--version")
    assert.are.equal(9, rc, out)
    assert.matches("cannot find the Lua module 'maintenance_report.core'", out, 1, true)
    assert.matches("searched: .*" .. tree:gsub("%p", "%%%0") .. "/lib/lua/5%.4/maintenance_report/core%.so", out)
    assert.matches("luarocks --lua-version 5.4 path", out, 1, true)
  end)
end)

describe("bin/maintenance-report from a checkout", function()
  it("prints its version", function()
    local out, rc = lib.run("lua5.4 " .. q(ROOT .. "/bin/maintenance-report") .. " --version")
    assert.are.equal(0, rc, out)
    assert.matches("^maintenance%-report %d+%.%d+%.%d+ %(Lua 5%.4, libcurl %d", out)
  end)
end)
