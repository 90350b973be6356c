-- Run by alloc_lua: fails each Lua allocation of a signing call in turn and
-- checks that no C block outlives the call. Prints "<name> <points>" per call.
local core = require "maintenance_report.core"

local signer = assert(core.signer{ secret_id = "AKIDtest", secret_key = "s3cr3t" })
local calls = {
  { "sign", function() return core.sign{ secret_id = "AKIDtest", secret_key = "s3cr3t", date = 0 } end },
  { "sign_extra", function()
    return core.sign{ secret_id = "AKIDtest", secret_key = "s3cr3t", date = 0,
      headers = "x-date x-source content-md5", extra = { ["Content-MD5"] = "abc" } }
  end },
  { "signer", function() return signer:sign(0) end },
  { "signer_new", function() return core.signer{ secret_id = "AKIDtest", secret_key = "s3cr3t" } end },
  { "scrub", function() return signer:scrub("a s3cr3t b s3cr3t") end },
  { "base64", function() return core.base64(("x"):rep(3000)) end },
}

local function settle()
  collectgarbage()
  collectgarbage()
  return alloc_live()
end

for _, call in ipairs(calls) do
  local name, fn = call[1], call[2]
  fn()
  local base = settle()
  local n = 0
  repeat
    n = n + 1
    alloc_fail_in(n)
    pcall(fn)
    local failed = alloc_failed()
    alloc_fail_in(nil)
    local live = settle()
    if live ~= base then
      error(("%s: %d C block(s) leaked when Lua allocation %d failed"):format(name, live - base, n), 0)
    end
  until not failed
  print(name .. " " .. (n - 1))
end
