-- What a new user meets in the first hour with the CLI: a progress bar that
-- fits the terminal and counts like the summary, plates as dealers write
-- them, order ids checked before anything is sent, usage errors instead of
-- tracebacks, plural forms, a dry run that changes nothing, and no child
-- process that inherits the secret key.
local sandbox = require "maintenance_report_sandbox"
local cli = require "helpers.cli_run"
local shell = require "helpers.shell"
local validate = require "maintenance_report.validate"
local progress = require "maintenance_report.cli.progress"

local q = cli.quote

local function vins(n, offset)
  local out = {}
  for i = 1, n do out[i] = sandbox.scenario_vin("normal", (offset or 0) + i) end
  return out
end

describe("the first hour with the CLI", function()
  local sb, env
  lazy_setup(function()
    sb = assert(sandbox.start{ pending_polls = 1, secret_key = "first-hour-key" })
    env = cli.sandbox_env(sb)
  end)
  lazy_teardown(function()
    if sb then sb:stop() end
    cli.cleanup()
  end)

  describe("batch progress", function()
    it("counts rows by the summary's states: pending rows are not 'failed'", function()
      local dir = cli.tmpdir()
      cli.write(dir .. "/in.txt", table.concat(vins(2, 700), "\n") .. "\n")
      -- The report stays pending past --max-wait: both rows end "pending".
      local slow = assert(sandbox.start{ pending_polls = 1000 })
      local r = cli.run({ "batch", dir .. "/in.txt", "--output", dir .. "/out.jsonl", "--max-wait", "0.3",
        "--poll-interval", "0.1", "--rate", "50", "--ledger", dir .. "/ledger" }, cli.sandbox_env(slow))
      slow:stop()
      assert.are.equal(6, r.code, r.err)
      assert.matches("pending%s+2", r.err)
      local last = r.err:match("progress: ([^\n]*)\n[^\n]*batch summary")
      assert.truthy(last, r.err)
      assert.matches("pending 2", last)
      assert.not_matches("failed", last)
    end)

    it("fits its bar into the terminal width, dropping less important parts first", function()
      local p = progress.new{ total = 1000, tty = true, now = function() return 100 end, width = 40 }
      local c = { done = 500, ordered = 480, active = 8, ready = 470, pending = 2, failed = 20, unknown = 7,
        skipped = 1 }
      for _, width in ipairs{ 20, 40, 60, 80, 120 } do
        p.width = width
        local text = p:bar_text(c)
        local _, cols = text:gsub("[^\128-\191]", "")
        assert.is_true(cols <= width - 1, width .. ": " .. text)
        assert.matches("500/1000", text)
      end
      p.width = 120
      assert.matches("failed 20", p:bar_text(c))
      assert.matches("unknown 7", p:bar_text(c))
    end)

    for _, width in ipairs{ 60, 120 } do
      it("redraws one line in place in a " .. width .. "-column tmux", function()
        if not cli.has_command("tmux") then
          pending("tmux is not installed")
          return
        end
        local dir = cli.tmpdir()
        cli.write(dir .. "/in.txt", table.concat(vins(6, 710 + width), "\n") .. "\n")
        local command = cli.command({ "batch", dir .. "/in.txt", "--output", dir .. "/out.jsonl",
          "--poll-interval", "0.05", "--rate", "20", "--ledger", dir .. "/ledger" }, env)
          .. "; echo EXIT=$? >" .. q(dir .. "/code")
        local socket = "mr-first-hour-" .. width .. "-" .. require("maintenance_report.core").getpid()
        local tmux = "tmux -L " .. q(socket) .. " -f /dev/null "
        local ok, err = pcall(function()
          shell.run(tmux .. "new-session -d -x " .. width .. " -y 30 " .. q("cd " .. q(cli.ROOT) .. " && "
            .. command .. "; sleep 30"))
          assert.is_true(cli.wait_until(function() return cli.read(dir .. "/code") end, 30), "batch did not end")
          local pane = shell.run(tmux .. "capture-pane -p -t 0")
          local bars = 0
          for line in (pane .. "\n"):gmatch("([^\n]*)\n") do
            local _, cols = line:gsub("[^\128-\191]", "")
            assert.is_true(cols <= width, "a line wider than the pane: " .. line)
            if line:find("%]%s+%d+/6") or line:find("^%d+/6 ") then bars = bars + 1 end
          end
          assert.are.equal(1, bars, pane)
          assert.matches("EXIT=0", cli.read(dir .. "/code"))
        end)
        os.execute(tmux .. "kill-server 2>/dev/null")
        assert(ok, err)
      end)
    end
  end)

  describe("plates as dealers write them", function()
    it("accepts one separator after the letter and normalizes it away", function()
      for _, written in ipairs{ "川A·12345", "川A 12345", "川A-12345", "川a・12345" } do
        assert.are.equal("川A12345", (validate.plate(written)))
      end
      assert.are.equal("粤BD12345", (validate.plate("粤B·D12345")))
    end)

    it("names a separator anywhere else, and counts the length without it", function()
      local _, message = validate.plate("川A12 345")
      assert.are.equal("plate has a separator ' ' at position 5; one separator is accepted only after the letter, "
        .. "as in 川A·12345", message)
      _, message = validate.plate("川A·1234")
      assert.are.equal("plate must be 7 characters (8 for new-energy plates), got 6 without the separator", message)
    end)
  end)

  describe("report ORDER_ID", function()
    it("refuses a word that is no order id before sending anything", function()
      assert(sb:reset())
      local r = cli.run({ "report", "not-an-id" }, env)
      assert.are.equal(2, r.code, r.err)
      assert.matches("'not-an-id' is not an order id", r.err, 1, true)
      assert.matches("hint: order ids are printed by", r.err, 1, true)
      assert.are.equal(0, sb:stats().report_reads)
    end)

    it("for an id the API does not know, says to check the id rather than to wait", function()
      local r = cli.run({ "report", "0123456789abcdef0123456789abcdef" }, env)
      assert.are_not.equal(0, r.code)
      assert.matches("hint: the API has no report for order id 0123456789abcdef0123456789abcdef", r.err, 1, true)
      assert.not_matches("--wait", r.err, 1, true)
    end)
  end)

  describe("usage errors, not tracebacks", function()
    local function usage(args, pattern)
      local r = cli.run(args, env)
      assert.are.equal(2, r.code, r.err)
      assert.matches(pattern, r.err)
      assert.not_matches("internal error", r.err, 1, true)
      assert.not_matches("traceback", r.err, 1, true)
    end

    it("sandbox --latency 1e400 and --pending-polls 1.5", function()
      usage({ "sandbox", "--latency", "1e400" }, "%-%-latency must be a whole number from 0 to")
      usage({ "sandbox", "--pending-polls", "1.5" }, "%-%-pending%-polls must be a whole number from 0 to")
    end)

    it("batch with a directory as INPUT, and --concurrency 1e400", function()
      usage({ "batch", "/tmp" }, "cannot read /tmp: Is a directory")
      local dir = cli.tmpdir()
      cli.write(dir .. "/in.txt", vins(1, 730)[1] .. "\n")
      usage({ "batch", dir .. "/in.txt", "--concurrency", "1e400" }, "%-%-concurrency must be a whole number")
    end)

    it("sandbox --port on a taken port is an environment problem (exit 9), at once", function()
      local core = require "maintenance_report.core"
      local t0 = core.monotime()
      local r = cli.run({ "sandbox", "--port", tostring(sb.port) }, {})
      assert.are.equal(9, r.code, r.err)
      assert.matches("port " .. sb.port .. " on 127.0.0.1 is already in use", r.err, 1, true)
      assert.is_true(core.monotime() - t0 < 2, "took " .. (core.monotime() - t0) .. " s")
    end)

    it("sandbox --tls-cert/--tls-key serves https, verified with the CA, and prints tls_base_url", function()
      local certs = require("helpers.certs").make()
      local p = cli.spawn({ "sandbox", "--port", "0", "--tls-cert", certs.server.cert, "--tls-key", certs.server.key },
        {})
      local ready = cli.wait_until(function() return (cli.read(p.dir .. "/out") or ""):find("\n") end, 20)
      local line = cli.read(p.dir .. "/out") or ""
      local url = line:match("tls_base_url=(https://127%.0%.0%.1:%d+/release)")
      local answer = url and shell.run(("curl -s --cacert %s %s"):format(q(certs.ca), q(url .. "/nothing")))
      os.execute("kill -TERM " .. p.pid)
      local finished = cli.finish(p)
      local alone = cli.run({ "sandbox", "--tls-cert", certs.ca }, {})
      require("helpers.certs").remove(certs)
      assert.truthy(ready, cli.read(p.dir .. "/err"))
      assert.truthy(url, line)
      assert.matches("There is no api match", answer, 1, true) -- the gateway, over verified TLS
      assert.are.equal(0, finished.code)
      assert.are.equal(2, alone.code)
      assert.matches("--tls-cert and --tls-key go together", alone.err, 1, true)
    end)

    it("sandbox --help lists the exit codes", function()
      local r = cli.run({ "sandbox", "--help" }, {})
      assert.are.equal(0, r.code)
      assert.matches("Exit codes:", r.out, 1, true)
      assert.matches("9  this machine cannot run the sandbox", r.out, 1, true)
    end)
  end)

  it("writes singular forms for one", function()
    local dir = cli.tmpdir()
    cli.write(dir .. "/in.txt", vins(1, 740)[1] .. "\n")
    local r = cli.run({ "batch", dir .. "/in.txt", "--output", dir .. "/out.jsonl", "--poll-interval", "0.05",
      "--ledger", dir .. "/ledger" }, env)
    assert.are.equal(0, r.code, r.err)
    assert.matches("batch: 1 VIN: ", r.err, 1, true)
    assert.matches("batch summary: 1 distinct VIN, 0 duplicate rows skipped", r.err, 1, true)
    assert.matches("spent this run: 1 order × ", r.err, 1, true)
    assert.not_matches("[^%d.]1 VINs", r.err)
    assert.not_matches("[^%d.]1 orders", r.err) -- "8.1 orders/s" is a rate
  end)

  describe("batch --dry-run", function()
    it("leaves a ledger with a torn last line byte for byte as it was, creates no file, exits 2 "
      .. "when invalid rows would be skipped", function()
      local dir = cli.tmpdir()
      local path = dir .. "/ledger"
      local L = assert(require("maintenance_report.ledger").file(path))
      L:close()
      os.remove(path .. ".lock")
      shell.run("rm -rf " .. q(path .. ".claims"))
      local f = assert(io.open(path, "ab"))
      f:write('0123abcd 89abcdef "vin=X" {"state":"pla') -- a write cut short by a crash
      f:close()
      local before = cli.read(path)
      cli.write(dir .. "/in.txt", vins(1, 750)[1] .. "\nNOT-A-VIN\n")
      local listing = shell.run("ls -A " .. q(dir))
      local r = cli.run({ "batch", dir .. "/in.txt", "--dry-run", "--ledger", path }, env)
      assert.are.equal(2, r.code, r.err)
      assert.matches("1 invalid row would be skipped", r.err, 1, true)
      assert.are.equal(before, cli.read(path))
      assert.are.equal(listing, shell.run("ls -A " .. q(dir)))
    end)
  end)

  it("starts no child process that inherits the secret key or the Redis password", function()
    local dir = cli.tmpdir()
    -- mkdir runs when the ledger's directory is new; this one records its environment.
    shell.run("mkdir " .. q(dir .. "/bin"))
    cli.write(dir .. "/bin/mkdir", "#!/bin/sh\nenv > " .. q(dir) .. "/env.$$\nexec /bin/mkdir \"$@\"\n")
    shell.run("chmod +x " .. q(dir .. "/bin/mkdir"))
    cli.write(dir .. "/in.txt", vins(1, 760)[1] .. "\n")
    local r = cli.run({ "batch", dir .. "/in.txt", "--output", dir .. "/out.jsonl", "--poll-interval", "0.05",
      "--ledger", dir .. "/new/dir/ledger" }, cli.merge(env, { PATH = dir .. "/bin:" .. os.getenv("PATH"),
      MAINTENANCE_REPORT_REDIS_PASSWORD = "first-hour-redis-pass" }))
    assert.are.equal(0, r.code, r.err) -- the key was used: the order and the report went through
    local seen = shell.run("cat " .. q(dir) .. "/env.* 2>/dev/null || true")
    assert.matches("PATH=", seen, 1, true) -- the shim ran
    assert.not_matches("MAINTENANCE_REPORT_SECRET_KEY", seen, 1, true)
    assert.not_matches("first-hour-key", seen, 1, true)
    assert.not_matches("first-hour-redis-pass", seen, 1, true)
  end)
end)
