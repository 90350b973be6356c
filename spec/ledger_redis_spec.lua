-- The Redis ledger store against a real redis-server on loopback: the store
-- contract through hiredis (here) and through lua-resty-redis inside nginx,
-- URLs, AUTH, fencing, and failing closed when Redis is gone.
local contract = require "helpers.ledger_store_contract"
local redis_server = require "helpers.redis_server"
local nginx = require "maintenance_report_sandbox.nginx_runner"
local shell = require "helpers.shell"
local hiredis = require "maintenance_report.hiredis"
local ledger = require "maintenance_report.ledger"
local redis_store = require "maintenance_report.ledger.redis"
local redis_client = require "maintenance_report.ledger.redis_client"

local core_sleep = require("maintenance_report.core").sleep
local ROOT = shell.run("pwd")
local KEY = "LSVAU2180N2183294\t\t"
local PASSWORD = "s3cret-redis-pw"

local function raw(server)
  local conn = assert(hiredis.connect("127.0.0.1", server.port, 1))
  if server.password then assert(conn:call("AUTH", server.password)) end
  return conn
end

describe("Redis ledger store", function()
  local server
  lazy_setup(function() server = redis_server.start{ password = PASSWORD } end)
  lazy_teardown(function() if server then server:stop() end end)

  local function url() return ("redis://:%s@127.0.0.1:%d/0"):format(PASSWORD, server.port) end

  describe("URLs", function()
    it("parses host, port, db, user and a percent-encoded password", function()
      local c = assert(redis_client.parse_url("redis://app:p%40ss@10.0.0.5:6380/3?timeout=0.5"))
      assert.are.same({ host = "10.0.0.5", port = 6380, db = 3, user = "app", password = "p@ss", timeout = 0.5 }, c)
      c = assert(redis_client.parse_url("redis://localhost"))
      assert.are.same({ host = "localhost", port = 6379, db = 0, timeout = 1 }, c)
      assert.are.equal("redis://10.0.0.5:6380/3", redis_client.describe(
        assert(redis_client.parse_url("redis://:pw@10.0.0.5:6380/3"))))
    end)

    it("refuses rediss://, other schemes, bad ports and unknown parameters with a clear message", function()
      for bad, says in pairs{
        ["rediss://h:6379"] = "TLS", ["http://h"] = "redis://", ["redis://h:99999"] = "port",
        ["redis://h?db=2"] = "timeout", ["redis://"] = "host",
      } do
        local c, message = redis_client.parse_url(bad)
        assert.is_nil(c, bad)
        assert.truthy(message:find(says, 1, true), bad .. ": " .. message)
      end
      local store, err = redis_store.new("redis://h:0")
      assert.is_nil(store)
      assert.are.equal("invalid_input", err.kind)
    end)
  end)

  describe("through hiredis", function()
    local n = 0
    for i, case in ipairs(contract.cases) do
      it(case[1], function()
        n = i
        local prefix = "contract" .. n .. ":"
        local opened = {}
        local function open()
          local s = assert(redis_store.new(url(), { prefix = prefix }))
          opened[#opened + 1] = s
          return s
        end
        local first
        local ok, err = pcall(case[2], { open = function() first = first or open() return first end,
          open_other = open })
        for _, s in ipairs(opened) do s:close() end
        assert(ok, err)
      end)
    end
  end)

  it("refuses a write from a lower fence than the entry's last writer (a claim lost in a failover)", function()
    local a = assert(redis_store.new(url(), { prefix = "fence:" }))
    local b = assert(redis_store.new(url(), { prefix = "fence:" }))
    assert.is_true(a:claim(KEY, "token-a", 60))
    assert.is_true(a:cas(KEY, "token-a", nil, { state = "intent" }))
    local conn = raw(server)
    local claim_key = "fence:{" .. KEY .. "}:c"
    assert(conn:call("DEL", claim_key)) -- the claim is gone, as after a failover that lost it
    assert.is_true(b:claim(KEY, "token-b", 60))
    assert.is_true(b:cas(KEY, "token-b", 1, { state = "placed", order_id = "O-B" }))
    -- a's token back under the claim: only the fence still tells a's write is stale
    assert(conn:call("SET", claim_key, "token-a"))
    local ok, current = a:cas(KEY, "token-a", 2, { state = "unknown" })
    assert.is_false(ok)
    assert.are.equal("O-B", current.order_id)
    assert.are.equal("placed", b:read(KEY).state)
    conn:close()
  end)

  it("takes claims with SET NX PX: the claim key expires by itself", function()
    local s = assert(redis_store.new(url(), { prefix = "ttl:" }))
    assert.is_true(s:claim(KEY, "t1", 30))
    local conn = raw(server)
    local pttl = conn:call("PTTL", "ttl:{" .. KEY .. "}:c")
    assert.is_true(pttl > 29000 and pttl <= 30000, tostring(pttl))
    assert.are.equal("t1", conn:call("GET", "ttl:{" .. KEY .. "}:c"))
    conn:close()
  end)

  it("without the password: store_unavailable, and no error names the password", function()
    local s = assert(redis_store.new(("redis://127.0.0.1:%d/0"):format(server.port)))
    local held, err = s:claim(KEY, "t", 10)
    assert.is_nil(held)
    assert.are.equal("store_unavailable", err.kind)
    assert.truthy(tostring(err):find("NOAUTH", 1, true), tostring(err))
    local wrong = assert(redis_store.new(("redis://:wrong-%s@127.0.0.1:%d/0"):format(PASSWORD, server.port)))
    held, err = wrong:claim(KEY, "t", 10)
    assert.is_nil(held)
    assert.is_nil(tostring(err):find(PASSWORD, 1, true), tostring(err))
    assert.truthy(tostring(err):find("127.0.0.1:" .. server.port, 1, true), tostring(err))
  end)

  it("with Redis gone, begin fails closed with store_unavailable; after a restart the entry is there", function()
    local L = assert(ledger.redis(url(), { prefix = "down:" }))
    local d = assert(L:begin{ vin = "LSVAU2180N2183294" })
    assert.are.equal("order", d.action)
    assert(d.claim:intent())
    assert(d.claim:arm())
    assert(d.claim:placed("ORDER-DOWN-1", "REQ-1"))
    d.claim:release()
    server:kill()
    local decision, err = L:begin{ vin = "LSVAU2180N2183294" }
    assert.is_nil(decision)
    assert.are.equal("store_unavailable", err.kind)
    assert.truthy(tostring(err):find("store_unavailable: Redis redis://127.0.0.1:", 1, true), tostring(err))
    server:restart()
    d = assert(L:begin{ vin = "LSVAU2180N2183294" })
    assert.are.equal("poll", d.action)
    assert.are.equal("ORDER-DOWN-1", d.order_id)
    d.claim:release()
  end)

  it("with wait_replicas, an intent too few replicas acknowledged fails closed; with a replica it passes", function()
    local L = assert(ledger.redis(url(), { prefix = "replicas:", wait_replicas = 1, wait_timeout = 0.2 }))
    local d = assert(L:begin{ vin = "1G4AH59H45G118341" })
    local ok, err = d.claim:intent()
    assert.is_nil(ok)
    assert.are.equal("store_unavailable", err.kind)
    assert.truthy(tostring(err):find("only 0 of 1 replicas acknowledged", 1, true), tostring(err))
    d.claim:release()
    local replica = redis_server.start{ password = PASSWORD, replica_of = server }
    local conn = raw(server)
    local deadline = os.time() + 20
    local synced
    repeat -- the replica's initial sync: readiness, polled
      local info = conn:call("INFO", "replication")
      synced = info:find("connected_slaves:1", 1, true) and info:find("state=online", 1, true)
      if not synced then core_sleep(0.05) end
    until synced or os.time() > deadline
    conn:close()
    assert(synced, "the replica never came online")
    -- a timeout a loaded machine cannot miss: WAIT returns as soon as the replica acknowledges
    L = assert(ledger.redis(url(), { prefix = "replicas:", wait_replicas = 1, wait_timeout = 10 }))
    d = assert(L:begin{ vin = "1M8GDM9AXKP042788" })
    assert(d.claim:intent())
    d.claim:release()
    replica:stop()
  end)

  describe("through lua-resty-redis inside nginx", function()
    local web
    lazy_setup(function()
      web = assert(nginx.start{ workers = 2, http = ([[
        server {
          listen 127.0.0.1:${PORT};
          location = /contract {
            content_by_lua_block {
              local store = require "maintenance_report.ledger.redis"
              local n = 0
              local results = require("helpers.ledger_store_contract").run{
                reset = function() n = n + 1 end,
                open = function() return assert(store.new(%q, { prefix = "nginx" .. n .. ":" })) end,
                open_other = function() return assert(store.new(%q, { prefix = "nginx" .. n .. ":" })) end,
              }
              for _, r in ipairs(results) do
                ngx.say(r.ok and "PASS " or "FAIL ", r.name, r.ok and "" or (" -- " .. r.message))
              end
            }
          }
        }]]):format(url(), url()),
        lua_path = ("%s/lua/?.lua;%s/lua/?/init.lua;%s/spec/?.lua;"):format(ROOT, ROOT, ROOT),
        lua_cpath = ROOT .. "/build/luajit/?.so" })
    end)
    lazy_teardown(function() if web then web:stop() end end)

    it("meets the store contract on cosockets", function()
      local out = shell.run("curl -sS --noproxy '*' --max-time 30 http://127.0.0.1:" .. web.port .. "/contract")
      local passed = 0
      for line in out:gmatch("[^\n]+") do
        assert(line:match("^PASS "), line .. "\n" .. web:error_log())
        passed = passed + 1
      end
      assert.are.equal(#contract.cases, passed)
    end)
  end)
end)
