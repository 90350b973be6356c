-- Run by alloc_lua with the port of spec/helpers/core_raw_server.py: fails
-- each Lua allocation of session:perform in turn and checks that every
-- completed transfer is still delivered, exactly once, by a later perform.
-- Prints "perform <points>".
local core = require "maintenance_report.core"
local url = "http://127.0.0.1:" .. assert(tonumber(arg[1]), "port") .. "/ok"
local session = core.session()
local BATCH, ROUNDS = 3, 12

local n = 0
repeat
  n = n + 1
  local waiting = {}
  for _ = 1, BATCH do waiting[assert(session:submit{ url = url })] = true end
  alloc_fail_in(n)
  local got, rounds = 0, 0
  while got < BATCH and rounds < ROUNDS do
    rounds = rounds + 1
    local ok, done = pcall(session.perform, session, 0.25)
    if ok then
      for _, d in ipairs(done) do
        if not waiting[d.id] then error("transfer " .. tostring(d.id) .. " delivered twice or unknown", 0) end
        waiting[d.id] = nil
        got = got + 1
        if not (d.response and d.response.body == "ok") then
          error("transfer " .. d.id .. " failed: " .. tostring(d.error and d.error.message), 0)
        end
      end
    end
  end
  local failed = alloc_failed()
  alloc_fail_in(nil)
  if got < BATCH then
    error(("%d completed transfer(s) lost when Lua allocation %d failed"):format(BATCH - got, n), 0)
  end
  if session:pending() ~= 0 then error("pending() is " .. session:pending() .. " with nothing left", 0) end
until not failed
print("perform " .. (n - 1))
