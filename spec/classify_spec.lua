-- The classifier: one decision per failure, held to the money rule. libcurl
-- codes are read by name from curl/curl.h here, not from the classifier's table.
local classify = require "maintenance_report.classify"
local errors = require "maintenance_report.errors"

local read_file = require("helpers.shell").read_file

-- CURLE_* name → value, by counting the enumerators of CURLcode in curl.h.
local function curl_codes()
  local header
  for _, path in ipairs{ "/usr/include/x86_64-linux-gnu/curl/curl.h", "/usr/include/curl/curl.h",
    "/usr/include/aarch64-linux-gnu/curl/curl.h" } do
    header = header or read_file(path)
  end
  assert(header, "curl/curl.h not found")
  local body = assert(header:match("CURLE_OK = 0,(.-)CURL_LAST"), "CURLcode enum not found")
  local codes, n = { CURLE_OK = 0 }, 0
  for line in body:gmatch("[^\n]+") do
    local name = line:match("^%s*(CURLE_[%w_]+)%s*[,=]")
    if name then
      n = n + 1
      codes[name] = n
    end
  end
  return codes
end

describe("classify.transport", function()
  local C = curl_codes()

  local function curl(name, facts)
    facts = facts or {}
    facts.curl_code = assert(C[name], name)
    return classify.transport(facts)
  end

  it("reads curl.h as expected (a sanity check of the oracle)", function()
    assert.are.equal(1, C.CURLE_UNSUPPORTED_PROTOCOL)
    assert.are.equal(6, C.CURLE_COULDNT_RESOLVE_HOST)
    assert.are.equal(7, C.CURLE_COULDNT_CONNECT)
    assert.are.equal(28, C.CURLE_OPERATION_TIMEDOUT)
  end)

  it("calls only the allowlist 'never sent', and only with no request byte written", function()
    for _, case in ipairs{
      { "CURLE_COULDNT_RESOLVE_HOST", "dns", "network" },
      { "CURLE_COULDNT_RESOLVE_PROXY", "dns", "network" },
      { "CURLE_COULDNT_CONNECT", "connect", "network" },
      { "CURLE_SSL_CONNECT_ERROR", "tls", "tls" },
      { "CURLE_PEER_FAILED_VERIFICATION", "tls", "tls" },
      { "CURLE_SSL_CACERT_BADFILE", "tls", "tls" },
    } do
      local t = curl(case[1], { request_bytes = 0, connected = false })
      assert.are.equal(case[2], t.transport, case[1])
      assert.are.equal(case[3], t.kind, case[1])
      assert.is_false(t.sent, case[1])
      -- the same code with bytes written: the facts disagree, so it may have been sent
      assert.is_true(curl(case[1], { request_bytes = 40 }).sent, case[1])
    end
    local t = curl("CURLE_OPERATION_TIMEDOUT", { request_bytes = 0, pretransfer = false })
    assert.are.same({ "connect_timeout", "timeout", false }, { t.transport, t.kind, t.sent })
    -- the transfer had begun: a partly written request counts no bytes yet
    t = curl("CURLE_OPERATION_TIMEDOUT", { request_bytes = 0, pretransfer = true })
    assert.are.same({ "timeout", "timeout", true }, { t.transport, t.kind, t.sent })
    t = curl("CURLE_OPERATION_TIMEDOUT", { request_bytes = 0 }) -- a transport that cannot tell
    assert.are.same({ "timeout", "timeout", true }, { t.transport, t.kind, t.sent })
    -- libcurl could not count the bytes
    assert.is_true(curl("CURLE_COULDNT_CONNECT", { request_bytes = -1 }).sent)
  end)

  it("takes a malformed status line (CURLE_UNSUPPORTED_PROTOCOL after sending) as may-have-been-sent", function()
    for _, name in ipairs{ "CURLE_UNSUPPORTED_PROTOCOL", "CURLE_WEIRD_SERVER_REPLY" } do
      local t = curl(name, { request_bytes = 93, connected = true })
      assert.are.same({ "protocol", "protocol", true, false }, { t.transport, t.kind, t.sent, t.retryable })
      -- even when no byte is reported: it is not on the allowlist
      assert.is_true(curl(name, { request_bytes = 0 }).sent)
    end
  end)

  it("takes every code off the allowlist as may-have-been-sent, known or not", function()
    for _, name in ipairs{ "CURLE_GOT_NOTHING", "CURLE_SEND_ERROR", "CURLE_RECV_ERROR", "CURLE_PARTIAL_FILE",
      "CURLE_OUT_OF_MEMORY", "CURLE_URL_MALFORMAT", "CURLE_WRITE_ERROR", "CURLE_ABORTED_BY_CALLBACK",
      "CURLE_HTTP2", "CURLE_SSL_SHUTDOWN_FAILED" } do
      local t = curl(name, { request_bytes = 0, connected = false })
      assert.is_true(t.sent, name)
      assert.are.equal("network", t.kind, name)
    end
    assert.is_true(classify.transport{ curl_code = 9999, request_bytes = 0 }.sent)
  end)

  it("takes the body cap as a protocol error that may have been sent", function()
    local t = classify.transport{ curl_code = C.CURLE_WRITE_ERROR, too_large = true, request_bytes = 90 }
    assert.are.same({ "too_large", "protocol", true, false }, { t.transport, t.kind, t.sent, t.retryable })
  end)

  it("honours a plugged transport's sent = false only for an allowlisted kind", function()
    assert.is_false(classify.transport{ kind = "dns", sent = false }.sent)
    assert.is_false(classify.transport{ kind = "connect_timeout", request_bytes = 0 }.sent)
    assert.is_true(classify.transport{ kind = "dns" }.sent) -- says nothing: may have been sent
    assert.is_true(classify.transport{ kind = "timeout", sent = false }.sent)
    assert.is_true(classify.transport{ kind = "network", request_bytes = 0 }.sent)
    local odd = classify.transport{ kind = "weird", sent = false }
    assert.are.same({ "network", "network", true }, { odd.transport, odd.kind, odd.sent })
    local refused = classify.transport{ kind = "invalid_request", request_bytes = 0, message = "bad header" }
    assert.are.same({ "invalid_input", false, false }, { refused.kind, refused.sent, refused.retryable })
  end)

  it("maps every transport kind to an error kind the library documents", function()
    for kind in pairs(classify.TRANSPORT_KINDS) do
      local t = classify.transport{ kind = kind, request_bytes = 0 }
      assert.is_string(errors.KINDS[t.kind], kind)
    end
  end)
end)

