-- Every default of the library, in one place: the client options, the
-- endpoint, the transports' timeouts and body cap, and the version.
-- The C core has no defaults of its own: the Lua layer always passes them.
local defaults = {}

defaults.VERSION = "0.1.0"

defaults.ENDPOINT = "https://service-plb7hsqv-1257199080.ap-shanghai.apigateway.myqcloud.com/release"
defaults.ORDER_PATH = "/maintenance/order"
defaults.REPORT_PATH = "/maintenance_report/get"

-- The transports' limits, also used when a transport is built on its own.
defaults.TIMEOUT = 10                  -- seconds for a whole exchange
defaults.CONNECT_TIMEOUT = 5           -- seconds to connect (and finish TLS)
defaults.MAX_BODY = 8 * 1024 * 1024    -- bytes of response body

defaults.CLIENT = {
  source = "market",
  endpoint = defaults.ENDPOINT,
  algorithm = "hmac-sha1",
  signed_headers = "x-date x-source",
  timeout = defaults.TIMEOUT,
  connect_timeout = defaults.CONNECT_TIMEOUT,
  retries = 2,
  retry_base = 0.5,       -- seconds; full-jitter exponential backoff
  retry_max_delay = 8,
  -- Poll waits: poll_growth × the time already polled, from first_poll_delay up to
  -- poll_interval. A report ready after T s costs ~36 reads at T = 900 and is seen
  -- within 20% of T (1 s for short T): bench/poll_policy.lua prints the trade-off.
  first_poll_delay = 1,
  poll_growth = 0.2,
  poll_interval = 120,
  max_wait = 900,
  vin_check_digit = true,
  max_body = defaults.MAX_BODY,
  insecure = false,
  utc_offset_hours = 8,   -- for epoch-millisecond dates in reports (assumption)
  max_in_flight = 8,
}

-- Report status by detail.resultCode. 1205 and 1206 are the vendor's; 1204 is an assumption.
defaults.REPORT_STATUS = { [1204] = "pending", [1205] = "ready", [1206] = "no_records" }
-- data.result values that mean "still being generated" (an assumption).
defaults.PENDING_RESULTS = { ["0"] = true }

return defaults
