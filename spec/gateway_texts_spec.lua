-- Every text the gateway publishes (shared/reference/gateway.md) is classified
-- by its wording first and its status second, each with a one-line hint, and
-- the README lists each one. The texts and the expected kinds are written here
-- from gateway.md (spec/helpers/fault_matrix.lua holds the texts as sent).
local classify = require "maintenance_report.classify"
local errors = require "maintenance_report.errors"
local hints = require "maintenance_report.cli.hints"
local fm = require "helpers.fault_matrix"
local read_file = require("helpers.shell").read_file

-- id → kind, from the wording of each text in gateway.md.
local KIND = {
  apikey_invalid = "auth", xdate_required = "auth", xdate_skew = "auth", date_required = "auth",
  id_or_signature_missing = "auth", multiple_header = "auth", header_required = "auth", algorithm = "auth",
  format = "auth", headers_invalid = "auth", cannot_verify = "auth", mismatch = "auth",
  auth_header_required = "auth", oauth = "auth",
  no_usage_plan = "forbidden", client_ip = "forbidden", ip_denied = "forbidden", params_fail = "forbidden",
  header_param = "forbidden", path_param = "forbidden", query_param = "forbidden", body_param = "forbidden",
  form_content_type = "forbidden", https_not_allowed = "forbidden", http_not_allowed = "forbidden",
  cors = "forbidden",
  no_micro_service = "not_found", no_host = "not_found", get_host_fail = "not_found",
  method_unsupported = "not_found", no_api = "not_found", no_match_host = "not_found", no_match_env = "not_found",
  no_match_default_env = "not_found", no_match_uri = "not_found", no_match_method = "not_found",
  method_not_allowed = "not_found",
  rate_limit = "rate_limited", quota = "quota_exceeded",
  api_config = "http", tsf_config = "http", mock_config = "http", cors_config = "http",
  client_closed = "network",
  query_params_error = "http", internal_error = "http", bad_gateway = "http", gateway_timeout = "http",
}

-- The texts gateway.md gives in both tables, with the other document's status.
local OTHER_STATUS = { mismatch = 403, cannot_verify = 403, id_or_signature_missing = 403, headers_invalid = 403,
  header_required = 403, date_required = 403, format = 403 }

describe("gateway texts", function()
  it("classifies every published text by its wording, with or without its trailing period", function()
    local seen = {}
    for _, t in ipairs(fm.GATEWAY_TEXTS) do
      local id, status, text = t[1], t[2], t[3]
      seen[id] = true
      for _, variant in ipairs{ text, (text:gsub("%.$", "")), text .. " " } do
        local kind, _, entry = classify.http(status, variant)
        assert.are.equal(KIND[id], kind, variant)
        assert.are.equal(id, entry and entry.id, variant)
      end
    end
    for id in pairs(KIND) do assert.is_true(seen[id], "no published text for " .. id) end
  end)

  it("takes the text over the status: both documented statuses, and any other, give the same kind", function()
    for _, t in ipairs(fm.GATEWAY_TEXTS) do
      local id, text = t[1], t[3]
      for _, status in ipairs{ 401, 403, OTHER_STATUS[id] or t[2], 400, 500 } do
        assert.are.equal(KIND[id], (classify.http(status, text)), text .. " with " .. status)
      end
    end
  end)

  it("keeps the status as the fallback for a text nobody published", function()
    assert.are.equal("auth", (classify.http(401, "something new")))
    assert.are.equal("forbidden", (classify.http(403, nil)))
    assert.are.equal("not_found", (classify.http(404, "no such thing")))
    assert.are.equal("rate_limited", (classify.http(429, nil)))
    assert.are.same({ "http", true }, { classify.http(503, "<html>") })
  end)

  it("reads the app-auth echo as a signature mismatch", function()
    local kind, _, entry = classify.http(401, "HMAC signature does not match, Server StringToSign:x-date: a#GET#x")
    assert.are.same({ "auth", "mismatch" }, { kind, entry.id })
  end)

  it("calls an order not placed only when the gateway answered on its own", function()
    for _, t in ipairs(fm.GATEWAY_TEXTS) do
      local id, status, text = t[1], t[2], t[3]
      local kind, retryable, entry = classify.http(status, text)
      local err = errors.new(kind, text, { http_status = status, code = text, retryable = retryable,
        gateway_text = entry.id })
      local backend = id == "client_closed" or status >= 500
      assert.are.equal(backend and "unknown" or "not_placed", classify.order_outcome(err), text)
      assert.is_false(classify.order_retryable(err)) -- no HTTP answer ever sends an order again
    end
  end)

  it("has a one-line hint for every text, saying what to check for auth texts", function()
    for id, kind in pairs(KIND) do
      local hint = hints.GATEWAY[id]
      assert.is_string(hint, id)
      assert.is_nil(hint:find("[\r\n]"), id)
      local err = errors.new(kind, "x", { gateway_text = id })
      assert.are.equal(hint, hints.hint(err))
      if kind == "auth" then
        assert.truthy(hint:find("check") or hint:find("compare") or hint:find("fix") or hint:find("use")
          or hint:find("bind") or hint:find("send") or hint:find("cannot"), id .. ": " .. hint)
      end
    end
  end)

  it("keeps the money warning over a text's hint for an order that may have been charged", function()
    local err = errors.new("http", "Bad Gateway.", { gateway_text = "bad_gateway", order_outcome = "unknown" })
    assert.truthy(hints.hint(err):find("do NOT order", 1, true))
  end)

  it("lists every text with its kind and hint in the README's Errors section", function()
    local readme = assert(read_file("README.md"))
    local section = assert(readme:match("\n### Errors\n(.-)\n###? "), "no Errors section")
    for _, t in ipairs(fm.GATEWAY_TEXTS) do
      local id = t[1]
      local row
      for line in section:gmatch("[^\n]+") do
        if line:find("^| `" .. id .. "` | %d%d%d") then row = line break end
      end
      assert.is_string(row, "README Errors has no row for " .. id)
      assert.truthy(row:find("`" .. KIND[id] .. "`", 1, true), id .. " kind")
      assert.truthy(row:find(hints.GATEWAY[id], 1, true), id .. " hint")
      local bare = t[3]:gsub("%.$", ""):gsub("127%.0%.0%.1", "…")
      assert.truthy(row:find(bare:sub(1, 20), 1, true) or row:find("xxx", 1, true), id .. " text")
    end
  end)
end)
