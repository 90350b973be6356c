-- LuaRocks build: `luarocks make --deps-mode=none` builds and installs offline.
rockspec_format = "3.0"
package = "maintenance-report"
version = "scm-1"
source = {
  url = "git+file:///maintenance-report", -- built from a checkout with `luarocks make`
}
description = {
  summary = "Client for the vehicle maintenance-record API (车辆维修保养记录), with a C core",
  detailed = [[
Signs requests with the gateway's key-pair HMAC (OpenSSL), talks HTTP through
libcurl with connection reuse and a non-blocking multi interface, decodes JSON
with lua-cjson, validates VINs and plates before paying, polls orders into
normalized reports. The CLI `maintenance-report` is installed too. The local
sandbox of the API (nginx-lua) is a separate rock, maintenance-report-sandbox,
so that a library install carries no test tooling.
]],
  license = "MIT",
  labels = { "http", "api", "vin", "openresty" },
}
dependencies = {
  "lua >= 5.1",
  "lua-cjson >= 2.1",
}
external_dependencies = {
  -- Only the library: Debian keeps curl/curl.h in a multiarch include dir LuaRocks does not search.
  CURL = { library = "curl" },
  OPENSSL = { header = "openssl/hmac.h", library = "crypto" },
  -- The file ledger's line checksums (crc32_z; Debian: zlib1g-dev).
  ZLIB = { header = "zlib.h", library = "z" },
  -- The Redis ledger store's blocking client (Debian: libhiredis-dev).
  HIREDIS = { header = "hiredis/hiredis.h", library = "hiredis" },
}
build = {
  type = "builtin",
  modules = {
    ["maintenance_report.core"] = {
      sources = { "src/core.c", "src/sign.c", "src/buf.c", "src/transfer.c", "src/session.c",
                  "src/multi.c", "src/json.c", "src/json_encode.c", "src/os.c", "src/normalize.c",
                  "src/normalize_date.c", "src/normalize_number.c", "src/signals.c",
                  "src/watch.c", "src/cputime.c", "src/crc32.c", "src/analysis_search.c",
                  "src/fd.c" },
      defines = { "_POSIX_C_SOURCE=200809L" },
      incdirs = { "$(CURL_INCDIR)", "$(OPENSSL_INCDIR)", "$(ZLIB_INCDIR)" },
      libdirs = { "$(CURL_LIBDIR)", "$(OPENSSL_LIBDIR)", "$(ZLIB_LIBDIR)" },
      libraries = { "curl", "crypto", "z", "pthread" },
    },
    ["maintenance_report.hiredis"] = {
      sources = { "src/redis/hiredis.c" },
      defines = { "_POSIX_C_SOURCE=200809L" },
      incdirs = { "$(HIREDIS_INCDIR)" },
      libdirs = { "$(HIREDIS_LIBDIR)" },
      libraries = { "hiredis" },
    },
    ["maintenance_report.analysis"] = "lua/maintenance_report/analysis.lua",
    ["maintenance_report.backoff"] = "lua/maintenance_report/backoff.lua",
    ["maintenance_report.budget"] = "lua/maintenance_report/budget.lua",
    ["maintenance_report.civil_date"] = "lua/maintenance_report/civil_date.lua",
    ["maintenance_report.classify"] = "lua/maintenance_report/classify.lua",
    ["maintenance_report.cli.batch"] = "lua/maintenance_report/cli/batch.lua",
    ["maintenance_report.cli.config"] = "lua/maintenance_report/cli/config.lua",
    ["maintenance_report.cli.csv"] = "lua/maintenance_report/cli/csv.lua",
    ["maintenance_report.cli.doctor"] = "lua/maintenance_report/cli/doctor.lua",
    ["maintenance_report.cli.exit"] = "lua/maintenance_report/cli/exit.lua",
    ["maintenance_report.cli.guard"] = "lua/maintenance_report/cli/guard.lua",
    ["maintenance_report.cli.hints"] = "lua/maintenance_report/cli/hints.lua",
    ["maintenance_report.cli.ledger"] = "lua/maintenance_report/cli/ledger.lua",
    ["maintenance_report.cli.main"] = "lua/maintenance_report/cli/main.lua",
    ["maintenance_report.cli.order"] = "lua/maintenance_report/cli/order.lua",
    ["maintenance_report.cli.output"] = "lua/maintenance_report/cli/output.lua",
    ["maintenance_report.cli.progress"] = "lua/maintenance_report/cli/progress.lua",
    ["maintenance_report.cli.query"] = "lua/maintenance_report/cli/query.lua",
    ["maintenance_report.cli.report"] = "lua/maintenance_report/cli/report.lua",
    ["maintenance_report.cli.sign"] = "lua/maintenance_report/cli/sign.lua",
    ["maintenance_report.cli.terminal"] = "lua/maintenance_report/cli/terminal.lua",
    ["maintenance_report.client"] = "lua/maintenance_report/client.lua",
    ["maintenance_report.defaults"] = "lua/maintenance_report/defaults.lua",
    ["maintenance_report.errors"] = "lua/maintenance_report/errors.lua",
    ["maintenance_report.gateway"] = "lua/maintenance_report/gateway.lua",
    ["maintenance_report"] = "lua/maintenance_report/init.lua",
    ["maintenance_report.json"] = "lua/maintenance_report/json.lua",
    ["maintenance_report.ledger"] = "lua/maintenance_report/ledger.lua",
    ["maintenance_report.ledger.crc32"] = "lua/maintenance_report/ledger/crc32.lua",
    ["maintenance_report.ledger.file"] = "lua/maintenance_report/ledger/file.lua",
    ["maintenance_report.ledger.memory"] = "lua/maintenance_report/ledger/memory.lua",
    ["maintenance_report.ledger.redis"] = "lua/maintenance_report/ledger/redis.lua",
    ["maintenance_report.ledger.redis_client"] = "lua/maintenance_report/ledger/redis_client.lua",
    ["maintenance_report.ledger.shm"] = "lua/maintenance_report/ledger/shm.lua",
    ["maintenance_report.ledger.util"] = "lua/maintenance_report/ledger/util.lua",
    ["maintenance_report.loop.copas"] = "lua/maintenance_report/loop/copas.lua",
    ["maintenance_report.loop.cqueues"] = "lua/maintenance_report/loop/cqueues.lua",
    ["maintenance_report.loop.love"] = "lua/maintenance_report/loop/love.lua",
    ["maintenance_report.loop.luv"] = "lua/maintenance_report/loop/luv.lua",
    ["maintenance_report.loop.nvim"] = "lua/maintenance_report/loop/nvim.lua",
    ["maintenance_report.metrics"] = "lua/maintenance_report/metrics.lua",
    ["maintenance_report.normalize"] = "lua/maintenance_report/normalize.lua",
    ["maintenance_report.options"] = "lua/maintenance_report/options.lua",
    ["maintenance_report.rate_limit"] = "lua/maintenance_report/rate_limit.lua",
    ["maintenance_report.render.html"] = "lua/maintenance_report/render/html.lua",
    ["maintenance_report.render.json"] = "lua/maintenance_report/render/json.lua",
    ["maintenance_report.render.pdf"] = "lua/maintenance_report/render/pdf.lua",
    ["maintenance_report.render.text"] = "lua/maintenance_report/render/text.lua",
    ["maintenance_report.scheduler"] = "lua/maintenance_report/scheduler.lua",
    ["maintenance_report.transport.curl"] = "lua/maintenance_report/transport/curl.lua",
    ["maintenance_report.transport.ngx"] = "lua/maintenance_report/transport/ngx.lua",
    ["maintenance_report.validate"] = "lua/maintenance_report/validate.lua",
  },
  install = {
    -- A shell launcher, so that LuaRocks copies it rather than wrapping it in
    -- lua5.1 for a LuaJIT tree: it runs the interpreter the tree's core was built for.
    bin = { ["maintenance-report"] = "bin/maintenance-report.sh" },
  },
  copy_directories = { "docs", "examples" },
}
