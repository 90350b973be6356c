-- Temporary directories for ledger specs, removed by the spec that made them.
local shell = require "helpers.shell"

local tmp = {}

function tmp.dir()
  return shell.run('mktemp -d "${TMPDIR:-/tmp}/maintenance-report-ledger-spec.XXXXXX"')
end

function tmp.remove(dir)
  if dir and dir:match("/maintenance%-report%-ledger%-spec%.%w+$") then shell.run("rm -rf " .. shell.quote(dir)) end
end

return tmp
