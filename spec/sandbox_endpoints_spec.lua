-- The sandbox's two vendor endpoints: shapes against the vendor's own sample
-- responses, order counting, and the pending -> ready transition.
local sandbox = require "maintenance_report_sandbox"
local http = require "helpers.sandbox_http"

local function fixture(name)
  return assert(http.json(http.read_file("spec/fixtures/" .. name)), name)
end

local VIN = "1G4AH59H45G118341" -- a valid VIN from api.md
-- Record keys seen in the vendor's sample.
local RECORD_KEYS = { content = 1, repairDate = 1, materal = 1, mileage = 1, mainTainDate = 1, type = 1 }

describe("sandbox endpoints", function()
  local sb

  lazy_setup(function()
    sb = assert(sandbox.start { pending_polls = 2, workers = 2 })
  end)

  lazy_teardown(function()
    if sb then sb:stop() end
  end)

  before_each(function()
    assert(sb:reset())
  end)

  describe("order", function()
    it("answers like the vendor's success sample, resultCode a number, a fresh 32-hex orderId", function()
      local sample = fixture("vendor_order_success.json")
      local a = http.json(http.order(sb, VIN).body)
      local b = http.json(http.order(sb, VIN).body)
      assert(http.same_shape(sample, a))
      assert(http.same_shape(a, sample))
      assert.are.equal(1200, a.data.detail.resultCode)
      for _, key in ipairs({ "code", "message" }) do assert.are.equal(sample[key], a[key]) end
      for _, key in ipairs({ "result", "description" }) do assert.are.equal(sample.data[key], a.data[key]) end
      assert.are.equal(sample.data.detail.resultMsg, a.data.detail.resultMsg)
      for _, doc in ipairs({ a, b }) do
        assert.truthy(doc.data.detail.orderId:match("^[0-9a-f]+$") and #doc.data.detail.orderId == 32)
      end
      assert.are_not.equal(a.data.detail.orderId, b.data.detail.orderId)
    end)

    it("answers a missing or empty VIN exactly like the vendor's sample", function()
      local sample = fixture("vendor_order_missing_vin.json")
      assert.are.same(sample, http.json(http.get(sb, "/maintenance/order").body))
      assert.are.same(sample, http.json(http.get(sb, "/maintenance/order?vin=&engine_number=").body))
    end)

    it("counts orders per VIN in arrival order, but not rejected or VIN-less calls", function()
      local other = "LSVAB2BM5KN000001"
      local t0 = http.now()
      local first = http.order_id(sb, VIN)
      local second = http.order_id(sb, other)
      local third = http.order_id(sb, VIN)
      http.get(sb, "/maintenance/order?vin=")              -- 20704: nothing bought
      http.order(sb, VIN, { key = "wrong" })                -- 401: never reaches the API
      local t1 = http.now()
      local s = assert(sb:stats())
      assert.are.equal(3, s.orders)
      assert.are.same({ [VIN] = 2, [other] = 1 }, s.orders_by_vin)
      -- the ids handed out, per VIN, in order: what a crash harness checks against
      assert.are.same({ [VIN] = { first, third }, [other] = { second } }, s.order_ids_by_vin)
      assert.are.equal(3, #s.order_times)
      for i, t in ipairs(s.order_times) do
        assert.is_true(t >= t0 - 1 and t <= t1 + 1, tostring(t))
        if i > 1 then assert.is_true(t >= s.order_times[i - 1]) end
      end
    end)

    it("forgets orders and counters on reset", function()
      local id = http.order_id(sb, VIN)
      http.report(sb, id)
      assert.are.equal(1, sb:stats().orders)
      assert(sb:reset())
      local s = sb:stats()
      assert.are.equal(0, s.orders)
      assert.are.equal(0, s.report_reads)
      assert.are.same({}, s.orders_by_vin)
      assert.are.same({}, s.order_ids_by_vin)
      assert.are.same({}, s.order_times)
      local unknown = http.json(http.report(sb, id).body)
      assert.are.equal("-1", unknown.code)
    end)
  end)

  describe("report", function()
    it("is pending for pending_polls polls, then ready, and stays ready", function()
      local id = http.order_id(sb, VIN)
      local expected_pending = {
        code = "0", message = "成功",
        data = { result = "0", description = "报告生成中",
                 detail = { resultCode = "1204", resultMsg = "报告生成中" } },
      }
      assert.are.same(expected_pending, http.json(http.report(sb, id).body))
      assert.are.same(expected_pending, http.json(http.report(sb, id).body))
      local ready = http.json(http.report(sb, id).body)
      assert.are.equal("1", ready.data.result)
      assert.are.equal("1205", ready.data.detail.resultCode)
      assert.are.equal("1", http.json(http.report(sb, id).body).data.result)
      assert.are.equal(4, sb:stats().report_reads)
    end)

    it("has every key of the vendor's ready sample, with the same JSON types", function()
      local sample = fixture("vendor_report_ready.json")
      local res = http.report_ready(sb, http.order_id(sb, VIN))
      local doc = assert(http.json(res.body))
      local d, sd = doc.data.detail, sample.data.detail
      for _, key in ipairs({ "code", "message" }) do assert.are.equal(sample[key], doc[key]) end
      assert.are.equal(sample.data.result, doc.data.result)
      assert.are.equal(sample.data.description, doc.data.description)
      assert.are.equal(sd.resultCode, d.resultCode) -- "1205", a string here
      assert.are.equal(sd.resultMsg, d.resultMsg)
      for key, value in pairs(sd) do
        assert.are.equal(type(value), type(d[key]), key)
      end
      -- Every record key the sample uses, with its type (all strings).
      local list_keys = { "normalRepairRecords", "componentAnalyzeRepairRecords", "outsideAnalyzeRepairRecords" }
      for _, list in ipairs(list_keys) do
        for _, r in ipairs(d[list]) do
          for key, value in pairs(r) do
            assert.are.equal("string", type(value), list .. "." .. key)
            assert.truthy(RECORD_KEYS[key], key)
          end
          assert.is_string(r.repairDate)
          assert.is_string(r.mileage)
          assert.is_string(r.mainTainDate)
          assert.is_string(r.materal)
        end
      end
      assert.is_table(d.constructAnalyzeRepairRecords)
    end)

    it("answers a missing order id with 20804 and an unknown one with -1", function()
      assert.are.same({ code = "20804", message = "订单号不能为空", result = {} },
        http.json(http.get(sb, "/maintenance_report/get").body))
      assert.are.same({ code = "20804", message = "订单号不能为空", result = {} },
        http.json(http.get(sb, "/maintenance_report/get?order_id=").body))
      assert.are.same({ code = "-1", message = "服务或其它异常", result = {} },
        http.json(http.report(sb, "00000000000000000000000000000000").body))
    end)

    it("gives each order its own pending count", function()
      local a = http.order_id(sb, VIN)
      local b = http.order_id(sb, VIN)
      local _, pending_a = http.report_ready(sb, a)
      local _, pending_b = http.report_ready(sb, b)
      assert.are.equal(2, pending_a)
      assert.are.equal(2, pending_b)
    end)
  end)
end)

describe("sandbox with latency_ms", function()
  it("stays pending until latency_ms has passed since the order", function()
    local sb = assert(sandbox.start { latency_ms = 400 })
    finally(function() sb:stop() end)
    local t0 = http.now()
    local id = http.order_id(sb, VIN)
    local first = http.json(http.report(sb, id).body)
    assert.are.equal("0", first.data.result)
    -- Busy-poll (each poll is a curl process) with a bound; no sleeps.
    local ready
    for _ = 1, 2000 do
      local doc = http.json(http.report(sb, id).body)
      if doc.data.result ~= "0" then ready = doc break end
      if http.now() - t0 > 10 then break end
    end
    assert.is_table(ready)
    assert.are.equal("1205", ready.data.detail.resultCode)
    assert.is_true(http.now() - t0 >= 0.4)
  end)

  it("with a long latency, every poll in the meantime is pending", function()
    local sb = assert(sandbox.start { latency_ms = 600000, pending_polls = 0 })
    finally(function() sb:stop() end)
    local id = http.order_id(sb, VIN)
    for _ = 1, 3 do
      assert.are.equal("1204", http.json(http.report(sb, id).body).data.detail.resultCode)
    end
  end)
end)
