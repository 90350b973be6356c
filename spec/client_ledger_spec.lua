-- The buy-once rule in the client: every order goes through the ledger, for
-- query, create_order and start_query alike.
local mr = require "maintenance_report"
local ledger = require "maintenance_report.ledger"
local fake = require "helpers.fake_transport"
local tmp = require "helpers.ledger_tmp"
local shell = require "helpers.shell"

local VIN = "1G4AH59H45G118341"
local SECRET = "sk-ledger-spec-secret"

local function order_ok()
  return { body = fake.fixture("vendor_order_success.json") }
end

local function ready()
  return { body = fake.fixture("vendor_report_ready.json") }
end

local FIXTURE_ORDER_ID = fake.fixture("vendor_order_success.json"):match('"orderId"%s*:%s*"([^"]+)"')

local function new_client(steps, extra)
  return fake.client(SECRET, steps, extra)
end

local function orders_sent(transport)
  local n = 0
  for _, req in ipairs(transport.requests) do
    if req.url:find("/maintenance/order", 1, true) then n = n + 1 end
  end
  return n
end

describe("the client's ledger", function()
  it("reuses a final report younger than reuse, with its order id and no new charge", function()
    local clock_now = 1000
    local L = ledger.memory{ now = function() return clock_now end }
    local c, transport = new_client({ order_ok(), ready() }, { ledger = L, reuse = 3600 })
    local first = assert(c:query{ vin = VIN })
    assert.is_nil(first.reused)
    local again = assert(c:query{ vin = VIN })
    assert.is_true(again.reused)
    assert.are.equal(FIXTURE_ORDER_ID, again.order_id)
    assert.are.equal(1, orders_sent(transport))
    -- fresh = true, or an old report: a new order (the user asked for it)
    transport.steps = { order_ok(), ready() }
    assert.is_nil(assert(c:query{ vin = VIN, fresh = true }).reused)
    assert.are.equal(2, orders_sent(transport))
    clock_now = clock_now + 7200
    transport.steps = { order_ok(), ready() }
    assert.is_nil(assert(c:query{ vin = VIN }).reused)
    assert.are.equal(3, orders_sent(transport))
  end)

  it("never orders again after an unknown outcome, unless retry_unknown is set", function()
    local c, transport = new_client{ { status = 500, body = "<html>500</html>" } }
    local _, err = c:query{ vin = VIN }
    assert.are.equal("unknown", err.order_outcome)
    local _, again = c:query{ vin = VIN }
    assert.are.equal("unknown_outcome", again.kind)
    assert.is_false(again.retryable)
    assert.are.equal(VIN, again.vin)
    assert.truthy(tostring(again):find("retry_unknown", 1, true))
    _, again = c:create_order{ vin = VIN }
    assert.are.equal("unknown_outcome", again.kind)
    assert.are.equal(1, orders_sent(transport))
    transport.steps = { order_ok(), ready() }
    assert(c:query{ vin = VIN, retry_unknown = true })
    assert.are.equal(2, orders_sent(transport))
  end)

  it("polls a placed order that is still pending instead of buying again", function()
    local c, transport = new_client{ order_ok(), { body = fake.PENDING } }
    local _, err = c:query{ vin = VIN, max_wait = 0 }
    assert.are.equal("pending", err.kind)
    assert.are.equal(FIXTURE_ORDER_ID, err.order_id)
    transport.steps = { ready() }
    local report = assert(c:query{ vin = VIN })
    assert.are.equal("ready", report.status)
    assert.are.equal(1, orders_sent(transport))
    transport.steps = { order_ok() }
    local order = assert(c:create_order{ vin = VIN }) -- ready now, reuse 0: a new order is asked for
    assert.is_nil(order.existing)
  end)

  it("gives create_order the placed order back, not a second charge", function()
    local c, transport = new_client{ order_ok(), { body = fake.PENDING } }
    local _, err = c:query{ vin = VIN, max_wait = 0 }
    assert.are.equal("pending", err.kind)
    local order = assert(c:create_order{ vin = VIN })
    assert.is_true(order.existing)
    assert.are.equal(FIXTURE_ORDER_ID, order.order_id)
    assert.are.equal(1, orders_sent(transport))
  end)

  it("records not_placed for a refused order, so the next call orders again", function()
    local c, transport = new_client{ fake.json_message(401, "HMAC signature does not match.") }
    local _, err = c:query{ vin = VIN }
    assert.are.equal("not_placed", err.order_outcome)
    assert.are.equal("not_placed", c:ledger():get{ vin = VIN }.state)
    transport.steps = { order_ok(), ready() }
    assert(c:query{ vin = VIN })
    assert.are.equal(2, orders_sent(transport))
  end)

  it("sends nothing when the intent cannot be recorded", function()
    local L = ledger.memory()
    local store = L.store
    local cas = store.cas
    store.cas = function() return nil, "disk full" end
    local c, transport = new_client({}, { ledger = L })
    local _, err = c:query{ vin = VIN }
    assert.are.equal("ledger", err.kind)
    assert.are.equal("not_placed", err.order_outcome)
    assert.are.equal(0, #transport.requests)
    store.cas = cas
  end)

  it("keeps the order id when the ledger cannot record it, and never re-orders that vehicle", function()
    local L = ledger.memory()
    local store = L.store
    local cas, writes = store.cas, 0
    store.cas = function(...)
      writes = writes + 1
      if writes == 3 then return nil, "disk full" end -- the intent and its arming land, the order id not
      return cas(...)
    end
    local c, transport = new_client({ order_ok() }, { ledger = L })
    local _, err = c:query{ vin = VIN }
    assert.are.equal("ledger", err.kind)
    assert.are.equal(FIXTURE_ORDER_ID, err.order_id)
    assert.truthy(err.message:find(FIXTURE_ORDER_ID, 1, true))
    store.cas = cas
    local _, again = c:query{ vin = VIN }
    assert.are.equal("unknown_outcome", again.kind)
    assert.are.equal(1, orders_sent(transport))
  end)

  it("records an unknown outcome even when the transport failed before it asked for the intent", function()
    local sent = 0
    local transport = { before_send = true } -- says it calls before_send, but fails before that
    function transport.request()
      sent = sent + 1
      return nil, { kind = "network", message = "connection reset" } -- no byte count: may have left
    end
    local c = assert(mr.new{ secret_id = "AKIDtest", secret_key = SECRET, transport = transport, retries = 0 })
    local _, err = c:query{ vin = VIN }
    assert.are.equal("unknown", err.order_outcome)
    assert.are.equal("unknown", c:ledger():get{ vin = VIN }.state)
    local _, again = c:query{ vin = VIN }
    assert.are.equal("unknown_outcome", again.kind)
    assert.are.equal(1, sent)
  end)

  it("places one order for two concurrent start_query calls for one vehicle", function()
    local transport, next_id, done = { requests = {} }, 0, {}
    function transport.request() error("no blocking request expected") end
    function transport.submit(_, req)
      transport.requests[#transport.requests + 1] = req
      next_id = next_id + 1
      local body = req.url:find("/maintenance/order", 1, true) and fake.fixture("vendor_order_success.json")
        or fake.fixture("vendor_report_ready.json")
      done[#done + 1] = { id = next_id, response = { status = 200, headers = {}, body = body } }
      return next_id
    end
    function transport.perform()
      local out = done
      done = {}
      return out
    end
    local c = assert(mr.new{ secret_id = "AKIDtest", secret_key = SECRET, transport = transport,
      first_poll_delay = 0.01 })
    local a = assert(c:start_query{ vin = VIN })
    local b = assert(c:start_query{ vin = VIN })
    while c:step(0.01) > 0 do end
    local ra, rb = assert(a:result()), assert(b:result())
    assert.are.equal(ra.order_id, rb.order_id)
    assert.are.equal(1, orders_sent(transport))
  end)

  it("records the intent only once a transport slot is free", function()
    local transport, next_id, held = { requests = {} }, 0, {}
    function transport.request() error("no blocking request expected") end
    function transport.submit(_, req)
      transport.requests[#transport.requests + 1] = req
      next_id = next_id + 1
      held[#held + 1] = next_id
      return next_id
    end
    function transport.perform() return {} end -- nothing ever finishes
    local L = ledger.memory()
    -- step_budget 1: one step(0) does all there is, however slow the machine (the CPU budget
    -- would otherwise leave the order for a later call; this spec counts requests after one).
    local c = assert(mr.new{ secret_id = "AKIDtest", secret_key = SECRET, transport = transport,
      max_in_flight = 1, ledger = L, step_budget = 1 })
    local other = "1G1BN53E6NW128495"
    assert(c:start_query{ vin = VIN })
    assert(c:start_query{ vin = other })
    c:step(0)
    assert.are.equal(1, #transport.requests)
    assert.are.equal("intent", L:get{ vin = VIN }.state)
    -- queued behind the one slot: nothing recorded, so a crash now leaves it free
    assert.is_nil(L:get{ vin = other })
  end)
end)

describe("the intent of an order over libcurl", function()
  it("is armed only once a connection stands: a refused connection leaves it unarmed, not placed", function()
    local L = ledger.memory()
    local c = assert(mr.new{ secret_id = "AKIDtest", secret_key = SECRET, endpoint = "http://127.0.0.1:1/release",
      ledger = L, retries = 0, connect_timeout = 1 })
    local _, err = c:create_order{ vin = VIN }
    assert.are.equal("not_placed", err.order_outcome)
    -- libcurl's prereq callback never ran: never armed, so a crash here would read as not placed
    local entry = assert(L:get{ vin = VIN })
    assert.are.equal("not_placed", entry.state)
    assert.is_nil(entry.armed)
    c:close()
  end)

  it("is armed after the connection stands and before the first byte, against the sandbox", function()
    local sandbox = require "maintenance_report_sandbox"
    local sb = assert(sandbox.start{ pending_polls = 5 })
    local vin = "WBAXW1104J0X16755"
    local L = ledger.memory()
    local cas = L.store.cas
    local orders_at = {} -- the sandbox's order count when each record was written
    L.store.cas = function(store, key, token, version, entry, opts)
      local state = entry.armed and "armed" or entry.state
      orders_at[state] = sb:stats().orders_by_vin[vin] or 0
      return cas(store, key, token, version, entry, opts)
    end
    local c = assert(mr.new{ secret_id = sb.secret_id, secret_key = sb.secret_key, endpoint = sb.base_url,
      ledger = L, max_wait = 0 })
    local _, err = c:query{ vin = vin }
    sb:stop()
    assert.are.equal("pending", err.kind)
    assert.are.same({ intent = 0, armed = 0, placed = 1 }, orders_at)
  end)
end)

-- Two processes on one file ledger, against the sandbox.
describe("the file ledger across processes", function()
  local sandbox = require "maintenance_report_sandbox"
  local sb, dir
  local interpreter = os.getenv("MR_SPEC_LUA") or (rawget(_G, "jit") and "luajit" or "lua5.4")
  lazy_setup(function()
    sb = assert(sandbox.start{ pending_polls = 0 })
    dir = tmp.dir()
  end)
  lazy_teardown(function()
    if sb then sb:stop() end
    tmp.remove(dir)
  end)

  -- A child that queries one VIN on the shared file ledger and reports as it goes.
  local CHILD = [[
local mr = require "maintenance_report"
local ledger = require "maintenance_report.ledger"
local path, endpoint, id, key, vin, tasks, max_wait = ...
local L = assert(ledger.file(path))
local c = assert(mr.new{ secret_id = id, secret_key = key, endpoint = endpoint, ledger = L,
  first_poll_delay = 0.05, poll_interval = 0.1, max_wait = tonumber(max_wait), timeout = 5,
  on_event = function(ev)
    if ev.event == "http" and ev.op == "create_order" then io.write("ordered\n") io.flush() end
  end })
local handles = {}
for i = 1, tonumber(tasks) do handles[i] = assert(c:start_query{ vin = vin }) end
while c:step(0.05) > 0 do end
for _, h in ipairs(handles) do
  local report, err = h:result()
  io.write(report and ("report " .. report.order_id) or ("error " .. err.kind .. " " .. tostring(err.order_id)), "\n")
end
io.flush()
]]

  -- Written once: rewritten while a child was still loading it, the child ran half a file.
  local child_path
  local function write_child()
    if not child_path then
      child_path = dir .. "/child.lua"
      shell.write_file(child_path, CHILD)
    end
    return child_path
  end

  local function child_command(ledger_path, vin, tasks, max_wait)
    return ("exec %s %s %s %s %s %s %s %d %d 2>>%s"):format(interpreter, shell.quote(write_child()),
      shell.quote(ledger_path), shell.quote(sb.base_url), shell.quote(sb.secret_id), shell.quote(sb.secret_key),
      shell.quote(vin), tasks, max_wait, shell.quote(dir .. "/children.err"))
  end

  it("lets a second process resume the order of one SIGKILLed while polling, with no new order", function()
    assert(sb:reset())
    local vin = sandbox.scenario_vin("pending_polls", 9999) -- pending for as long as anyone polls
    local path = dir .. "/killed.ledger"
    local pid_file = dir .. "/killed.pid"
    local p = assert(io.popen(("exec sh -c 'echo $$ > %s; %s'"):format(pid_file, child_command(path, vin, 1, 600))))
    assert.are.equal("ordered", p:read("*l"))
    -- the order id is written the moment the answer arrives: wait until the ledger has it
    local L = assert(ledger.file(path))
    local entry
    for _ = 1, 500 do
      entry = L:get{ vin = vin }
      if entry and entry.state == "placed" then break end
      os.execute("sleep 0.01")
    end
    assert.are.equal("placed", entry.state)
    local pid = assert(tonumber(shell.read_file(pid_file)))
    os.execute("kill -KILL " .. pid)
    p:close()
    -- the second process: the same VIN on the same ledger polls that order
    local out = shell.run(child_command(path, vin, 1, 1))
    assert.truthy(out:find("error pending " .. entry.order_id, 1, true), out)
    assert.is_nil(out:find("ordered", 1, true), out)
    assert.are.equal(1, sb:stats().orders_by_vin[vin])
  end)

  it("places 1 order for 10 concurrent queries of one VIN from 3 processes", function()
    assert(sb:reset())
    local vin = sandbox.scenario_vin("order_slow", 1) -- the order takes 1 s: every other query waits
    local path = dir .. "/shared.ledger"
    local pipes = {}
    for i, tasks in ipairs{ 4, 3, 3 } do pipes[i] = assert(io.popen(child_command(path, vin, tasks, 60))) end
    local reports, ids, other = 0, {}, {}
    for _, p in ipairs(pipes) do
      for line in p:lines() do
        local id = line:match("^report (%S+)")
        if id then
          reports = reports + 1
          ids[id] = true
        elseif line ~= "ordered" then
          other[#other + 1] = line
        end
      end
      p:close()
    end
    assert.are.equal(10, reports, table.concat(other, "\n") .. (shell.read_file(dir .. "/children.err") or ""))
    local distinct = 0
    for _ in pairs(ids) do distinct = distinct + 1 end
    assert.are.equal(1, distinct)
    assert.are.equal(1, sb:stats().orders_by_vin[vin])
  end)
end)
