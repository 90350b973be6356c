-- maintenance_report: a client for the vehicle maintenance-record API.
local client = require "maintenance_report.client"

local M = {
  _VERSION = "0.1.0",
  DEFAULT_ENDPOINT = client.DEFAULT_ENDPOINT,
  DEFAULTS = client.DEFAULTS,
  REPORT_STATUS = client.REPORT_STATUS,
  new = client.new,
  errors = require "maintenance_report.errors",
  validate = require "maintenance_report.validate",
}

return M
