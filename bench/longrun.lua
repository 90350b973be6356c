-- Benchmark: a long-running worker (issue 13, target 6). BENCH_READS (default
-- 1,000,000) client:get_report reads in one process, against the fixture nginx
-- (bench/benchlib.lua), with the process's VmRSS, its open fds and the Lua heap
-- (collectgarbage "count", as it stands: no forced collection) sampled every
-- BENCH_SAMPLE (default 100,000) reads.
--
--   lua bench/longrun.lua [curl] [ngx]   (default: both)
--
-- curl  this interpreter, one client (the libcurl session), blocking reads in a loop;
-- ngx   one nginx worker (LuaJIT, lua-nginx-module), the client inside it on the
--       cosocket transport: each GET /run?n=BENCH_SAMPLE does that many reads in
--       its content handler, and the worker's /proc status and fd directory are read
--       between two of them, while it is idle.
-- Printed: the series, and the growth from the first sample (the end of warm-up)
-- to the last. Target: RSS flat after warm-up (growth within BENCH_RSS_SLACK_KIB,
-- default 1024 KiB, which is allocator noise), fds equal.
local bench_dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = bench_dir .. "/?.lua;" .. package.path
local B = require "benchlib"
local lfs = require "lfs"
local nginx = require "maintenance_report_sandbox.nginx_runner"

local READS = math.floor(B.env_number("BENCH_READS", 1e6))
local SAMPLE = math.floor(B.env_number("BENCH_SAMPLE", 1e5))
local RSS_SLACK_KIB = B.env_number("BENCH_RSS_SLACK_KIB", 1024)
local q = B.quote

local function own_pid()
  local f = assert(io.open("/proc/self/stat", "r"))
  local pid = f:read("*l"):match("^(%d+)")
  f:close()
  return tonumber(pid)
end

