-- A fleet: two nginx nodes of the OpenResty example, each with its own shared
-- dicts, sharing one ledger in a real redis-server, in front of one sandbox
-- whose reports take 1 s. One order per vehicle across the nodes, takeover of a
-- dead node's polling, Redis restarted mid-run, a spend budget, and /metrics.
local core = require "maintenance_report.core"
local hiredis = require "maintenance_report.hiredis"
local sandbox = require "maintenance_report_sandbox"
local lib_shell = require "maintenance_report_sandbox.shell"
local shell = require "helpers.shell"
local example = require "helpers.openresty_example"
local redis_server = require "helpers.redis_server"

local q = shell.quote
local PRICE = 17

-- Requests in parallel, url i to node (i % 2): { [i] = { status =, body = } }, with a handle
-- to wait on when background = true.
local function fetch_all(dir, urls, background)
  local config = {}
  for i, url in ipairs(urls) do
    config[#config + 1] = ('url = "%s"\noutput = "%s/%d.json"'):format(url, dir, i)
  end
  shell.write_file(dir .. "/curl.cfg", table.concat(config, "\n") .. "\n")
  local pipe = assert(io.popen("curl --parallel --parallel-max 100 -sS --noproxy '*' --max-time 90 "
    .. "-w '%{http_code} %{filename_effective}\\n' -K " .. q(dir .. "/curl.cfg") .. " 2>&1"))
  local function wait()
    local out = pipe:read("*a")
    pipe:close()
    local results = {}
    for status, file in out:gmatch("(%d%d%d) (%S+)\n") do
      local i = tonumber(file:match("/(%d+)%.json$"))
      if i then results[i] = { status = tonumber(status), body = shell.read_file(file) or "" } end
    end
    for i = 1, #urls do assert(results[i], "no answer for request " .. i .. ":\n" .. out) end
    return results
  end
  if background then return wait end
  return wait()
end

local function decode(body) return core.json_decode(body) end

-- Polls until cond() holds (readiness of something another process does), at most `seconds`.
local function eventually(seconds, cond, what)
  local deadline = core.monotime() + seconds
  while not cond() do
    assert(core.monotime() < deadline, "timed out waiting for " .. what)
    core.sleep(0.02)
  end
end

local function kill_node(node)
  -- the master and its workers, by pid: a machine that dies, not one that stops
  lib_shell.run(("kill -KILL $(ps -o pid= --ppid %d) %d 2>/dev/null"):format(node.pid, node.pid))
  eventually(10, function()
    local _, rc = lib_shell.run(lib_shell.ALIVE_FN .. "alive " .. node.pid)
    return rc ~= 0
  end, "nginx to die")
end

describe("a fleet of two OpenResty nodes on one Redis ledger", function()
  local redis, sb, dir
  local prefixes = 0

  lazy_setup(function()
    redis = redis_server.start()
    sb = assert(sandbox.start{ latency_ms = 1000, workers = 2 })
    dir = shell.run("mktemp -d")
  end)
  lazy_teardown(function()
    if sb then sb:stop() end
    if redis then redis:stop() end
    if dir then shell.run("rm -rf " .. q(dir)) end
  end)

  -- Two nodes with their own dicts and a ledger prefix of their own; settings: extra
  -- configure{} fields (a Lua table body).
  local function start_pair(settings)
    prefixes = prefixes + 1
    local prefix = "fleet" .. prefixes .. ":"
    local conf = ("{ ledger_url = %q, ledger_prefix = %q, claim_ttl = 3, poll_interval = 0.5, max_wait = 30, %s }")
      :format(redis.url, prefix, settings or "")
    local a = assert(example.start(sb, { settings = conf }))
    local b = assert(example.start(sb, { settings = conf }))
    return { a, b }, prefix
  end
  local function stop_pair(nodes) for _, n in ipairs(nodes) do n:stop() end end
  local function url(node, vin) return ("http://127.0.0.1:%d/vehicles/%s/report"):format(node.port, vin) end
  local function spread(nodes, vins)
    local urls = {}
    for i, vin in ipairs(vins) do urls[i] = url(nodes[i % 2 + 1], vin) end
    return urls
  end
  local function orders(vin) return assert(sb:stats()).orders_by_vin[vin] or 0 end
  local function metrics(node)
    return shell.run("curl -sS --noproxy '*' --max-time 10 http://127.0.0.1:" .. node.port .. "/metrics")
  end
  local function metric(text, series)
    local escaped = series:gsub("[%-%.%+%[%]%(%)%$%^%%%?%*{}\"]", "%%%0")
    return tonumber(text:match("\n" .. escaped .. " ([%d.e+-]+)")) or 0
  end

  describe("buying", function()
    local nodes
    lazy_setup(function() nodes = start_pair() end)
    lazy_teardown(function() stop_pair(nodes) end)
    local before

    it("40 concurrent requests for one VIN over both nodes place exactly 1 order, and all 40 get it", function()
      before = assert(sb:stats()).orders
      local vin = sandbox.scenario_vin("normal", 1000)
      local vins = {}
      for i = 1, 40 do vins[i] = vin end
      local results = fetch_all(dir, spread(nodes, vins))
      local ids = {}
      for i, r in ipairs(results) do
        assert.are.equal(200, r.status, "request " .. i .. ": " .. r.body)
        local report = decode(r.body)
        assert.are.equal("ready", report.status)
        ids[report.order_id] = true
      end
      assert.are.equal(1, orders(vin))
      local n = 0
      for _ in pairs(ids) do n = n + 1 end
      assert.are.equal(1, n, "all 40 must carry the one order id")
    end)

    it("50 distinct VINs over both nodes place exactly 50 orders", function()
      local vins = {}
      for i = 1, 50 do vins[i] = sandbox.scenario_vin("normal", 1100 + i) end
      local results = fetch_all(dir, spread(nodes, vins))
      for i, r in ipairs(results) do
        assert.are.equal(200, r.status, "request " .. i .. ": " .. r.body)
        assert.are.equal(1, orders(vins[i]), vins[i])
      end
    end)

    it("serves /metrics that promtool accepts, whose placed orders add up to the sandbox's count", function()
      local placed, spent = 0, 0
      for i, node in ipairs(nodes) do
        local text = metrics(node)
        local file = ("%s/metrics-%d.txt"):format(dir, i)
        shell.write_file(file, text .. "\n")
        local out, rc = lib_shell.run("promtool check metrics < " .. q(file) .. " 2>&1")
        assert.are.equal(0, rc, "promtool: " .. tostring(out) .. "\n" .. text)
        placed = placed + metric(text, 'maintenance_report_orders_total{outcome="placed"}')
        spent = spent + metric(text, "maintenance_report_spent_yuan_total")
        assert.truthy(text:find("maintenance_report_http_request_duration_seconds_bucket{", 1, true), text)
        assert.truthy(text:find("maintenance_report_report_ready_seconds_count ", 1, true), text)
      end
      local sandbox_orders = assert(sb:stats()).orders - before
      assert.are.equal(51, sandbox_orders)
      assert.are.equal(sandbox_orders, placed)
      assert.are.equal(sandbox_orders * PRICE, spent)
    end)
  end)

  it("SIGKILL of the node polling an order: the other node serves its report with 0 new orders", function()
    local nodes, prefix = start_pair()
    local vin = sandbox.scenario_vin("normal", 2000)
    local wait_a = fetch_all(dir, { url(nodes[1], vin) }, true)
    -- until the order id is in Redis: the node is polling it now (the report takes 1 s)
    local conn = assert(hiredis.connect("127.0.0.1", redis.port, 1))
    eventually(10, function()
      local text = conn:call("HGET", prefix .. "{" .. vin .. "\t\t}:e", "j")
      return text and decode(text).state == "placed"
    end, "the order id in the ledger")
    conn:close()
    kill_node(nodes[1])
    wait_a() -- its client saw the connection die
    local results = fetch_all(dir, { url(nodes[2], vin) })
    assert.are.equal(200, results[1].status, results[1].body)
    assert.are.equal("ready", decode(results[1].body).status)
    assert.are.equal(1, orders(vin))
    assert.are.equal(1, metric(metrics(nodes[2]), "maintenance_report_claims_taken_over_total"))
    stop_pair(nodes)
  end)

  it("Redis restarted mid-run: 0 duplicates; orders during the outage fail closed as store_unavailable", function()
    local nodes = start_pair()
    local served = sandbox.scenario_vin("normal", 3999)
    assert.are.equal(200, fetch_all(dir, { url(nodes[1], served) })[1].status)
    local first, during = {}, {}
    for i = 1, 20 do first[i] = sandbox.scenario_vin("normal", 3000 + i) end
    for i = 1, 10 do during[i] = sandbox.scenario_vin("normal", 3100 + i) end
    local wait_first = fetch_all(dir, spread(nodes, first), true)
    eventually(20, function()
      local n = 0
      for _, vin in ipairs(first) do n = n + orders(vin) end
      return n >= 10
    end, "half of the first wave's orders")
    redis:kill()
    local outage_dir = dir .. "/outage"
    shell.run("mkdir -p " .. q(outage_dir))
    local refused = fetch_all(outage_dir, spread(nodes, during))
    for i, r in ipairs(refused) do
      assert.are.equal(503, r.status, "request " .. i .. ": " .. r.body)
      assert.are.equal("store_unavailable", decode(r.body).error.kind)
      assert.are.equal(0, orders(during[i]), "an order left without a claim")
    end
    -- a report this node served before is still read, from its own dict
    local headers = shell.run("curl -sS --noproxy '*' --max-time 10 -D - -o /dev/null " .. q(url(nodes[1], served)))
    assert.truthy(headers:find("^HTTP/1%.1 200"), headers)
    assert.truthy(headers:lower():find("x-cache: local", 1, true), headers)
    redis:restart()
    wait_first()
    local again_dir = dir .. "/again"
    shell.run("mkdir -p " .. q(again_dir))
    local all = {}
    for _, v in ipairs(first) do all[#all + 1] = v end
    for _, v in ipairs(during) do all[#all + 1] = v end
    local results = fetch_all(again_dir, spread(nodes, all))
    for i, vin in ipairs(all) do
      assert.is_true(orders(vin) <= 1, vin .. " was ordered " .. orders(vin) .. " times")
      local r = results[i]
      if i > #first then
        assert.are.equal(200, r.status, vin .. ": " .. r.body)
        assert.are.equal(1, orders(vin))
      else
        -- an order whose id could not be written while Redis was down stays unknown (409): never re-bought
        assert.is_true(r.status == 200 or r.status == 409, vin .. ": " .. r.status .. " " .. r.body)
      end
    end
    stop_pair(nodes)
  end)

  it("a budget of 7 orders under 100 concurrent distinct VINs over both nodes places exactly 7", function()
    local nodes = start_pair(("budget = { day = %d }"):format(7 * PRICE))
    local before = assert(sb:stats()).orders
    local vins = {}
    for i = 1, 100 do vins[i] = sandbox.scenario_vin("normal", 4000 + i) end
    local results = fetch_all(dir, spread(nodes, vins))
    local ok, exceeded = 0, 0
    for i, r in ipairs(results) do
      if r.status == 200 then
        ok = ok + 1
        assert.are.equal(1, orders(vins[i]))
      else
        assert.are.equal(402, r.status, r.body)
        local err = decode(r.body).error
        assert.are.equal("budget_exceeded", err.kind)
        assert.are.equal("not_placed", err.order_outcome)
        assert.are.equal(0, orders(vins[i]), "a refused order reached the sandbox")
        exceeded = exceeded + 1
      end
    end
    assert.are.same({ 7, 93 }, { ok, exceeded })
    assert.are.equal(7, assert(sb:stats()).orders - before)
    local text = metrics(nodes[1]) .. "\n"
    assert.truthy(text:find('maintenance_report_budget_remaining_yuan{bucket="day:', 1, true), text)
    assert.truthy(text:match('maintenance_report_budget_remaining_yuan{bucket="day:[%d-]+"} 0\n'), text)
    stop_pair(nodes)
  end)

  it("the fleet's token bucket keeps both nodes under the plan's limit: no 429 (and without it, 429s)", function()
    local admin = sb.base_url:gsub("/release$", "") .. "/__sandbox/gateway"
    local function gateway(query)
      local target = query and ("-X POST " .. q(admin .. "?" .. query)) or q(admin)
      return decode(shell.run("curl -sS --noproxy '*' --max-time 10 " .. target))
    end
    -- the plan: 20 calls a second (the sandbox counts per second of its clock); the fleet's
    -- bucket: 8 a second with a burst of 8, at most 16 in any such second
    gateway("rate_limit=20")
    local function run(settings, offset)
      local nodes = start_pair(settings)
      local vins = {}
      for i = 1, 30 do vins[i] = sandbox.scenario_vin("normal", offset + i) end
      local before = gateway().rate_limited or 0
      local results = fetch_all(dir, spread(nodes, vins))
      stop_pair(nodes)
      return results, (gateway().rate_limited or 0) - before
    end
    local results, limited = run("rate_limit = { rate = 8, burst = 8 }", 5000)
    for i, r in ipairs(results) do assert.are.equal(200, r.status, "request " .. i .. ": " .. r.body) end
    assert.are.equal(0, limited)
    local _, unlimited = run(nil, 5100)
    gateway("rate_limit=")
    assert.is_true(unlimited > 0, "the same load without the fleet's bucket met no 429: the test proves nothing")
  end)
end)
