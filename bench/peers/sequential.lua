-- Benchmark: the report read against the clients a Lua developer would write
-- instead (issue 13, target 4), sequential. Every contender does the same
-- work per read: sign (HMAC-SHA1 over x-date and x-source, base64, the
-- Authorization header), one GET of the listing's sample report from the
-- fixture nginx on 127.0.0.1 (bench/benchlib.lua), decode the JSON, and
-- normalize it with the library's normalize.report and analyze it with its
-- analysis.analyze, as get_report does (the same code for all: a peer has
-- none, and giving it ours measures only what differs).
--
--   ours      client:get_report (C-core signing, libcurl keep-alive, C decode)
--   luasocket socket.http.request + ltn12 sink, luaossl HMAC, mime.b64,
--             lua-cjson: the common script; socket.http closes every connection
--   lua-http  http.request (cqueues), a connection per request, luaossl HMAC;
--             Debian ships it for Lua 5.1-5.3, so LuaJIT only
--   luacurl   Debian's lua-curl (the old luacurl, Lua 5.1 ABI: LuaJIT only), one
--             easy handle reused (keep-alive), luaossl HMAC, mime.b64, lua-cjson
--
-- BENCH_N reads per run (default 2000), BENCH_ROUNDS rounds (default 5) with the
-- contenders alternating. Printed: reads/s best and median, and ours / peer
-- (best against best; median of the per-round ratios). Target: >= 1.2.
local bench_dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = bench_dir .. "/../?.lua;" .. package.path
local B = require "benchlib"
local client = require "maintenance_report.client"
-- BENCH_PEER_NORMALIZER=reference gives the peers the pure-Lua reference normalizer
-- (spec/helpers/normalize_reference.lua), as a peer without ours would have.
local PEER_NORMALIZER = os.getenv("BENCH_PEER_NORMALIZER") == "reference" and "reference" or "library"
package.path = B.ROOT .. "/spec/helpers/?.lua;" .. package.path
local normalize = require(PEER_NORMALIZER == "reference" and "normalize_reference" or "maintenance_report.normalize")
local analysis = require "maintenance_report.analysis"
local cjson = require "cjson"
local hmac = require "openssl.hmac"
local mime = require "mime"

local N = math.floor(B.env_number("BENCH_N", 2000))
local ROUNDS = math.floor(B.env_number("BENCH_ROUNDS", 5))
local ID, KEY = "AKIDbench", "bench-secret"

-- The signed headers a hand-written client builds, as the gateway documents them.
local function signed_headers()
  local date = os.date("!%a, %d %b %Y %H:%M:%S GMT")
  local signature = mime.b64(hmac.new(KEY, "sha1"):final("x-date: " .. date .. "\nx-source: market"))
  return {
    ["X-Date"] = date, ["X-Source"] = "market",
    Authorization = ('hmac id="%s", algorithm="hmac-sha1", headers="x-date x-source", signature="%s"')
      :format(ID, signature),
  }
end

-- get_report's work after the HTTP: decode, normalize, and the analysis every
-- final report carries.
local function finish(body)
  local report = normalize.report(cjson.decode(body), "ready", B.ORDER_ID)
  assert(report.status == "ready", "not a ready report")
  report.analysis = analysis.analyze(report)
end

local function luasocket_reader(url)
  local http, ltn12 = require "socket.http", require "ltn12"
  return function()
    local chunks = {}
    local ok, code = http.request{ url = url, headers = signed_headers(), sink = ltn12.sink.table(chunks) }
    assert(ok and code == 200, "luasocket: " .. tostring(code))
    finish(table.concat(chunks))
  end
end

-- lua-http (Debian ships it for Lua 5.1-5.3: LuaJIT only here). http.request
-- opens a connection per request, as its documented use does.
local function lua_http_reader(url)
  local ok, request = pcall(require, "http.request")
  if not ok then return nil, "lua-http not loadable here (Debian ships it for Lua 5.1-5.3)" end
  return function()
    local req = request.new_from_uri(url)
    for name, value in pairs(signed_headers()) do req.headers:upsert(name:lower(), value) end
    local headers, stream = req:go(10)
    assert(headers and headers:get(":status") == "200", "lua-http: " .. tostring(stream))
    finish(assert(stream:get_body_as_string()))
  end
end

local function luacurl_reader(url)
  local ok, curl = pcall(require, "curl")
  if not ok or not curl.easy_init then return nil, "lua-curl (luacurl) not loadable here" end
  local c = curl.easy_init()
  c:setopt(curl.OPT_URL, url)
  local chunks
  -- this build calls it with (data, size)
  c:setopt(curl.OPT_WRITEFUNCTION, function(data)
    chunks[#chunks + 1] = data
    return #data
  end)
  return function()
    chunks = {}
    local h = signed_headers()
    c:setopt(curl.OPT_HTTPHEADER,
      { "X-Date: " .. h["X-Date"], "X-Source: market", "Authorization: " .. h.Authorization })
    assert(c:perform())
    finish(table.concat(chunks))
  end
end

local server = B.start_fixture_server(1)
B.finally(function()
  local c = assert(client.new{ secret_id = ID, secret_key = KEY, endpoint = server.base_url })
  assert(c:get_report(B.ORDER_ID))
  local contenders = { { "ours", function() assert(c:get_report(B.ORDER_ID)) end } }
  contenders[2] = { "luasocket", luasocket_reader(server.report_url) }
  local skipped = {}
  for _, peer in ipairs{ { "lua-http", lua_http_reader }, { "luacurl", luacurl_reader } } do
    local read, why = peer[2](server.report_url)
    if read then contenders[#contenders + 1] = { peer[1], read } else skipped[#skipped + 1] = peer[1] .. ": " .. why end
  end
  for _, k in ipairs(contenders) do k[2]() end -- warm: connect, JIT
  local runs = {}
  for i, k in ipairs(contenders) do
    local read = k[2]
    runs[i] = { k[1], function() for _ = 1, N do read() end end }
  end
  local times = B.rounds(ROUNDS, runs)
  local ours = times.ours
  print(("peers/sequential %s: %d reads per run, %d rounds, peers' normalizer: %s, load average %s")
    :format(B.interpreter, N, ROUNDS, PEER_NORMALIZER, B.sh("cut -d' ' -f1-3 /proc/loadavg")))
  for _, k in ipairs(contenders) do
    local t = times[k[1]]
    local paired = {}
    for i = 1, ROUNDS do paired[i] = t[i] / ours[i] end
    print(("  %-10s %6.0f reads/s best, %6.0f median; ours / it: x%.2f best against best, x%.2f median of rounds")
      :format(k[1], N / B.min(t), N / B.median(t), B.min(t) / B.min(ours), B.median(paired)))
  end
  for _, why in ipairs(skipped) do print("  skipped " .. why) end
  c:close()
end, function() server:stop() end)
