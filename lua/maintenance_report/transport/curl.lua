-- The default transport: the C core's libcurl session (blocking, keep-alive).
--
-- Transport interface, for anyone plugging in their own:
--   transport:request{method=, url=, headers={Name=value}, body=, timeout=, connect_timeout=,
--                     max_body=, fresh_connect=}
--   fresh_connect=true (set for paid orders): use a new connection, never a pooled one,
--   and never resend the request by itself.
--   before_send (a paid order's, only when transport.before_send is true): call it once
--   the connection stands, right before writing the request; if it returns nil, err,
--   write nothing and fail with { not_sent_because = err, request_bytes = 0 }.
--     → {status=number, headers={lowercase-name=value}, body=string, time=, reused=}
--     or nil, facts (below), passed on unchanged; classify.lua decides kind and sent.
--   Optional, for client:start_query/step (the scheduler): transport:submit(req) → id | nil, facts,
--   transport:perform(timeout) → {{id=, response=} or {id=, error=facts}, …}.
--   Optional, for hosts that own the loop (client:watch / client:socket_action):
--   transport:watch() → changes, timeout (curl's sockets to watch since the last call,
--   {fd=, events="r"|"w"|"rw"|"remove"}, and seconds until its next timeout or nil),
--   transport:timeout() → nil, the same timeout (the changes stay for watch),
--   transport:socket_action(fd, events) → completions as perform gives them; never waits.
--
-- Facts of a failure; the transport reports what happened, never what it means:
--   { curl_code = integer CURLcode,
--     message = libcurl's error text,
--     request_bytes = integer, request bytes written (0: none left this process),
--     connected = boolean, a TCP connection was established (or reused),
--     pretransfer = boolean, libcurl reached the point where the request starts out,
--     too_large = boolean, the body went over max_body (or Content-Length announced that),
--     status = integer, only when a status line was parsed,
--     time = seconds spent, reused = boolean, the connection was a pooled one }
--   A request refused before libcurl saw it (a CR/LF/NUL in the url or a header, a
--   method that is not a token) gives instead
--   { kind = "invalid_request", message = ..., request_bytes = 0 }.
local core = require "maintenance_report.core"

local CurlTransport = {}
CurlTransport.__index = CurlTransport

-- req.before_send is called by the C core itself, once the connection (and
-- TLS) stands, right before the request is written (CURLOPT_PREREQFUNCTION).
CurlTransport.before_send = true

local function new(opts)
  local session = core.session{
    cafile = opts.cafile, capath = opts.capath, insecure = opts.insecure,
    timeout = opts.timeout, connect_timeout = opts.connect_timeout,
    max_body = opts.max_body, user_agent = opts.user_agent,
    -- as many idle connections as requests may be in flight: every paid order opens a
    -- fresh one, which then joins the cache, and libcurl's default cache (4 per transfer
    -- added at once) would grow a 1,000-wide batch to 4,000 sockets and their memory
    max_connections = opts.max_in_flight,
  }
  return setmetatable({ session = session }, CurlTransport)
end

function CurlTransport:request(req)
  return self.session:request(req)
end

-- The non-blocking side, for the scheduler: see core session:submit/perform.
function CurlTransport:submit(req)
  return self.session:submit(req)
end

function CurlTransport:perform(timeout)
  return self.session:perform(timeout)
end

-- The socket interface: see core session:watch/socket_action.
function CurlTransport:watch()
  local changes, timeout = self.session:watch()
  local held = self.held_changes
  if held then
    self.held_changes = nil
    for _, change in ipairs(changes) do held[#held + 1] = change end
    changes = held
  end
  return changes, timeout
end

function CurlTransport:timeout()
  local changes, timeout = self.session:watch()
  if #changes > 0 then
    local held = self.held_changes or {}
    for _, change in ipairs(changes) do held[#held + 1] = change end
    self.held_changes = held
  end
  return nil, timeout
end

function CurlTransport:socket_action(fd, events)
  return self.session:socket_action(fd, events)
end

function CurlTransport:cancel(id)
  return self.session:cancel(id)
end

function CurlTransport:close()
  self.session:close()
end

return { new = new }
