-- `maintenance-report ledger list|show|forget|stats|check`: the order ledger
-- that query, order and batch share (docs/ledger.md). Reading it never
-- creates it; `forget` is the only command that changes it, and it refuses
-- while another process holds the vehicle.
local config = require "maintenance_report.cli.config"
local exit = require "maintenance_report.cli.exit"
local hints = require "maintenance_report.cli.hints"
local json = require "maintenance_report.json"
local output = require "maintenance_report.cli.output"
local terminal = require "maintenance_report.cli.terminal"
local validate = require "maintenance_report.validate"

local M = {}

local function add_common(cmd, formats)
  config.add_ledger_options(cmd, { retry_unknown = false })
  if formats then cmd:option("--format", "Output format: text or json.", "text"):choices{ "text", "json" } end
end

local function add_vehicle(cmd)
  cmd:argument("vin", "The vehicle's VIN.")
  cmd:option("--engine-number", "Only the entry with this engine number.")
  cmd:option("--plate-number", "Only the entry with this plate.")
end

function M.describe(cmd)
  cmd:summary("Show or repair the order ledger shared by query, order and batch.")
  cmd:description("The ledger records every paid order before and after it is sent (see docs/ledger.md). "
    .. "Times are China time (UTC+08:00).")
  cmd:command_target("ledger_command")
  cmd:require_command(true)
  local list = cmd:command("list", "One line per entry: state, VIN, plate, order id, last update.")
  add_common(list, true)
  local show = cmd:command("show", "Every field of a vehicle's entries, the last error included.")
  add_vehicle(show)
  add_common(show, true)
  local forget = cmd:command("forget", "Remove a vehicle's entries, so that the next query orders it again.")
  add_vehicle(forget)
  forget:flag("-y --yes", "Do not ask (needed when stdin is not a terminal).")
  add_common(forget)
  local stats = cmd:command("stats", "Entries by state, orders (entries with an order id) and the money spent.")
  stats:option("--unit-price", "Price of one order.", "17"):convert(config.number_converter("--unit-price", 0, false))
  stats:option("--reuse", "Count the final reports younger than this as reusable.", config.DEFAULT_REUSE)
    :argname("<duration>"):convert(function(v) return config.parse_duration(v, "--reuse") end)
  add_common(stats, true)
  local check = cmd:command("check", "Look for damaged lines (exit 8 when there are any).")
  add_common(check, true)
  for _, c in ipairs{ list, show, forget, stats, check } do c:epilog(exit.HELP) end
  cmd:epilog(exit.HELP)
end

--- Epoch seconds as China time, zone stated: "2026-12-01 21:05:13 +08:00".
function M.china_time(t)
  if type(t) ~= "number" then return "-" end
  return os.date("!%Y-%m-%d %H:%M:%S", math.floor(t) + 8 * 3600) .. " +08:00"
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- The ledger, or false when there is none yet (reading never creates it); nil, err on failure.
local function open(args)
  local path, err = config.ledger_path(args)
  if not path then return nil, err end
  if config.is_ledger_url(path) then return config.open_ledger(args) end
  if not exists(path) then return false, path end
  local budget, berr = config.budget(args)
  if berr then return nil, berr end
  local L, lerr = require("maintenance_report.ledger").file(path, { budget = budget })
  if not L then return nil, lerr end
  return L, path
end

-- Every entry; none when there is no ledger yet.
local function entries_of(L)
  if not L then return {} end
  return L:list()
end

local function print_json(value)
  io.stdout:write(output.scrub(json.encode(value, { indent = "  " })), "\n")
end

-- A value as text: whole numbers without a fraction (JSON reads them back as floats).
local function text(v)
  if type(v) == "number" and v == math.floor(v) and math.abs(v) < 2 ^ 53 then return string.format("%d", v) end
  return tostring(v)
end

local function dash(v)
  if v == nil or v == "" then return "-" end
  return text(v)
end

-- The entry for output: everything but the vendor's raw body.
local function plain(entry)
  local copy = {}
  for k, v in pairs(entry) do copy[k] = v end
  if type(copy.report) == "table" then
    local report = {}
    for k, v in pairs(copy.report) do if k ~= "raw" then report[k] = v end end
    copy.report = report
  end
  return copy
end

