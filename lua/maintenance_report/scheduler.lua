-- One cooperative scheduler for all non-blocking work: the event-loop API
-- (client:start_query / client:step) and the CLI's batch run both use it.
--
-- Work runs in coroutines ("tasks"). Inside them, s:request() and s:sleep() yield:
-- HTTP goes to the transport's curl multi handle, sleeps become timers.
-- step(timeout) waits in curl_multi_poll (or one sleep when only timers are due),
-- never in a busy loop, and never longer than timeout.
--
-- Public API (nothing else is; fields starting with "_" are private):
--   scheduler.new{transport=, now=, sleep=, max_in_flight=} → s
--   s:spawn(fn, on_done, ...) → handle   runs fn(...) as a task; on_done(handle) once when it ends
--   s:step(timeout) → tasks still running (advances everything, waits at most timeout s)
--   s:run()                              steps until no task is left
--   s:pending() → tasks still running
--   s:watch() → changes, timeout         for hosts that own the loop (the transport needs
--                                        watch/socket_action): changes lists, since the last
--                                        call, {fd=, events="r"|"w"|"rw"|"remove"} to apply in
--                                        order; timeout: seconds until s must be called again
--                                        (timers, retry back-offs and curl's own timeouts
--                                        included; 0: now), nil once no task is left
--   s:socket_action(fd, events) → tasks still running   the host's event: fd ready for
--                                        events ("r", "w", "rw", "e"; "" lets curl look),
--                                        or fd nil when the timeout is due. Never waits
--   s:timeout() → the timeout watch() would give, without taking the changes
--   s:set_wakeup(fn)                     fn() runs when work starts or stops outside a call of
--                                        s (spawn, cancel): the host should call watch() soon.
--                                        It must not call s itself (schedule that instead)
--   s:running() → true when the calling coroutine is one of s's own tasks
--   s:request(req, before_send) → response | nil, err   only inside s's tasks: through
--                                        s's transport; before_send() (optional) runs once a
--                                        transport slot is free, right before the request is
--                                        handed over. If it returns nil, err (or raises),
--                                        nothing is sent and the task gets
--                                        nil, { not_sent_because = err, request_bytes = 0 }
--   s:sleep(seconds)                        only inside s's tasks: a timer of s
--   s:checkpoint()                       only inside s's tasks: where a long resume may be
--                                        split; continues in the next call once the budget is spent
--   scheduler.current() → the scheduler whose task is running, or nil
--   scheduler.request(req), scheduler.sleep(seconds): the same for scheduler.current()
--   handle:done() → true once the task returned, raised or was cancelled
--   handle:result() → the task's values; raises the task's Lua error; after cancel,
--                     nil, err with err.kind "cancelled"; raises if not done yet
--   handle:error() → the Lua error the task raised (not a nil, err result), or nil
--   handle:cancel() → true if it stopped the task, false if the task had ended already
--
-- Ownership: a task's request goes to the transport of the scheduler that runs it.
-- Code owning a scheduler (a client) checks s:running() and otherwise blocks on its own
-- transport, so inside another scheduler's task it blocks that scheduler's loop for
-- the call, but never sends through a transport (and TLS settings) not its own.
--
-- Bounded work: one step(0) or socket_action resumes another task only while the CPU
-- it used so far plus the cost of a recent resume stays within `budget` (default
-- scheduler.BUDGET, 0.25 ms; always at least one task per call), and leaves the rest
-- ready, with timeout() 0, for the next call. Several queries finishing in the same
-- frame then share the next frames instead of adding up in one.
--
-- on_done errors: step() finishes the bookkeeping of everything it was doing, then
-- raises the first error an on_done raised (one per step() call, in order, so none
-- is lost). cancel() calls on_done itself and raises its error after the bookkeeping.
local errors = require "maintenance_report.errors"
-- The budget clock: CPU time of the host's own thread when the core is there.
local has_core, core = pcall(require, "maintenance_report.core")
local thread_cputime = has_core and core.thread_cputime or os.clock

local scheduler = {}

-- coroutine → the scheduler running it as a task (weak; entries go when the task ends).
local owner = setmetatable({}, { __mode = "k" })

-- What tasks yield: private tokens, so someone else's coroutine protocol yielding
-- "http" is never taken for a request.
local HTTP, SLEEP, CHECKPOINT = {}, {}, {}

local NIL_ERROR = "(error object is a nil value)"

local Scheduler = {}
Scheduler.__index = Scheduler

local Handle = {}
Handle.__index = Handle

