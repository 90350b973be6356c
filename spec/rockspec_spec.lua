-- The rockspec installs exactly what the checkout has.
local function read(path)
  return assert(require("helpers.shell").read_file(path))
end

local function load_rockspec(file)
  local env = {}
  local chunk
  file = file or "maintenance-report-scm-1.rockspec"
  if setfenv then
    chunk = assert(loadstring(read(file)))
    setfenv(chunk, env)
  else
    chunk = assert(load(read(file), "rockspec", "t", env))
  end
  chunk()
  return env
end

-- name=file for every Lua module a rockspec lists.
local function listed_modules(rockspec)
  local listed = {}
  for name, src in pairs(rockspec.build.modules) do
    if type(src) == "string" then listed[#listed + 1] = name .. "=" .. src end
  end
  table.sort(listed)
  return listed
end

local function lines(command)
  local out = {}
  local pipe = assert(io.popen(command))
  for line in pipe:lines() do out[#out + 1] = line end
  pipe:close()
  return out
end

describe("maintenance-report-scm-1.rockspec", function()
  local rockspec = load_rockspec()

  it("uses format 3.0 and the builtin build type, and needs curl, OpenSSL and lua-cjson", function()
    assert.are.equal("3.0", rockspec.rockspec_format)
    assert.are.equal("builtin", rockspec.build.type)
    assert.is_table(rockspec.external_dependencies.CURL)
    assert.is_table(rockspec.external_dependencies.OPENSSL)
    assert.truthy(table.concat(rockspec.dependencies, " "):find("lua-cjson", 1, true))
  end)

  local function present_under(dir)
    local present = {}
    for _, file in ipairs(lines("find lua/" .. dir .. " -name '*.lua'")) do
      local name = file:gsub("^lua/", ""):gsub("/init%.lua$", ""):gsub("%.lua$", ""):gsub("/", ".")
      present[#present + 1] = name .. "=" .. file
    end
    table.sort(present)
    return present
  end

  it("lists every Lua module under lua/maintenance_report/ and nothing else", function()
    assert.are.same(present_under("maintenance_report"), listed_modules(rockspec))
  end)

  it("leaves the sandbox and its nginx and shell tooling to the sandbox rock", function()
    local sandbox_rock = load_rockspec("maintenance-report-sandbox-scm-1.rockspec")
    assert.are.same(present_under("maintenance_report_sandbox"), listed_modules(sandbox_rock))
    assert.truthy(table.concat(sandbox_rock.dependencies, " "):find("maintenance-report", 1, true))
    for _, entry in ipairs(listed_modules(rockspec)) do
      assert.is_nil(entry:find("sandbox", 1, true), entry)
      assert.is_nil(entry:find("nginx", 1, true), entry)
      assert.is_nil(entry:find("shell", 1, true), entry)
    end
    -- Every directory under lua/ belongs to one of the two rocks.
    local dirs = lines("ls lua")
    assert.are.same({ "maintenance_report", "maintenance_report_sandbox" }, dirs)
  end)

  it("compiles every C file directly under src/, as the Makefile does", function()
    assert.truthy(read("Makefile"):find("\nSRC%s*=%s*%$%(sort %$%(wildcard src/%*%.c%)%)"))
    local from_tree = lines("find src -maxdepth 1 -name '*.c' | LC_ALL=C sort")
    local from_rock = {}
    for _, src in ipairs(rockspec.build.modules["maintenance_report.core"].sources) do
      from_rock[#from_rock + 1] = src
    end
    table.sort(from_rock)
    assert.are.same(from_tree, from_rock)
  end)

  it("installs the CLI", function()
    assert.are.equal("bin/maintenance-report.sh", rockspec.build.install.bin["maintenance-report"])
  end)
end)

describe("luarocks make --deps-mode=none", function()
  local jit_abi = rawget(_G, "jit") ~= nil

  it("builds and installs offline into a fresh tree, for this interpreter's ABI", function()
    local tree = assert(io.popen("mktemp -d")):read("*l")
    local version = jit_abi and "5.1" or "5.4"
    local incdir = jit_abi and " LUA_INCDIR=/usr/include/luajit-2.1" or ""
    local build = os.execute(("luarocks --lua-version %s make --deps-mode=none --tree %s%s "
      .. "maintenance-report-scm-1.rockspec >%s/build.log 2>&1"):format(version, tree, incdir, tree))
    assert.is_truthy(build == true or build == 0, "luarocks make failed; see " .. tree .. "/build.log")
    local interpreter = jit_abi and "luajit" or "lua5.4"
    local check = io.popen(("LUA_PATH='%s/share/lua/%s/?.lua;%s/share/lua/%s/?/init.lua' "
      .. "LUA_CPATH='%s/lib/lua/%s/?.so;;' %s -e 'local mr = require \"maintenance_report\"; "
      .. "io.write(mr._VERSION, \" \", require(\"maintenance_report.core\").curl_version)' 2>&1"):format(
      tree, version, tree, version, tree, version, interpreter))
    local out = check:read("*a")
    check:close()
    local installed_cli = io.open(tree .. "/bin/maintenance-report")
    os.execute("rm -rf " .. tree)
    assert.are.equal(require("maintenance_report")._VERSION .. " " .. require("maintenance_report.core").curl_version,
      out)
    assert.is_truthy(installed_cli)
    if installed_cli then installed_cli:close() end
  end)
end)
