-- The core's socket interface (session:watch / session:socket_action) on real
-- sockets, against the sandbox's nginx.
local core = require "maintenance_report.core"
local sandbox = require "maintenance_report_sandbox"

-- What the descriptor is in this process ("socket:[…]"), or "" once it is closed.
local PID = assert(io.open("/proc/self/stat")):read("*l"):match("^(%d+)")
local function fd_kind(fd)
  local p = assert(io.popen(("readlink /proc/%s/fd/%d 2>/dev/null"):format(PID, fd)))
  local link = p:read("*a")
  p:close()
  return (link:gsub("%s+$", ""))
end

describe("core session socket interface", function()
  local sb
  lazy_setup(function() sb = assert(sandbox.start{}) end)
  lazy_teardown(function() if sb then sb:stop() end end)

  -- Drives one transfer to its end as a host would (without a poller: every watched
  -- socket is offered each turn, curl finds out which are ready). Returns the result
  -- and every change watch() reported, in order.
  local function run(session, req)
    local watched, log = {}, {}
    assert(session:submit(req))
    local deadline = core.monotime() + 10
    while core.monotime() < deadline do
      local changes, timeout = session:watch()
      for _, c in ipairs(changes) do
        log[#log + 1] = c
        watched[c.fd] = c.events ~= "remove" and c.events or nil
      end
      assert.is_true(timeout == nil or (type(timeout) == "number" and timeout >= 0))
      local results = session:socket_action(nil)
      for fd in pairs(watched) do
        for _, r in ipairs(session:socket_action(fd, "")) do results[#results + 1] = r end
      end
      if results[1] then return results[1], log, watched end
      core.sleep(0.002)
    end
    error("no result in 10 s")
  end

  it("reports the sockets to watch, and keeps a closed one open until the host was told", function()
    local session = core.session{}
    local result, log = run(session, { method = "GET", url = sb:url("/release/maintenance/report?order_id=x"),
      headers = { Connection = "close" } })
    assert.truthy(result.response, tostring(result.error and result.error.message))
    assert.is_true(#log >= 1)
    local fd = log[1].fd
    assert.truthy(log[1].events == "r" or log[1].events == "w" or log[1].events == "rw")
    -- The server closed the connection: the next watch() says "remove", and the
    -- socket is still open so the host can drop it first; the call after closes it.
    local changes = session:watch()
    local removed = false
    for _, c in ipairs(changes) do if c.fd == fd and c.events == "remove" then removed = true end end
    for _, c in ipairs(log) do if c.fd == fd and c.events == "remove" then removed = true end end
    assert.is_true(removed, "no remove for fd " .. fd)
    assert.matches("^socket:", fd_kind(fd), "fd " .. fd .. " was closed before the host was told")
    local _, timeout = session:watch()
    assert.is_nil(fd_kind(fd):match("^socket:"), "fd " .. fd .. " is still open after the host was told")
    assert.is_nil(timeout)
    session:close()
  end)

  it("closes at once when no host watches (step and perform only)", function()
    local function sockets()
      local n = 0
      for fd = 3, 64 do if fd_kind(fd):match("^socket:") then n = n + 1 end end
      return n
    end
    local session = core.session{}
    local function transfer()
      assert(session:submit{ method = "GET", url = sb:url("/release/maintenance/report?order_id=x"),
        headers = { Connection = "close" } })
      local results, deadline = {}, core.monotime() + 10
      while not results[1] and core.monotime() < deadline do results = session:perform(0.5) end
      assert.truthy(results[1] and results[1].response)
    end
    transfer() -- the first one also creates the multi handle (and its wake-up socket pair)
    local before = sockets()
    transfer()
    -- The server closed the connection and no watcher was ever told of it: curl's close is done.
    assert.are.equal(before, sockets())
    -- Once a host watched, perform still closes what curl closed: nothing piles up.
    session:watch()
    transfer()
    transfer()
    assert.are.equal(before, sockets())
    session:close()
  end)

  it("refuses bad arguments", function()
    local session = core.session{}
    assert.has_error(function() session:socket_action("x") end)
    assert.has_error(function() session:socket_action(-1) end)
    assert.has_error(function() session:socket_action(3, "z") end)
    local changes, timeout = session:watch()
    assert.are.same({}, changes)
    assert.is_nil(timeout)
    assert.are.same({}, session:socket_action(nil))
    session:close()
  end)
end)
