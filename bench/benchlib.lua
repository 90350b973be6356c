-- Shared helpers for the benchmarks in bench/: timing, statistics, the
-- fixture nginx, process-level facts. Benchmarks print ratios measured side
-- by side in one process; they are never tests. Scripts load this with
--   package.path = <bench dir> .. "/?.lua;" .. package.path; require "benchlib"
local core = require "maintenance_report.core"
local nginx = require "maintenance_report_sandbox.nginx_runner"
local shell = require "maintenance_report_sandbox.shell"

local M = {}

M.now = core.monotime
M.interpreter = rawget(_G, "jit") and "luajit" or ("lua" .. _VERSION:match("%d+%.%d+"))

local function cwd()
  local p = assert(io.popen("pwd"))
  local d = p:read("*l")
  p:close()
  return d
end
-- The repository root: bench/run.sh runs every script from there.
M.ROOT = os.getenv("MR_ROOT") or cwd()
M.FIXTURE = M.ROOT .. "/spec/fixtures/vendor_report_ready.json"
-- A fixed, valid order id: the fixture server ignores it, the client validates it.
M.ORDER_ID = "bench0123456789abcdef0123456789ab"

function M.read_file(path)
  return (assert(nginx.read_file(path), "cannot read " .. path))
end

function M.write_file(path, content)
  local f = assert(io.open(path, "wb"))
  f:write(content)
  f:close()
end

--- A positive number from the environment, or default.
function M.env_number(name, default)
  local v = tonumber(os.getenv(name) or "")
  if v and v > 0 then return v end
  return default
end

function M.median(list)
  local s = {}
  for i, v in ipairs(list) do s[i] = v end
  table.sort(s)
  local n = #s
  if n == 0 then return nil end
  if n % 2 == 1 then return s[(n + 1) / 2] end
  return (s[n / 2] + s[n / 2 + 1]) / 2
end

function M.min(list)
  local m = math.huge
  for _, v in ipairs(list) do if v < m then m = v end end
  return m
end

--- Seconds fn() takes by the monotonic clock, after a full garbage collection
--- so that one contender does not pay for the other's garbage.
function M.time(fn)
  collectgarbage("collect")
  local t0 = M.now()
  fn()
  return M.now() - t0
end

--- Runs contenders side by side: each round runs every contender once, in
--- turn, so that noise on this shared machine hits them alike. Returns
--- name → list of seconds, one per round.
function M.rounds(count, contenders)
  local times = {}
  for _, c in ipairs(contenders) do times[c[1]] = {} end
  for _ = 1, count do
    for _, c in ipairs(contenders) do
      local list = times[c[1]]
      list[#list + 1] = M.time(c[2])
    end
  end
  return times
end

M.quote = shell.quote

--- Runs a shell command; raises unless it exits 0. Returns its output.
function M.sh(command)
  local out, rc = shell.run(command)
  if rc ~= 0 then error("command failed: " .. command .. "\n" .. out, 2) end
  return out
end

--- Calls fn(); then cleanup(), even when fn raised; then raises fn's error.
function M.finally(fn, cleanup)
  local ok, err = xpcall(fn, debug.traceback)
  cleanup()
  if not ok then error(err, 0) end
end

--- The private nginx serving the listing's sample report on 127.0.0.1 with
--- keep-alive: GET /release/maintenance_report/get?… → the fixture, labelled as
--- the gateway labels it (text/html, X-Api-RequestId). No authentication.
function M.start_fixture_server(workers)
  local http = ([[
  server {
    listen 127.0.0.1:${PORT} backlog=4096;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    location = /release/maintenance_report/get {
      default_type text/html;
      add_header X-Api-RequestId 0123456789abcdef0123456789abcdef;
      alias %s;
    }
  }
]]):format(M.FIXTURE)
  local server, err = nginx.start{ http = http, workers = workers or 1 }
  if not server then error("cannot start the fixture nginx: " .. tostring(err), 2) end
  server.base_url = "http://127.0.0.1:" .. server.port .. "/release"
  server.report_url = server.base_url .. "/maintenance_report/get?order_id=" .. M.ORDER_ID
  return server
end

--- A curl config (-K) file that fetches url n times into /dev/null.
function M.curl_config(url, n)
  local path = os.tmpname()
  local entry = 'url = "' .. url .. '"\noutput = "/dev/null"\n'
  M.write_file(path, entry:rep(n))
  return path
end

--- This process's peak resident set size in KiB (VmHWM), or nil.
function M.peak_rss_kib()
  local f = io.open("/proc/self/status", "r")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return tonumber(s:match("VmHWM:%s*(%d+)"))
end

--- CPU seconds (user + system) used so far by the processes in pids, by /proc.
function M.cpu_seconds_of(pids)
  local ticks = tonumber((M.sh("getconf CLK_TCK"))) or 100
  local total = 0
  for _, pid in ipairs(pids) do
    local f = io.open("/proc/" .. pid .. "/stat", "r")
    if f then
      local stat = f:read("*a")
      f:close()
      -- Fields after the parenthesised command name; utime and stime are 14 and 15.
      local rest = stat:match("%) (.*)$")
      local fields = {}
      for w in rest:gmatch("%S+") do fields[#fields + 1] = w end
      total = total + (tonumber(fields[12]) + tonumber(fields[13])) / ticks
    end
  end
  return total
end

--- The worker processes of an nginx master.
function M.children(pid)
  local pids = {}
  for p in M.sh("ps -o pid= --ppid " .. tonumber(pid) .. " || true"):gmatch("%d+") do
    pids[#pids + 1] = tonumber(p)
  end
  return pids
end

function M.fmt(x, digits)
  if x == nil then return "n/a" end
  return ("%." .. (digits or 2) .. "f"):format(x)
end

function M.verdict(ok)
  return ok and "met" or "MISSED"
end

--- Prints one result line: "bench  interpreter  key=value ...", flushed.
function M.report(name, fields)
  local parts = { ("%-10s"):format(name), ("%-7s"):format(M.interpreter) }
  for _, kv in ipairs(fields) do parts[#parts + 1] = kv[1] .. "=" .. tostring(kv[2]) end
  print(table.concat(parts, "  "))
  io.stdout:flush()
end

--- Prints a note line under a result.
function M.note(text)
  print("           " .. text)
  io.stdout:flush()
end

return M
