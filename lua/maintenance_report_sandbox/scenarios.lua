-- Scenario VINs: valid VINs whose characters select a sandbox behaviour.
--
--   L S A N D B 0 X  c  L  p  F F  N N N N
--   1 . . . . . . 8  9  10 11 12-13 14-17
--
--   1-8   fixed prefix "LSANDB0X" (zero, not the letter O)
--   9     check digit (scenario_vin computes it; decoding ignores it)
--   10    model-year code: "L" (2020); for serial scenarios past 9999, the
--         serial's ten-thousands step through the other year codes
--   11    phase: "1" = the order call misbehaves, "2" = the report call
--         misbehaves (the order succeeds and the order id remembers the
--         VIN), "0" = no fault
--   12-13 scenario code (letters I, O, Q never occur in VINs)
--   14-17 parameter, 4 digits; its meaning depends on the scenario
--
-- Plain Lua, no ngx: used by the nginx handler and by client code and specs.
local vinlib = require "maintenance_report_sandbox.vin"

local M = {}

M.PREFIX = "LSANDB0X"
local YEAR = "L"

-- Parameter kinds: how scenario_vin's `variant` maps to the 4 digits.
--   serial: any number 0-299999, only to get distinct VINs (default 0): the last
--           4 digits in positions 14-17 (which stay digits, as ISO 3779 wants of
--           a VIN's last four), the ten-thousands in the model-year code
--           (position 10), from "L" on through the 30-year cycle
--   times:  the fault fires on the first N calls, then the call works; 0 = always
--           (counted per VIN for order faults, per order id for report faults)
--   tenths: a delay in seconds, stored in tenths (variant 1.5 -> "0015"); default 2 s
--   polls:  number of pending answers before the report is ready (default 3)
local PARAM_DEFAULT = { serial = 0, times = 0, tenths = 2, polls = 3 }

local FAULTS = {
  { "service_error", "SE", "times", 'code "-1" "服务或其它异常" with HTTP 200' },
  { "slow", "SL", "tenths", "answers normally after a delay (ngx.sleep; the worker stays free)" },
  { "http_500", "50", "times", "HTTP 500 with an HTML error page" },
  { "http_502", "52", "times", "HTTP 502 with an HTML error page" },
  { "http_504", "54", "times", "HTTP 504 with an HTML error page" },
  { "rate_limit", "RL", "times", 'HTTP 429 {"message":"API rate limit exceeded."}' },
  { "quota", "UL", "times", 'HTTP 429 {"message":"API quota exceeded."}' },
  { "malformed_json", "MJ", "times", "HTTP 200 with a body that is not valid JSON" },
  { "truncated_body", "TB", "times", "Content-Length larger than the bytes sent, then the connection closes" },
  { "connection_closed", "CC", "times", "status line and part of the headers, then the connection closes" },
  { "empty_reply", "ER", "times", "the connection closes before any byte of the response" },
}

-- name -> {code=, phase=, fault=, param=, description=}
local by_name = {}
-- phase .. code -> name
local by_key = {}

local function add(name, phase, code, fault, param, description)
  by_name[name] = { name = name, phase = phase, code = code, fault = fault,
                    param = param, description = description }
  by_key[phase .. code] = name
end

add("normal", "0", "NM", nil, "serial", "a normal report (like any VIN outside the scheme)")
add("no_records", "2", "NR", nil, "serial", 'the report is "1206" 无维修保养记录')
add("pending_polls", "2", "PD", nil, "polls",
  "the report stays pending (1204) for N polls, whatever the sandbox's pending_polls")
-- Report contents, each made for one finding of maintenance_report.analysis
-- (reports.lua builds their histories; docs/sandbox.md lists them).
M.FINDINGS = {
  { "clean", "CL", "a regular service history with nothing to find (the negative case)" },
  { "rollback", "RB", "the odometer drops to about 15,000 km later on; mileageIsNormalFlag still 1" },
  { "fast_mileage", "HR", "90,000 km more than plausible between two services; mileageIsNormalFlag still 1" },
  { "mileage_flag_abnormal", "MF", "a clean history, but mileageIsNormalFlag 0" },
  { "structural", "SX", "a structural repair (左前纵梁校正, 车身校正); carConstructRecordsFlag 1" },
  { "airbag", "AB", "an airbag replaced (气囊), one of the component records; carComponentRecordsFlag 1" },
  { "flood", "FL", "a flood repair (泡水); carWaterFlag 1 and, as a component record, carComponentRecordsFlag 1" },
  { "fire", "FR", "a fire repair (火烧, 烧蚀); carFireFlag 1 and, as a component record, carComponentRecordsFlag 1" },
  { "major_component", "MC", "a gearbox replaced (变速箱总成); carComponentRecordsFlag 1" },
  { "service_gap", "GP", "no service for about two years in the middle of the history" },
  { "last_service_old", "LS", "the history ends three years before the report clock" },
  { "service_count_mismatch", "SC", "mainTainTimes twice the services in the records, plus one" },
  { "one_year", "YR", "a history within 2026 (a short chart: month labels)" },
}
for _, f in ipairs(M.FINDINGS) do add(f[1], "0", f[2], nil, "serial", "report: " .. f[3]) end

for _, f in ipairs(FAULTS) do
  add("order_" .. f[1], "1", f[2], f[1], f[3], "order call: " .. f[4])
  add("report_" .. f[1], "2", f[2], f[1], f[3], "report call: " .. f[4])
end

-- name -> description, as the public list.
M.scenarios = {}
for name, s in pairs(by_name) do M.scenarios[name] = s.description end

-- Names in a stable order (phase, then name), for docs and listings.
function M.names()
  local names = {}
  for name in pairs(by_name) do names[#names + 1] = name end
  table.sort(names, function(a, b)
    local pa, pb = by_name[a].phase, by_name[b].phase
    if pa ~= pb then return pa < pb end
    return a < b
  end)
  return names
end

function M.info(name) return by_name[name] end

local YEAR_CODES = vinlib.YEAR_CODES
local YEAR_INDEX = YEAR_CODES:find(YEAR, 1, true)
-- Distinct serials: 10,000 per model-year code.
M.SERIALS = 10000 * #YEAR_CODES

-- The year code and the 4 parameter digits of a variant.
local function param_chars(kind, variant)
  if variant == nil then variant = PARAM_DEFAULT[kind] end
  local n = tonumber(variant)
  if not n then return nil, "variant must be a number" end
  if kind == "tenths" then n = n * 10 end
  n = math.floor(n + 0.5)
  local max = kind == "serial" and M.SERIALS - 1 or 9999
  if n < 0 or n > max then return nil, "variant out of range (0-" .. max .. ")" end
  local block = math.floor(n / 10000)
  local at = (YEAR_INDEX - 1 + block) % #YEAR_CODES + 1
  return YEAR_CODES:sub(at, at), string.format("%04d", n % 10000)
end

-- A check-digit-valid VIN for a scenario; variant as described above.
function M.vin(name, variant)
  local s = by_name[name]
  if not s then return nil, "unknown scenario: " .. tostring(name) end
  local year, digits = param_chars(s.param, variant)
  if not year then return nil, digits end
  return vinlib.with_check_digit(M.PREFIX .. "0" .. year .. s.phase .. s.code .. digits)
end

-- Scenario selected by a VIN, or nil. Returns a table:
-- {name=, phase="order"|"report"|nil, fault=, times=, delay=, polls=}
function M.decode(vin)
  if type(vin) ~= "string" or #vin ~= 17 or vin:sub(1, 8) ~= M.PREFIX then return nil end
  local name = by_key[vin:sub(11, 13)]
  local digits = vin:sub(14, 17)
  if not name or not digits:match("^%d%d%d%d$") then return nil end
  local s = by_name[name]
  local n = tonumber(digits)
  local out = { name = name, fault = s.fault }
  if s.phase == "1" then out.phase = "order" elseif s.phase == "2" then out.phase = "report" end
  if s.param == "times" then out.times = n
  elseif s.param == "tenths" then out.delay = n / 10
  elseif s.param == "polls" then out.polls = n end
  return out
end

return M
