-- The sandbox gateway: HMAC authentication rules, exact statuses and
-- messages (shared/reference/api.md), 404s and the headers on every answer.
local sandbox = require "maintenance_report_sandbox"
local http = require "helpers.sandbox_http"

local VIN = "WBAXW1104J0X16755" -- a valid VIN from api.md
local ORDER = "/maintenance/order?vin=" .. VIN

local function message(res)
  local doc = http.json(res.body)
  return doc and doc.message
end

describe("sandbox gateway", function()
  local sb

  lazy_setup(function()
    sb = assert(sandbox.start { secret_id = "AKIDgateway", secret_key = "gw-secret" })
  end)

  lazy_teardown(function()
    if sb then sb:stop() end
  end)

  local function assert_rejected(res, status, text)
    assert.are.equal(status, res.status, res.body)
    assert.are.equal(text, message(res))
  end

  local function assert_order_ok(res)
    assert.are.equal(200, res.status, res.body)
    local doc = assert(http.json(res.body), res.body)
    assert.are.equal("0", doc.code)
    assert.truthy(doc.data.detail.orderId:match("^%x+$"))
  end

  describe("accepts", function()
    for _, algorithm in ipairs({ "hmac-sha1", "hmac-sha256", "hmac-sha384", "hmac-sha512" }) do
      it("a correct " .. algorithm .. " signature", function()
        assert_order_ok(http.get(sb, ORDER, { algorithm = algorithm }))
      end)
    end

    it("an X-Date 800 s old or 800 s ahead", function()
      assert_order_ok(http.get(sb, ORDER, { date = os.time() - 800 }))
      assert_order_ok(http.get(sb, ORDER, { date = os.time() + 800 }))
    end)

    it("the old `date source` style, with a Date that is never time-checked", function()
      local old = "Mon, 19 Mar 2018 12:08:40 GMT"
      assert_order_ok(http.get(sb, ORDER, {
        signed = { "date", "source" },
        values = { date = old, source = "source", ["x-date"] = false, ["x-source"] = false },
      }))
    end)

    it("spaces around = and a bare signature, as in the vendor's curl sample", function()
      local date = http.http_date()
      local sig = http.sign("hmac-sha1", sb.secret_key, "date: " .. date .. "\nsource: source")
      local auth = string.format(
        'hmac id = "%s", algorithm = "hmac-sha1", headers = "date source", signature = %s', sb.secret_id, sig)
      local res = http.request(sb.base_url .. ORDER,
        { "Date: " .. date, "Source: source", "Authorization: " .. auth })
      assert_order_ok(res)
    end)

    it("any header listed in headers=, signed in the listed order", function()
      assert_order_ok(http.get(sb, ORDER, {
        signed = { "x-source", "x-custom", "x-date" },
        values = { ["x-custom"] = "value with  spaces" },
      }))
    end)
  end)

  describe("rejects", function()
    it("a request without Authorization", function()
      local res = http.request(sb.base_url .. ORDER, { "X-Date: " .. http.http_date(), "X-Source: market" })
      assert_rejected(res, 401, "HMAC id or signature missing.")
    end)

    it("an Authorization that is not hmac key=value pairs", function()
      local malformed = { "Basic dXNlcjpwYXNz", 'hmac id="a" algorithm="hmac-sha1"', "hmac", 'hmac id="unterminated' }
      for _, auth in ipairs(malformed) do
        local res = http.get(sb, ORDER, { auth = auth })
        assert_rejected(res, 401, "HMAC authorization format error.")
      end
    end)

    it("a missing id or signature", function()
      local no_sig = string.format('hmac id="%s", algorithm="hmac-sha1", headers="x-date x-source"', sb.secret_id)
      assert_rejected(http.get(sb, ORDER, { auth = no_sig }), 401, "HMAC id or signature missing.")
      local no_id = 'hmac algorithm="hmac-sha1", headers="x-date x-source", signature="abc="'
      assert_rejected(http.get(sb, ORDER, { auth = no_id }), 401, "HMAC id or signature missing.")
    end)

    it("an unsupported algorithm, naming it", function()
      local auth = string.format('hmac id="%s", algorithm="hmac-md5", headers="x-date x-source", signature="abc="',
        sb.secret_id)
      assert_rejected(http.get(sb, ORDER, { auth = auth }), 401, "HMAC algorithm hmac-md5 not supported.")
    end)

    it("an unknown SecretId", function()
      local res = http.get(sb, ORDER, { id = "AKIDunknown" })
      assert_rejected(res, 401, "HMAC signature cannot be verified.")
    end)

    it("a signature made with another key", function()
      local res = http.get(sb, ORDER, { key = "not-the-key" })
      assert_rejected(res, 401, "HMAC signature does not match.")
    end)

    it("a signature made with another algorithm than the one named", function()
      local date = http.http_date()
      local sig = http.sign("hmac-sha256", sb.secret_key, "x-date: " .. date .. "\nx-source: market")
      local res = http.get(sb, ORDER, { algorithm = "hmac-sha1", signature = sig })
      assert_rejected(res, 401, "HMAC signature does not match.")
    end)

    it("a header value changed after signing", function()
      local headers = http.signed_headers { id = sb.secret_id, key = sb.secret_key }
      for i, h in ipairs(headers) do
        if h:match("^x%-source:") then headers[i] = "x-source: tampered" end
      end
      assert_rejected(http.request(sb.base_url .. ORDER, headers), 401, "HMAC signature does not match.")
    end)

    it("an X-Date more than 900 s old or ahead", function()
      local out_of_date = "HMAC signature cannot be verified, the x-date header is out of date for HMAC Authentication."
      assert_rejected(http.get(sb, ORDER, { date = os.time() - 1000 }), 401, out_of_date)
      assert_rejected(http.get(sb, ORDER, { date = os.time() + 1000 }), 401, out_of_date)
    end)

    it("a listed x-date that is missing or not a date", function()
      local text = "HMAC signature cannot be verified, a valid x-date header is required for HMAC Authentication."
      assert_rejected(http.get(sb, ORDER, { values = { ["x-date"] = false } }), 401, text)
      assert_rejected(http.get(sb, ORDER, { values = { ["x-date"] = "yesterday" } }), 401, text)
    end)

    it("headers= naming neither date nor x-date, or a listed date that is absent", function()
      local text = "HMAC signature cannot be verified, a valid date or x-date header is required."
      assert_rejected(http.get(sb, ORDER, { signed = { "x-source" } }), 401, text)
      assert_rejected(http.get(sb, ORDER, { signed = { "date", "x-source" } }), 401, text)
    end)

    it("a listed header that is missing, naming it", function()
      local res = http.get(sb, ORDER, { signed = { "x-date", "x-source", "x-extra" } })
      assert_rejected(res, 401, "HMAC signature cannot be verified, a valid x-extra header is required.")
    end)
  end)

  describe("routing", function()
    it("answers 404 for a path that matches no API, before any auth", function()
      local res = http.request(sb.base_url .. "/maintenance/unknown", {})
      assert_rejected(res, 404, "There is no api match uri[/maintenance/unknown].")
      res = http.get(sb, "/maintenance_report/get/extra?order_id=1")
      assert_rejected(res, 404, "There is no api match uri[/maintenance_report/get/extra].")
    end)

    it("answers 404 outside the stage and for methods other than GET", function()
      local res = http.request(string.format("http://127.0.0.1:%d/nothing", sb.port), {})
      assert_rejected(res, 404, "There is no api match uri[/nothing].")
      res = http.get(sb, ORDER, { method = "POST" })
      assert_rejected(res, 404, "There is no api match uri[/maintenance/order].")
    end)

    it("keeps the admin endpoints outside the stage", function()
      local res = http.request(sb.base_url .. "/__sandbox/stats", {})
      assert_rejected(res, 404, "There is no api match uri[/__sandbox/stats].")
      res = http.request(string.format("http://127.0.0.1:%d/__sandbox/stats", sb.port), {})
      assert.are.equal(200, res.status)
      assert.is_number(http.json(res.body).orders)
    end)
  end)

  describe("gateway switches", function()
    local function admin(query, method)
      local res = http.request(("http://127.0.0.1:%d/__sandbox/gateway?%s"):format(sb.port, query), {},
        { method = method or "POST" })
      return res, http.json(res.body)
    end
    after_each(function() assert(sb:reset()) end) -- reset clears every switch

    it("refuses a signed header sent twice", function()
      local headers = http.signed_headers{ id = sb.secret_id, key = sb.secret_key }
      headers[#headers + 1] = "X-Date: " .. http.http_date()
      assert_rejected(http.request(sb.base_url .. ORDER, headers), 401, "HMAC do not support multiple HTTP header.")
    end)

    it("answers with a published text by /__text/ID/STATUS/, each status as its document words it", function()
      local res = http.request(("http://127.0.0.1:%d/__text/method_not_allowed/0/release%s"):format(sb.port, ORDER), {})
      assert_rejected(res, 405, "Method Not Allowed.")
      res = http.request(("http://127.0.0.1:%d/__text/mismatch/403/release%s"):format(sb.port, ORDER), {})
      assert_rejected(res, 403, "HMAC signature does not match") -- the signing guide's wording
      assert.are.equal(0, sb:stats().orders)
    end)

    it("answers every call with a text after POST answer=ID, times=N times", function()
      local _, cfg = admin("answer=quota&times=1")
      assert.are.equal("quota", cfg.answer)
      assert_rejected(http.get(sb, ORDER), 429, "API quota exceeded.")
      assert_order_ok(http.get(sb, ORDER))
      local res = admin("answer=nonsense")
      assert.are.equal(400, res.status)
    end)

    it("sends X-RateLimit-Limit and X-RateLimit-Used once a limit is set, and 429 above it", function()
      assert.is_nil(http.get(sb, ORDER).headers["x-ratelimit-limit"])
      admin("rate_limit=2")
      -- faster than 2 a second (each call is a curl and an openssl): some window fills up
      local limited = 0
      for _ = 1, 30 do
        local res = http.get(sb, ORDER)
        assert.are.equal("2", res.headers["x-ratelimit-limit"])
        local used = res.headers["x-ratelimit-used"]
        assert.truthy(used:match("^[12]/2$"), used)
        if res.status == 429 then
          limited = limited + 1
          assert.are.equal("API rate limit exceeded.", message(res))
          break
        end
      end
      assert.are.equal(1, limited)
      local _, cfg = admin("", "GET")
      assert.are.equal(limited, cfg.rate_limited)
    end)

    it("checks app auth (gateway.md's string to sign) and echoes its own on a mismatch", function()
      admin("auth=app")
      local date = http.http_date()
      local path = "/maintenance/order?vin=" .. VIN .. "&plate_number=&engine_number="
      local sts = "x-date: " .. date .. "\nGET\napplication/json\n\n\n"
        .. "/maintenance/order?engine_number&plate_number&vin=" .. VIN
      local function auth(sig)
        return ('Authorization: hmac id="%s", algorithm="hmac-sha256", headers="x-date", signature="%s"'):format(
          sb.secret_id, sig)
      end
      local good = { "X-Date: " .. date, "Accept: application/json",
        auth(http.sign("hmac-sha256", sb.secret_key, sts)) }
      assert_order_ok(http.request(sb.base_url .. path, good))
      -- the same signature without the Accept it signed: curl sends */*, and the server signs that
      local res = http.request(sb.base_url .. path, { good[1], good[3] })
      assert.are.equal(401, res.status)
      assert.are.equal("HMAC signature does not match, Server StringToSign:" .. (sts:gsub("application/json", "*/*")
        :gsub("\n", "#")), message(res))
      local md5 = http.request(sb.base_url .. path, { good[1], good[2], "Authorization: hmac id=\"" .. sb.secret_id
        .. '", algorithm="hmac-sha512", headers="x-date", signature="x"' })
      assert_rejected(md5, 401, "HMAC algorithm hmac-sha512 not supported.")
    end)
  end)

  describe("every answer", function()
    it("carries X-Api-RequestId (32 lowercase hex, fresh) and Content-Type text/html; charset=utf-8", function()
      local answers = {
        http.get(sb, ORDER),                                     -- 200
        http.get(sb, ORDER, { key = "wrong" }),                  -- 401
        http.request(sb.base_url .. "/nope", {}),                -- 404
        http.get(sb, "/maintenance/order?vin="),                 -- 200, 20704
        http.get(sb, "/maintenance_report/get?order_id=none"),   -- 200, -1
        http.order(sb, sandbox.scenario_vin("order_rate_limit")), -- 429
        http.order(sb, sandbox.scenario_vin("order_http_502")),   -- 502
      }
      local seen = {}
      for _, res in ipairs(answers) do
        local id = res.headers["x-api-requestid"]
        assert.is_string(id, res.raw_headers)
        assert.truthy(id:match("^[0-9a-f]+$") and #id == 32, id)
        assert.is_nil(seen[id])
        seen[id] = true
        assert.are.equal("text/html; charset=utf-8", res.headers["content-type"])
      end
    end)
  end)
end)
