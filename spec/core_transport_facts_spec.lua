-- session:request and perform report facts of a failure, never a verdict:
-- request_bytes = 0 only where nothing was written, > 0 once the request went out.
-- Against a raw TCP server on 127.0.0.1 (spec/helpers/core_raw_server.py).
local core = require "maintenance_report.core"
local raw = require "helpers.core_raw_server"

-- CURLcode values from curl/curl.h, written out so the spec does not trust the core.
local CURLE = { UNSUPPORTED_PROTOCOL = 1, COULDNT_RESOLVE_HOST = 6, COULDNT_CONNECT = 7,
  OPERATION_TIMEDOUT = 28, SSL_CONNECT_ERROR = 35, FILESIZE_EXCEEDED = 63, RECV_ERROR = 56 }

local FACT_KEYS = { curl_code = "number", message = "string", request_bytes = "number",
  connected = "boolean", pretransfer = "boolean", too_large = "boolean", time = "number", reused = "boolean" }

local function assert_facts(err)
  assert.is_table(err)
  assert.is_nil(err.kind)
  assert.is_nil(err.sent)
  for key, kind in pairs(FACT_KEYS) do assert.are.equal(kind, type(err[key]), key) end
  for key in pairs(err) do assert.truthy(FACT_KEYS[key] or key == "status", "unexpected field " .. key) end
  assert.are.equal(math.floor(err.request_bytes), err.request_bytes)
end

