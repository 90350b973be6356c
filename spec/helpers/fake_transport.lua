-- A scripted transport and a virtual clock, to test the client without a network.
local fake = {}

fake.fixture = require("helpers.fixtures").raw

-- Each step is a response table {status=, body=, headers=} or {error={kind=, sent=}}.
function fake.transport(steps)
  local t = { requests = {}, steps = steps }
  function t.request(_, req)
    t.requests[#t.requests + 1] = req
    local step = table.remove(t.steps, 1)
    assert(step, "fake transport: unexpected request #" .. #t.requests .. " to " .. req.url)
    if step.error then
      return nil, { kind = step.error.kind, message = step.error.message or step.error.kind, sent = step.error.sent }
    end
    local headers = step.headers or {}
    headers["x-api-requestid"] = headers["x-api-requestid"] or ("%032x"):format(#t.requests)
    headers["content-type"] = headers["content-type"] or "text/html; charset=utf-8"
    return { status = step.status or 200, headers = headers, body = step.body or "" }
  end
  return t
end

-- now/sleep over virtual time; records each sleep.
function fake.clock()
  local clock = { time = 1000, sleeps = {} }
  function clock.now() return clock.time end
  function clock.sleep(s)
    clock.sleeps[#clock.sleeps + 1] = s
    clock.time = clock.time + s
  end
  return clock
end

--- A client on a scripted transport and a virtual clock (random fixed at 0.5):
--- client, transport, clock. extra: options over these.
function fake.client(secret, steps, extra)
  local transport = fake.transport(steps or {})
  local clock = fake.clock()
  local opts = { secret_id = "AKIDtest", secret_key = secret, endpoint = "http://127.0.0.1:9/release",
    transport = transport, sleep = clock.sleep, now = clock.now, random = function() return 0.5 end }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return assert(require("maintenance_report").new(opts)), transport, clock
end

function fake.json_message(status, message)
  return { status = status, body = '{"message":"' .. message .. '"}' }
end

fake.PENDING = '{"code":"0","message":"成功","data":{"result":"0","description":"报告生成中",'
  .. '"detail":{"resultCode":"1204","resultMsg":"报告生成中"}}}'

return fake