describe("the transports stay within classify.TRANSPORT_KINDS", function()
  it("the cosocket transport names no other kind", function()
    local src = assert(read_file("lua/maintenance_report/transport/ngx.lua"))
    local seen = 0
    for kind in src:gmatch('return nil, "([%w_]+)",') do
      seen = seen + 1
      assert.is_string(classify.TRANSPORT_KINDS[kind], kind)
    end
    for kind in src:gmatch('fail%("([%w_]+)"') do
      seen = seen + 1
      assert.is_string(classify.TRANSPORT_KINDS[kind], kind)
    end
    for a, b in src:gmatch('== "timeout" and "([%w_]+)" or "([%w_]+)"') do
      seen = seen + 1
      assert.is_string(classify.TRANSPORT_KINDS[a], a)
      assert.is_string(classify.TRANSPORT_KINDS[b], b)
    end
    for kind in src:gmatch('return "([%w_]+)" end') do
      seen = seen + 1
      assert.is_string(classify.TRANSPORT_KINDS[kind], kind)
    end
    assert.is_true(seen >= 8, "the scan found too few kinds: " .. seen)
  end)

  it("the C core names no kind but invalid_request", function()
    local names = {}
    local p = assert(io.popen("cat src/*.c"))
    local src = p:read("*a")
    p:close()
    for kind in src:gmatch('push_transport_error%(L, "([%w_]+)"') do names[kind] = true end
    for kind in src:gmatch('lua_pushliteral%(L, "([%w_]+)"%);%s*lua_setfield%(L, %-2, "kind"%)') do
      names[kind] = true
    end
    for kind in pairs(names) do assert.are.equal("invalid_request", kind) end
  end)

  it("the README lists every transport kind and every error kind", function()
    local readme = assert(read_file("README.md"))
    for kind in pairs(classify.TRANSPORT_KINDS) do
      assert.truthy(readme:find("`" .. kind .. "`", 1, true), "README does not list transport kind " .. kind)
    end
    for kind in pairs(errors.KINDS) do
      assert.truthy(readme:find("`" .. kind .. "`", 1, true), "README does not list error kind " .. kind)
    end
  end)
end)