function M.list(args, L)
  local entries, err = entries_of(L)
  if not entries then return hints.fail(err, args) end
  if args.format == "json" then
    local out = {}
    for i, e in ipairs(entries) do
      out[i] = { state = e.state, vin = e.vin, engine_number = e.engine_number, plate_number = e.plate_number,
        order_id = e.order_id, updated_at = e.updated_at, updated = M.china_time(e.updated_at) }
    end
    print_json(out)
    return exit.CODES.ok
  end
  for _, e in ipairs(entries) do
    io.stdout:write(output.scrub(("%-10s %s %-10s %-32s %s\n"):format(e.state, e.vin, dash(e.plate_number),
      dash(e.order_id), M.china_time(e.updated_at))))
  end
  return exit.CODES.ok
end

-- The entries of a vehicle (a VIN, narrowed by engine number and plate when given).
local function matching(args, L)
  local vin, msg = validate.vin(args.vin)
  if not vin then return nil, config.usage_error(msg) end
  local entries, err = entries_of(L)
  if not entries then return nil, err end
  local out = {}
  for _, e in ipairs(entries) do
    if e.vin == vin and (not args.engine_number or e.engine_number == args.engine_number)
      and (not args.plate_number or e.plate_number == args.plate_number) then
      out[#out + 1] = e
    end
  end
  return out
end

local SHOW_FIELDS = { "state", "vin", "engine_number", "plate_number", "order_id", "request_id", "created_at",
  "placed_at", "updated_at", "owner", "version" }
local TIMES = { created_at = true, placed_at = true, updated_at = true }

function M.show(args, L)
  local entries, err = matching(args, L)
  if not entries then return hints.fail(err, args) end
  if #entries == 0 then
    output.say(("%s: the ledger has no entry for %s"):format(output.PROGRAM, args.vin))
    return exit.CODES.usage
  end
  if args.format == "json" then
    local out = {}
    for i, e in ipairs(entries) do out[i] = plain(e) end
    print_json(out)
    return exit.CODES.ok
  end
  local lines = {}
  for i, e in ipairs(entries) do
    if i > 1 then lines[#lines + 1] = "" end
    for _, k in ipairs(SHOW_FIELDS) do
      local v = e[k]
      if v ~= nil and v ~= "" then
        lines[#lines + 1] = ("%-14s %s"):format(k .. ":", TIMES[k] and M.china_time(v) or text(v))
      end
    end
    local r = e.reason
    if type(r) == "table" then
      local details = {}
      if r.http_status then details[#details + 1] = "http " .. text(r.http_status) end
      if r.request_id then details[#details + 1] = "request " .. tostring(r.request_id) end
      lines[#lines + 1] = ("%-14s %s: %s%s"):format("last error:", tostring(r.kind), tostring(r.message),
        #details > 0 and (" (" .. table.concat(details, ", ") .. ")") or "")
    end
    if type(e.report) == "table" then
      local records = type(e.report.records) == "table" and #e.report.records or 0
      lines[#lines + 1] = ("%-14s stored (%s, %s)"):format("report:", tostring(e.report.status),
        output.count(records, "record"))
    end
  end
  io.stdout:write(output.scrub(table.concat(lines, "\n")), "\n")
  return exit.CODES.ok
end

local function confirm(question)
  io.stderr:write(question, " [y/N] ")
  io.stderr:flush()
  local answer = io.stdin:read("*l") or ""
  return answer:match("^%s*[yY]") ~= nil
end

function M.forget(args, L)
  local entries, err = matching(args, L)
  if not entries then return hints.fail(err, args) end
  if #entries == 0 then
    output.say(("%s: the ledger has no entry for %s"):format(output.PROGRAM, args.vin))
    return exit.CODES.usage
  end
  for _, e in ipairs(entries) do
    local warning = ""
    if e.order_id then
      warning = " (it holds order " .. e.order_id .. ": keep that id; a later query orders again, paid)"
    elseif e.state == "unknown" or e.state == "intent" then
      warning = " (its outcome is unknown: it may have been charged; a later query orders again, paid)"
    end
    output.say(("%s: %s: %s %s%s"):format(output.PROGRAM, args.yes and "forgetting" or "would forget",
      e.state, (e.key:gsub("\t+$", ""):gsub("\t", " ")), warning))
  end
  if not args.yes then
    if not terminal.isatty(0) then
      output.say(output.PROGRAM .. ": nothing forgotten: pass --yes to confirm")
      return exit.CODES.usage
    end
    if not confirm("Forget these entries?") then
      output.say(output.PROGRAM .. ": nothing forgotten")
      return exit.CODES.usage
    end
  end
  for _, e in ipairs(entries) do
    local ok, ferr = L:forget(e.key)
    if not ok then return hints.fail(ferr, args) end
  end
  return exit.CODES.ok
end

function M.stats(args, L)
  local stats, err
  if L then
    stats, err = L:stats()
    if not stats then return hints.fail(err, args) end
  else
    stats = { entries = 0, by_state = {}, orders = 0, reused = 0 }
  end
  local reusable = 0
  for _, e in ipairs(entries_of(L) or {}) do
    if (e.state == "ready" or e.state == "no_records") and args.reuse > 0
      and os.time() - (e.updated_at or 0) < args.reuse then
      reusable = reusable + 1
    end
  end
  local price = args.unit_price
  local unknown = (stats.by_state.unknown or 0) + (stats.by_state.intent or 0)
  local summary = { entries = stats.entries, by_state = stats.by_state, orders = stats.orders,
    spent = stats.orders * price, unit_price = price, unknown = unknown, may_have_been_charged = unknown * price,
    reusable = reusable }
  if L and L.budget then
    local remaining, berr = L:budget_remaining()
    if not remaining then return hints.fail(berr, args) end
    summary.budget = remaining
  end
  if args.format == "json" then
    print_json(summary)
    return exit.CODES.ok
  end
  local lines = { ("entries: %d"):format(stats.entries) }
  local states = {}
  for state in pairs(stats.by_state) do states[#states + 1] = state end
  table.sort(states)
  for _, state in ipairs(states) do lines[#lines + 1] = ("  %-11s %6d"):format(state, stats.by_state[state]) end
  lines[#lines + 1] = ("orders: %d × ¥%.2f = ¥%.2f"):format(stats.orders, price, stats.orders * price)
  if unknown > 0 then
    lines[#lines + 1] = ("may have been charged: %s with an unknown outcome (up to ¥%.2f)"):format(
      output.count(unknown, "order"), unknown * price)
  end
  lines[#lines + 1] = ("reusable now: %s younger than --reuse"):format(output.count(reusable, "final report"))
  for _, b in ipairs(summary.budget or {}) do
    lines[#lines + 1] = ("budget %s: ¥%.2f left of ¥%.2f (spent ¥%.2f, %s)"):format(
      b.name, b.remaining, b.cap, b.spent, output.count(b.orders_left, "more order"))
  end
  io.stdout:write(table.concat(lines, "\n"), "\n")
  return exit.CODES.ok
end

function M.check(args, L, path)
  local report, err
  if L then
    report, err = L:check()
    if not report then return hints.fail(err, args) end
  else
    report = { ok = true, path = path, records = 0, keys = 0, torn_tail = 0, damaged = {} }
  end
  if args.format == "json" then
    print_json(report)
  else
    local lines = { ("ledger %s: %s, %s: %s"):format(path, output.count(report.records or 0, "record"),
      output.count(report.keys or 0, "key"),
      report.ok and "ok" or "DAMAGED") }
    if (report.torn_tail or 0) > 0 then
      lines[#lines + 1] = ("  torn last line (%s; a crash mid-write, removed by the next write)"):format(
        output.count(report.torn_tail, "byte"))
    end
    for _, d in ipairs(report.damaged or {}) do
      local keys = {}
      for i, k in ipairs(d.keys or {}) do keys[i] = (k:gsub("\t+$", ""):gsub("\t", " ")) end
      lines[#lines + 1] = ("  line %d: %s; %s; %s"):format(d.line, tostring(d.reason),
        #keys > 0 and ("vehicles: " .. table.concat(keys, ", ") .. " (now unknown)") or "names no vehicle",
        tostring(d.excerpt or ""))
    end
    if report.unreadable_line then
      lines[#lines + 1] = ("  line %d names no vehicle: no order can be decided until it is removed "
        .. "(see docs/ledger.md, Repair)"):format(report.unreadable_line)
    end
    io.stdout:write(output.scrub(table.concat(lines, "\n")), "\n")
  end
  return report.ok and exit.CODES.ok or exit.CODES.ledger
end

function M.run(args)
  local L, path = open(args)
  if L == nil then return hints.fail(path, args) end
  local ok, code = pcall(M[args.ledger_command], args, L or nil, path)
  if L then L:close() end
  if not ok then error(code, 0) end
  return code
end

return M
