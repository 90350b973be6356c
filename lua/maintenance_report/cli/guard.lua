-- What query and order say when they stop early: Ctrl-C, SIGTERM (through
-- core.catch_signals) or a Lua error raised after the order may have left.
-- The ledger is the one place that knows the order id at every moment (the
-- client records the intent before the request and the id the moment it
-- arrives), so the vehicle's entry is read again and printed: an id is never
-- lost with the process, and an order that may have been charged is never
-- reported as nothing sent.
local exit = require "maintenance_report.cli.exit"
local hints = require "maintenance_report.cli.hints"
local output = require "maintenance_report.cli.output"
local terminal = require "maintenance_report.cli.terminal"
local validate = require "maintenance_report.validate"

local guard = {}

--- The ledger fields of a command's --vin/--engine-number/--plate-number, normalized
--- as the client normalizes them; nil when they are invalid (then nothing was sent).
function guard.fields(args)
  local vin = validate.vin(args.vin)
  if not vin then return nil end
  local fields = { vin = vin }
  if args.engine_number and args.engine_number ~= "" then
    fields.engine_number = validate.engine_number(args.engine_number)
    if not fields.engine_number then return nil end
  end
  if args.plate_number and args.plate_number ~= "" then
    fields.plate_number = validate.plate(args.plate_number)
    if not fields.plate_number then return nil end
  end
  return fields
end

-- The vehicle's entry, read from a fresh handle on the file (the one the client
-- used may have been interrupted half-way through a read). nil, message on failure.
local function lookup(ctx)
  local fields = guard.fields(ctx.args)
  if not fields then return nil end
  local ok, entry, err = pcall(function()
    local file = ctx.ledger_path and not ctx.ledger_path:match("^redis://")
    local L = file and require("maintenance_report.ledger").file(ctx.ledger_path) or ctx.ledger
    if not L then return nil, "cannot open the ledger" end
    local e, gerr = L:get(fields)
    if L ~= ctx.ledger then L:close() end
    return e, gerr
  end)
  if not ok then return nil, tostring(entry) end
  if err then return nil, tostring(err) end
  return entry
end

--- The command that continues for the vehicle with the same settings (it polls a placed
--- order or reuses its report; it never orders again).
function guard.rerun_command(args)
  local words = { output.PROGRAM, "query" }
  for _, flag in ipairs{ "vin", "engine_number", "plate_number", "ledger", "endpoint", "secret_id",
    "secret_key_file", "source", "cafile" } do
    if args[flag] then
      words[#words + 1] = "--" .. flag:gsub("_", "-")
      words[#words + 1] = terminal.shell_word(args[flag])
    end
  end
  if args.insecure then words[#words + 1] = "--insecure" end
  return table.concat(words, " ")
end

--- Prints what the ledger knows about the vehicle after `what` ("interrupted", …).
--- Returns the entry's order id, if any.
function guard.explain(ctx, what)
  local entry, err = lookup(ctx)
  local where = ctx.ledger_path and (" (ledger " .. ctx.ledger_path .. ")") or ""
  local say, args = output.say, ctx.args
  if err then
    say(("%s: %s; the ledger cannot be read (%s): the order outcome is unknown, do NOT order again before "
      .. "checking your orders"):format(output.PROGRAM, what, err))
    return nil
  end
  local state = entry and entry.state
  if entry and entry.order_id then
    local final = state == "ready" or state == "no_records"
    say(("%s: %s: order %s was placed%s%s"):format(output.PROGRAM, what, entry.order_id, where,
      final and "; its report is stored" or ""))
    say("hint: no new order is needed; resume with: " .. (ctx.command == "order"
      and hints.resume_command(entry.order_id, args) or guard.rerun_command(args)))
    return entry.order_id
  end
  if state == "intent" or state == "unknown" then
    say(("%s: %s: order outcome unknown for %s%s: the order request may have been sent and charged"):format(
      output.PROGRAM, what, args.vin, where))
    say("hint: do NOT order this vehicle again before checking your orders in the API marketplace console; "
      .. "a re-run will not order it again (only --retry-unknown would)")
    return nil
  end
  say(("%s: %s: no order was placed for %s"):format(output.PROGRAM, what, tostring(args.vin)))
  return nil
end

--- Runs fn() (the command's body, returning an exit code). A Lua error it raises is
--- explained with the ledger entry, then raised again for the program's top level
--- (exit 130 for an interrupt, 1 for a bug). ctx: args, command, ledger, ledger_path.
function guard.run(ctx, fn)
  local ok, result = xpcall(fn, function(raised)
    if exit.debug_enabled() and not exit.is_interrupt(raised) then return debug.traceback(tostring(raised), 2) end
    return raised
  end)
  if ok then return result end
  local interrupted = exit.is_interrupt(result)
  pcall(guard.explain, ctx, interrupted and "interrupted" or "internal error")
  if interrupted then error("interrupted!", 0) end
  error(result, 0)
end

return guard
