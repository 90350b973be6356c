-- A non-blocking transport on nginx's own I/O (lua-nginx-module cosockets),
-- for OpenResty / nginx-lua. Same interface as transport/curl.lua's request():
--   transport:request{method=, url=, headers=, body=, timeout=, connect_timeout=, max_body=}
--     → {status=, headers={lowercase-name=value}, body=, reused=}
--     or nil, {kind=, message=, request_bytes=}: kind is one of classify.TRANSPORT_KINDS;
--     request_bytes is 0 when the failure came before the request was written, the
--     request's size once it was, and absent when a send failed part-way.
-- HTTP/1.1 with Content-Length, chunked or read-until-close bodies; connections go
-- back to nginx's keep-alive pool. TLS is verified against lua_ssl_trusted_certificate.
-- There is no submit/perform: in nginx, run queries in parallel with ngx.thread.spawn.
-- luacheck: globals ngx

local defaults = require "maintenance_report.defaults"

local M = {}

M.DEFAULTS = {
  timeout = defaults.TIMEOUT,   -- seconds for the whole exchange
  connect_timeout = defaults.CONNECT_TIMEOUT,
  max_body = defaults.MAX_BODY,
  keepalive_timeout = 60,       -- seconds an idle pooled connection is kept
  keepalive_pool = 32,          -- idle connections per pool and worker
  max_header_bytes = 64 * 1024,
  user_agent = "maintenance-report/" .. defaults.VERSION .. " (ngx)",
}

