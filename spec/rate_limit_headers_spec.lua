-- X-RateLimit-Limit and X-RateLimit-Used (gateway.md): parsed, on events, on
-- rate_limited errors and in --verbose; the sandbox sends them like the gateway;
-- a batch paces itself below a known limit and gets no 429.
local mr = require "maintenance_report"
local classify = require "maintenance_report.classify"
local sandbox = require "maintenance_report_sandbox"
local cli = require "helpers.cli_run"
local shell = require "helpers.shell"
local quote = shell.quote

local function admin(sb, query, method)
  local out = shell.run(("curl -sS --noproxy '*' -X %s %s"):format(method or "POST",
    quote(("http://127.0.0.1:%d/__sandbox/gateway?%s"):format(sb.port, query))))
  return require("cjson").decode(out)
end

describe("classify.rate_limit", function()
  it("reads gateway.md's examples and nothing else", function()
    assert.are.same({ limit = 500, used = 100, used_limit = 125 },
      classify.rate_limit{ ["x-ratelimit-limit"] = "500", ["x-ratelimit-used"] = "100/125" })
    assert.are.same({ limit = 2000 }, classify.rate_limit{ ["x-ratelimit-limit"] = " 2000 " })
    assert.are.same({ used = 3, used_limit = 10 }, classify.rate_limit{ ["x-ratelimit-used"] = "3 / 10" })
    assert.is_nil(classify.rate_limit{})
    assert.is_nil(classify.rate_limit{ ["x-ratelimit-limit"] = "lots", ["x-ratelimit-used"] = "1-2" })
    assert.is_nil(classify.rate_limit(nil))
  end)
end)

