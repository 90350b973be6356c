-- The CLI installed without the maintenance-report-sandbox rock: a copy of
-- bin/ and lua/maintenance_report/ only (no lua/maintenance_report_sandbox on
-- any path). Every subcommand but `sandbox` works; `sandbox` says which rock
-- to install and exits 2.
local cli = require "helpers.cli_run"

describe("the CLI without the sandbox rock", function()
  local root, env
  lazy_setup(function()
    root = cli.tmpdir()
    local q = cli.quote
    assert(os.execute(table.concat({
      "mkdir -p " .. q(root .. "/bin") .. " " .. q(root .. "/lua"),
      "cp " .. q(cli.BIN) .. " " .. q(root .. "/bin/"),
      "cp -R " .. q(cli.ROOT .. "/lua/maintenance_report") .. " " .. q(root .. "/lua/"),
      "ln -s " .. q(cli.ROOT .. "/build") .. " " .. q(root .. "/build"),
    }, " && ")))
    env = { LUA_PATH = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;;" }
  end)
  lazy_teardown(function() cli.cleanup() end)

  local function run(args, extra)
    return cli.run(args, cli.merge(env, extra), { bin = root .. "/bin/maintenance-report" })
  end

  it("really has no sandbox module on its paths", function()
    local r = run({ "--help" })
    assert.are.equal(0, r.code, r.err)
    local probe = io.popen(cli.env_prefix(env) .. " lua5.4 -e " .. cli.quote(
      "print(package.searchpath('maintenance_report_sandbox.cli', package.path))") .. " 2>&1")
    local found = probe:read("*a")
    probe:close()
    assert.truthy(found:find("^nil"), found)
  end)

  it("`sandbox` (with or without options) exits 2 and names the rock to install", function()
    for _, args in ipairs{ { "sandbox" }, { "sandbox", "--port", "8080", "--verbose" }, { "sandbox", "--help" } } do
      local r = run(args)
      assert.are.equal(2, r.code, table.concat(args, " ") .. ": " .. r.err)
      assert.truthy(r.err:find("maintenance-report-sandbox", 1, true), r.err)
      assert.truthy(r.err:find("luarocks install maintenance-report-sandbox", 1, true), r.err)
      assert.falsy(r.err:find("traceback", 1, true), r.err)
    end
  end)

  it("runs the other subcommands: --help, sign, batch --dry-run", function()
    local help = run({ "--help" })
    assert.truthy(help.out:find("\n%s+sandbox%s"), help.out)
    for _, name in ipairs{ "query", "order", "report", "batch", "sign" } do
      local r = run({ name, "--help" })
      assert.are.equal(0, r.code, name .. ": " .. r.err)
    end
    local keys = { MAINTENANCE_REPORT_SECRET_ID = "id", MAINTENANCE_REPORT_SECRET_KEY = "no-sandbox-spec-key" }
    local sign = run({ "sign", "--date", "Sun, 06 Nov 1994 08:49:37 GMT" }, keys)
    assert.are.equal(0, sign.code, sign.err)
    assert.truthy(sign.out:find("X-Date: Sun, 06 Nov 1994 08:49:37 GMT", 1, true), sign.out)
    local dir = cli.tmpdir()
    cli.write(dir .. "/in.csv", "WBAXW1104J0X16755\n")
    local batch = run({ "batch", dir .. "/in.csv", "--dry-run" }, keys)
    assert.are.equal(0, batch.code, batch.err)
    assert.truthy(batch.err:find("1 to order", 1, true), batch.err)
  end)

  it("still reports a broken sandbox module as an internal error, not as a missing rock", function()
    local broken = cli.tmpdir()
    os.execute("mkdir -p " .. cli.quote(broken .. "/maintenance_report_sandbox"))
    cli.write(broken .. "/maintenance_report_sandbox/cli.lua", 'error("broken sandbox module")\n')
    local r = run({ "sign", "--help" }, { LUA_PATH = env.LUA_PATH .. broken .. "/?.lua;" })
    assert.are.equal(1, r.code, r.err)
    assert.truthy(r.err:find("broken sandbox module", 1, true), r.err)
  end)
end)