-- Phases where cosockets and ngx.sleep may yield (lua-nginx-module's docs).
M.YIELDABLE_PHASES = {
  rewrite = true, server_rewrite = true, access = true, content = true, timer = true,
  ssl_cert = true, ssl_session_fetch = true, ssl_client_hello = true, preread = true,
}

local function ngx_api()
  return rawget(_G, "ngx")
end

--- Whether this code runs inside nginx-lua (any phase): ngx with phases and cosockets.
function M.available()
  local ngx_ = ngx_api()
  return type(ngx_) == "table" and type(ngx_.get_phase) == "function"
    and type(ngx_.socket) == "table" and type(ngx_.socket.tcp) == "function"
end

-- Blocking here would stall every request of the worker, so refuse loudly:
-- calling I/O from init, set, log, header/body filters is a programming error.
local function check_phase(what, level)
  local phase = ngx.get_phase()
  if not M.YIELDABLE_PHASES[phase] then
    error(("maintenance_report: %s is not possible in nginx's '%s' phase, which cannot yield; "
      .. "call it from rewrite, access or content, or from ngx.timer.at(0, fn)"):format(what, phase), level + 1)
  end
end

--- ngx.sleep, after the same phase check.
function M.sleep(seconds)
  check_phase("sleeping", 2)
  return ngx.sleep(seconds)
end

local function clock()
  ngx.update_time() -- ngx.now() is cached per event-loop turn
  return ngx.now()
end

local Transport = {}
Transport.__index = Transport

-- req.before_send is called here, once connected, right before the request is written.
Transport.before_send = true

--- opts: timeout, connect_timeout, max_body, insecure, user_agent, keepalive_timeout,
--- keepalive_pool. cafile/capath cannot apply to cosockets and are refused.
function M.new(opts)
  opts = opts or {}
  if opts.cafile or opts.capath then
    error("maintenance_report: cafile/capath do not apply inside nginx; set lua_ssl_trusted_certificate "
      .. "(and lua_ssl_verify_depth) in nginx.conf instead", 2)
  end
  local self = setmetatable({}, Transport)
  for k, v in pairs(M.DEFAULTS) do self[k] = opts[k] or v end
  self.verify = not opts.insecure
  return self
end

local function fail(kind, message, request_bytes)
  return nil, { kind = kind, message = message, request_bytes = request_bytes }
end

-- "https://host:port/path?q" → scheme, host, port, target; nil, message when malformed.
local function parse_url(url)
  if type(url) ~= "string" or url:find("[%z\1-\32\127]") then
    return nil, "URL is missing or contains spaces or control characters"
  end
  local scheme, authority, target = url:match("^(%a[%w+.-]*)://([^/?#]+)(.*)$")
  scheme = scheme and scheme:lower()
  if scheme ~= "http" and scheme ~= "https" then return nil, "URL must start with http:// or https://" end
  local host, port = authority:match("^%[([%x:.]+)%]:?(%d*)$") -- [IPv6]:port
  if not host then host, port = authority:match("^([^:@]+):?(%d*)$") end
  if not host then return nil, "URL has no usable host" end
  port = tonumber(port) or (scheme == "https" and 443 or 80)
  if port < 1 or port > 65535 then return nil, "URL port is out of range" end
  target = target:gsub("#.*$", "")
  if target == "" then target = "/" elseif target:sub(1, 1) == "?" then target = "/" .. target end
  return scheme, host, port, target
end

-- The C core's rules (src/transfer.c, above collect_headers), so both
-- transports send and refuse the same: a name or method is 1 to 256 RFC 9110
-- tchars; a value has no control character but HTAB.
local function valid_token(s)
  return type(s) == "string" and #s >= 1 and #s <= 256 and s:match("^[%w!#$%%&'*+.^_`|~-]+$") ~= nil
end

-- Request head; nil, message when a name or value could split the header block.
local function build_head(self, req, scheme, host, port, target)
  local method = req.method or "GET"
  if not valid_token(method) then return nil, "method is not a valid token" end
  local default_port = (scheme == "https" and port == 443) or (scheme == "http" and port == 80)
  local host_header = host:find(":", 1, true) and ("[" .. host .. "]") or host
  if not default_port then host_header = host_header .. ":" .. port end
  local lines = { method .. " " .. target .. " HTTP/1.1", "Host: " .. host_header }
  local seen = {}
  for name, value in pairs(req.headers or {}) do
    if type(name) ~= "string" or not valid_token(name) then
      return nil, "request header name is not a valid token: " .. tostring(name)
    end
    value = tostring(value)
    if value:find("[%z\1-\8\10-\31\127]") then
      return nil, "request header value contains CR, LF or another control character"
    end
    seen[name:lower()] = true
    lines[#lines + 1] = name .. ": " .. value
  end
  if not seen["user-agent"] then lines[#lines + 1] = "User-Agent: " .. self.user_agent end
  if not seen["accept"] then lines[#lines + 1] = "Accept: */*" end
  lines[#lines + 1] = "Connection: keep-alive"
  if req.body then lines[#lines + 1] = "Content-Length: " .. #req.body end
  return table.concat(lines, "\r\n") .. "\r\n\r\n" .. (req.body or "")
end

-- Cosocket timeouts are in ms, and 0 would mean "nginx's default", so never pass 0.
local function set_timeout(sock, seconds)
  sock:settimeout(math.max(1, math.floor(seconds * 1000)))
end

local function connect_error_kind(err)
  if err:find("resolv", 1, true) or err:find("not found", 1, true) then return "dns" end
  if err == "timeout" then return "connect_timeout" end
  return "connect"
end

-- One header line: the name (no space or colon in it), the value without the
-- spaces around it; nil for a line that is neither. The same as
-- line:match("^([^:%s]+):%s*(.-)%s*$"), with plain finds for the usual line.
local function header_line(line)
  local colon = line:find(":", 1, true)
  if not colon or colon == 1 then return nil end
  local space = line:find("%s")
  if space and space < colon then return nil end
  local first = line:find("%S", colon + 1)
  if not first then return line:sub(1, colon - 1), "" end
  local last_byte = line:byte(-1)
  -- %s: space, \t, \n, \v, \f, \r
  if last_byte ~= 32 and (last_byte < 9 or last_byte > 13) then return line:sub(1, colon - 1), line:sub(first) end
  return line:sub(1, colon - 1), line:match("^(.-)%s*$", first)
end

-- One exchange on a connected socket. Returns the response, or nil, kind,
-- message, request_bytes (nil when a send failed part-way).
local function exchange(sock, head, deadline, max_body, max_header_bytes)
  -- ngx.now() without update_time: the cached time is refreshed whenever the
  -- event loop runs, so it lags only by this handler's own CPU time since the
  -- last wait, and updating it (which formats nginx's time strings) for every
  -- header line was a measurable part of a report read.
  local function remaining() return deadline - ngx.now() end
  local function receive(pattern)
    local left = remaining()
    if left <= 0 then return nil, "timeout" end
    set_timeout(sock, left)
    return sock:receive(pattern)
  end
  local function too_big()
    return nil, "too_large", "response body is larger than " .. max_body .. " bytes", #head
  end
  local function read_error(err, what)
    if err == "timeout" then return nil, "timeout", "timed out while reading the " .. what, #head end
    return nil, "network", "connection " .. tostring(err) .. " while reading the " .. what, #head
  end

  set_timeout(sock, math.max(remaining(), 0.001))
  local _, err = sock:send(head)
  if err then
    return nil, err == "timeout" and "timeout" or "network", "sending the request: " .. err, nil
  end

  local status, version, headers, header_bytes
  repeat -- skip 1xx interim answers
    local line
    line, err = receive("*l")
    if not line then return read_error(err, "status line") end
    local major, minor, code = line:match("^HTTP/(%d)%.(%d) (%d%d%d)")
    if not code then return nil, "protocol", "malformed status line: " .. line:sub(1, 80), #head end
    status, version = tonumber(code), tonumber(major) + tonumber(minor) / 10
    headers, header_bytes = {}, 0
    while true do
      line, err = receive("*l")
      if not line then return read_error(err, "headers") end
      if line == "" then break end
      header_bytes = header_bytes + #line
      if header_bytes > max_header_bytes then return nil, "too_large", "response headers are too large", #head end
      local name, value = header_line(line)
      if name then
        name = name:lower()
        headers[name] = headers[name] and (headers[name] .. ", " .. value) or value
      end
    end
  until status >= 200

  local connection = (headers["connection"] or ""):lower()
  local keepalive = (version >= 1.1 and not connection:find("close", 1, true))
    or (version < 1.1 and connection:find("keep-alive", 1, true) ~= nil)
  local body
  if status == 204 or status == 304 or head:sub(1, 5) == "HEAD " then
    body = ""
  elseif (headers["transfer-encoding"] or ""):lower():find("chunked", 1, true) then
    local parts, total = {}, 0
    while true do
      local line
      line, err = receive("*l")
      if not line then return read_error(err, "chunked body") end
      local size = tonumber(line:match("^%s*(%x+)") or "", 16)
      if not size then return nil, "protocol", "malformed chunk size: " .. line:sub(1, 40), #head end
      if size == 0 then
        repeat -- trailers, ignored
          line, err = receive("*l")
          if not line then return read_error(err, "chunked body") end
        until line == ""
        break
      end
      total = total + size
      if total > max_body then return too_big() end
      local data, crlf
      data, err = receive(size)
      if not data then return read_error(err, "chunked body") end
      crlf, err = receive(2)
      if crlf ~= "\r\n" then return read_error(err or "desynchronised", "chunked body") end
      parts[#parts + 1] = data
    end
    body = table.concat(parts)
  elseif headers["content-length"] then
    local length = tonumber(headers["content-length"]:match("^%d+$") or "")
    if not length then return nil, "protocol", "malformed Content-Length", #head end
    if length > max_body then return too_big() end
    body, err = receive(length)
    if not body then return read_error(err, "body") end
  else -- no length: the body ends when the server closes
    local parts, total = {}, 0
    while true do
      local left = remaining()
      if left <= 0 then return nil, "timeout", "timed out while reading the body", #head end
      set_timeout(sock, left)
      local data
      data, err = sock:receiveany(65536)
      if not data then
        if err ~= "closed" then return read_error(err, "body") end
        break
      end
      total = total + #data
      if total > max_body then return too_big() end
      parts[#parts + 1] = data
    end
    body, keepalive = table.concat(parts), false
  end
  return { status = status, headers = headers, body = body }, keepalive
end

function Transport:request(req)
  check_phase("HTTP", 2)
  if type(req) ~= "table" then error("request: argument must be a table", 2) end
  -- the last URL's parts and pool are kept: polling reads the same URL again and again
  local scheme, host, port, target, pool
  local last = self.last_url
  if last and last.url == req.url then
    scheme, host, port, target, pool = last.scheme, last.host, last.port, last.target, last.pool
  else
    scheme, host, port, target = parse_url(req.url)
    if not scheme then return fail("invalid_request", host, 0) end
    -- One pool per origin and verification mode: a connection verified for one
    -- name must never be handed out for another.
    pool = ("maintenance_report|%s|%s|%d|%s"):format(scheme, host, port, self.verify and "v" or "nv")
    self.last_url = { url = req.url, scheme = scheme, host = host, port = port, target = target, pool = pool }
  end
  local head, head_err = build_head(self, req, scheme, host, port, target)
  if not head then return fail("invalid_request", head_err, 0) end

  local started = clock()
  local deadline = started + (req.timeout or self.timeout)
  local connect_timeout = math.min(req.connect_timeout or self.connect_timeout, deadline - started)
  local max_body = req.max_body or self.max_body

  local sock = ngx.socket.tcp()
  set_timeout(sock, connect_timeout)
  -- fresh_connect: a pool nothing is ever returned to, so the connection is new.
  if req.fresh_connect then pool = pool .. "|fresh" end
  local ok, err = sock:connect(host, port, { pool = pool })
  if not ok then
    local kind = connect_error_kind(err)
    return fail(kind, ("connecting to %s:%d: %s"):format(host, port, err), 0)
  end
  local reused = (sock:getreusedtimes() or 0) > 0
  if scheme == "https" and not reused then
    set_timeout(sock, math.max(deadline - clock(), 0.001))
    -- reused_session must stay nil, never false: with false, lua-resty-core 0.1.25 can
    -- report success when verification failed and the handshake finished at once
    -- (lua-nginx-module PR #2506). With nil that case raises an assertion instead,
    -- hence the pcall: any raise here is a failed handshake.
    local called, session
    called, session, err = pcall(sock.sslhandshake, sock, nil, host, self.verify)
    if not called then
      session, err = nil, "failed, most likely certificate verification (" .. tostring(session) .. ")"
    end
    if not session then
      sock:close()
      -- the handshake is part of connecting: nothing of the request was written yet
      local kind = err == "timeout" and "connect_timeout" or "tls"
      return fail(kind, "TLS handshake with " .. host .. ": " .. tostring(err), 0)
    end
  end

  -- A paid order's intent is recorded now that the connection stands, right
  -- before the first byte is written.
  if req.before_send then
    local recorded, refusal = req.before_send()
    if not recorded then
      sock:close()
      return nil, { not_sent_because = refusal, request_bytes = 0,
        message = "the request was not sent: before_send refused it" }
    end
  end
  local resp, kind_or_keepalive, message, request_bytes = exchange(sock, head, deadline, max_body,
    self.max_header_bytes)
  if not resp then
    sock:close()
    return fail(kind_or_keepalive, message, request_bytes)
  end
  if kind_or_keepalive and not req.fresh_connect then
    sock:setkeepalive(self.keepalive_timeout * 1000, self.keepalive_pool)
  else
    sock:close()
  end
  resp.reused = reused
  return resp
end

function Transport:close() -- luacheck: ignore 212 (pooled sockets belong to nginx)
end

return M
