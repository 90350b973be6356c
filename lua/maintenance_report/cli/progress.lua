-- Batch progress on stderr: a live bar redrawn in place when stderr is a
-- terminal, otherwise a plain log line every few seconds. Rows are counted
-- by the same states as the batch summary (ready, no_records, pending,
-- failed, unknown, skipped); "active" are rows still in progress.
local progress = {}

local Progress = {}
Progress.__index = Progress

-- The summary's states, in its order.
progress.STATES = { "ready", "no_records", "pending", "failed", "unknown", "skipped" }

--- opts: total, tty (bool), now (seconds), write (function(text)), interval (plain lines, seconds),
--- quiet (bool: nothing at all), width (terminal columns; default 80).
function progress.new(opts)
  return setmetatable({
    total = opts.total or 0,
    tty = opts.tty and true or false,
    now = opts.now,
    write = opts.write or function(s) io.stderr:write(s) io.stderr:flush() end,
    interval = opts.interval or 5,
    quiet = opts.quiet,
    width = opts.width or 80,
    started = opts.now(),
    last = nil,
    drawn = false,
  }, Progress)
end

--- The terminal's width in columns from `stty size` on stderr, else $COLUMNS, else 80.
function progress.terminal_width()
  local p = io.popen("stty size <&2 2>/dev/null")
  local out = p and p:read("*a") or ""
  if p then p:close() end
  local cols = tonumber(out:match("^%s*%d+%s+(%d+)"))
  if not cols or cols < 1 then cols = tonumber(os.getenv("COLUMNS")) end
  if not cols or cols < 1 then cols = 80 end
  return math.floor(cols)
end

local function clock(seconds)
  seconds = math.floor(seconds + 0.5)
  if seconds >= 3600 then
    return string.format("%d:%02d:%02d", math.floor(seconds / 3600), math.floor(seconds / 60) % 60, seconds % 60)
  end
  return string.format("%d:%02d", math.floor(seconds / 60), seconds % 60)
end
progress.clock = clock

--- The numbers shown: c = {done=, ordered=, active=, [state]=count …}.
function Progress:figures(c)
  local elapsed = math.max(self.now() - self.started, 1e-6)
  local rate = (c.ordered or 0) / elapsed
  local eta
  if (c.done or 0) > 0 and (c.done or 0) < self.total then
    eta = (self.total - c.done) * elapsed / c.done
  end
  return elapsed, rate, eta
end

-- "ready 3, pending 1" style parts for the states with rows (sep between name and number).
local function state_parts(c, sep)
  local parts = {}
  for _, state in ipairs(progress.STATES) do
    if (c[state] or 0) > 0 then parts[#parts + 1] = state .. sep .. c[state] end
  end
  return parts
end

function Progress:line(c)
  local elapsed, rate, eta = self:figures(c)
  local parts = { string.format("%d/%d done", c.done or 0, self.total), string.format("%d ordered", c.ordered or 0),
    string.format("%d active", c.active or 0) }
  for _, p in ipairs(state_parts(c, " ")) do parts[#parts + 1] = p end
  parts[#parts + 1] = string.format("%.1f orders/s, elapsed %s, ETA %s", rate, clock(elapsed),
    eta and clock(eta) or "-")
  return table.concat(parts, ", ")
end

-- Display width of text that is ASCII except for a few UTF-8 characters.
local function columns(s)
  local _, n = s:gsub("[^\128-\191]", "")
  return n
end

--- The bar's text (without the leading \r and the trailing erase), at most width - 1 columns:
--- the less important parts go first when the terminal is narrow.
function Progress:bar_text(c)
  local _, rate, eta = self:figures(c)
  local counts = string.format("%d/%d", c.done or 0, self.total)
  local pieces = {
    { text = string.format("ordered %d", c.ordered or 0), keep = 3 },
    { text = string.format("active %d", c.active or 0), keep = 1 },
  }
  -- keep: the narrowing level that drops the piece (the states go last).
  for _, p in ipairs(state_parts(c, " ")) do pieces[#pieces + 1] = { text = p, keep = 5 } end
  pieces[#pieces + 1] = { text = string.format("%.1f/s", rate), keep = 2 }
  pieces[#pieces + 1] = { text = "ETA " .. (eta and clock(eta) or "-"), keep = 4 }
  local limit = math.max(self.width - 1, 1)
  local function compose(bar_width, level)
    local words = { counts }
    for _, piece in ipairs(pieces) do
      if piece.keep > level then words[#words + 1] = piece.text end
    end
    local text = table.concat(words, "  ")
    if bar_width <= 0 then return text end
    local filled = self.total > 0 and math.floor(bar_width * (c.done or 0) / self.total) or bar_width
    return "[" .. string.rep("#", filled) .. string.rep("-", bar_width - filled) .. "] " .. text
  end
  -- Widest bar that fits with every piece; then fewer pieces; then no bar.
  for level = 0, 6 do
    local base = columns(compose(0, level))
    local bar_width = math.min(24, limit - base - 3)
    if bar_width >= 8 then return compose(bar_width, level) end
  end
  local text = compose(0, 6)
  return text:sub(1, limit)
end

function Progress:bar(c)
  return "\r" .. self:bar_text(c) .. "\27[K"
end

--- Called often; draws at most 10 times a second (tty) or every `interval` seconds.
function Progress:tick(c, force)
  if self.quiet then return end
  local t = self.now()
  if self.tty then
    if force or not self.last or t - self.last >= 0.1 then
      self.last = t
      self.drawn = true
      self.write(self:bar(c))
    end
  elseif force or t - (self.last or self.started) >= self.interval then
    self.last = t
    self.write("progress: " .. self:line(c) .. "\n")
  end
end

--- Clears the bar (tty) so that the next line starts clean; prints the last state.
function Progress:finish(c)
  if self.quiet then return end
  if self.tty then
    self.write(self:bar(c) .. "\n")
  else
    self.write("progress: " .. self:line(c) .. "\n")
  end
end

--- Before printing another line while the bar is shown.
function Progress:clear()
  if self.tty and self.drawn and not self.quiet then self.write("\r\27[K") end
end

return progress
