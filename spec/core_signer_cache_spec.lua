-- signer:sign remembers the last second's signature: the answers must stay
-- exactly what signing afresh gives, checked against the openssl CLI, for a
-- repeated second, a new one, and a return to an older one.
local core = require "maintenance_report.core"
local shell = require "helpers.shell"

local function openssl_signature(key, signing_string)
  return shell.run(("printf '%%s' %s | openssl dgst -sha1 -hmac %s -binary | openssl base64 -A"):format(
    shell.quote(signing_string), shell.quote(key)))
end

local function expected(epoch, date, key, headers_list, names)
  local sts = names[1] .. ": " .. date .. "\n" .. names[2] .. ": market"
  return ('hmac id="AKIDcache", algorithm="hmac-sha1", headers="%s", signature="%s"'):format(
    headers_list, openssl_signature(key, sts)), sts, epoch
end

describe("core.signer signature cache", function()
  local SECONDS = { { 1521461320, "Mon, 19 Mar 2018 12:08:40 GMT" }, { 1521461321, "Mon, 19 Mar 2018 12:08:41 GMT" } }

  for _, form in ipairs{ { "x-date x-source", "X-Date", "X-Source" }, { "date source", "Date", "Source" } } do
    it("gives the openssl signature for a repeated, a new and an older second (" .. form[1] .. ")", function()
      local signer = assert(core.signer{ secret_id = "AKIDcache", secret_key = "k3y", source = "market",
        headers = form[1] })
      local names = { form[1]:match("^(%S+) (%S+)$") }
      for _, i in ipairs{ 1, 1, 2, 2, 1 } do
        local epoch, date = SECONDS[i][1], SECONDS[i][2]
        local headers, sts = assert(signer:sign(epoch))
        local authorization, want_sts = expected(epoch, date, "k3y", form[1], names)
        assert.are.equal(want_sts, sts)
        assert.are.same({ [form[2]] = date, [form[3]] = "market", Authorization = authorization }, headers)
      end
      signer:close()
    end)
  end

  it("returns a new headers table each time: changing one does not change the next", function()
    local signer = assert(core.signer{ secret_id = "AKIDcache", secret_key = "k3y", source = "market" })
    local first = assert(signer:sign(1521461320))
    first.Authorization, first["X-Date"] = "changed", nil
    local second = assert(signer:sign(1521461320))
    assert.are_not.equal(first, second)
    assert.are.equal("Mon, 19 Mar 2018 12:08:40 GMT", second["X-Date"])
    assert.truthy(second.Authorization:find('signature="', 1, true))
  end)

  it("still refuses a date out of range after caching another", function()
    local signer = assert(core.signer{ secret_id = "AKIDcache", secret_key = "k3y", source = "market" })
    assert(signer:sign(1521461320))
    local headers, err = signer:sign(1e300)
    assert.is_nil(headers)
    assert.are.equal("string", type(err))
  end)
end)
