-- render.pdf and `--format pdf`: a clear message before any request when Chromium is
-- missing, and an A4 PDF of the report, findings included, when it is there.
local pdf = require "maintenance_report.render.pdf"
local sandbox = require "maintenance_report_sandbox"
local cli = require "helpers.cli_run"

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("*a")
  p:close()
  return out
end

describe("render.pdf", function()
  after_each(function() cli.cleanup() end)

  it("names the package and the variable when no Chromium is found", function()
    local exe = pdf.chromium(function() return nil end)
    if exe then
      -- this machine has one: the search over PATH found it
      assert.truthy(sh("command -v " .. exe):find("%S"))
    end
    local err
    exe, err = pdf.chromium(function(name) return name == pdf.ENV and "/nonexistent/chromium" or nil end)
    assert.is_nil(exe)
    assert.are.equal("invalid_input", err.kind)
    assert.truthy(err.message:find(pdf.ENV, 1, true) and err.message:find("/nonexistent/chromium", 1, true))
    local bytes, rerr = pdf.render("<p>x</p>", { chromium = "/nonexistent/chromium" })
    assert.is_nil(bytes)
    assert.truthy(tostring(rerr):find("made no PDF", 1, true))
  end)

  it("--format pdf without Chromium stops before any request (exit 2)", function()
    local out = cli.tmpdir() .. "/r.pdf"
    local r = cli.run({ "query", "--vin", "LSANDB0XXL0RB0000", "--format", "pdf", "--output", out },
      { MAINTENANCE_REPORT_CHROMIUM = "/nonexistent/chromium", MAINTENANCE_REPORT_ENDPOINT = "http://127.0.0.1:9",
        MAINTENANCE_REPORT_SECRET_ID = "AKIDspec", MAINTENANCE_REPORT_SECRET_KEY = "spec-key-not-used" })
    assert.are.equal(2, r.code, r.err)
    assert.truthy(r.err:find("MAINTENANCE_REPORT_CHROMIUM", 1, true), r.err)
    assert.falsy(r.err:lower():find("order", 1, true), r.err)
  end)

  it("--format pdf writes an A4 PDF of the report with its findings", function()
    local exe = pdf.chromium()
    assert.truthy(exe, "chromium is missing: `make deps` installs it")
    local sb = assert(sandbox.start{ pending_polls = 0, secret_key = "render-pdf-spec-key" })
    local ok, err = pcall(function()
      local out = cli.tmpdir() .. "/r.pdf"
      local r = cli.run({ "query", "--vin", sandbox.scenario_vin("rollback"), "--format", "pdf", "--output", out,
        "--poll-interval", "0.05" }, cli.sandbox_env(sb))
      assert.are.equal(0, r.code, r.err)
      assert.are.equal("%PDF-", cli.read(out):sub(1, 5))
      assert.truthy(sh("pdfinfo " .. cli.quote(out)):find("A4", 1, true))
      local words = sh("pdftotext " .. cli.quote(out) .. " -")
      assert.truthy(words:find(sandbox.scenario_vin("rollback"), 1, true), "the queried VIN")
      assert.truthy(words:find("里程回退", 1, true), "the rollback finding")
    end)
    sb:stop()
    assert(ok, err)
  end)
end)
