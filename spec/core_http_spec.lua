-- The C core's libcurl session against a private nginx on loopback.
local core = require "maintenance_report.core"
local nginx = require "maintenance_report_sandbox.nginx_runner"

local HTTP = [[
  server {
    listen 127.0.0.1:${PORT};
    keepalive_requests 10000;
    location = /json {
      default_type text/html;
      add_header X-Api-RequestId 0123456789abcdef0123456789abcdef;
      return 200 '{"code":"0","message":"成功"}';
    }
    location = /echo-headers {
      content_by_lua_block {
        local h = ngx.req.get_headers()
        ngx.print((h["x-date"] or "-") .. "|" .. (h["x-source"] or "-") .. "|" .. (h["authorization"] or "-"))
      }
    }
    location = /big {
      content_by_lua_block { ngx.print(string.rep("x", 9 * 1024 * 1024)) }
    }
    location = /slow {
      content_by_lua_block { ngx.sleep(tonumber(ngx.var.arg_s) or 0.3); ngx.print("late") }
    }
    location = /status {
      content_by_lua_block { ngx.status = tonumber(ngx.var.arg_code); ngx.print("<html>err</html>") }
    }
  }
]]

-- One private nginx serves both groups of HTTP specs.
describe("core HTTP", function()
  local server, base
  lazy_setup(function()
    server = assert(nginx.start{ http = HTTP })
    base = "http://127.0.0.1:" .. server.port
  end)
  lazy_teardown(function() server:stop() end)

  describe("core.session", function()

    it("returns status, lower-cased headers and the body", function()
      local session = core.session()
      local resp = assert(session:request{ url = base .. "/json" })
      assert.are.equal(200, resp.status)
      assert.are.equal("0123456789abcdef0123456789abcdef", resp.headers["x-api-requestid"])
      assert.are.equal("text/html", resp.headers["content-type"])
      assert.are.equal('{"code":"0","message":"成功"}', resp.body)
      session:close()
    end)

    it("sends the given headers", function()
      local session = core.session()
      local headers = assert(core.sign{ secret_id = "id", secret_key = "k", date = 0 })
      local resp = assert(session:request{ url = base .. "/echo-headers", headers = headers })
      assert.are.equal("Thu, 01 Jan 1970 00:00:00 GMT|market|" .. headers.Authorization, resp.body)
    end)

    it("reuses its connection across calls", function()
      local session = core.session()
      local first = assert(session:request{ url = base .. "/json" })
      local second = assert(session:request{ url = base .. "/json" })
      assert.is_false(first.reused)
      assert.is_true(second.reused)
    end)

    it("keeps non-2xx answers as responses", function()
      local resp = assert(core.session():request{ url = base .. "/status?code=502" })
      assert.are.equal(502, resp.status)
      assert.are.equal("<html>err</html>", resp.body)
    end)

    it("caps the body at 8 MiB by default, and at max_body when given", function()
      local session = core.session()
      local resp, err = session:request{ url = base .. "/big" }
      assert.is_nil(resp)
      assert.is_true(err.too_large)
      assert.is_true(err.request_bytes > 0)
      resp, err = session:request{ url = base .. "/json", max_body = 10 }
      assert.is_nil(resp)
      assert.is_true(err.too_large)
      assert.truthy(assert(core.session{ max_body = 16 * 1024 * 1024 }:request{ url = base .. "/big" }))
    end)

    it("times out after a fractional total timeout, counting the request bytes sent", function()
      local resp, err = core.session():request{ url = base .. "/slow?s=5", timeout = 0.2 }
      assert.is_nil(resp)
      assert.are.equal(28, err.curl_code) -- CURLE_OPERATION_TIMEDOUT
      assert.is_true(err.request_bytes > 0)
      assert.is_true(err.time >= 0.2 and err.time < 2)
    end)

    it("tells connection refused and DNS failures apart, with no request byte written", function()
      local session = core.session()
      -- A port nginx has just released: nothing listens there.
      local closed = assert(nginx.start{ http = "server { listen 127.0.0.1:${PORT}; return 204; }" })
      closed:stop()
      local _, err = session:request{ url = "http://127.0.0.1:" .. closed.port .. "/" }
      assert.are.same({ 7, 0, false }, { err.curl_code, err.request_bytes, err.connected }) -- COULDNT_CONNECT
      -- A label over 63 bytes: the resolver refuses it locally, so no DNS query leaves the machine.
      _, err = session:request{ url = "http://" .. string.rep("a", 64) .. ".invalid/" }
      assert.are.same({ 6, 0, false }, { err.curl_code, err.request_bytes, err.connected }) -- COULDNT_RESOLVE_HOST
    end)

    it("verifies TLS by default: a plain-HTTP peer fails the handshake before the request", function()
      local _, err = core.session():request{ url = "https://127.0.0.1:" .. server.port .. "/json" }
      assert.are.same({ 35, 0, true }, { err.curl_code, err.request_bytes, err.connected }) -- SSL_CONNECT_ERROR
    end)

    it("refuses header values with CR or LF instead of sending them", function()
      local resp, err = core.session():request{ url = base .. "/json", headers = { ["X-A"] = "a\r\nX-B: b" } }
      assert.is_nil(resp)
      assert.are.equal("invalid_request", err.kind)
      resp, err = core.session():request{ url = base .. "/json\r\nX: y" }
      assert.is_nil(resp)
      assert.are.equal("invalid_request", err.kind)
    end)

    it("raises on wrong option types", function()
      assert.has_error(function() core.session{ timeout = "10" } end)
      assert.has_error(function() core.session():request{ url = base, timeout = "1" } end)
      assert.has_error(function() core.session():request{ url = base, headers = { 1 } } end)
      assert.has_error(function() core.session():request("url") end)
    end)
  end)

  describe("core.session multi interface", function()

    it("runs many requests at once and returns each completion once", function()
      local session = core.session()
      local ids = {}
      for i = 1, 20 do ids[assert(session:submit{ url = base .. "/slow?s=0.2" })] = i end
      assert.are.equal(20, session:pending())
      local seen, rounds = {}, 0
      while session:pending() > 0 and rounds < 1000 do
        rounds = rounds + 1
        for _, done in ipairs(session:perform(5)) do
          assert.is_nil(seen[done.id])
          seen[done.id] = true
          assert.are.equal("late", done.response.body)
        end
      end
      local count = 0
      for id in pairs(ids) do
        assert.is_true(seen[id])
        count = count + 1
      end
      assert.are.equal(20, count)
    end)

    it("returns at once with nothing when polled with 0 and nothing is done", function()
      local session = core.session()
      session:submit{ url = base .. "/slow?s=1" }
      assert.are.same({}, session:perform(0))
      assert.are.equal(1, session:pending())
    end)

    it("waits in poll, not in a busy loop", function()
      local session = core.session()
      session:submit{ url = base .. "/slow?s=2" }
      local cpu0, wall0 = os.clock(), core.monotime()
      local done = session:perform(0.5)
      local cpu, wall = os.clock() - cpu0, core.monotime() - wall0
      assert.are.same({}, done)
      assert.is_true(wall >= 0.45, "perform returned early: " .. wall)
      -- A busy loop would burn about as much CPU as wall time.
      assert.is_true(cpu < wall / 5, ("cpu %.3fs for %.3fs of waiting"):format(cpu, wall))
    end)

    it("reports failures per transfer", function()
      local session = core.session()
      local slow = session:submit{ url = base .. "/slow?s=5", timeout = 0.2 }
      local fine = session:submit{ url = base .. "/json" }
      local results = {}
      while session:pending() > 0 do
        for _, done in ipairs(session:perform(5)) do results[done.id] = done end
      end
      assert.are.equal(28, results[slow].error.curl_code) -- CURLE_OPERATION_TIMEDOUT
      assert.is_nil(results[slow].response)
      assert.are.equal(200, results[fine].response.status)
    end)

    it("cancels a transfer in flight", function()
      local session = core.session()
      local id = session:submit{ url = base .. "/slow?s=5" }
      assert.is_true(session:cancel(id))
      assert.is_false(session:cancel(id))
      assert.are.equal(0, session:pending())
    end)

    it("reuses connections between multi transfers", function()
      local session = core.session()
      session:submit{ url = base .. "/json" }
      local first = session:perform(5)[1]
      session:submit{ url = base .. "/json" }
      local second = session:perform(5)[1]
      assert.is_false(first.response.reused)
      assert.is_true(second.response.reused)
    end)
  end)

end)

