-- Batch progress on stderr: a live bar redrawn in place when stderr is a
-- terminal, otherwise a plain log line every few seconds.
local progress = {}

local Progress = {}
Progress.__index = Progress

--- opts: total, tty (bool), now (seconds), write (function(text)), interval (plain lines, seconds),
--- quiet (bool: nothing at all).
function progress.new(opts)
  return setmetatable({
    total = opts.total or 0,
    tty = opts.tty and true or false,
    now = opts.now,
    write = opts.write or function(s) io.stderr:write(s) io.stderr:flush() end,
    interval = opts.interval or 5,
    quiet = opts.quiet,
    started = opts.now(),
    last = nil,
    drawn = false,
  }, Progress)
end

local function clock(seconds)
  seconds = math.floor(seconds + 0.5)
  if seconds >= 3600 then
    return string.format("%d:%02d:%02d", math.floor(seconds / 3600), math.floor(seconds / 60) % 60, seconds % 60)
  end
  return string.format("%d:%02d", math.floor(seconds / 60), seconds % 60)
end
progress.clock = clock

--- The numbers shown: c = {done=, ordered=, pending=, failed=}.
function Progress:figures(c)
  local elapsed = math.max(self.now() - self.started, 1e-6)
  local rate = (c.ordered or 0) / elapsed
  local eta
  if (c.done or 0) > 0 and (c.done or 0) < self.total then
    eta = (self.total - c.done) * elapsed / c.done
  end
  return elapsed, rate, eta
end

function Progress:line(c)
  local elapsed, rate, eta = self:figures(c)
  return string.format("%d/%d done, %d ordered, %d pending, %d failed, %.1f orders/s, elapsed %s, ETA %s",
    c.done or 0, self.total, c.ordered or 0, c.pending or 0, c.failed or 0, rate, clock(elapsed),
    eta and clock(eta) or "-")
end

function Progress:bar(c)
  local width = 24
  local filled = self.total > 0 and math.floor(width * (c.done or 0) / self.total) or width
  local _, rate, eta = self:figures(c)
  return string.format("\r[%s%s] %d/%d  ordered %d  pending %d  failed %d  %.1f/s  ETA %s\27[K",
    string.rep("#", filled), string.rep("-", width - filled), c.done or 0, self.total, c.ordered or 0,
    c.pending or 0, c.failed or 0, rate, eta and clock(eta) or "-")
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
