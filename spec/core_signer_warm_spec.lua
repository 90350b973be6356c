-- core.signer pays OpenSSL's one-time set-up (the process's first HMAC loads its
-- algorithm tables: about 20 page faults and 1 ms) when it is made, so a host's
-- first frame-budgeted step does not (issue 12). Counted in page faults of the
-- thread (getrusage), not time, in a fresh child process: in this one OpenSSL is
-- long warm.
local shell = require "helpers.shell"

local interpreter = os.getenv("MR_SPEC_LUA") or (rawget(_G, "jit") and "luajit" or "lua5.4")
-- Under the sanitizers (make asan) every new allocation faults in shadow memory too.
local sanitized = os.getenv("MR_SPEC_SANITIZED") ~= nil

local CHILD = [[
local core = require "maintenance_report.core"
local algorithm = ...
local signer = assert(core.signer{ secret_id = "AKIDtest", secret_key = "k", source = "s",
  algorithm = algorithm, headers = "x-date x-source" })
local before = core.thread_usage().minor_faults
signer:sign(1700000000)
io.write(core.thread_usage().minor_faults - before, "\n")
]]

describe("core.signer", function()
  local dir
  lazy_setup(function() dir = shell.run("mktemp -d") end)
  lazy_teardown(function() shell.run("rm -rf " .. shell.quote(dir)) end)

  for _, algorithm in ipairs{ "hmac-sha1", "hmac-sha256", "hmac-sha512" } do
    it("has OpenSSL ready before its first signature (" .. algorithm .. ")", function()
      local script = dir .. "/child.lua"
      shell.write_file(script, CHILD)
      local out = shell.run(("%s %s %s"):format(interpreter, shell.quote(script), algorithm))
      local faults = assert(tonumber(out), out)
      -- Without the warm-up the first signature takes 20-23 page faults here.
      if not sanitized then assert.is_true(faults <= 3, faults .. " page faults in the first signature") end
    end)
  end
end)