-- CPU seconds one call may spend resuming tasks. A call ends up at about the budget
-- plus one piece of a task (a report's decode, normalize, analysis or ledger copy:
-- 0.1-0.3 ms each, several times that with cold caches in a frame loop) plus curl's
-- I/O: 0.25 ms keeps the sum well inside a frame's 2 ms share.
scheduler.BUDGET = 0.00025

-- A host told "no deadline" while tasks live could wait forever if a socket event went
-- unnoticed; with no timer of its own or of curl's, it is asked back this often instead.
scheduler.MAX_TIMEOUT = 1

--- opts: transport (submit/perform; cancel, when it has one, stops cancelled transfers),
--- now (seconds), sleep, max_in_flight (cap on concurrent HTTP requests, default 8),
--- budget (CPU seconds per call, default scheduler.BUDGET), cpu_clock (CPU seconds of
--- this thread: core.thread_cputime, or os.clock without the core).
function scheduler.new(opts)
  assert(type(opts) == "table" and opts.transport and opts.transport.submit,
    "scheduler.new: a transport with submit/perform is required")
  return setmetatable({
    _transport = opts.transport,
    _now = opts.now,
    _sleep = opts.sleep,
    _max_in_flight = opts.max_in_flight or 8,
    _budget = opts.budget or scheduler.BUDGET,
    _cpu_clock = opts.cpu_clock or thread_cputime,
    _budget_end = math.huge, -- this call's CPU deadline for resuming tasks
    _resumed = 0,            -- tasks resumed in this call
    _submitted = 0,          -- requests handed to the transport in this call
    _resume_cost = 0.0002,   -- CPU of a recent resume: the largest, decaying
    _wakeup = nil,
    _ready = {},           -- {handle, packed values} to resume now
    _yielded = {},         -- the same, for tasks that yielded something not ours: next step
    _timers = {},          -- binary heap of {at, seq, handle}; handle nil once cancelled
    _queued = {},          -- HTTP requests waiting for a slot: {handle, req}, a FIFO
    _queued_head = 1,      -- index of the oldest entry in _queued
    _queued_tail = 0,      -- index of the newest; empty when head > tail
    _in_flight = {},       -- transfer id → handle, or false: cancelled, the transport could not stop it
    _in_flight_count = 0,
    _seq = 0,
    _live = 0,             -- tasks not finished yet
    _callback_errors = {}, -- raised by on_done, waiting for step() to raise them
  }, Scheduler)
end

--- The scheduler running the current coroutine as a task, if any.
function scheduler.current()
  local co = coroutine.running()
  return co and owner[co] or nil
end

--- True when the calling coroutine is one of this scheduler's tasks.
function Scheduler:running()
  local co = coroutine.running()
  return co ~= nil and owner[co] == self
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

-- Cancelled timers stay in the heap until they reach the top; none may stay there,
-- or step would wait for a wake-up nobody needs.
function Scheduler:_drop_cancelled_timers()
  local timers = self._timers
  while timers[1] and not timers[1].handle do heap_pop(timers) end
end

-- ---- running work ------------------------------------------------------

local unpack = table.unpack or unpack -- luacheck: ignore 143

local function pack(...)
  return { n = select("#", ...), ... }
end

