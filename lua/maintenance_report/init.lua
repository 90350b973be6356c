-- maintenance_report: a client for the vehicle maintenance-record API.
local client = require "maintenance_report.client"
local defaults = require "maintenance_report.defaults"

local M = {
  _VERSION = defaults.VERSION,
  DEFAULT_ENDPOINT = defaults.ENDPOINT,
  DEFAULTS = defaults.CLIENT,
  REPORT_STATUS = defaults.REPORT_STATUS,
  new = client.new,
  errors = require "maintenance_report.errors",
  classify = require "maintenance_report.classify",
  validate = require "maintenance_report.validate",
}

return M
