-- One cooperative scheduler for all non-blocking work: the event-loop API
-- (client:start_query / client:step) and the CLI's batch run both use it.
--
-- Work runs in coroutines. Inside them, scheduler.request() and scheduler.sleep()
-- yield: HTTP goes to the transport's curl multi handle, sleeps become timers.
-- step(timeout) waits in curl_multi_poll (or one sleep when only timers are due),
-- never in a busy loop, and never longer than timeout.
local scheduler = {}

-- coroutine → the scheduler that runs it (weak, so finished work is collected).
local owner = setmetatable({}, { __mode = "k" })

local Scheduler = {}
Scheduler.__index = Scheduler

local Handle = {}
Handle.__index = Handle

--- opts: transport (with submit/perform/cancel/pending), now (seconds), sleep,
--- max_in_flight (cap on concurrent HTTP requests, default 8).
function scheduler.new(opts)
  assert(type(opts) == "table" and opts.transport and opts.transport.submit,
    "scheduler.new: a transport with submit/perform is required")
  return setmetatable({
    transport = opts.transport,
    now = opts.now,
    sleep = opts.sleep,
    max_in_flight = opts.max_in_flight or 8,
    ready = {},      -- {co, value...} to resume now
    timers = {},     -- binary heap of {at, seq, co}
    queued = {},     -- HTTP requests waiting for a slot: {co, req}, a FIFO
    queued_head = 1, -- index of the oldest entry in queued
    queued_tail = 0, -- index of the newest; empty when head > tail
    in_flight = {},  -- transfer id → co
    in_flight_count = 0,
    seq = 0,
    live = 0,        -- coroutines not finished yet
  }, Scheduler)
end

--- The scheduler running the current coroutine, if any.
function scheduler.current()
  local co = coroutine.running()
  return co and owner[co] or nil
end

-- ---- timers: a binary min-heap on (at, seq) ----------------------------

local function before(a, b)
  return a.at < b.at or (a.at == b.at and a.seq < b.seq)
end

