-- The default transport: the C core's libcurl session (blocking, keep-alive).
--
-- Transport interface, for anyone plugging in their own:
--   transport:request{method=, url=, headers={Name=value}, timeout=, connect_timeout=,
--                     max_body=, fresh_connect=}
--   fresh_connect=true (set for paid orders): use a new connection, never a pooled one,
--   and never resend the request by itself.
--     → {status=number, headers={lowercase-name=value}, body=string}
--     or nil, {kind=, message=, sent=boolean}
--   Optional, for client:start_query/step (the scheduler): transport:submit(req) → id,
--   transport:perform(timeout) → {{id=, response=} or {id=, error=}, …}.
--   kind is one of dns, connect, tls, timeout, too_large, network, invalid_request;
--   sent=false promises that no byte of the request left the client.
local core = require "maintenance_report.core"

local CurlTransport = {}
CurlTransport.__index = CurlTransport

local function new(opts)
  local session = core.session{
    cafile = opts.cafile, capath = opts.capath, insecure = opts.insecure,
    timeout = opts.timeout, connect_timeout = opts.connect_timeout,
    max_body = opts.max_body, user_agent = opts.user_agent,
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

function CurlTransport:cancel(id)
  return self.session:cancel(id)
end

function CurlTransport:close()
  self.session:close()
end

return { new = new }
