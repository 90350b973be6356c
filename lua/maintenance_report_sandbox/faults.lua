-- Deliberately broken answers for scenario VINs. Runs only inside nginx.
-- Faults that break HTTP itself (truncated body, connection closed) write
-- raw bytes on the downstream socket, since nginx would otherwise complete
-- the response correctly.
local M = {}

M.CONTENT_TYPE = "text/html; charset=utf-8"
M.SERVICE_ERROR = '{"code":"-1","message":"服务或其它异常","result":{}}'

local REASONS = {
  [500] = "Internal Server Error",
  [502] = "Bad Gateway",
  [504] = "Gateway Time-out",
}

-- nginx-style error page, as gateways and their upstreams send.
local function html_page(status)
  local title = status .. " " .. REASONS[status]
  return "<html>\r\n<head><title>" .. title .. "</title></head>\r\n<body>\r\n"
    .. "<center><h1>" .. title .. "</h1></center>\r\n<hr><center>nginx</center>\r\n"
    .. "</body>\r\n</html>\r\n"
end

local function message_json(message)
  return '{"message":"' .. message .. '"}'
end
M.message_json = message_json

-- Sends a complete response: status, the gateway's headers, body.
function M.reply(status, body)
  ngx.status = status
  ngx.header["Content-Type"] = M.CONTENT_TYPE
  ngx.header["Content-Length"] = #body
  ngx.print(body)
  return ngx.exit(ngx.OK)
end

-- Writes raw bytes and closes the connection (444: close, send nothing more).
local function raw_then_close(bytes)
  local sock = ngx.req.socket(true)
  if sock then sock:send(bytes) end
  return ngx.exit(444)
end

local function raw_head(length)
  return "HTTP/1.1 200 OK\r\nContent-Type: " .. M.CONTENT_TYPE .. "\r\n"
    .. "Content-Length: " .. length .. "\r\nX-Api-RequestId: " .. ngx.var.request_id .. "\r\n"
    .. "Connection: keep-alive\r\n\r\n"
end

-- body: the answer the call would have given; some faults mangle it.
local HANDLERS = {
  service_error = function() return M.reply(200, M.SERVICE_ERROR) end,
  http_500 = function() return M.reply(500, html_page(500)) end,
  http_502 = function() return M.reply(502, html_page(502)) end,
  http_504 = function() return M.reply(504, html_page(504)) end,
  rate_limit = function() return M.reply(429, message_json("API rate limit exceeded.")) end,
  quota = function() return M.reply(429, message_json("API quota exceeded.")) end,
  malformed_json = function(body)
    -- Complete HTTP, broken JSON: the first half of the body, then HTML.
    return M.reply(200, body:sub(1, math.floor(#body / 2)) .. "<br/>")
  end,
  truncated_body = function(body)
    return raw_then_close(raw_head(#body) .. body:sub(1, math.floor(#body / 2)))
  end,
  connection_closed = function(body)
    -- Cut inside the header block: the status line and some headers only.
    local head = raw_head(#body)
    return raw_then_close(head:sub(1, head:find("X-Api-RequestId", 1, true) + 5))
  end,
  empty_reply = function() return ngx.exit(444) end,
}

function M.respond(fault, body)
  return assert(HANDLERS[fault], fault)(body)
end

return M
