-- The OpenResty example's cache of hit answers (cache_dict), on a real nginx
-- against the sandbox: a hit is answered from the node's dict with the bytes the
-- ledger's reuse answers, a miss still goes through the ledger (one order per
-- VIN), forget drops the cached answer, and the cache never outlives cache_ttl.
local core = require "maintenance_report.core"
local sandbox = require "maintenance_report_sandbox"
local shell = require "helpers.shell"
local example = require "helpers.openresty_example"

local q = shell.quote

-- Reads the hit cache from inside the node, and forgets a VIN, on a second server.
local ADMIN = [[
  server {
    listen 127.0.0.1:${PORT};
    server_name admin.test;
    location = /cached {
      content_by_lua_block {
        local d = ngx.shared.maintenance_report_cache
        local body = d:get(ngx.var.arg_vin)
        if not body then return ngx.print("none") end
        ngx.print(string.format("%.0f\n", d:ttl(ngx.var.arg_vin)), body)
      }
    }
    location = /forget {
      content_by_lua_block {
        local ok, err = require("vehicle_report").forget(ngx.var.arg_vin)
        ngx.print(ok and "forgotten" or ("error " .. tostring(err.kind)))
      }
    }
  }
]]

-- status, headers (lower-case names), body
local function get(url, extra)
  local out = shell.run("curl -sS --noproxy '*' --max-time 30 -D - " .. (extra or "") .. " " .. q(url))
  local head, body = out:match("^(.-)\r\n\r\n(.*)$")
  local headers = {}
  for name, value in head:gmatch("\r\n([^:\r\n]+): ([^\r\n]*)") do headers[name:lower()] = value end
  return tonumber(head:match("^HTTP/1%.1 (%d+)")), headers, body
end

describe("examples/openresty's hit cache", function()
  local sb, server, base
  lazy_setup(function()
    sb = assert(sandbox.start{ latency_ms = 0 })
    server = assert(example.start(sb, { workers = 2, extra_http = ADMIN, settings = "{ cache_ttl = 3000 }" }))
    base = "http://127.0.0.1:" .. server.port
  end)
  lazy_teardown(function()
    if server then server:stop() end
    if sb then sb:stop() end
  end)

  local function report(vin) return get(base .. "/vehicles/" .. vin .. "/report") end
  local function cached(vin) return (select(3, get(base .. "/cached?vin=" .. vin, "-H 'Host: admin.test'"))) end
  local function orders(vin) return assert(sb:stats()).orders_by_vin[vin] or 0 end

  it("answers a hit from the node's dict with the ledger's bytes; a miss orders once", function()
    local vin = sandbox.scenario_vin("normal", 7001)
    assert.are.equal("none", cached(vin))
    local status, headers, first = report(vin)
    assert.are.equal(200, status, first)
    assert.are.equal("MISS", headers["x-cache"])
    assert.are.equal("none", cached(vin)) -- a bought answer is not the reused one
    local _, ledger_headers, from_ledger = report(vin)
    assert.are.equal("HIT", ledger_headers["x-cache"])
    local kept = cached(vin)
    local ttl, body = kept:match("^(%d+)\n(.*)$")
    assert.are.equal(from_ledger, body)
    -- the ledger reuses the report for cache_ttl after it became final, the dict no longer
    assert.is_true(tonumber(ttl) <= 3000 and tonumber(ttl) >= 2990, ttl)
    for _, asked in ipairs{ vin, vin:lower() } do
      local s, h, b = report(asked)
      assert.are.equal(200, s)
      assert.are.equal("HIT", h["x-cache"])
      assert.are.equal("application/json", h["content-type"])
      assert.are.equal(from_ledger, b)
    end
    local decoded = core.json_decode(from_ledger)
    assert.are.equal("ready", decoded.status)
    assert.is_true(decoded.reused)
    assert.are.equal(1, orders(vin))
  end)

  it("counts hits from the dict as cache reports in /metrics", function()
    local vin = sandbox.scenario_vin("normal", 7002)
    local function cache_reports()
      local _, _, text = get(base .. "/metrics")
      return tonumber(text:match('maintenance_report_reports_total{source="cache"} (%d+)') or "0")
    end
    report(vin)
    report(vin)
    local before = cache_reports()
    for _ = 1, 3 do report(vin) end
    assert.are.equal(before + 3, cache_reports())
  end)

  -- Unchunked: a chunked answer's last chunk goes out in a write of its own, after
  -- the body, which cost a hit about a third of its throughput (BENCHMARKS.md, section 7).
  it("says the length of every answer, hit, miss or refusal, so none is chunked", function()
    local vin = sandbox.scenario_vin("normal", 7005)
    local seen = {}
    for _, asked in ipairs{ vin, vin, vin, vin:lower(), "1G4AH59H55G118341" } do
      -- curl counts the body's bytes (the shell drops a trailing newline of its output)
      local status, headers, size = get(base .. "/vehicles/" .. asked .. "/report",
        "-o /dev/null -w '\r\n\r\n%{size_download}'")
      seen[#seen + 1] = status .. " " .. tostring(headers["x-cache"])
      assert.is_nil(headers["transfer-encoding"])
      assert.are.equal(tonumber(size), tonumber(headers["content-length"]))
      assert.is_true(tonumber(size) > 50, size)
    end
    assert.are.same({ "200 MISS", "200 HIT", "200 HIT", "200 HIT", "400 nil" }, seen)
  end)

  it("still validates first: a bad VIN is a 400 and nothing is sent", function()
    local before = assert(sb:stats()).orders
    local status, _, body = report("1G4AH59H55G118341")
    assert.are.equal(400, status)
    assert.are.equal("invalid_input", core.json_decode(body).error.kind)
    assert.are.equal(before, assert(sb:stats()).orders)
  end)

  it("drops the cached answer when an operator forgets the VIN, so the next request orders again", function()
    local vin = sandbox.scenario_vin("normal", 7003)
    report(vin)
    report(vin)
    assert.are_not.equal("none", cached(vin))
    local _, _, said = get(base .. "/forget?vin=" .. vin, "-H 'Host: admin.test'")
    assert.are.equal("forgotten", said)
    assert.are.equal("none", cached(vin))
    local status, headers = report(vin)
    assert.are.equal(200, status)
    assert.are.equal("MISS", headers["x-cache"])
    assert.are.equal(2, orders(vin))
  end)
end)

describe("examples/openresty with cache_ttl = 0", function()
  it("keeps no answers and reuses nothing", function()
    local sb = assert(sandbox.start{ latency_ms = 0 })
    local server
    local ok, err = pcall(function()
      server = assert(example.start(sb, { workers = 1, extra_http = ADMIN, settings = "{ cache_ttl = 0 }" }))
      local base = "http://127.0.0.1:" .. server.port
      local vin = sandbox.scenario_vin("normal", 7004)
      for _ = 1, 3 do assert.are.equal("MISS", select(2, get(base .. "/vehicles/" .. vin .. "/report"))["x-cache"]) end
      assert.are.equal("none", (select(3, get(base .. "/cached?vin=" .. vin, "-H 'Host: admin.test'"))))
      assert.are.equal(3, assert(sb:stats()).orders_by_vin[vin])
    end)
    if server then server:stop() end
    sb:stop()
    assert(ok, err)
  end)
end)
