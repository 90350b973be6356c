-- A session's easy handles keep the options that are the same for every
-- request and set the others on each one: nothing of one request (method,
-- body, headers, hook, limits, fresh connection) may carry over to the next,
-- on the blocking handle and on the multi handles alike. The echo is nginx's.
local core = require "maintenance_report.core"
local nginx = require "maintenance_report_sandbox.nginx_runner"

local HTTP = [[
  server {
    listen 127.0.0.1:${PORT};
    keepalive_requests 10000;
    location = /echo {
      content_by_lua_block {
        ngx.req.read_body()
        ngx.print(ngx.req.get_method(), "|", ngx.req.get_body_data() or "-", "|", ngx.var.http_x_a or "-")
      }
    }
    location = /slow {
      content_by_lua_block { ngx.sleep(0.4); ngx.print("late") }
    }
  }
]]

describe("core.session handle reuse", function()
  local server, base
  lazy_setup(function()
    server = assert(nginx.start{ http = HTTP })
    base = "http://127.0.0.1:" .. server.port
  end)
  lazy_teardown(function() server:stop() end)

  -- Runs req through the blocking handle or a multi handle; the response or nil, facts.
  local function runner(mode, session)
    if mode == "blocking" then return function(req) return session:request(req) end end
    return function(req)
      local id, facts = session:submit(req)
      if not id then return nil, facts end
      while true do
        for _, done in ipairs(session:perform(5)) do
          if done.id == id then return done.response, done.error end
        end
      end
    end
  end

  -- This process's established connections to the server (client side: remote port is the server's).
  local function connections_to_server()
    local port = (":%04X"):format(server.port)
    local n = 0
    for _, table_path in ipairs{ "/proc/net/tcp", "/proc/net/tcp6" } do
      local f = io.open(table_path, "r")
      if f then
        for line in f:lines() do
          local remote, state = line:match("^%s*%d+: %S+ (%S+) (%x%x)")
          if remote and state == "01" and remote:sub(-5) == port then n = n + 1 end
        end
        f:close()
      end
    end
    return n
  end

  it("keeps at most max_connections idle connections on the multi side", function()
    local function six_fresh(session)
      local run = runner("multi", session)
      for _ = 1, 6 do assert(run{ url = base .. "/echo", fresh_connect = true }) end
    end
    local bounded = core.session{ max_connections = 2 }
    six_fresh(bounded)
    assert.are.equal(2, connections_to_server())
    bounded:close()
    assert.are.equal(0, connections_to_server())
    local default = core.session()
    six_fresh(default) -- libcurl's own default: 4 per transfer added at once, here one at a time
    assert.are.equal(4, connections_to_server())
    default:close()
    assert.has_error(function() core.session{ max_connections = 1.5 } end,
      "session option 'max_connections' must be a whole number up to 1000000")
  end)

  for _, mode in ipairs{ "blocking", "multi" } do
    describe(mode, function()
      it("sends a GET with no body and no old header after a POST with both", function()
        local run = runner(mode, core.session())
        local resp = assert(run{ url = base .. "/echo", method = "POST", body = "a=1", headers = { ["X-A"] = "one" } })
        assert.are.equal("POST|a=1|one", resp.body)
        resp = assert(run{ url = base .. "/echo" })
        assert.are.equal("GET|-|-", resp.body)
        resp = assert(run{ url = base .. "/echo", method = "DELETE" })
        assert.are.equal("DELETE|-|-", resp.body)
        resp = assert(run{ url = base .. "/echo", method = "GET" })
        assert.are.equal("GET|-|-", resp.body)
      end)

      it("calls a before_send hook only for the request that carries it", function()
        local run = runner(mode, core.session())
        local calls = 0
        assert(run{ url = base .. "/echo", before_send = function() calls = calls + 1 return true end })
        assert(run{ url = base .. "/echo" })
        assert.are.equal(1, calls)
      end)

      it("opens a new connection for fresh_connect only", function()
        local run = runner(mode, core.session())
        assert(run{ url = base .. "/echo" })
        local fresh = assert(run{ url = base .. "/echo", fresh_connect = true })
        assert.is_false(fresh.reused)
        local next_one = assert(run{ url = base .. "/echo" })
        assert.is_true(next_one.reused)
      end)

      it("applies max_body and timeout to one request only", function()
        local run = runner(mode, core.session())
        local resp, err = run{ url = base .. "/echo", max_body = 2 }
        assert.is_nil(resp)
        assert.is_true(err.too_large)
        assert.are.equal("GET|-|-", assert(run{ url = base .. "/echo" }).body)
        resp, err = run{ url = base .. "/slow", timeout = 0.1 }
        assert.is_nil(resp)
        assert.are.equal(28, err.curl_code) -- CURLE_OPERATION_TIMEDOUT
        assert.are.equal("late", assert(run{ url = base .. "/slow" }).body)
      end)

      it("sends the next request whole after one refused for a bad header", function()
        local run = runner(mode, core.session())
        local resp, err = run{ url = base .. "/echo", headers = { ["X-A"] = "a\r\nX-B: b" } }
        assert.is_nil(resp)
        assert.are.equal("invalid_request", err.kind)
        assert.are.equal("GET|-|two", assert(run{ url = base .. "/echo", headers = { ["X-A"] = "two" } }).body)
      end)
    end)
  end
end)
