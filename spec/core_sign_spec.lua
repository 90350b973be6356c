-- Known answers for the C signer: RFC 2202 / RFC 4231 HMAC vectors, and the exact
-- gateway headers checked against the openssl CLI (an independent implementation).
local core = require "maintenance_report.core"
local shell = require "helpers.shell"

local function hex(s)
  return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

local function rep_byte(byte, n)
  return string.char(byte):rep(n)
end

local function range_bytes(from, to)
  local t = {}
  for b = from, to do t[#t + 1] = string.char(b) end
  return table.concat(t)
end

describe("core.hmac", function()
  -- RFC 2202 section 3, test cases 1–7.
  local rfc2202 = {
    { rep_byte(0x0b, 20), "Hi There", "b617318655057264e28bc0b6fb378c8ef146be00" },
    { "Jefe", "what do ya want for nothing?", "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79" },
    { rep_byte(0xaa, 20), rep_byte(0xdd, 50), "125d7342b9ac11cd91a39af48aa17b4f63f175d3" },
    { range_bytes(1, 25), rep_byte(0xcd, 50), "4c9007f4026250c6bc8414f9bf50c86c2d7235da" },
    { rep_byte(0x0c, 20), "Test With Truncation", "4c1a03424b55e07fe7f27be1d58bb9324a9a5a04" },
    { rep_byte(0xaa, 80), "Test Using Larger Than Block-Size Key - Hash Key First",
      "aa4ae5e15272d00e95705637ce8a3b55ed402112" },
    { rep_byte(0xaa, 80), "Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data",
      "e8e99d0f45237d786d6bbaa7965c7808bbff1a91" },
  }
  for i, case in ipairs(rfc2202) do
    it("matches RFC 2202 test case " .. i .. " (SHA-1)", function()
      assert.are.equal(case[3], hex(core.hmac("hmac-sha1", case[1], case[2])))
    end)
  end

  -- RFC 4231 section 4, test cases 1–4, 6 and 7 (5 is a truncated output).
  local rfc4231 = {
    { 1, rep_byte(0x0b, 20), "Hi There",
      "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
      "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59cfaea9ea9076ede7f4af152e8b2fa9cb6",
      "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4"
        .. "be9d914eeb61f1702e696c203a126854" },
    { 2, "Jefe", "what do ya want for nothing?",
      "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
      "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649",
      "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fd"
        .. "caeab1a34d4a6b4b636e070a38bce737" },
    { 3, rep_byte(0xaa, 20), rep_byte(0xdd, 50),
      "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
      "88062608d3e6ad8a0aa2ace014c8a86f0aa635d947ac9febe83ef4e55966144b2a5ab39dc13814b94e3ab6e101a34f27",
      "fa73b0089d56a284efb0f0756c890be9b1b5dbdd8ee81a3655f83e33b2279d39bf3e848279a722c806b485a47e67c807"
        .. "b946a337bee8942674278859e13292fb" },
    { 4, range_bytes(1, 25), rep_byte(0xcd, 50),
      "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
      "3e8a69b7783c25851933ab6290af6ca77a9981480850009cc5577c6e1f573b4e6801dd23c4a7d679ccf8a386c674cffb",
      "b0ba465637458c6990e5a8c5f61d4af7e576d97ff94b872de76f8050361ee3dba91ca5c11aa25eb4d679275cc5788063"
        .. "a5f19741120c4f2de2adebeb10a298dd" },
    { 6, rep_byte(0xaa, 131), "Test Using Larger Than Block-Size Key - Hash Key First",
      "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
      "4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c60c2ef6ab4030fe8296248df163f44952",
      "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f3526b56d037e05f2598bd0fd2215d6a1e52"
        .. "95e64f73f63f0aec8b915a985d786598" },
    { 7, rep_byte(0xaa, 131), "This is a test using a larger than block-size key and a larger than block-size data."
        .. " The key needs to be hashed before being used by the HMAC algorithm.",
      "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
      "6617178e941f020d351e2f254e8fd32c602420feb0b8fb9adccebb82461e99c5a678cc31e799176d3860e6110c46523e",
      "e37b6a775dc87dbaa4dfa9f96e5e3ffddebd71f8867289865df5a32d20cdc944b6022cac3c4982b10d5eeb55c3e4de15"
        .. "134676fb6de0446065c97440fa8c6a58" },
  }
  for _, case in ipairs(rfc4231) do
    local n, key, data = case[1], case[2], case[3]
    it("matches RFC 4231 test case " .. n .. " (SHA-256)", function()
      assert.are.equal(case[4], hex(core.hmac("hmac-sha256", key, data)))
    end)
    it("matches RFC 4231 test case " .. n .. " (SHA-384)", function()
      assert.are.equal(case[5], hex(core.hmac("hmac-sha384", key, data)))
    end)
    it("matches RFC 4231 test case " .. n .. " (SHA-512)", function()
      assert.are.equal(case[6], hex(core.hmac("hmac-sha512", key, data)))
    end)
  end

  it("rejects an unknown algorithm as a programmer error", function()
    assert.has_error(function() core.hmac("hmac-md5", "k", "d") end)
  end)
end)

describe("core.base64", function()
  -- RFC 4648 section 10.
  local vectors = { { "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
    { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" } }
  for _, v in ipairs(vectors) do
    it("encodes '" .. v[1] .. "' as in RFC 4648", function()
      assert.are.equal(v[2], core.base64(v[1]))
    end)
  end
end)

describe("core.http_date", function()
  it("formats RFC 1123 dates in English GMT", function()
    -- RFC 7231's own example, and the vendor sample's date.
    assert.are.equal("Sun, 06 Nov 1994 08:49:37 GMT", core.http_date(784111777))
    assert.are.equal("Mon, 19 Mar 2018 12:08:40 GMT", core.http_date(1521461320))
    assert.are.equal("Thu, 01 Jan 1970 00:00:00 GMT", core.http_date(0))
  end)

  it("ignores the process locale", function()
    -- Even where a non-English locale is installed, the names come from fixed tables.
    os.setlocale("de_DE.UTF-8")
    os.setlocale("zh_CN.UTF-8")
    local date = core.http_date(784111777)
    os.setlocale("C")
    assert.are.equal("Sun, 06 Nov 1994 08:49:37 GMT", date)
  end)

  it("gives now when called without a date", function()
    local date = core.http_date()
    assert.truthy(date:match("^%a%a%a, %d%d %a%a%a %d%d%d%d %d%d:%d%d:%d%d GMT$"))
    assert.are.equal(os.date("!%d %b %Y", os.time()):sub(1, 11), date:sub(6, 16))
  end)
end)

describe("core.sign", function()
  local epoch = 1521461320
  local date = "Mon, 19 Mar 2018 12:08:40 GMT"

  local function openssl_signature(algorithm, key, signing_string)
    local digest = algorithm:match("^hmac%-(sha%d+)$")
    return shell.run(("printf '%%s' %s | openssl dgst -%s -hmac %s -binary | openssl base64 -A"):format(
      shell.quote(signing_string), digest, shell.quote(key)))
  end

  for _, algorithm in ipairs{ "hmac-sha1", "hmac-sha256", "hmac-sha384", "hmac-sha512" } do
    it("builds the exact X-Date/X-Source/Authorization set with " .. algorithm, function()
      local headers = assert(core.sign{ secret_id = "AKIDtest123", secret_key = "s3cr3t key!",
        source = "market", algorithm = algorithm, date = epoch })
      local signature = openssl_signature(algorithm, "s3cr3t key!",
        "x-date: " .. date .. "\nx-source: market")
      assert.are.equal(date, headers["X-Date"])
      assert.are.equal("market", headers["X-Source"])
      assert.are.equal(('hmac id="AKIDtest123", algorithm="%s", headers="x-date x-source", signature="%s"')
        :format(algorithm, signature), headers.Authorization)
      assert.is_nil(headers.Date)
    end)
  end

  it("signs the legacy 'date source' form with Date and Source headers", function()
    local headers = assert(core.sign{ secret_id = "AKIDtest123", secret_key = "k", source = "src",
      headers = "date source", date = epoch })
    local signature = openssl_signature("hmac-sha1", "k", "date: " .. date .. "\nsource: src")
    assert.are.equal(date, headers.Date)
    assert.are.equal("src", headers.Source)
    assert.is_nil(headers["X-Date"])
    assert.are.equal(('hmac id="AKIDtest123", algorithm="hmac-sha1", headers="date source", signature="%s"')
      :format(signature), headers.Authorization)
  end)

  it("signs headers in the order listed, lower-casing their names", function()
    local headers = assert(core.sign{ secret_id = "id", secret_key = "k", date = epoch,
      headers = "X-Source X-Date" })
    local signature = openssl_signature("hmac-sha1", "k", "x-source: market\nx-date: " .. date)
    assert.truthy(headers.Authorization:find('headers="x-source x-date"', 1, true))
    assert.truthy(headers.Authorization:find('signature="' .. signature .. '"', 1, true))
  end)

  it("signs extra headers given their values", function()
    local headers = assert(core.sign{ secret_id = "id", secret_key = "k", date = epoch,
      headers = "x-date x-source content-md5", extra = { ["Content-MD5"] = "abc" } })
    local signature = openssl_signature("hmac-sha1", "k",
      "x-date: " .. date .. "\nx-source: market\ncontent-md5: abc")
    assert.truthy(headers.Authorization:find('signature="' .. signature .. '"', 1, true))
  end)

  it("rejects CR/LF injection in the source and in extra values", function()
    local h, err = core.sign{ secret_id = "id", secret_key = "k", source = "market\r\nX-Evil: 1" }
    assert.is_nil(h)
    assert.matches("CR, LF", err)
    h, err = core.sign{ secret_id = "id", secret_key = "k", headers = "x-date x-a",
      extra = { ["x-a"] = "v\nx" } }
    assert.is_nil(h)
    assert.matches("CR, LF", err)
  end)

  it("rejects a secret id that would break out of the quoted field", function()
    local h, err = core.sign{ secret_id = 'id", signature="forged', secret_key = "k" }
    assert.is_nil(h)
    assert.matches("quote", err)
  end)

  it("rejects an unknown algorithm, a missing date header and an unknown signed header", function()
    assert.is_nil((core.sign{ secret_id = "id", secret_key = "k", algorithm = "hmac-md5" }))
    assert.is_nil((core.sign{ secret_id = "id", secret_key = "k", headers = "x-source" }))
    assert.is_nil((core.sign{ secret_id = "id", secret_key = "k", headers = "x-date x-unknown" }))
  end)

  it("raises on wrong argument types", function()
    assert.has_error(function() core.sign("nope") end)
    assert.has_error(function() core.sign{ secret_id = 1, secret_key = "k" } end)
    assert.has_error(function() core.sign{ secret_id = "id" } end)
    assert.has_error(function() core.sign{ secret_id = "id", secret_key = "k", date = "today" } end)
  end)

  it("never puts the secret key in its output", function()
    local headers = assert(core.sign{ secret_id = "id", secret_key = "VERY-SECRET-KEY" })
    for _, v in pairs(headers) do assert.is_nil(v:find("VERY-SECRET-KEY", 1, true)) end
  end)
end)

describe("core.sign string_to_sign and NUL bytes", function()
  it("returns the exact string it signed as a second value", function()
    local headers, sts = core.sign{ secret_id = "id", secret_key = "k", date = 1521461320 }
    assert.truthy(headers)
    assert.are.equal("x-date: Mon, 19 Mar 2018 12:08:40 GMT\nx-source: market", sts)
  end)

  for _, key in ipairs{ "secret_id", "secret_key", "source", "algorithm", "headers" } do
    it("refuses a NUL byte in " .. key .. " instead of signing a shorter string", function()
      local opts = { secret_id = "id", secret_key = "k", source = "market", algorithm = "hmac-sha1",
        headers = "x-date x-source", date = 0 }
      opts[key] = opts[key] .. "\0x"
      local h, err = core.sign(opts)
      assert.is_nil(h)
      assert.are.equal("option '" .. key .. "' must not contain a NUL byte", err)
      local sg, serr = core.signer{ secret_id = opts.secret_id, secret_key = opts.secret_key,
        source = opts.source, algorithm = opts.algorithm, headers = opts.headers }
      assert.is_nil(sg)
      assert.are.equal("option '" .. key .. "' must not contain a NUL byte", serr)
    end)
  end

  it("refuses an extra header whose name only matches up to a NUL byte", function()
    assert.is_nil((core.sign{ secret_id = "id", secret_key = "k", headers = "x-date x-a",
      extra = { ["x-a\0zz"] = "v" } }))
  end)

  it("raises for a NUL in core.hmac's algorithm", function()
    assert.has_error(function() core.hmac("hmac-sha1\0x", "k", "d") end)
  end)
end)

describe("core.signer", function()
  local epoch, date = 1521461320, "Mon, 19 Mar 2018 12:08:40 GMT"

  local function openssl_signature(algorithm, key, signing_string)
    local digest = algorithm:match("^hmac%-(sha%d+)$")
    return shell.run(("printf '%%s' %s | openssl dgst -%s -hmac %s -binary | openssl base64 -A"):format(
      shell.quote(signing_string), digest, shell.quote(key)))
  end

  for _, algorithm in ipairs{ "hmac-sha1", "hmac-sha256", "hmac-sha384", "hmac-sha512" } do
    it("signs as the openssl CLI does with " .. algorithm, function()
      local signer = assert(core.signer{ secret_id = "AKIDtest123", secret_key = "s3cr3t key!",
        source = "market", algorithm = algorithm })
      local headers, sts = signer:sign(epoch)
      local expected_sts = "x-date: " .. date .. "\nx-source: market"
      assert.are.equal(expected_sts, sts)
      assert.are.equal(date, headers["X-Date"])
      assert.are.equal("market", headers["X-Source"])
      assert.are.equal(('hmac id="AKIDtest123", algorithm="%s", headers="x-date x-source", signature="%s"')
        :format(algorithm, openssl_signature(algorithm, "s3cr3t key!", expected_sts)), headers.Authorization)
    end)
  end

  it("signs the legacy 'date source' list, and now when no date is given", function()
    local signer = assert(core.signer{ secret_id = "id", secret_key = "k", source = "src", headers = "date source" })
    local headers, sts = signer:sign(epoch)
    assert.are.equal(("hmac id=\"id\", algorithm=\"hmac-sha1\", headers=\"date source\", signature=\"%s\"")
      :format(openssl_signature("hmac-sha1", "k", "date: " .. date .. "\nsource: src")), headers.Authorization)
    assert.are.equal("date: " .. date .. "\nsource: src", sts)
    local now = signer:sign()
    assert.truthy(now.Date:match("^%a%a%a, %d%d %a%a%a %d%d%d%d %d%d:%d%d:%d%d GMT$"))
  end)

  it("returns nil, message for bad values, as core.sign does", function()
    local cases = {
      { algorithm = "hmac-md5" }, { source = "a\r\nb" }, { headers = "x-source" },
      { headers = "x-date content-md5" }, { secret_id = 'a"b' }, { secret_id = "" }, { secret_key = "" },
    }
    for _, case in ipairs(cases) do
      local opts = { secret_id = "id", secret_key = "k" }
      for k, v in pairs(case) do opts[k] = v end
      local sg, err = core.signer(opts)
      assert.is_nil(sg)
      assert.is_string(err)
    end
  end)

  it("raises on wrong types and unknown options", function()
    assert.has_error(function() core.signer("x") end)
    assert.has_error(function() core.signer{ secret_id = 1, secret_key = "k" } end)
    assert.has_error(function() core.signer{ secret_id = "id" } end)
    assert.has_error(function() core.signer{ secret_id = "id", secret_key = "k", date = 0 } end)
    assert.has_error(function() core.signer{ secret_id = "id", secret_key = "k", [1] = "x" } end)
    assert.has_error(function() assert(core.signer{ secret_id = "id", secret_key = "k" }):sign("today") end)
  end)

  it("scrubs every occurrence of the key, and returns the very same string when there is none", function()
    local signer = assert(core.signer{ secret_id = "id", secret_key = "SECRET" })
    assert.are.equal("a [REDACTED] b [REDACTED][REDACTED] c", signer:scrub("a SECRET b SECRETSECRET c"))
    assert.are.equal("SECRE", signer:scrub("SECRE"))
    assert.are.equal("[REDACTED]", signer:scrub("SECRET"))
    assert.are.equal("SSECRE[REDACTED]T", signer:scrub("SSECRESECRETT"))
    local s = "nothing to hide" .. ("x"):rep(100)
    assert.are.equal(s, signer:scrub(s))
    assert.are.equal("\0[REDACTED]\0", signer:scrub("\0SECRET\0"))
  end)

  it("never shows the key: not in tostring, not in its output", function()
    local signer = assert(core.signer{ secret_id = "id", secret_key = "VERY-SECRET-KEY" })
    assert.is_nil(tostring(signer):find("VERY-SECRET-KEY", 1, true))
    local headers, sts = signer:sign(0)
    for _, v in pairs(headers) do assert.is_nil(v:find("VERY-SECRET-KEY", 1, true)) end
    assert.is_nil(sts:find("VERY-SECRET-KEY", 1, true))
  end)

  it("refuses to sign or scrub once closed, and closes twice without harm", function()
    local signer = assert(core.signer{ secret_id = "id", secret_key = "k" })
    signer:close()
    signer:close()
    assert.matches("closed", tostring(signer))
    assert.has_error(function() signer:sign(0) end)
    assert.has_error(function() signer:scrub("k") end)
  end)
end)

describe("core.constant_time_equals", function()
  it("tells equal and different strings apart", function()
    assert.is_true(core.constant_time_equals("abc", "abc"))
    assert.is_false(core.constant_time_equals("abc", "abd"))
    assert.is_false(core.constant_time_equals("abc", "abcd"))
    assert.is_true(core.constant_time_equals("", ""))
  end)
end)

describe("signer:mac", function()
  local sh = require "maintenance_report_sandbox.shell"

  -- base64(HMAC) from the openssl CLI, for data with newlines and UTF-8
  local function openssl(digest, key, data)
    local out = sh.run(("printf '%%s' %s | openssl dgst -%s -hmac %s -binary | base64 | tr -d '\\n'"):format(
      sh.quote(data), digest, sh.quote(key)))
    return out
  end

  it("is base64(HMAC(key, data)) with the signer's algorithm, as openssl computes it", function()
    local data = "x-date: Mon, 01 Dec 2025 00:00:00 GMT\nGET\napplication/json\n\n\n/p?a=京&b"
    for _, alg in ipairs{ "sha1", "sha256", "sha384", "sha512" } do
      local s = assert(core.signer{ secret_id = "AKIDmac", secret_key = "mac-key-1", algorithm = "hmac-" .. alg })
      assert.are.equal(openssl(alg, "mac-key-1", data), s:mac(data))
      assert.are.equal(openssl(alg, "mac-key-1", ""), s:mac(""))
      s:close()
      assert.has_error(function() s:mac(data) end, "signer is closed")
    end
  end)
end)
