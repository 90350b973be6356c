-- luacheck: globals vim
-- Neovim integration: `:MaintenanceReport VIN` queries in the background, on Neovim's
-- own libuv loop (vim.loop, through maintenance_report.loop.luv), and opens a buffer
-- with the text report when it is done. The editor never waits: the client runs only
-- in libuv callbacks (socket ready, timer due), and buffers are made in vim.schedule.
--
--   require("maintenance_report.loop.nvim").setup{ endpoint = …, secret_id = …, secret_key = … }
--   :MaintenanceReport LSVAG2180E2100001
--
-- setup takes mr.new's options, or { client = an existing client }. Without setup,
-- the first query reads MAINTENANCE_REPORT_ENDPOINT / _SECRET_ID / _SECRET_KEY.
-- Each query buys a report (unless the ledger already has it).
local mr = require "maintenance_report"
local text = require "maintenance_report.render.text"
local luv_loop = require "maintenance_report.loop.luv"

local M = {}

local config, client, attached

local function notify(message, level)
  vim.schedule(function() vim.notify("MaintenanceReport: " .. message, level or vim.log.levels.INFO) end)
end

local function get_client()
  if client then return client end
  if config and config.client then
    client = config.client
  else
    local opts = {}
    for k, v in pairs(config or {
      endpoint = os.getenv("MAINTENANCE_REPORT_ENDPOINT"),
      secret_id = os.getenv("MAINTENANCE_REPORT_SECRET_ID"),
      secret_key = os.getenv("MAINTENANCE_REPORT_SECRET_KEY"),
    }) do
      if v ~= "" then opts[k] = v end
    end
    local err
    client, err = mr.new(opts)
    if not client then return nil, err end
  end
  attached = luv_loop.attach(client, { uv = vim.loop, on_error = function(e)
    notify("error in a callback: " .. tostring(e), vim.log.levels.ERROR)
  end })
  return client
end

--- Client options (see mr.new), or { client = client }. Call before the first query.
function M.setup(opts)
  if client then error("maintenance_report.loop.nvim.setup: a query already made the client", 2) end
  config = opts
end

-- Opens a scratch buffer named after the VIN with the report's lines; runs in vim.schedule.
local function show(vin, report)
  local lines = vim.split(text.render(report, { color = false }), "\n", { plain = true })
  if lines[#lines] == "" then lines[#lines] = nil end
  local buf = vim.api.nvim_create_buf(true, true)
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
  vim.api.nvim_buf_set_name(buf, "maintenance-report://" .. vin .. "/" .. (report.order_id or ""))
  vim.bo[buf].modifiable = false
  vim.api.nvim_set_current_buf(buf)
  return buf
end

--- Starts a query; on_done(buf or nil, report or nil, err) runs on the main loop, through
--- vim.schedule, once the buffer is open (or the query failed). Returns the handle.
function M.query(vin, on_done)
  local c, err = get_client()
  if not c then
    notify(tostring(err), vim.log.levels.ERROR)
    return nil, err
  end
  local handle
  handle, err = c:start_query{ vin = vin, on_done = function(h)
    -- a libuv callback ("fast" context): no editor API here, only in vim.schedule
    local report, qerr = h:result()
    vim.schedule(function()
      local buf
      if report then
        buf = show(vin, report)
      else
        vim.notify("MaintenanceReport " .. vin .. ": " .. tostring(qerr), vim.log.levels.ERROR)
      end
      if on_done then on_done(buf, report, qerr) end
    end)
  end }
  if not handle then notify(tostring(err), vim.log.levels.ERROR) end
  return handle, err
end

--- Stops watching (the client stays); for tests and :qa handlers.
function M.close()
  if attached then attached:close() end
  attached, client = nil, nil
end

return M
