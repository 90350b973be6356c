-- A long-running worker holds no memory and no fds per report read (issue 13,
-- target 6; bench/longrun.lua runs 1,000,000): 20,000 client:get_report reads on
-- each transport against a private nginx serving the listing's sample report,
-- the process's fds equal and its Lua heap and RSS within a bound after warm-up.
-- It measures memory, never time.
local fd_list = require "helpers.fds"
local nginx = require "maintenance_report_sandbox.nginx_runner"
local shell = require "helpers.shell"

local q = shell.quote
local ROOT = shell.run("pwd")
local ORDER_ID = "long0123456789abcdef0123456789abc"
local WARM, READS = 2000, 18000
-- A leak of 32 bytes a read grows RSS by 560 KiB over READS; allocator noise stays
-- far below it (bench/longrun.lua: within a few KiB over a million reads).
local RSS_BOUND_KIB, HEAP_BOUND_KIB = 512, 64
-- Under the sanitizers (make asan) RSS is AddressSanitizer's: freed blocks wait in its
-- quarantine (up to 256 MiB), so RSS grows with every free until it is full (2.4 MiB over
-- READS there). LeakSanitizer checks the C side at exit instead; fds and heap stay checked.
-- nginx, a child, runs without it: its worker's RSS is checked in every build.
local OWN_RSS_MEANINGFUL = os.getenv("MR_SPEC_SANITIZED") == nil

local FIXTURE = ([[
  server {
    listen 127.0.0.1:${PORT};
    keepalive_requests 1000000;
    location = /release/maintenance_report/get {
      default_type text/html;
      add_header X-Api-RequestId 0123456789abcdef0123456789abcdef;
      alias %s/spec/fixtures/vendor_report_ready.json;
    }
  }
]]):format(ROOT)

-- Does n reads inside the worker, then answers its Lua heap after a full collection.
local WORKER = [[
  server {
    listen 127.0.0.1:${PORT};
    location = /run {
      content_by_lua_block {
        assert(require("maintenance_report.transport.ngx").available(), "not on the cosocket transport")
        local c = package.loaded.longrun_client
        if not c then
          c = assert(require("maintenance_report").new{ secret_id = "AKIDlong", secret_key = "long-secret",
            endpoint = "%s" })
          package.loaded.longrun_client = c
        end
        for _ = 1, tonumber(ngx.var.arg_n) do
          local report, err = c:get_report("%s")
          if not report or report.status ~= "ready" then
            ngx.status = 500
            return ngx.print("get_report failed: ", tostring(err))
          end
        end
        collectgarbage("collect")
        ngx.print(collectgarbage("count"))
      }
    }
  }
]]

-- VmRSS in KiB, the open fds' count and what they are ("3=socket:[1234] 4=pipe ...").
local function facts(pid)
  local status = assert(shell.read_file("/proc/" .. pid .. "/status"))
  local count, listing = fd_list.list(pid)
  return tonumber(status:match("VmRSS:%s*(%d+)")), count, listing
end

local function own_pid()
  local f = assert(io.open("/proc/self/stat", "r"))
  local pid = f:read("*l"):match("^(%d+)")
  f:close()
  return pid
end

local function assert_flat(before, after, what, check_rss)
  -- No growth, not an equal count: a connection open at the first look (a keep-alive
  -- one of the spec's own driving requests) may be gone at the second.
  assert.is_true(after.fds <= before.fds,
    what .. ": open fds, before: " .. before.listing .. "; after: " .. after.listing)
  assert.is_true(after.heap - before.heap < HEAP_BOUND_KIB,
    ("%s: Lua heap %.0f -> %.0f KiB"):format(what, before.heap, after.heap))
  if check_rss then
    assert.is_true(after.rss - before.rss < RSS_BOUND_KIB, ("%s: RSS %d -> %d KiB"):format(what, before.rss, after.rss))
  end
end

describe("a long-running worker (20,000 report reads)", function()
  local fixture, base_url
  lazy_setup(function()
    fixture = assert(nginx.start{ http = FIXTURE })
    base_url = "http://127.0.0.1:" .. fixture.port .. "/release"
  end)
  lazy_teardown(function()
    if fixture then fixture:stop() end
  end)

  it("on the libcurl session keeps its fds, Lua heap and RSS flat after warm-up", function()
    local c = assert(require("maintenance_report").new{ secret_id = "AKIDlong", secret_key = "long-secret",
      endpoint = base_url })
    local pid = own_pid()
    local function sample()
      collectgarbage("collect")
      collectgarbage("collect")
      local rss, fds, listing = facts(pid)
      return { rss = rss, fds = fds, listing = listing, heap = collectgarbage("count") }
    end
    local function reads(n)
      for _ = 1, n do
        local report, err = c:get_report(ORDER_ID)
        assert(report and report.status == "ready", tostring(err))
      end
    end
    reads(WARM)
    local before = sample()
    reads(READS)
    local after = sample()
    c:close()
    assert_flat(before, after, "libcurl session", OWN_RSS_MEANINGFUL)
  end)

  it("on the cosocket transport inside nginx keeps the worker's fds, Lua heap and RSS flat", function()
    local node = assert(nginx.start{ http = WORKER:format(base_url, ORDER_ID), workers = 1,
      lua_path = ("%s/lua/?.lua;%s/lua/?/init.lua;"):format(ROOT, ROOT), lua_cpath = ROOT .. "/build/luajit/?.so" })
    local ok, err = pcall(function()
      local worker = shell.run("ps -o pid= --ppid " .. node.pid):match("%d+")
      local function run(n)
        -- HTTP/1.0: nginx ends the answer by closing, so its socket is gone from the
        -- worker once curl returns (a keep-alive one would close in its own time)
        local heap = shell.run("curl -sS --http1.0 --noproxy '*' --max-time 600 "
          .. q(("http://127.0.0.1:%d/run?n=%d"):format(node.port, n)))
        assert(tonumber(heap), heap .. "\n" .. tostring(node:error_log()))
        local rss, fds, listing = facts(worker)
        return { rss = rss, fds = fds, listing = listing, heap = tonumber(heap) }
      end
      local before = run(WARM)
      local after = run(READS)
      assert_flat(before, after, "cosocket transport", true)
    end)
    node:stop()
    assert(ok, err)
  end)
end)
