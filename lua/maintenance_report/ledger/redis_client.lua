-- The two Redis clients behind the Redis ledger store, with one shape:
--   client.parse_url(url) → config | nil, message
--   client.open(config) → conn | nil, message, kind
--   conn:call(name, ...) → reply | nil, message, kind;  conn:done()
-- A reply is a string, an integer, false (Redis nil) or an array table. kind
-- is "reply" when Redis itself answered with an error (the connection stays
-- good) and "timeout", "io" or "connect" when the connection failed.
--
-- Inside nginx: lua-resty-redis on cosockets (Debian's lua-nginx-redis installs
-- it as nginx.redis, OpenResty as resty.redis). A cosocket belongs to one
-- request, so every store operation takes a connection from the worker's
-- keepalive pool and gives it back with done().
-- Elsewhere: hiredis through maintenance_report.hiredis, one blocking
-- connection per store, reconnected after a failure.
-- Neither client on Debian 12 speaks TLS (hiredis 0.14 has no hiredis_ssl,
-- lua-resty-redis 0.27 no ssl option): rediss:// is refused, not downgraded.
local client = {}

local DEFAULT_PORT = 6379

local function unescape(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

--- redis://[[user]:password@]host[:port][/db][?timeout=seconds]. The password
--- stays in the config only: describe() never shows it.
function client.parse_url(url)
  if type(url) ~= "string" then return nil, "a redis:// URL is required" end
  if url:match("^rediss://") then
    return nil, "rediss:// (TLS) is not supported by the Redis clients this library uses "
      .. "(hiredis 0.14, lua-resty-redis 0.27); reach Redis over loopback or a TLS tunnel"
  end
  local rest = url:match("^redis://(.*)$")
  if not rest then return nil, "the Redis URL must start with redis://" end
  local query
  rest, query = rest:match("^([^?]*)%??(.*)$")
  local userinfo, hostpart = rest:match("^(.*)@([^@]*)$")
  hostpart = hostpart or rest
  local config = { db = 0, timeout = 1 }
  if userinfo then
    local user, password = userinfo:match("^([^:]*):(.*)$")
    if not user then return nil, "the Redis URL's user part must be [user]:password" end
    config.user = user ~= "" and unescape(user) or nil
    config.password = unescape(password)
  end
  local host, port, db = hostpart:match("^([^:/]+):?(%d*)/?(%d*)$")
  if not host then return nil, "the Redis URL must name a host: redis://host:port/db" end
  config.host, config.port = host, tonumber(port ~= "" and port or DEFAULT_PORT)
  if config.port < 1 or config.port > 65535 then return nil, "the Redis port must be 1-65535" end
  config.db = tonumber(db ~= "" and db or 0)
  for name, value in (query or ""):gmatch("([^&=]+)=([^&]*)") do
    if name ~= "timeout" or not tonumber(value) or tonumber(value) <= 0 then
      return nil, "the Redis URL takes only ?timeout=seconds"
    end
    config.timeout = tonumber(value)
  end
  return config
end

--- host:port/db, without the credentials.
function client.describe(config)
  return ("redis://%s:%d/%d"):format(config.host, config.port, config.db)
end

-- AUTH and SELECT on a new connection; nil, message, kind on failure.
local function prepare(conn, config)
  if config.password then
    local ok, message, kind
    if config.user then
      ok, message, kind = conn:call("AUTH", config.user, config.password)
    else
      ok, message, kind = conn:call("AUTH", config.password)
    end
    -- Redis's own text ("WRONGPASS invalid username-password pair") names no secret.
    if not ok then return nil, "AUTH failed: " .. tostring(message), kind end
  end
  if config.db ~= 0 then
    local ok, message, kind = conn:call("SELECT", config.db)
    if not ok then return nil, "SELECT " .. config.db .. " failed: " .. tostring(message), kind end
  end
  return true
end

---------------------------------------------------------------------------
-- hiredis (blocking)
---------------------------------------------------------------------------

local Blocking = {}
Blocking.__index = Blocking

function Blocking:call(...)
  if not self.conn then
    local hiredis = require "maintenance_report.hiredis"
    local conn, message, kind = hiredis.connect(self.config.host, self.config.port, self.config.timeout)
    if not conn then return nil, message, kind end
    local ok, perr, pkind = prepare(conn, self.config)
    if not ok then
      conn:close()
      return nil, perr, pkind
    end
    self.conn = conn
  end
  local reply, message, kind = self.conn:call(...)
  if reply == nil and kind ~= "reply" then self.conn = nil end -- hiredis closed it
  return reply, message, kind
end

function Blocking.done() end

function Blocking:close()
  if self.conn then self.conn:close() end
  self.conn = nil
end

---------------------------------------------------------------------------
-- lua-resty-redis (cosockets)
---------------------------------------------------------------------------

local resty_module
local function resty()
  if resty_module == nil then
    local ok, mod = pcall(require, "resty.redis")
    if not ok then ok, mod = pcall(require, "nginx.redis") end
    resty_module = ok and mod or false
  end
  return resty_module or nil
end

local Cosocket = {}
Cosocket.__index = Cosocket

local function plain(value, null)
  if value == null then return false end
  if type(value) ~= "table" then return value end
  local out = {}
  for i, v in ipairs(value) do
    -- an error inside an array comes as { false, message }
    if type(v) == "table" and v[1] == false and type(v[2]) == "string" then out[i] = false
    else out[i] = plain(v, null) end
  end
  return out
end

function Cosocket:call(name, ...)
  local red = self.red
  local reply, message = red[name:lower()](red, ...)
  if reply == nil then
    self.broken = true
    return nil, tostring(message), message == "timeout" and "timeout" or "io"
  end
  if reply == false and message then return nil, message, "reply" end
  return plain(reply, rawget(_G, "ngx").null)
end

-- Back to the worker's pool while usable; closed after a failure.
function Cosocket:done()
  if self.broken then self.red:close() else self.red:set_keepalive(60000, self.pool_size) end
end

local function open_cosocket(config)
  local mod = resty()
  if not mod then return nil, "lua-resty-redis is not installed (Debian: lua-nginx-redis)", "connect" end
  local red, err = mod:new()
  if not red then return nil, tostring(err), "connect" end
  red:set_timeout(math.floor(config.timeout * 1000))
  -- A pool per address and database: a pooled connection is already authenticated and selected.
  local pool = client.describe(config) .. (config.user and ("#" .. config.user) or "")
  local ok, cerr = red:connect(config.host, config.port, { pool = pool })
  if not ok then return nil, tostring(cerr), cerr == "timeout" and "timeout" or "connect" end
  local conn = setmetatable({ red = red, pool_size = config.pool_size or 32 }, Cosocket)
  if (red:get_reused_times() or 0) == 0 then
    local prepared, perr, pkind = prepare(conn, config)
    if not prepared then
      red:close()
      return nil, perr, pkind
    end
  end
  return conn
end

---------------------------------------------------------------------------

--- Whether this code runs where cosockets work (an nginx request or timer).
function client.cosockets_available()
  local ngx = rawget(_G, "ngx")
  if not ngx or not ngx.socket or not ngx.get_phase then return false end
  local phase = ngx.get_phase()
  return phase ~= "init" and phase ~= "init_worker" and resty() ~= nil
end

--- A connection for one store operation: cosockets inside nginx, else the
--- store's own blocking connection (held in holder.blocking).
function client.open(config, holder)
  if client.cosockets_available() then return open_cosocket(config) end
  holder.blocking = holder.blocking or setmetatable({ config = config }, Blocking)
  return holder.blocking
end

return client