describe("gateway pacing", function()
  local gateway = require "maintenance_report.gateway"
  local function paced_gateway()
    local gw = assert(gateway.new({ endpoint = "http://127.0.0.1/release", secret_id = "AKIDpace",
      algorithm = "hmac-sha1" }, {}))
    local clock, slept = 0, {}
    local function now() return clock end
    local function sleep(s)
      slept[#slept + 1] = s
      clock = clock + s
    end
    return gw, now, sleep, slept, function(t) clock = t end
  end

  it("spaces the request after the answer that named the limit by an interval, not 0", function()
    -- The fixed-window sandbox counted 7 in one second when the first paced request
    -- followed that answer at once: it and 5 more, 185 ms apart, fit in 0.93 s.
    local gw, now, sleep, slept, set = paced_gateway()
    gw:pace(sleep, now) -- the first request: no limit known yet, it goes at once
    assert.are.same({}, slept)
    gw:observe{ status = 200, headers = { ["x-ratelimit-limit"] = "6", ["x-ratelimit-used"] = "1/6" } }
    set(0.002)
    gw:pace(sleep, now)
    local interval = 1 / (6 * gateway.PACE_FRACTION)
    assert.are.equal(1, #slept)
    assert.is_true(math.abs(slept[1] - (interval - 0.002)) < 1e-9, tostring(slept[1]))
    gw:pace(sleep, now) -- and the next, an interval after that
    assert.is_true(math.abs(slept[2] - interval) < 1e-9, tostring(slept[2]))
  end)

  it("does not wait when the last request is an interval old, and never without a limit", function()
    local gw, now, sleep, slept, set = paced_gateway()
    gw:pace(sleep, now)
    gw:pace(sleep, now)
    assert.are.same({}, slept)
    gw:observe{ status = 200, headers = { ["x-ratelimit-limit"] = "6" } }
    set(10)
    gw:pace(sleep, now)
    assert.are.same({}, slept)
  end)
end)

describe("rate-limit headers from the sandbox", function()
  local sb
  lazy_setup(function() sb = assert(sandbox.start{ pending_polls = 0, secret_key = "rl-spec-key" }) end)
  lazy_teardown(function()
    if sb then sb:stop() end
    cli.cleanup()
  end)
  before_each(function() assert(sb:reset()) end)

  local function client(extra)
    local o = { secret_id = sb.secret_id, secret_key = sb.secret_key, endpoint = sb.base_url, retries = 0 }
    for k, v in pairs(extra or {}) do o[k] = v end
    return assert(mr.new(o))
  end

  it("sends none until a limit is set, then both on every answer", function()
    local events = {}
    local c = client{ on_event = function(ev) events[#events + 1] = ev end }
    assert(c:get_report("abc123") == nil)
    assert.is_nil(events[1].rate_limit)
    admin(sb, "rate_limit=50")
    assert(c:get_report("abc123") == nil)
    local rl = events[2].rate_limit
    assert.are.equal(50, rl.limit)
    assert.are.equal(50, rl.used_limit)
    assert.is_true(rl.used >= 1 and rl.used <= 50)
    c:close()
  end)

  it("puts them on a rate_limited error, its message and --verbose", function()
    admin(sb, "rate_limit=1")
    local c = client{ pace = false } -- unpaced: the second call in the same second is over the limit
    local errs = {}
    for i = 1, 3 do errs[i] = select(2, c:get_report("abc123")) end
    c:close()
    local limited
    for _, e in ipairs(errs) do if e.kind == "rate_limited" then limited = e end end
    assert.is_table(limited, "no 429 in three calls within a second or two")
    assert.are.same({ limit = 1, used = 1, used_limit = 1 }, limited.rate_limit)
    assert.truthy(limited.message:find("X-RateLimit-Limit 1", 1, true), limited.message)
    local r = cli.run({ "report", "abc123", "--verbose" }, cli.sandbox_env(sb))
    assert.truthy(r.err:find("rate limit 1, used 1/1", 1, true), r.err)
  end)

  it("paces a batch below a limit given with --plan-rate-limit: no 429, all VINs done", function()
    local limit = 6
    admin(sb, "rate_limit=" .. limit)
    local dir = cli.tmpdir()
    local vins = {}
    for i = 1, 10 do vins[i] = sandbox.scenario_vin("normal", 100 + i) end
    cli.write(dir .. "/in.txt", table.concat(vins, "\n") .. "\n")
    local r = cli.run({ "batch", dir .. "/in.txt", "--rate", "1000", "--concurrency", "8", "--poll-interval", "0.05",
      "--plan-rate-limit", tostring(limit), "-o", dir .. "/out.jsonl" },
      cli.sandbox_env(sb, { MAINTENANCE_REPORT_LEDGER = dir .. "/ledger" }))
    assert.are.equal(0, r.code, r.err)
    assert.are.equal(10, sb:stats().orders)
    assert.are.equal(0, admin(sb, "", "GET").rate_limited)
  end)

  it("paces below the limit an answer named, from the next request on", function()
    admin(sb, "rate_limit=6")
    local c = client{ max_in_flight = 8 }
    assert(c:get_report("abc123") == nil) -- one answer: X-RateLimit-Limit 6
    local outcomes = {}
    for i = 1, 10 do
      assert(c:start_query{ vin = sandbox.scenario_vin("normal", 300 + i), max_wait = 10, on_done = function(h)
        local report, err = h:result()
        outcomes[#outcomes + 1] = report and report.status or tostring(err)
      end })
    end
    while c:step(0.05) > 0 do end
    c:close()
    assert.are.equal(10, sb:stats().orders, table.concat(outcomes, "\n"))
    assert.are.equal(0, admin(sb, "", "GET").rate_limited)
  end)

  it("gets 429s from the same batch without pacing (the spec above can fail)", function()
    admin(sb, "rate_limit=6")
    local c = client{ pace = false, max_in_flight = 8 }
    for i = 1, 10 do assert(c:start_query{ vin = sandbox.scenario_vin("normal", 200 + i), max_wait = 10 }) end
    while c:step(0.05) > 0 do end
    c:close()
    assert.is_true(admin(sb, "", "GET").rate_limited > 0)
  end)
end)
