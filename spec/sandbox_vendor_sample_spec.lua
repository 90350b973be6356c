-- The vendor's own Python sample clients, unchanged except for the URL, the
-- credentials and (for the report) the order id, must work against the
-- sandbox.
local sandbox = require "maintenance_report_sandbox"
local http = require "helpers.sandbox_http"

local VENDOR_BASE = "https://service-plb7hsqv-1257199080.ap-shanghai.apigateway.myqcloud.com/release"
local SAMPLE_ORDER_ID = "318bba4664194601800a6376027fffb56"

-- Plain-text replacement (no pattern characters interpreted); asserts that
-- the text occurs exactly `count` times.
local function replace(s, old, new, count)
  local out, n, pos = {}, 0, 1
  while true do
    local i, j = s:find(old, pos, true)
    if not i then break end
    out[#out + 1] = s:sub(pos, i - 1) .. new
    pos = j + 1
    n = n + 1
  end
  out[#out + 1] = s:sub(pos)
  assert(n == count, string.format("expected %d of %q, found %d", count, old, n))
  return table.concat(out)
end

describe("vendor Python samples against the sandbox", function()
  local sb, dir

  lazy_setup(function()
    sb = assert(sandbox.start { secret_id = "AKIDvendorSample", secret_key = "vendor-sample-key" })
    dir = assert(http.sh("mktemp -d"))
    dir = dir:gsub("%s+$", "")
  end)

  lazy_teardown(function()
    if sb then sb:stop() end
    if dir and dir:match("^/") then http.sh("rm -rf " .. http.quote(dir)) end
  end)

  local function prepare(name, extra)
    local src = http.read_file("spec/fixtures/" .. name)
    src = replace(src, VENDOR_BASE, sb.base_url, 1)
    src = replace(src, 'secretId = "xxxx"', 'secretId = "' .. sb.secret_id .. '"', 1)
    src = replace(src, 'secretKey = "xxxx"', 'secretKey = "' .. sb.secret_key .. '"', 1)
    if extra then src = extra(src) end
    local path = dir .. "/" .. name
    local f = assert(io.open(path, "wb"))
    f:write(src)
    f:close()
    return path
  end

  local function run(path)
    -- The proxy variables would send 127.0.0.1 through a proxy in some CI setups.
    local out, rc = http.sh("env -u http_proxy -u https_proxy -u HTTP_PROXY -u HTTPS_PROXY "
      .. "NO_PROXY='*' no_proxy='*' python3 " .. http.quote(path) .. " 2>/dev/null")
    assert.are.equal(0, rc, out)
    return assert(http.json(out), out)
  end

  it("orders with the order sample, then reads that order with the report sample", function()
    local order = run(prepare("vendor_order_sample.py"))
    local expected_order = http.json(http.read_file("spec/fixtures/vendor_order_success.json"))
    assert(http.same_shape(expected_order, order))
    assert.are.equal("0", order.code)
    assert.are.equal(1200, order.data.detail.resultCode)
    local id = order.data.detail.orderId
    assert.truthy(id:match("^[0-9a-f]+$") and #id == 32)
    -- The sample's VIN (SBL666666BM9D933, 16 characters) was the one bought.
    assert.are.equal(1, sb:stats().orders_by_vin["SBL666666BM9D933"])

    local report_script = prepare("vendor_report_sample.py", function(src)
      return replace(src, SAMPLE_ORDER_ID, id, 1)
    end)
    local pending = run(report_script)
    assert.are.equal("0", pending.code)
    assert.are.equal("1204", pending.data.detail.resultCode)

    local ready = run(report_script)
    local expected_ready = http.json(http.read_file("spec/fixtures/vendor_report_ready.json"))
    assert.are.equal("1205", ready.data.detail.resultCode)
    assert.are.equal(expected_ready.data.description, ready.data.description)
    for key, value in pairs(expected_ready.data.detail) do
      assert.are.equal(type(value), type(ready.data.detail[key]), key)
    end
    assert.are.equal("SB******9D933", ready.data.detail.vin)
  end)

  it("reads the report sample's own (unknown) order id as -1", function()
    local doc = run(prepare("vendor_report_sample.py"))
    assert.are.same({ code = "-1", message = "服务或其它异常", result = {} }, doc)
  end)
end)
