-- Clock skew: measured from the response's Date header, reported in seconds and
-- direction on "x-date header is out of date", and corrected on request with
-- clock_offset = "auto". The clock is injected (wall_clock); nothing sleeps.
local mr = require "maintenance_report"
local classify = require "maintenance_report.classify"
local errors = require "maintenance_report.errors"
local hints = require "maintenance_report.cli.hints"
local sandbox = require "maintenance_report_sandbox"
local shell = require "helpers.shell"

describe("classify.server_time", function()
  it("reads IMF-fixdate as GNU date does", function()
    for _, epoch in ipairs{ 0, 784111777, 951782400, 1709164800, 1764547200, 4102444799 } do
      local text = shell.run("LC_ALL=C date -u -d @" .. epoch .. " '+%a, %d %b %Y %H:%M:%S GMT'")
      assert.are.equal(epoch, classify.server_time{ date = text }, text)
    end
    assert.is_nil(classify.server_time{ date = "Sunday, 06-Nov-94 08:49:37 GMT" })
    assert.is_nil(classify.server_time{ date = "Sun, 06 Nov 1994 08:49:37 PST" })
    assert.is_nil(classify.server_time{})
  end)
end)

describe("clock skew against the sandbox", function()
  local sb
  lazy_setup(function() sb = assert(sandbox.start{ pending_polls = 0, secret_key = "skew-spec-key" }) end)
  lazy_teardown(function() if sb then sb:stop() end end)

  local function client(offset, extra)
    local o = { secret_id = sb.secret_id, secret_key = sb.secret_key, endpoint = sb.base_url, retries = 0,
      wall_clock = function() return os.time() + offset end }
    for k, v in pairs(extra or {}) do o[k] = v end
    return assert(mr.new(o))
  end

  for _, case in ipairs{ { 1000, "ahead of" }, { -1000, "behind" }, { 4000, "ahead of" } } do
    it(("says the local clock is %d s %s the gateway's"):format(math.abs(case[1]), case[2]), function()
      local c = client(case[1])
      local _, err = c:get_report("abc123")
      c:close()
      assert.are.equal("xdate_skew", err.gateway_text)
      -- whole seconds on both sides: the Date header's, the injected clock's
      assert.is_true(math.abs(err.clock_skew - case[1]) <= 1, tostring(err.clock_skew))
      local said = err.message:match("the local clock is (%d+) s " .. case[2]:gsub(" ", "%%s"))
      assert.is_truthy(said, err.message)
      assert.is_true(math.abs(tonumber(said) - math.abs(case[1])) <= 1)
      local hint = hints.hint(err)
      assert.truthy(hint:find("measured: the local clock is %d+ s " .. case[2]), hint)
    end)
  end

  it("measures a small skew on success too, without complaint", function()
    local skews = {}
    local c = client(30, { on_event = function(ev)
      if ev.event == "http" then skews[#skews + 1] = ev.clock_skew end
    end })
    local _, err = c:get_report("abc123")
    c:close()
    assert.are.equal("api", err.kind) -- the vendor's "no such order": the gateway let it through
    assert.is_true(math.abs(skews[1] - 30) <= 1)
  end)

  it("signs with the gateway's time after one answer under clock_offset = \"auto\"", function()
    local c = client(-2000, { clock_offset = "auto" })
    local _, first = c:get_report("abc123")
    local _, second = c:get_report("abc123")
    c:close()
    assert.are.equal("xdate_skew", first.gateway_text)
    assert.are.equal("api", second.kind, tostring(second))
  end)

  it("keeps the local clock without the option, and takes a fixed offset", function()
    local c = client(-2000)
    local _, first = c:get_report("abc123")
    local _, second = c:get_report("abc123")
    c:close()
    assert.are.same({ "xdate_skew", "xdate_skew" }, { first.gateway_text, second.gateway_text })
    c = client(-2000, { clock_offset = 2000 })
    local _, err = c:get_report("abc123")
    c:close()
    assert.are.equal("api", err.kind)
  end)

  it("refuses a clock_offset that is neither \"auto\" nor a number of seconds", function()
    for _, bad in ipairs{ "manual", 1e12, 0 / 0 } do
      local c, err = mr.new{ secret_id = "a", secret_key = "b", clock_offset = bad }
      assert.is_nil(c)
      assert.is_true(errors.is(err))
      assert.are.equal("clock_offset", err.field)
    end
  end)
end)