describe("core transport facts", function()
  local server
  lazy_setup(function() server = raw.start() end)
  lazy_teardown(function() server.stop() end)

  local function fail(req, session)
    local resp, err = (session or core.session()):request(req)
    assert.is_nil(resp)
    assert_facts(err)
    return err
  end

  it("answers a plain request (the server works)", function()
    local resp = assert(core.session():request{ url = server.base .. "/ok" })
    assert.are.same({ 200, "ok" }, { resp.status, resp.body })
  end)

  it("counts no request byte for a refused connection", function()
    local err = fail{ url = "http://127.0.0.1:" .. server.refused_port .. "/" }
    assert.are.same({ CURLE.COULDNT_CONNECT, 0, false, false },
      { err.curl_code, err.request_bytes, err.connected, err.too_large })
  end)

  it("counts no request byte for a DNS failure", function()
    -- A label over 63 bytes: the resolver refuses it locally, so no DNS query leaves the machine.
    local err = fail{ url = "http://" .. string.rep("a", 64) .. ".invalid/" }
    assert.are.same({ CURLE.COULDNT_RESOLVE_HOST, 0, false }, { err.curl_code, err.request_bytes, err.connected })
  end)

  it("counts no request byte for a connect timeout", function()
    assert.are.equal(1, server.blackhole, "the blackhole's accept queue could not be filled")
    local err = fail{ url = "http://127.0.0.1:" .. server.blackhole_port .. "/", connect_timeout = 0.3 }
    assert.are.same({ CURLE.OPERATION_TIMEDOUT, 0, false, false },
      { err.curl_code, err.request_bytes, err.connected, err.pretransfer })
  end)

  it("counts no request byte for a failed TLS handshake, on a connection that stood", function()
    local err = fail{ url = "https://127.0.0.1:" .. server.port .. "/ok" }
    assert.are.same({ CURLE.SSL_CONNECT_ERROR, 0, true, false },
      { err.curl_code, err.request_bytes, err.connected, err.pretransfer })
  end)

  it("counts the request bytes when the server reads the request and resets", function()
    local err = fail{ url = server.base .. "/reset" }
    assert.are.equal(CURLE.RECV_ERROR, err.curl_code)
    assert.is_true(err.request_bytes > 0)
    assert.is_true(err.connected)
    assert.is_true(err.pretransfer)
  end)

  -- libcurl reports these as CURLE_UNSUPPORTED_PROTOCOL, after the request was sent.
  for _, path in ipairs{ "/status000", "/icy" } do
    it("counts the request bytes for a malformed status line (" .. path .. ")", function()
      local err = fail{ url = server.base .. path }
      assert.are.equal(CURLE.UNSUPPORTED_PROTOCOL, err.curl_code)
      assert.is_true(err.request_bytes > 0)
      assert.is_true(err.pretransfer)
    end)
  end

  it("gives the same facts through submit/perform", function()
    local session = core.session()
    local reset = assert(session:submit{ url = server.base .. "/reset" })
    local refused = assert(session:submit{ url = "http://127.0.0.1:" .. server.refused_port .. "/" })
    local results = {}
    while session:pending() > 0 do
      for _, done in ipairs(session:perform(5)) do results[done.id] = done end
    end
    assert_facts(results[reset].error)
    assert_facts(results[refused].error)
    assert.is_true(results[reset].error.request_bytes > 0)
    local refused_err = results[refused].error
    assert.are.same({ CURLE.COULDNT_CONNECT, 0 }, { refused_err.curl_code, refused_err.request_bytes })
  end)

  it("states too_large, with a cap above 2^31 printed in full", function()
    -- The answer announces 5e9 bytes: libcurl stops at the header, before any body.
    local err = fail({ url = server.base .. "/huge" }, core.session{ max_body = 3e9 })
    assert.are.equal(CURLE.FILESIZE_EXCEEDED, err.curl_code)
    assert.is_true(err.too_large)
    assert.are.equal("response body exceeds the 3000000000-byte cap", err.message)
    err = fail{ url = server.base .. "/ok", max_body = 1 }
    assert.is_true(err.too_large)
    assert.are.equal(200, err.status)
    assert.are.equal("response body exceeds the 1-byte cap", err.message)
  end)

  describe("refusals before libcurl", function()
    local function refused(req)
      local resp, err = core.session():request(req)
      assert.is_nil(resp)
      assert.are.same({ "invalid_request", 0 }, { err.kind, err.request_bytes })
      assert.is_string(err.message)
      assert.is_nil(err.curl_code)
      local id, serr = core.session():submit(req)
      assert.is_nil(id)
      assert.are.same({ "invalid_request", 0 }, { serr.kind, serr.request_bytes })
    end

    it("refuses a NUL in the url, the method or a header", function()
      refused{ url = server.base .. "/ok\0/../x" }
      refused{ url = server.base .. "/ok", method = "GET\0POST" }
      refused{ url = server.base .. "/ok", headers = { ["X-A"] = "a\0b" } }
      refused{ url = server.base .. "/ok", headers = { ["X-A\0b"] = "a" } }
    end)

    it("refuses header names outside RFC 9110 tchar and values with controls", function()
      refused{ url = server.base .. "/ok", headers = { ["X A"] = "v" } }
      refused{ url = server.base .. "/ok", headers = { ["X:A"] = "v" } }
      refused{ url = server.base .. "/ok", headers = { ["X-\195\169"] = "v" } }
      refused{ url = server.base .. "/ok", headers = { ["X-A"] = "a\rb" } }
      refused{ url = server.base .. "/ok", headers = { ["X-A"] = "a\127b" } }
      refused{ url = server.base .. "/ok", method = "GET /x" }
      -- Every tchar, a tab and obs-text are fine.
      assert(core.session():request{ url = server.base .. "/ok",
        headers = { ["!#$%&'*+-.^_`|~09azAZ"] = "a\tb \200" } })
    end)

    it("reports no curl failure as a kind: out-of-memory or otherwise, only curl_code", function()
      local err = fail{ url = "ftp://127.0.0.1:" .. server.port .. "/" }
      assert.are.same({ CURLE.UNSUPPORTED_PROTOCOL, 0 }, { err.curl_code, err.request_bytes })
    end)

    it("lets a body hold NUL bytes", function()
      assert(core.session():request{ url = server.base .. "/ok", method = "POST", body = "a\0b" })
    end)

    it("raises for a NUL in a session option", function()
      for _, key in ipairs{ "cafile", "capath", "user_agent" } do
        local ok, err = pcall(core.session, { [key] = "x\0y" })
        assert.is_false(ok)
        assert.matches("'" .. key .. "' must not contain a NUL byte", err)
      end
    end)
  end)
end)
