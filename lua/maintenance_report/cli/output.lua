-- Everything the CLI writes: stdout or an --output file (replaced whole, never
-- half-written), one-line messages on stderr, --verbose event lines and the
-- rendered report. Every secret the configuration read is registered here, and
-- every line written is scrubbed of it as a last resort.
local errors = require "maintenance_report.errors"
local exit = require "maintenance_report.cli.exit"
local terminal = require "maintenance_report.cli.terminal"

local output = {}

output.PROGRAM = "maintenance-report"

local secrets = {}

--- Remembers s (when it is long enough to be a key) so that it never gets printed.
function output.add_secret(s)
  if type(s) == "string" and #s >= 4 then secrets[#secrets + 1] = s end
end

--- The text with every known secret replaced by [REDACTED].
function output.scrub(s)
  s = tostring(s)
  for _, secret in ipairs(secrets) do s = errors.scrub(s, secret) end
  return s
end

--- Writes one line to stderr, scrubbed, without control characters inside it.
--- "1 VIN", "2 VINs": n and the noun in the number n needs (plural defaults to noun .. "s").
function output.count(n, noun, plural)
  return string.format("%d %s", n, n == 1 and noun or (plural or noun .. "s"))
end

function output.say(line)
  line = output.scrub(line):gsub("[%z\1-\8\11-\31\127]", " ")
  io.stderr:write(line, "\n")
end

local function fmt_seconds(d)
  if type(d) ~= "number" then return "?" end
  if d < 1 then return string.format("%d ms", math.floor(d * 1000 + 0.5)) end
  return string.format("%.2f s", d)
end

--- An on_event hook printing one line per client event to stderr (--verbose).
function output.event_printer()
  return function(ev)
    if ev.event == "http" then
      local outcome = ev.status and tostring(ev.status) or ("failed: " .. tostring(ev.error_kind))
      if ev.status and ev.error_kind then outcome = outcome .. " (" .. ev.error_kind .. ")" end
      local rl = ev.rate_limit
      output.say(string.format("[http] %s GET %s attempt %d -> %s in %s%s%s", tostring(ev.op), tostring(ev.path),
        ev.attempt or 1, outcome, fmt_seconds(ev.duration),
        ev.request_id and (", request " .. tostring(ev.request_id)) or "",
        rl and (", rate limit %s, used %s/%s"):format(tostring(rl.limit or "?"), tostring(rl.used or "?"),
          tostring(rl.used_limit or "?")) or ""))
    elseif ev.event == "retry" then
      output.say(string.format("[retry] %s attempt %d failed; retrying in %s", tostring(ev.op), ev.attempt or 0,
        fmt_seconds(ev.delay)))
    elseif ev.event == "poll" then
      output.say(string.format("[poll] order %s: %s", tostring(ev.order_id), tostring(ev.status)))
    end
  end
end

local function write_error(path, detail)
  return errors.new("invalid_input", "cannot write " .. path .. ": " .. tostring(detail))
end

--- Writes text to args.output (replacing the file) or stdout. Returns true or nil, err;
--- content nil (a rendering that failed) gives back render_err.
function output.write(args, content, render_err)
  if content == nil then return nil, render_err end
  content = output.scrub(content)
  if args.output and args.output ~= "-" then
    -- A new file renamed over the old one: a reader never sees half a report.
    local tmp = args.output .. ".tmp"
    local f, err = io.open(tmp, "wb")
    if not f then return nil, write_error(args.output, err) end
    local ok, werr = f:write(content)
    f:close()
    if not ok then
      os.remove(tmp)
      return nil, write_error(args.output, werr)
    end
    local renamed, rerr = os.rename(tmp, args.output)
    if not renamed then
      os.remove(tmp)
      return nil, write_error(args.output, rerr)
    end
    return true
  end
  io.stdout:write(content)
  io.stdout:flush()
  return true
end

--- The report rendered in args.format (text, json, html or pdf), with the queried
--- VIN, plate and engine number when the command has them; nil, err when the PDF
--- cannot be made.
function output.render(report, args)
  local format = args.format or "text"
  local query = args.vin and { vin = args.vin, plate_number = args.plate_number,
    engine_number = args.engine_number } or nil
  if format == "json" then
    return require("maintenance_report.render.json").report(report, { indent = "  ", raw = args.raw,
      query = query }) .. "\n"
  elseif format == "html" or format == "pdf" then
    local page = require("maintenance_report.render.html").render(report, { generated_at = os.time(), query = query })
    if format == "html" then return page end
    local pdf = require "maintenance_report.render.pdf"
    if pdf.has_cjk_font() == false then output.say("warning: " .. pdf.FONT_HINT) end
    return pdf.render(page)
  end
  local to_terminal = not args.output or args.output == "-"
  return require("maintenance_report.render.text").render(report,
    { color = to_terminal and terminal.color_stdout(), query = query })
end

--- Prints a report; returns the exit code (0 final, 6 pending), or nil, err when it
--- could not be written.
function output.emit_report(report, args)
  local ok, err = output.write(args, output.render(report, args))
  if not ok then return nil, err end
  if args.output and args.output ~= "-" and args.verbose then output.say("[output] wrote " .. args.output) end
  if report.status == "pending" then return exit.CODES.pending end
  return exit.CODES.ok
end

return output