local function heap_push(heap, item)
  heap[#heap + 1] = item
  local i = #heap
  while i > 1 do
    local parent = math.floor(i / 2)
    if not before(heap[i], heap[parent]) then break end
    heap[i], heap[parent] = heap[parent], heap[i]
    i = parent
  end
end

local function heap_pop(heap)
  local top = heap[1]
  local last = table.remove(heap)
  if #heap > 0 then
    heap[1] = last
    local i = 1
    while true do
      local l, r, smallest = 2 * i, 2 * i + 1, i
      if heap[l] and before(heap[l], heap[smallest]) then smallest = l end
      if heap[r] and before(heap[r], heap[smallest]) then smallest = r end
      if smallest == i then break end
      heap[i], heap[smallest] = heap[smallest], heap[i]
      i = smallest
    end
  end
  return top
end

-- ---- running work ------------------------------------------------------

local unpack = table.unpack or unpack -- luacheck: ignore 143

local function pack(...)
  return { n = select("#", ...), ... }
end

--- Runs fn(...) as a new task; returns a handle. on_done(handle) is called when it ends.
function Scheduler:spawn(fn, on_done, ...)
  local co = coroutine.create(fn)
  local handle = setmetatable({ finished = false, on_done = on_done, co = co }, Handle)
  owner[co] = self
  self.handles = self.handles or setmetatable({}, { __mode = "k" })
  self.handles[co] = handle
  self.live = self.live + 1
  local args = pack(...)
  self.ready[#self.ready + 1] = { co, args }
  return handle
end

function Scheduler:_finish(co, ok, values)
  local handle = self.handles[co]
  -- Drop the entry now: under LuaJIT (Lua 5.1 weak tables, no ephemerons) the
  -- handle, whose co field refers back to the key, would keep itself, its
  -- coroutine and its result alive for ever.
  self.handles[co] = nil
  owner[co] = nil
  self.live = self.live - 1
  handle.finished = true
  if ok then
    handle.values = values
  else
    handle.failure = values -- a Lua error in the task: raised again by result()
  end
  if handle.on_done then
    local cb_ok, cb_err = pcall(handle.on_done, handle)
    if not cb_ok then handle.callback_error = cb_err end
  end
end

-- Resumes co with the packed values; handles what it yields next.
function Scheduler:_resume(co, args)
  local r = pack(coroutine.resume(co, unpack(args, 1, args.n)))
  if not r[1] then
    self:_finish(co, false, r[2])
  elseif coroutine.status(co) == "dead" then
    self:_finish(co, true, pack(unpack(r, 2, r.n)))
  elseif r[2] == "http" then
    self.queued_tail = self.queued_tail + 1
    self.queued[self.queued_tail] = { co, r[3] }
  elseif r[2] == "sleep" then
    self.seq = self.seq + 1
    heap_push(self.timers, { at = self.now() + (tonumber(r[3]) or 0), seq = self.seq, co = co })
  else
    -- A foreign yield (someone else's coroutine protocol): give control back at once.
    self.ready[#self.ready + 1] = { co, pack() }
  end
end

function Scheduler:_submit_queued()
  -- A head index, not table.remove(queued, 1): that shifts every waiting
  -- request on each submit, quadratic when thousands are started at once.
  while self.queued_head <= self.queued_tail and self.in_flight_count < self.max_in_flight do
    local entry = self.queued[self.queued_head]
    self.queued[self.queued_head] = nil
    self.queued_head = self.queued_head + 1
    if self.queued_head > self.queued_tail then self.queued_head, self.queued_tail = 1, 0 end
    local id, err = self.transport:submit(entry[2])
    if id then
      self.in_flight[id] = entry[1]
      self.in_flight_count = self.in_flight_count + 1
    else
      self:_resume(entry[1], pack(nil, err))
    end
  end
end

function Scheduler:_run_ready()
  while #self.ready > 0 do
    local batch = self.ready
    self.ready = {}
    for _, entry in ipairs(batch) do self:_resume(entry[1], entry[2]) end
  end
end

function Scheduler:_run_due_timers()
  local now = self.now()
  while self.timers[1] and self.timers[1].at <= now do
    local timer = heap_pop(self.timers)
    self.ready[#self.ready + 1] = { timer.co, pack() }
  end
end

function Scheduler:_complete(done)
  local co = self.in_flight[done.id]
  if not co then return end
  self.in_flight[done.id] = nil
  self.in_flight_count = self.in_flight_count - 1
  self.ready[#self.ready + 1] = { co, pack(done.response, done.error) }
end

--- Advances all work, waiting at most timeout seconds (0: just poll).
--- Returns the number of tasks still running.
function Scheduler:step(timeout)
  timeout = timeout or 0
  local deadline = self.now() + timeout
  repeat
    self:_run_due_timers()
    self:_run_ready()
    self:_submit_queued()
    local now = self.now()
    local wait = math.max(0, deadline - now)
    if self.timers[1] then wait = math.min(wait, math.max(0, self.timers[1].at - now)) end
    if self.in_flight_count > 0 then
      for _, done in ipairs(self.transport:perform(wait)) do self:_complete(done) end
    elseif #self.ready == 0 and self.queued_head > self.queued_tail then
      if not self.timers[1] then break end -- nothing left to wait for
      if wait > 0 then self.sleep(wait) end
    end
    self:_run_due_timers()
    self:_run_ready()
    self:_submit_queued()
  until self.now() >= deadline or self.live == 0
  return self.live
end

--- Runs until every task has finished.
function Scheduler:run()
  while self.live > 0 do self:step(1) end
end

function Scheduler:pending()
  return self.live
end

-- ---- what tasks call -----------------------------------------------------

--- Inside a task: sends a request through the multi handle and waits for it.
function scheduler.request(req)
  return coroutine.yield("http", req)
end

--- Inside a task: waits without blocking the other tasks.
function scheduler.sleep(seconds)
  coroutine.yield("sleep", seconds)
end

-- ---- handles -------------------------------------------------------------

function Handle:done()
  return self.finished
end

--- The task's return values; raises the task's Lua error if it had one.
function Handle:result()
  if not self.finished then error("handle:result(): the work is not done yet", 2) end
  if self.failure ~= nil then error(self.failure, 0) end
  return unpack(self.values, 1, self.values.n)
end

return scheduler
