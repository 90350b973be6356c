-- The store contract (spec/helpers/ledger_store_contract.lua) against the
-- memory and file stores; spec/ledger_shm_spec.lua runs it inside nginx.
local contract = require "helpers.ledger_store_contract"
local memory = require "maintenance_report.ledger.memory"
local file = require "maintenance_report.ledger.file"
local tmp = require "helpers.ledger_tmp"

local function run_cases(make_env)
  for i, case in ipairs(contract.cases) do
    it(case[1], function()
      local env = make_env(i)
      local ok, err = pcall(case[2], env)
      env.cleanup()
      assert(ok, err)
    end)
  end
end

describe("ledger store contract", function()
  describe("memory", function()
    run_cases(function()
      local store = memory.new()
      return { open = function() return store end, open_other = function() return store end,
        cleanup = function() end }
    end)

    it("ends a claim when its ttl passes on the store's clock", function()
      local t = 0
      local store = memory.new{ monotime = function() return t end }
      assert.is_true(store:claim("k", "a", 10))
      t = 9.9
      assert.is_false(store:claim("k", "b", 10))
      t = 10
      assert.is_true(store:claim("k", "b", 10))
      assert.is_false(store:cas("k", "a", nil, { state = "intent" }))
    end)
  end)

  describe("file", function()
    local dir
    before_each(function() dir = tmp.dir() end)
    after_each(function() tmp.remove(dir) end)
    run_cases(function(i)
      local path = dir .. "/case" .. i .. "/ledger"
      local opened = {}
      local function open()
        local store = assert(file.open(path))
        opened[#opened + 1] = store
        return store
      end
      local first
      return {
        open = function() first = first or open() return first end,
        open_other = open,
        cleanup = function() for _, s in ipairs(opened) do s:close() end end,
      }
    end)
  end)
end)
