-- Benchmark 4: the cost of one complete signature (date, signing string,
-- HMAC-SHA1, base64, header strings) by core.sign, against the same job done
-- from Lua with luaossl's HMAC (Debian lua-luaossl: openssl.hmac): os.date for
-- the date, string concatenation, hmac:final, base64 in Lua (luaossl has no
-- base64), the same three header strings. Both are checked to give identical
-- headers for a fixed date first.
--
--   BENCH_SIGN_N (signatures per run, default 20000), BENCH_ROUNDS (default 5)
-- Ratio = core.sign time / luaossl time, best run against best run (< 1: faster).
local bench_dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = bench_dir .. "/?.lua;" .. package.path
local B = require "benchlib"
local core = require "maintenance_report.core"

local N = math.floor(B.env_number("BENCH_SIGN_N", 20000))
local ROUNDS = math.floor(B.env_number("BENCH_ROUNDS", 5))

local ok_hmac, hmac = pcall(require, "openssl.hmac")
if not ok_hmac then
  B.report("sign", { { "skipped", "lua-luaossl is not installed for " .. B.interpreter } })
  return
end

local ID, KEY, SOURCE = "AKIDbench", "bench-secret", "market"

-- Standard base64 of a binary string, in plain Lua 5.1/5.4 arithmetic.
local ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local SEXTET = {}
for i = 1, 64 do SEXTET[i - 1] = ALPHABET:sub(i, i) end
local function base64(s)
  local out, n = {}, #s
  for i = 1, n - 2, 3 do
    local a, b, c = s:byte(i, i + 2)
    local v = a * 65536 + b * 256 + c
    out[#out + 1] = SEXTET[math.floor(v / 262144)] .. SEXTET[math.floor(v / 4096) % 64]
      .. SEXTET[math.floor(v / 64) % 64] .. SEXTET[v % 64]
  end
  local rest = n % 3
  if rest == 1 then
    local v = s:byte(n) * 65536
    out[#out + 1] = SEXTET[math.floor(v / 262144)] .. SEXTET[math.floor(v / 4096) % 64] .. "=="
  elseif rest == 2 then
    local a, b = s:byte(n - 1, n)
    local v = a * 65536 + b * 256
    out[#out + 1] = SEXTET[math.floor(v / 262144)] .. SEXTET[math.floor(v / 4096) % 64]
      .. SEXTET[math.floor(v / 64) % 64] .. "="
  end
  return table.concat(out)
end

local function lua_sign(id, key, source, when)
  local date = os.date("!%a, %d %b %Y %H:%M:%S GMT", when)
  local signing_string = "x-date: " .. date .. "\nx-source: " .. source
  local signature = base64(hmac.new(key, "sha1"):final(signing_string))
  return {
    ["X-Date"] = date,
    ["X-Source"] = source,
    Authorization = 'hmac id="' .. id .. '", algorithm="hmac-sha1", headers="x-date x-source", signature="'
      .. signature .. '"',
  }
end

local function core_sign(when)
  return core.sign{ secret_id = ID, secret_key = KEY, source = SOURCE, date = when }
end

-- Same job, same answer.
for _, when in ipairs{ 0, 1700000000, 1234567891 } do
  local a, b = core_sign(when), lua_sign(ID, KEY, SOURCE, when)
  for _, h in ipairs{ "X-Date", "X-Source", "Authorization" } do
    assert(a[h] == b[h], "core.sign and the luaossl signer disagree on " .. h .. ": "
      .. tostring(a[h]) .. " vs " .. tostring(b[h]))
  end
end

local times = B.rounds(ROUNDS, {
  { "core", function() for _ = 1, N do core_sign(nil) end end },
  { "luaossl", function() for _ = 1, N do lua_sign(ID, KEY, SOURCE, nil) end end },
})
local c, l = B.min(times.core), B.min(times.luaossl)
B.report("sign", {
  { "ratio", B.fmt(c / l) }, { "core_us", B.fmt(c / N * 1e6) }, { "luaossl_us", B.fmt(l / N * 1e6) },
  { "n", N }, { "rounds", ROUNDS },
})
B.note("core.sign{} (hmac-sha1, x-date x-source)  vs  os.date + concat + openssl.hmac + Lua base64")
