-- The shm store inside a real nginx with 2 workers: the store contract, and
-- 12 concurrent requests racing to begin one key, of which exactly one orders.
local nginx = require "maintenance_report_sandbox.nginx_runner"
local shell = require "helpers.shell"
local contract = require "helpers.ledger_store_contract"

local ROOT = shell.run("pwd")
local RACERS = 12

local HTTP = [[
  lua_shared_dict ledger 1m;
  server {
    listen 127.0.0.1:${PORT} reuseport;
    location = /contract {
      content_by_lua_block {
        local shm = require "maintenance_report.ledger.shm"
        local n = 0
        local results = require("helpers.ledger_store_contract").run{
          reset = function() n = n + 1 end,
          open = function() return shm.new(ngx.shared.ledger, { prefix = "contract" .. n .. ":" }) end,
          open_other = function() return shm.new(ngx.shared.ledger, { prefix = "contract" .. n .. ":" }) end,
        }
        for _, r in ipairs(results) do
          ngx.say(r.ok and "PASS " or "FAIL ", r.name, r.ok and "" or (" -- " .. r.message))
        end
      }
    }
    location = /race {
      content_by_lua_block {
        local ledger = require "maintenance_report.ledger"
        local dict = ngx.shared.ledger
        local L = ledger.shm(dict)
        local others = tonumber(ngx.var.arg_others)
        local counted = false
        local d, err = L:begin({ vin = "LSVAU2180N2183294", plate_number = "京A12345" }, { wait = 20,
          sleep = function(s)
            if not counted then counted = true dict:incr("race:busy", 1, 0) end
            ngx.sleep(s)
          end })
        if not d then ngx.say("ERROR ", tostring(err)) return end
        if d.action == "order" then
          assert(d.claim:intent())
          local started = ngx.now()
          while (dict:get("race:busy") or 0) < others and ngx.now() - started < 20 do
            ngx.sleep(0.005)
            ngx.update_time()
          end
          assert(d.claim:placed("SHM-1", "REQ-SHM"))
        end
        d.claim:release()
        ngx.say("ACTION ", d.action, " ", d.order_id or "-", " ", ngx.worker.pid())
      }
    }
  }
]]

describe("shm ledger store in nginx", function()
  local server
  lazy_setup(function()
    server = assert(nginx.start{ http = HTTP, workers = 2,
      lua_path = ("%s/lua/?.lua;%s/lua/?/init.lua;%s/spec/?.lua;"):format(ROOT, ROOT, ROOT),
      lua_cpath = ROOT .. "/build/luajit/?.so" })
  end)
  lazy_teardown(function() if server then server:stop() end end)

  local function get(path)
    return shell.run("curl -sS --noproxy '*' --max-time 30 " .. shell.quote("http://127.0.0.1:" .. server.port .. path))
  end

  it("meets the store contract", function()
    local out = get("/contract")
    local passed = 0
    for line in out:gmatch("[^\n]+") do
      assert(line:match("^PASS "), line .. "\n" .. server:error_log())
      passed = passed + 1
    end
    assert.are.equal(#contract.cases, passed)
  end)

  it("lets exactly one of " .. RACERS .. " concurrent requests order; the others wait and poll it", function()
    local url = shell.quote("http://127.0.0.1:" .. server.port .. "/race?others=" .. (RACERS - 1))
    local out = shell.run(("for i in $(seq %d); do curl -sS --noproxy '*' --max-time 60 %s & done; wait")
      :format(RACERS, url))
    local counts, pids, workers = {}, {}, 0
    for action, order_id, pid in out:gmatch("ACTION (%S+) (%S+) (%d+)") do
      counts[action .. ":" .. order_id] = (counts[action .. ":" .. order_id] or 0) + 1
      if not pids[pid] then pids[pid], workers = true, workers + 1 end
    end
    assert.are.same({ ["order:-"] = 1, ["poll:SHM-1"] = RACERS - 1 }, counts, out .. "\n" .. server:error_log())
    assert.is_true(workers >= 2, "all requests went to one worker: " .. out)
  end)
end)