describe("classify.http", function()
  -- kind and retryable only (the third result, the text's entry, is spec/gateway_texts_spec.lua's)
  local function http(status, text)
    local kind, retryable = classify.http(status, text)
    return { kind, retryable }
  end

  it("takes the gateway's text first and the status second", function()
    assert.are.same({ "auth", false }, http(401, "HMAC signature does not match."))
    -- the signing guide gives 403 for the same text
    assert.are.same({ "auth", false }, http(403, "HMAC signature does not match"))
    assert.are.same({ "forbidden", false }, http(403, "Found no validate usage plan."))
    assert.are.same({ "not_found", false }, http(404, "There is no api match uri[/x]."))
    assert.are.same({ "rate_limited", true }, http(429, "API rate limit exceeded."))
    assert.are.same({ "quota_exceeded", false }, http(429, "API quota exceeded."))
    assert.are.same({ "auth", false }, http(401, nil))
    assert.are.same({ "http", true }, http(500, nil))
    assert.are.same({ "http", true }, http(502, "Bad Gateway."))
    assert.are.same({ "http", false }, http(418, nil))
  end)
end)

describe("classify.order_outcome", function()
  local function err(kind, fields)
    return errors.new(kind, "x", fields)
  end

  it("is not_placed only when the failure proves it", function()
    assert.are.equal("not_placed", classify.order_outcome(err("network", { transport = "dns", sent = false })))
    assert.are.equal("not_placed", classify.order_outcome(err("invalid_input")))
    for _, kind in ipairs{ "auth", "forbidden", "not_found", "rate_limited", "quota_exceeded" } do
      assert.are.equal("not_placed", classify.order_outcome(err(kind, { http_status = 401 })), kind)
    end
    assert.are.equal("not_placed", classify.order_outcome(err("api", { code = "20704" })))
  end)

  it("is unknown for everything else: sent transport failures, 5xx, malformed replies, other codes", function()
    assert.are.equal("unknown", classify.order_outcome(err("network", { transport = "network", sent = true })))
    assert.are.equal("unknown", classify.order_outcome(err("protocol", { transport = "protocol", sent = true })))
    assert.are.equal("unknown", classify.order_outcome(err("http", { http_status = 500 })))
    assert.are.equal("unknown", classify.order_outcome(err("protocol")))
    -- -1 "服务或其它异常" says nothing about whether the order was bought
    assert.are.equal("unknown", classify.order_outcome(err("api", { code = "-1" })))
    assert.are.equal("unknown", classify.order_outcome(err("api", { code = "31337" })))
  end)

  it("lets the client resend an order only when nothing left and a retry may help", function()
    assert.is_true(classify.order_retryable(classify.transport{ kind = "connect", request_bytes = 0 }))
    assert.is_false(classify.order_retryable(classify.transport{ kind = "tls", request_bytes = 0 }))
    assert.is_false(classify.order_retryable(classify.transport{ kind = "network", request_bytes = 0 }))
    assert.is_false(classify.order_retryable(err("http", { http_status = 503, retryable = true })))
  end)
end)
