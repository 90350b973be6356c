-- `bin/maintenance-report sandbox`: help, the ready line, serving with the
-- given credentials, and a clean stop on SIGTERM.
local http = require "helpers.sandbox_http"

local BIN = "bin/maintenance-report"

-- The CLI (always lua5.4) hands over to its signal-trapping shell through
-- maintenance_report_sandbox.process.exec (a C module `make build` builds),
-- so SIGTERM stops nginx at once, not only through the watchdog.
describe("maintenance-report sandbox (CLI)", function()
  it("has --help on the program and on the subcommand", function()
    local out, rc = http.sh(BIN .. " --help")
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("sandbox", 1, true))
    out, rc = http.sh(BIN .. " sandbox --help")
    assert.are.equal(0, rc, out)
    for _, opt in ipairs({ "--port", "--secret-id", "--secret-key", "--pending-polls", "--latency", "--workers" }) do
      assert.truthy(out:find(opt, 1, true), opt)
    end
  end)

  it("rejects a malformed option", function()
    local out, rc = http.sh(BIN .. " sandbox --port notaport")
    assert.are_not.equal(0, rc, out)
  end)

  it("prints one ready line, serves with the given credentials, and cleans up on SIGTERM", function()
    local dir = assert(http.sh("mktemp -d")):gsub("%s+$", "")
    finally(function() http.sh("rm -rf " .. http.quote(dir)) end)
    -- Signing does not depend on the URL, so headers are made up front.
    local headers = {}
    for _, h in ipairs(http.signed_headers { id = "AKIDcli", key = "cli key" }) do
      headers[#headers + 1] = "-H " .. http.quote(h)
    end
    local fifo, err = dir .. "/out", dir .. "/err"
    -- One shell drives the whole life cycle, so it can `wait` for the CLI.
    -- Reading the FIFO blocks until the ready line is written: no sleeps.
    local script = table.concat({
      "mkfifo " .. http.quote(fifo),
      BIN .. " sandbox --port 0 --secret-id AKIDcli --secret-key 'cli key' --pending-polls 0 --workers 2 > "
        .. http.quote(fifo) .. " 2> " .. http.quote(err) .. " &",
      "pid=$!",
      "read -r line < " .. http.quote(fifo),
      'echo "LINE=$line"',
      [[url=$(printf '%s\n' "$line" | sed -n 's|.*\(http://[^ ]*\).*|\1|p')]],
      "id=$(curl -s --noproxy '*' " .. table.concat(headers, " ")
        .. [[ "$url/maintenance/order?vin=WBAXW1104J0X16755" | sed -n 's/.*"orderId":"\([0-9a-f]*\)".*/\1/p')]],
      'echo "ORDER=$id"',
      "echo \"REPORT=$(curl -s --noproxy '*' " .. table.concat(headers, " ")
        .. [[ "$url/maintenance_report/get?order_id=$id" | sed -n 's/.*"resultCode":"\([0-9]*\)".*/\1/p')"]],
      "kill -TERM $pid",
      "wait $pid",
      'echo "EXIT=$?"',
      "prefix=$(sed -n 's/.*prefix \\([^;]*\\);.*/\\1/p' " .. http.quote(err) .. ")",
      'echo "PREFIX=$prefix"',
      '[ -n "$prefix" ] && [ ! -e "$prefix" ] && echo "PREFIX_GONE=yes"',
      'curl -s --noproxy \'*\' -o /dev/null "$url/maintenance/order"; echo "AFTER=$?"',
    }, "\n")
    local out = http.sh("timeout 60 sh -c " .. http.quote(script))
    local line = out:match("LINE=([^\n]*)")
    assert.truthy(line and line:match("^sandbox ready: http://127%.0%.0%.1:%d+/release "), out)
    assert.truthy(line:find("secret_id=AKIDcli", 1, true), line)
    assert.truthy(line:find("secret_key=cli key", 1, true), line)
    assert.truthy(out:match("ORDER=(%x+)") and #out:match("ORDER=(%x*)") == 32, out)
    assert.are.equal("1205", out:match("REPORT=(%d*)"), out) -- --pending-polls 0
    assert.are.equal("0", out:match("EXIT=(%d+)"), out)
    assert.truthy(out:find("PREFIX_GONE=yes", 1, true), out)
    assert.are.equal("7", out:match("AFTER=(%d+)"), out) -- curl: connection refused
  end)
end)
