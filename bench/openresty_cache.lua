-- Benchmark: the cached OpenResty path (issue 13, target 2). GET
-- /vehicles/{vin}/report answered from the cache, against nginx serving the
-- same bytes as a static file, under wrk, side by side in one run.
--
-- Five contenders, each on one nginx worker:
--   static  the hit's exact body as a file (location = /static, alias), X-Cache
--           added, on the same nginx and worker as "after";
--   after   examples/openresty of this tree (a hit answered from cache_dict);
--   before  examples/openresty and lua/ of git branch BENCH_BASE (default main),
--           on its own nginx (a hit goes through the ledger and the client);
--   static tuned  the same file with sendfile, tcp_nopush and open_file_cache:
--           nginx at its fastest for a file (the target is against "static");
--   lua floor  a content_by_lua handler printing the same bytes from a Lua
--           string, with their length: what any Lua answer costs over a static file.
-- All behind the sandbox (latency_ms = 0); each VIN is bought once and read
-- until it is a hit before measuring. BENCH_ROUNDS rounds (default 9), each
-- running wrk -t1 -c BENCH_WRK_CONNECTIONS (16) -d BENCH_WRK_SECONDS (2) on the
-- contenders in turn. Printed per contender: requests/s and the nginx worker's CPU
-- per request (/proc utime + stime), min and median over the rounds, and the
-- ratios to static. Target: after >= 0.8x static.
local bench_dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = bench_dir .. "/?.lua;" .. package.path
local B = require "benchlib"
local nginx = require "maintenance_report_sandbox.nginx_runner"
local sandbox = require "maintenance_report_sandbox"
local shell = require "maintenance_report_sandbox.shell"

local BASE = os.getenv("BENCH_BASE") or "main"
local ROUNDS = math.floor(B.env_number("BENCH_ROUNDS", 9))
local CONNECTIONS = math.floor(B.env_number("BENCH_WRK_CONNECTIONS", 16))
local SECONDS = math.floor(B.env_number("BENCH_WRK_SECONDS", 2))
local q = shell.quote

-- The example's http{} include from checkout `root`, on ${PORT}, plus `extra` locations.
local function example_http(root, extra)
  local conf = B.read_file(root .. "/examples/openresty/maintenance_report.conf")
  local rendered, n = conf:gsub("listen 127%.0%.0%.1:8080;", "listen 127.0.0.1:${PORT};\n  keepalive_requests 1000000;")
  assert(n == 1, "the example no longer listens on 127.0.0.1:8080")
  rendered, n = rendered:gsub("\n  location / {", function(s) return "\n" .. (extra or "") .. s end, 1)
  assert(n == 1, "the example has no location /")
  return rendered
end

