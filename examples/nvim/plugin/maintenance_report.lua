-- luacheck: read globals vim
-- :MaintenanceReport VIN opens a buffer with the vehicle's maintenance report.
-- Put examples/nvim on the runtimepath, with the library and its C core on
-- package.path / package.cpath (Neovim's LuaJIT: the build/luajit core), e.g.
--   nvim --cmd 'set rtp+=examples/nvim' --cmd 'lua package.path = "lua/?.lua;lua/?/init.lua;" .. package.path' \
--        --cmd 'lua package.cpath = "build/luajit/?.so;" .. package.cpath'
-- Configure with require("maintenance_report.loop.nvim").setup{ … } or the
-- MAINTENANCE_REPORT_ENDPOINT / _SECRET_ID / _SECRET_KEY environment variables.
vim.api.nvim_create_user_command("MaintenanceReport", function(cmd)
  require("maintenance_report.loop.nvim").query(vim.trim(cmd.args))
end, { nargs = 1, desc = "Query a maintenance report (buys one) and open it in a buffer" })
