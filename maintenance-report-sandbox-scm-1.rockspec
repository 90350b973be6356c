-- LuaRocks build of the sandbox: an emulator of the API and its gateway on
-- Debian's nginx + lua-nginx-module, for development and tests. Kept out of
-- the library rock so that a library install carries no nginx launcher.
rockspec_format = "3.0"
package = "maintenance-report-sandbox"
version = "scm-1"
source = {
  url = "git+file:///maintenance-report", -- built from a checkout with `luarocks make`
}
description = {
  summary = "Local emulator of the vehicle maintenance-record API and its gateway (nginx-lua)",
  detailed = [[
Runs a private nginx on loopback that answers like the API gateway and both
endpoints, with deterministic reports and scenario VINs for every fault.
Used by `maintenance-report sandbox` and by the test suite.
]],
  license = "MIT",
  labels = { "sandbox", "testing", "openresty" },
}
dependencies = {
  "lua >= 5.1",
  "maintenance-report",
}
build = {
  type = "builtin",
  modules = {
    ["maintenance_report_sandbox.cli"] = "lua/maintenance_report_sandbox/cli.lua",
    ["maintenance_report_sandbox.faults"] = "lua/maintenance_report_sandbox/faults.lua",
    ["maintenance_report_sandbox.gateway"] = "lua/maintenance_report_sandbox/gateway.lua",
    ["maintenance_report_sandbox.handler"] = "lua/maintenance_report_sandbox/handler.lua",
    ["maintenance_report_sandbox.hmac"] = "lua/maintenance_report_sandbox/hmac.lua",
    ["maintenance_report_sandbox"] = "lua/maintenance_report_sandbox/init.lua",
    ["maintenance_report_sandbox.json"] = "lua/maintenance_report_sandbox/json.lua",
    ["maintenance_report_sandbox.nginx_conf"] = "lua/maintenance_report_sandbox/nginx_conf.lua",
    ["maintenance_report_sandbox.nginx_runner"] = "lua/maintenance_report_sandbox/nginx_runner.lua",
    ["maintenance_report_sandbox.prng"] = "lua/maintenance_report_sandbox/prng.lua",
    ["maintenance_report_sandbox.reports"] = "lua/maintenance_report_sandbox/reports.lua",
    ["maintenance_report_sandbox.scenarios"] = "lua/maintenance_report_sandbox/scenarios.lua",
    ["maintenance_report_sandbox.shell"] = "lua/maintenance_report_sandbox/shell.lua",
    ["maintenance_report_sandbox.state"] = "lua/maintenance_report_sandbox/state.lua",
    ["maintenance_report_sandbox.vin"] = "lua/maintenance_report_sandbox/vin.lua",
    ["maintenance_report_sandbox.wmi"] = "lua/maintenance_report_sandbox/wmi.lua",
    ["maintenance_report_sandbox.process"] = { sources = { "src/sandbox/process.c" } },
  },
}