local function env_lines(root)
  local lines = {}
  for line in B.read_file(root .. "/examples/openresty/nginx.conf"):gmatch("[^\n]+") do
    if line:match("^env ") then lines[#lines + 1] = line end
  end
  return table.concat(lines, "\n")
end

local function start_node(sb, root, extra)
  local path = ("%s/lua/?.lua;%s/lua/?/init.lua;%s/examples/openresty/?.lua;"):format(root, root, root)
  -- the worker on CPU 0, wrk on CPU 1: neither migrates between rounds
  local server = assert(nginx.start{ http = example_http(root, extra), workers = 1,
    main = env_lines(root) .. "\nworker_cpu_affinity 01;",
    lua_path = path, lua_cpath = B.ROOT .. "/build/luajit/?.so",
    env = { MAINTENANCE_REPORT_SECRET_ID = sb.secret_id, MAINTENANCE_REPORT_SECRET_KEY = sb.secret_key,
      MAINTENANCE_REPORT_ENDPOINT = sb.base_url } })
  server.base = "http://127.0.0.1:" .. server.port
  server.workers = B.children(server.pid)
  assert(#server.workers == 1, "expected one nginx worker")
  return server
end

local function curl(url)
  return B.sh("curl -sS --noproxy '*' --max-time 30 -D - " .. q(url))
end

-- Reads url until its answer says X-Cache: HIT twice in a row (the second is the cache's).
local function warm(url)
  local hits = 0
  for _ = 1, 10 do
    local out = curl(url)
    assert(out:match("^HTTP/1%.1 200"), "not a 200: " .. out:sub(1, 300))
    hits = out:lower():find("x-cache: hit", 1, true) and hits + 1 or 0
    if hits == 2 then return out:match("\r\n\r\n(.*)$") end
  end
  error("no cache hit at " .. url)
end

local function wrk(url)
  local out = B.sh(("taskset -c 1 wrk -t1 -c%d -d%ds %s"):format(CONNECTIONS, SECONDS, q(url)))
  assert(not out:find("Non-2xx", 1, true), "non-2xx answers from " .. url .. "\n" .. out)
  local rps = tonumber(out:match("Requests/sec:%s*([%d.]+)"))
  local requests = tonumber(out:match("(%d+) requests in"))
  return assert(rps, out), requests
end

local tmp = B.sh("mktemp -d")
local sb = assert(sandbox.start{ latency_ms = 0 })
local before, after
B.finally(function()
  B.sh(("git -C %s archive %s lua examples | tar -x -C %s"):format(q(B.ROOT), q(BASE), q(tmp)))
  local vin = sandbox.scenario_vin("normal", 13)
  local body_file = tmp .. "/report.json"
  after = start_node(sb, B.ROOT, ([[
  location = /static {
    alias %s;
    add_header X-Cache HIT;
  }
  location = /static-tuned {
    alias %s;
    add_header X-Cache HIT;
    sendfile on;
    tcp_nopush on;
    open_file_cache max=16 inactive=60s;
    open_file_cache_valid 60s;
  }
  location = /lua-floor {
    content_by_lua_block {
      local body = package.loaded.bench_body
      if not body then
        local f = assert(io.open(%q))
        body = f:read("*a")
        f:close()
        package.loaded.bench_body = body
      end
      ngx.header["Content-Length"] = #body
      ngx.header["X-Cache"] = "HIT"
      ngx.print(body)
    }
  }
]]):format(body_file, body_file, body_file))
  before = start_node(sb, tmp)
  local body = warm(after.base .. "/vehicles/" .. vin .. "/report")
  B.write_file(body_file, body)
  -- its own order: another order id and time, the same report otherwise
  local before_body = warm(before.base .. "/vehicles/" .. vin .. "/report")
  assert(math.abs(#before_body - #body) < 16, "before and after answer different reports")
  assert(curl(after.base .. "/static"):match("\r\n\r\n(.*)$") == body)
  assert(curl(after.base .. "/static-tuned"):match("\r\n\r\n(.*)$") == body)

  local contenders = {
    { name = "static", url = after.base .. "/static", node = after },
    { name = "before (" .. BASE .. ")", url = before.base .. "/vehicles/" .. vin .. "/report", node = before },
    { name = "after", url = after.base .. "/vehicles/" .. vin .. "/report", node = after },
    { name = "lua floor", url = after.base .. "/lua-floor", node = after },
    { name = "static tuned", url = after.base .. "/static-tuned", node = after },
  }
  for _, c in ipairs(contenders) do c.rps, c.cpu = {}, {} end
  for _ = 1, ROUNDS do
    for _, c in ipairs(contenders) do
      local cpu0 = B.cpu_seconds_of(c.node.workers)
      local rps, requests = wrk(c.url)
      c.rps[#c.rps + 1] = rps
      c.cpu[#c.cpu + 1] = (B.cpu_seconds_of(c.node.workers) - cpu0) / requests * 1e6
    end
  end
  local function min_median(list, largest)
    local sorted = {}
    for i, v in ipairs(list) do sorted[i] = v end
    table.sort(sorted, function(a, b) if largest then return a > b end return a < b end)
    return sorted[1], sorted[math.floor((#sorted + 1) / 2)]
  end
  local static = contenders[1]
  print(("openresty_cache: %d-byte hit, 1 nginx worker, wrk -t1 -c%d -d%ds, %d rounds, load average %s")
    :format(#body, CONNECTIONS, SECONDS, ROUNDS, B.sh("cut -d' ' -f1-3 /proc/loadavg")))
  for _, c in ipairs(contenders) do
    local best, median = min_median(c.rps, true)
    local least, cpu_median = min_median(c.cpu)
    -- per round, against the static round next to it
    local ratios, cpu_ratios = {}, {}
    for i = 1, ROUNDS do
      ratios[i] = c.rps[i] / static.rps[i]
      cpu_ratios[i] = static.cpu[i] / c.cpu[i]
    end
    local r_best, r_median = min_median(ratios, true)
    local r_worst = min_median(ratios)
    local cr_best, cr_median = min_median(cpu_ratios, true)
    print(("  %-14s %7.0f/%7.0f req/s (best/median), CPU %5.1f/%5.1f us/req (least/median);"
      .. " vs static: throughput x%.2f median (x%.2f worst, x%.2f best), CPU x%.2f median (x%.2f best)")
      :format(c.name, best, median, least, cpu_median, r_median, r_worst, r_best, cr_median, cr_best))
    c.ratio_median = r_median
  end
  local tuned = {}
  for i = 1, ROUNDS do tuned[i] = contenders[3].rps[i] / contenders[5].rps[i] end
  print(("  after / static tuned, throughput: x%.2f median of rounds (x%.2f worst)")
    :format(select(2, min_median(tuned)), (min_median(tuned))))
  print(("  target: after >= 0.8x static, median of rounds x%.2f: %s; load average at the end %s")
    :format(contenders[3].ratio_median, B.verdict(contenders[3].ratio_median >= 0.8),
      B.sh("cut -d' ' -f1-3 /proc/loadavg")))
end, function()
  if after then after:stop() end
  if before then before:stop() end
  sb:stop()
  shell.run("rm -rf " .. q(tmp))
end)