-- VmRSS in KiB, the number of open fds of process pid, and what they are
-- ("3=socket:[1234] 4=pipe ..."; a reconnection shows as a new socket). Listed in
-- this process (lfs): a child listing its parent's fds would race with the parent
-- closing its end of the pipe to that child. For this process, the directory's
-- own fd is in every sample alike.
local function process_facts(pid)
  local status = B.read_file("/proc/" .. pid .. "/status")
  local dir = "/proc/" .. pid .. "/fd/"
  local names = {}
  for fd in lfs.dir(dir) do
    if fd ~= "." and fd ~= ".." then
      names[#names + 1] = fd .. "=" .. tostring(lfs.symlinkattributes(dir .. fd, "target")):gsub("pipe:%[%d+%]", "pipe")
    end
  end
  table.sort(names)
  return tonumber(status:match("VmRSS:%s*(%d+)")), #names, table.concat(names, " ")
end

local function check(report, err)
  if not report or report.status ~= "ready" then
    error("get_report failed: " .. tostring(err and err.message or (report and report.status)))
  end
end

local function print_series(name, series)
  print(("%s: %d reads, a sample every %d, load average %s"):format(name, READS, SAMPLE,
    B.sh("cut -d' ' -f1-3 /proc/loadavg"):gsub("\n", "")))
  print("      reads   VmRSS KiB   fds   Lua heap KiB   CPU us/read")
  local listing
  for _, s in ipairs(series) do
    print(("  %9d   %9d   %3d   %12.0f   %11.1f"):format(s.reads, s.rss, s.fds, s.heap, s.cpu_us))
    if s.listing ~= listing then print("              fds: " .. s.listing) end
    listing = s.listing
  end
  local first, last = series[1], series[#series]
  local rss_growth, fd_growth = last.rss - first.rss, last.fds - first.fds
  local max_rss = first.rss
  for _, s in ipairs(series) do max_rss = math.max(max_rss, s.rss) end
  local ok = rss_growth <= RSS_SLACK_KIB and max_rss - first.rss <= 2 * RSS_SLACK_KIB and fd_growth == 0
  print(("  after warm-up (%d -> %d reads): RSS %+d KiB (peak %+d), fds %+d, Lua heap %+.0f KiB: %s")
    :format(first.reads, last.reads, rss_growth, max_rss - first.rss, fd_growth, last.heap - first.heap,
      B.verdict(ok)))
  io.stdout:flush()
  return ok
end

local function curl_part(fixture)
  local c = assert(require("maintenance_report.client").new{
    secret_id = "AKIDbench", secret_key = "bench-secret", endpoint = fixture.base_url })
  local pid = own_pid()
  local series = {}
  local reads = 0
  while reads < READS do
    local cpu0 = os.clock()
    for _ = 1, SAMPLE do check(c:get_report(B.ORDER_ID)) end
    local cpu = os.clock() - cpu0
    reads = reads + SAMPLE
    local rss, fds, listing = process_facts(pid)
    series[#series + 1] = { reads = reads, rss = rss, fds = fds, listing = listing, heap = collectgarbage("count"),
      cpu_us = cpu / SAMPLE * 1e6 }
  end
  c:close()
  return print_series("longrun curl (" .. B.interpreter .. ", libcurl session)", series)
end

local HTTP = [[
  server {
    listen 127.0.0.1:${PORT};
    access_log off;
    location = /run {
      content_by_lua_block {
        local c = package.loaded.longrun_client
        if not c then
          c = assert(require("maintenance_report").new{ secret_id = "AKIDbench", secret_key = "bench-secret",
            endpoint = "${BASE}" })
          package.loaded.longrun_client = c
        end
        assert(require("maintenance_report.transport.ngx").available(), "not on the cosocket transport")
        local n = tonumber(ngx.var.arg_n)
        local clock = os.clock
        local cpu0 = clock()
        for _ = 1, n do
          local report, err = c:get_report("${ORDER_ID}")
          if not report or report.status ~= "ready" then
            ngx.status = 500
            return ngx.print("get_report failed: ", tostring(err))
          end
        end
        ngx.print(collectgarbage("count"), " ", (clock() - cpu0) / n * 1e6)
      }
    }
  }
]]

local function ngx_part(fixture)
  local http = HTTP:gsub("%${(%u[%u_]*)}", { BASE = fixture.base_url, ORDER_ID = B.ORDER_ID })
  local node = assert(nginx.start{ http = http, workers = 1,
    lua_path = ("%s/lua/?.lua;%s/lua/?/init.lua;"):format(B.ROOT, B.ROOT),
    lua_cpath = B.ROOT .. "/build/luajit/?.so" })
  local ok
  B.finally(function()
    local worker = B.children(node.pid)
    assert(#worker == 1, "expected one nginx worker")
    local url = ("http://127.0.0.1:%d/run?n=%d"):format(node.port, SAMPLE)
    local series = {}
    local reads = 0
    while reads < READS do
      -- HTTP/1.0: nginx ends the answer by closing, so its socket is gone from the
      -- worker once curl returns (a keep-alive one would close in its own time)
      local out = B.sh("curl -sS --http1.0 --noproxy '*' --max-time 1200 " .. q(url))
      local heap, cpu_us = out:match("^([%d.e+]+) ([%d.e+]+)$")
      assert(heap, out .. "\n" .. tostring(node:error_log()))
      reads = reads + SAMPLE
      local rss, fds, listing = process_facts(worker[1])
      series[#series + 1] = { reads = reads, rss = rss, fds = fds, listing = listing, heap = tonumber(heap),
        cpu_us = tonumber(cpu_us) }
    end
    ok = print_series("longrun ngx (LuaJIT in one nginx worker, cosocket transport)", series)
  end, function() node:stop() end)
  return ok
end

local parts = {}
for _, a in ipairs(arg or {}) do parts[a] = true end
if not next(parts) then parts = { curl = true, ngx = true } end
-- benchlib's fixture, with a keep-alive limit above the run's reads: nginx closes a
-- connection after keepalive_requests, and the fd count of a sample taken just then
-- would be one short.
local function start_fixture()
  local server = assert(nginx.start{ http = ([[
  server {
    listen 127.0.0.1:${PORT};
    keepalive_requests %d;
    keepalive_timeout 300s;
    location = /release/maintenance_report/get {
      default_type text/html;
      add_header X-Api-RequestId 0123456789abcdef0123456789abcdef;
      alias %s;
    }
  }
]]):format(READS * 2, B.FIXTURE), workers = 1 })
  server.base_url = "http://127.0.0.1:" .. server.port .. "/release"
  return server
end

local fixture = start_fixture()
local all = true
B.finally(function()
  if parts.curl then all = curl_part(fixture) and all end
  if parts.ngx then all = ngx_part(fixture) and all end
end, function() fixture:stop() end)
if not all then os.exit(1) end