--- Runs fn(...) as a new task; returns a handle. on_done(handle) is called once when it ends.
function Scheduler:spawn(fn, on_done, ...)
  if type(fn) ~= "function" then error("spawn: fn must be a function", 2) end
  if on_done ~= nil and type(on_done) ~= "function" then error("spawn: on_done must be a function", 2) end
  local co = coroutine.create(fn)
  local handle = setmetatable({ _scheduler = self, _co = co, _on_done = on_done, _state = "running" }, Handle)
  owner[co] = self
  self._live = self._live + 1
  self._ready[#self._ready + 1] = { handle, pack(...) }
  self:_wake()
  return handle
end

function Scheduler:_wake()
  if self._wakeup then self._wakeup() end
end

--- fn() is called when work starts or is cancelled outside a call of s; nil: no more.
function Scheduler:set_wakeup(fn)
  if fn ~= nil and type(fn) ~= "function" then error("set_wakeup: fn must be a function or nil", 2) end
  self._wakeup = fn
end

-- Starts a call's CPU budget for resuming tasks.
function Scheduler:_begin_budget()
  self._resumed, self._submitted = 0, 0
  self._budget_end = self._cpu_clock() + self._budget
end

function Scheduler:_out_of_budget()
  return self._resumed > 0 and self._cpu_clock() + self._resume_cost > self._budget_end
end

-- Ends a task; returns the error its on_done raised, if any.
-- state: "done" (values: the packed results), "failed" (the Lua error), "cancelled" (packed nil, err).
function Scheduler:_finish(handle, state, value)
  owner[handle._co] = nil
  handle._co = nil -- the dead coroutine's stack can be collected with the handle still held
  self._live = self._live - 1
  handle._state = state
  if state == "failed" then handle._error = value else handle._values = value end
  local on_done = handle._on_done
  handle._on_done = nil
  if on_done then
    local ok, err = pcall(on_done, handle)
    if not ok then return err == nil and NIL_ERROR or err end
  end
  return nil
end

-- Resumes the task with the packed values; handles what it yields next.
function Scheduler:_resume(handle, args)
  if handle._state ~= "running" then return end -- cancelled while it waited its turn
  local co = handle._co
  local r = pack(coroutine.resume(co, unpack(args, 1, args.n)))
  local callback_error
  if not r[1] then
    callback_error = self:_finish(handle, "failed", r[2] == nil and NIL_ERROR or r[2])
  elseif coroutine.status(co) == "dead" then
    callback_error = self:_finish(handle, "done", pack(unpack(r, 2, r.n)))
  elseif r[2] == HTTP then
    local entry = { handle = handle, req = r[3], before_send = r[4] }
    handle._queued = entry
    self._queued_tail = self._queued_tail + 1
    self._queued[self._queued_tail] = entry
  elseif r[2] == CHECKPOINT then
    self._ready[#self._ready + 1] = { handle, pack() }
  elseif r[2] == SLEEP then
    self._seq = self._seq + 1
    local timer = { at = self._now() + (tonumber(r[3]) or 0), seq = self._seq, handle = handle }
    handle._timer = timer
    heap_push(self._timers, timer)
  else
    -- A foreign yield (someone else's coroutine protocol): resumed on the next step,
    -- so a task yielding in a loop cannot keep step() from returning.
    self._yielded[#self._yielded + 1] = { handle, pack() }
  end
  -- Kept, not raised here: raising would drop the rest of this step's work.
  if callback_error ~= nil then self._callback_errors[#self._callback_errors + 1] = callback_error end
end

function Scheduler:_submit_queued()
  -- A head index, not table.remove(queued, 1): that shifts every waiting
  -- request on each submit, quadratic when thousands are started at once.
  while self._queued_head <= self._queued_tail and self._in_flight_count < self._max_in_flight do
    -- Past the budget the rest waits for the next call (timeout() is 0 meanwhile).
    if self._submitted > 0 and self._cpu_clock() >= self._budget_end then break end
    self._submitted = self._submitted + 1
    local entry = self._queued[self._queued_head]
    self._queued[self._queued_head] = nil
    self._queued_head = self._queued_head + 1
    if self._queued_head > self._queued_tail then self._queued_head, self._queued_tail = 1, 0 end
    local handle = entry.handle
    if handle then -- nil: cancelled before it had a slot, never submitted
      handle._queued = nil
      -- The hook runs here, with a slot free, so what it records (a paid
      -- order's intent) is about to be true; a queued request records nothing.
      local id, err = true, nil
      if entry.before_send then
        local ok, a, b = pcall(entry.before_send)
        if ok then id, err = a, b else id, err = nil, a end
        if not id then err = { not_sent_because = err, request_bytes = 0 } end
      end
      if id then id, err = self._transport:submit(entry.req) end
      if id then
        handle._transfer, handle._sent = id, true
        self._in_flight[id] = handle
        self._in_flight_count = self._in_flight_count + 1
      else
        self:_resume(handle, pack(nil, err))
      end
    end
  end
end

-- Resumes ready tasks, in order, until none is left or the call's budget is spent.
function Scheduler:_run_ready()
  while #self._ready > 0 do
    local batch = self._ready
    self._ready = {}
    for i = 1, #batch do
      if self:_out_of_budget() then
        -- The rest goes first next time, ahead of what became ready meanwhile.
        local rest = {}
        for j = i, #batch do rest[#rest + 1] = batch[j] end
        for _, entry in ipairs(self._ready) do rest[#rest + 1] = entry end
        self._ready = rest
        return
      end
      self._resumed = self._resumed + 1
      local started = self._cpu_clock()
      self:_resume(batch[i][1], batch[i][2])
      self._resume_cost = math.max(self._cpu_clock() - started, self._resume_cost * 0.9)
    end
  end
end

function Scheduler:_run_due_timers()
  self:_drop_cancelled_timers()
  local now = self._now()
  while self._timers[1] and self._timers[1].at <= now do
    local handle = heap_pop(self._timers).handle
    if handle then
      handle._timer = nil
      self._ready[#self._ready + 1] = { handle, pack() }
    end
  end
  self:_drop_cancelled_timers()
end

function Scheduler:_complete(done)
  local handle = self._in_flight[done.id]
  if handle == nil then return end
  self._in_flight[done.id] = nil
  self._in_flight_count = self._in_flight_count - 1
  if not handle then return end -- its task was cancelled
  handle._transfer = nil
  self._ready[#self._ready + 1] = { handle, pack(done.response, done.error) }
end

function Scheduler:_raise_callback_error()
  if self._callback_errors[1] ~= nil then error(table.remove(self._callback_errors, 1), 0) end
end

--- Advances all work, waiting at most timeout seconds (0: just poll).
--- Returns the number of tasks still running; raises the first error an on_done raised.
function Scheduler:step(timeout)
  timeout = timeout or 0
  self:_raise_callback_error() -- left over from an earlier step
  for _, entry in ipairs(self._yielded) do self._ready[#self._ready + 1] = entry end
  self._yielded = {}
  local deadline = self._now() + timeout
  repeat
    self:_begin_budget()
    self:_run_due_timers()
    self:_run_ready()
    self:_submit_queued()
    self:_drop_cancelled_timers()
    local now = self._now()
    local wait = math.max(0, deadline - now)
    if self._callback_errors[1] ~= nil then wait = 0 end -- report it now, not after the wait
    if #self._ready > 0 then wait = 0 end -- left over by the budget
    if self._timers[1] then wait = math.min(wait, math.max(0, self._timers[1].at - now)) end
    if self._in_flight_count > 0 then
      for _, done in ipairs(self._transport:perform(wait)) do self:_complete(done) end
    elseif #self._ready == 0 and self._queued_head > self._queued_tail then
      if not self._timers[1] then break end -- nothing left to wait for
      if wait > 0 then self._sleep(wait) end
    end
    self:_run_due_timers()
    self:_run_ready()
    self:_submit_queued()
  until self._now() >= deadline or self._live == 0 or self._callback_errors[1] ~= nil
  self._budget_end = math.huge
  self:_raise_callback_error()
  return self._live
end

local function need_socket_interface(self, call)
  if not (self._transport.watch and self._transport.socket_action) then
    error(call .. ": the transport has no socket interface (watch/socket_action); use step", 3)
  end
end

-- Seconds until the scheduler must run again, given curl's own timeout (nil: none).
function Scheduler:_timeout(transport_timeout)
  self:_drop_cancelled_timers()
  if self._live == 0 and self._in_flight_count == 0 then return nil end
  if #self._ready > 0 or #self._yielded > 0 or self._callback_errors[1] ~= nil
    or (self._queued_head <= self._queued_tail and self._in_flight_count < self._max_in_flight) then
    return 0
  end
  local wait
  -- curl's timer matters only while it has transfers of ours (it may keep stale ones).
  if transport_timeout and self._in_flight_count > 0 then wait = transport_timeout end
  if self._timers[1] then
    local due = math.max(0, self._timers[1].at - self._now())
    wait = wait and math.min(wait, due) or due
  end
  return wait or scheduler.MAX_TIMEOUT
end

--- For a host that owns the loop: the sockets to (un)watch since the last call, and the
--- seconds until s must be called (socket_action with fd nil), or nil when no task is left.
function Scheduler:watch()
  need_socket_interface(self, "scheduler:watch")
  local changes, transport_timeout = self._transport:watch()
  return changes, self:_timeout(transport_timeout)
end

--- The timeout watch() would give, leaving the socket changes for watch().
function Scheduler:timeout()
  need_socket_interface(self, "scheduler:timeout")
  local _, transport_timeout = self._transport:timeout()
  return self:_timeout(transport_timeout)
end

--- The host's event: fd ready for events, or fd nil when the timeout is due. Does a
--- bounded amount of work and never waits. Returns the number of tasks still running.
function Scheduler:socket_action(fd, events)
  need_socket_interface(self, "scheduler:socket_action")
  if fd ~= nil and (type(fd) ~= "number" or fd % 1 ~= 0 or fd < 0) then
    error("socket_action: fd must be an integer or nil", 2)
  end
  if events ~= nil and type(events) ~= "string" then error("socket_action: events must be a string", 2) end
  self:_raise_callback_error()
  self:_begin_budget()
  for _, entry in ipairs(self._yielded) do self._ready[#self._ready + 1] = entry end
  self._yielded = {}
  if self._in_flight_count > 0 then
    for _, done in ipairs(self._transport:socket_action(fd, events or "")) do self:_complete(done) end
  end
  self:_run_due_timers()
  self:_run_ready()
  self:_submit_queued()
  self._budget_end = math.huge
  self:_raise_callback_error()
  return self._live
end

--- Runs until every task has finished.
function Scheduler:run()
  while self._live > 0 do self:step(1) end
end

function Scheduler:pending()
  return self._live
end

-- Stops a suspended task: no further resumption, its request and timer dropped.
function Scheduler:_cancel(handle)
  local id = handle._transfer
  if id ~= nil then
    -- First, so a transport that raises leaves the task exactly as it was.
    if self._transport.cancel then
      self._transport:cancel(id)
      self._in_flight[id] = nil
      self._in_flight_count = self._in_flight_count - 1
    else
      self._in_flight[id] = false -- keeps its slot until perform reports it
    end
    handle._transfer = nil
  end
  if handle._queued then
    handle._queued.handle, handle._queued.req = nil, nil
    handle._queued = nil
  end
  if handle._timer then
    handle._timer.handle = nil
    handle._timer = nil -- step drops the entry from the heap
  end
  -- Entries in ready are skipped by _resume now that the state changes.
  local close_error
  if coroutine.close then -- Lua 5.4: runs the task's pending to-be-closed variables
    local ok, err = coroutine.close(handle._co)
    if not ok then close_error = err == nil and NIL_ERROR or err end
  end
  local sent = handle._sent == true
  local err = errors.new("cancelled", sent
    and "cancelled by handle:cancel(); it had sent requests, which may have reached the server"
    or "cancelled by handle:cancel() before it sent any request",
    { sent = sent, in_flight = id ~= nil })
  local callback_error = self:_finish(handle, "cancelled", pack(nil, err))
  self:_wake()
  if close_error ~= nil then error(close_error, 0) end
  if callback_error ~= nil then error(callback_error, 0) end
  return true
end

-- ---- what tasks call -----------------------------------------------------

--- Inside one of this scheduler's tasks: sends a request through its transport and waits.
function Scheduler:request(req, before_send)
  if not self:running() then
    error("scheduler:request: not inside one of this scheduler's tasks (block on the transport there)", 2)
  end
  return coroutine.yield(HTTP, req, before_send)
end

--- Inside one of this scheduler's tasks: waits without blocking the other tasks.
function Scheduler:sleep(seconds)
  if not self:running() then error("scheduler:sleep: not inside one of this scheduler's tasks", 2) end
  coroutine.yield(SLEEP, seconds)
end

--- Inside one of this scheduler's tasks: a point where the current call may end, once
--- its CPU budget is spent; the task then goes on in the next call. Free otherwise.
function Scheduler:checkpoint()
  if not self:running() then error("scheduler:checkpoint: not inside one of this scheduler's tasks", 2) end
  if self._cpu_clock() >= self._budget_end then coroutine.yield(CHECKPOINT) end
end

--- Inside any scheduler's task: a request through that scheduler's transport.
function scheduler.request(req)
  if not scheduler.current() then error("scheduler.request: not inside a scheduler task", 2) end
  return coroutine.yield(HTTP, req)
end

--- Inside any scheduler's task: a sleep on that scheduler.
function scheduler.sleep(seconds)
  if not scheduler.current() then error("scheduler.sleep: not inside a scheduler task", 2) end
  coroutine.yield(SLEEP, seconds)
end

-- ---- handles -------------------------------------------------------------

function Handle:done()
  return self._state ~= "running"
end

--- The task's return values; raises the task's Lua error if it had one.
function Handle:result()
  local state = self._state
  if state == "running" then error("handle:result(): the work is not done yet", 2) end
  if state == "failed" then error(self._error, 0) end
  return unpack(self._values, 1, self._values.n)
end

--- The Lua error the task raised, or nil (also for nil, err results and cancelled tasks).
function Handle:error()
  return self._error
end

--- Stops the task; on_done(handle) runs before it returns. False if it had ended already.
function Handle:cancel()
  if self._state ~= "running" then return false end
  if coroutine.status(self._co) ~= "suspended" then
    error("handle:cancel(): the task is running; a task ends itself by returning", 2)
  end
  return self._scheduler:_cancel(self)
end

return scheduler