describe("core.json_decode", function()
  it("decodes into native tables with an isolated cjson instance", function()
    local cjson = require "cjson"
    local before = cjson.decode_max_depth()
    local value = assert(core.json_decode('{"a":[1,"x",{"b":true}]}'))
    assert.are.same({ a = { 1, "x", { b = true } } }, value)
    assert.are.equal(before, cjson.decode_max_depth())
  end)

  it("returns nil and a message for bad JSON, deep nesting and NaN", function()
    local value, err = core.json_decode("<html>")
    assert.is_nil(value)
    assert.is_string(err)
    value = core.json_decode(string.rep("[", 100000) .. string.rep("]", 100000))
    assert.is_nil(value)
    assert.is_nil((core.json_decode('{"a":NaN}')))
    assert.is_nil((core.json_decode('{"a":1')))
  end)
end)

describe("core os helpers", function()
  it("appends durably", function()
    local path = os.tmpname()
    os.remove(path)
    assert.is_true(core.append_durable(path, "a\n"))
    assert.is_true(core.append_durable(path, "b\n"))
    local f = assert(io.open(path))
    assert.are.equal("a\nb\n", f:read("*a"))
    f:close()
    os.remove(path)
    local ok, err = core.append_durable("/nonexistent-dir/x", "a")
    assert.is_nil(ok)
    assert.matches("No such file", err)
  end)

  it("gives a monotonic clock", function()
    local a = core.monotime()
    local b = core.monotime()
    assert.is_true(b >= a)
  end)
end)
