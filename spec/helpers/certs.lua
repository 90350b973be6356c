-- Throwaway certificates for the TLS specs, made with the openssl CLI at test
-- time in a private temp directory:
--   ca.pem                       a CA nobody trusts but the specs
--   server.pem / server.key      for localhost and 127.0.0.1 (subjectAltName), signed by the CA
--   other.pem / other.key        for other.example only, signed by the same CA
--   selfsigned.pem / .key        for localhost and 127.0.0.1, signed by itself
local shell = require "helpers.shell"

local M = {}

local quote = shell.quote
local run = shell.run
-- Output and exit status, never raising (what callers of M.sh expect).
local sh = require("maintenance_report_sandbox.shell").run

local write = shell.write_file

local KEY = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"

-- A leaf signed by the CA, for the given subjectAltName.
local function leaf(dir, name, cn, san)
  local p = dir .. "/" .. name
  write(p .. ".ext", table.concat({
    "basicConstraints = critical, CA:FALSE",
    "keyUsage = critical, digitalSignature, keyEncipherment",
    "extendedKeyUsage = serverAuth",
    "subjectAltName = " .. san,
  }, "\n") .. "\n")
  run(("openssl req %s -keyout %s -out %s -subj %s"):format(KEY, quote(p .. ".key"), quote(p .. ".csr"),
    quote("/CN=" .. cn)))
  run(("openssl x509 -req -in %s -CA %s -CAkey %s -CAcreateserial -days 2 -sha256 -extfile %s -out %s")
    :format(quote(p .. ".csr"), quote(dir .. "/ca.pem"), quote(dir .. "/ca.key"), quote(p .. ".ext"),
      quote(p .. ".pem")))
end

--- Makes the certificates; returns { dir=, ca=, server={cert=, key=}, other={…}, selfsigned={…} }.
function M.make()
  local dir = run('mktemp -d "${TMPDIR:-/tmp}/mr-certs.XXXXXX"'):gsub("%s+$", "")
  local ok, err = pcall(function()
    run(("openssl req -x509 %s -keyout %s -out %s -days 2 -sha256 -subj %s"
      .. " -addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign'")
      :format(KEY, quote(dir .. "/ca.key"), quote(dir .. "/ca.pem"), quote("/CN=maintenance-report spec CA")))
    leaf(dir, "server", "localhost", "DNS:localhost, IP:127.0.0.1")
    leaf(dir, "other", "other.example", "DNS:other.example")
    run(("openssl req -x509 %s -keyout %s -out %s -days 2 -sha256 -subj %s"
      .. " -addext 'subjectAltName=DNS:localhost,IP:127.0.0.1' -addext 'basicConstraints=critical,CA:FALSE'")
      :format(KEY, quote(dir .. "/selfsigned.key"), quote(dir .. "/selfsigned.pem"), quote("/CN=localhost")))
  end)
  if not ok then
    M.remove({ dir = dir })
    error(err, 0)
  end
  return {
    dir = dir,
    ca = dir .. "/ca.pem",
    server = { cert = dir .. "/server.pem", key = dir .. "/server.key" },
    other = { cert = dir .. "/other.pem", key = dir .. "/other.key" },
    selfsigned = { cert = dir .. "/selfsigned.pem", key = dir .. "/selfsigned.key" },
  }
end

function M.remove(certs)
  if certs and certs.dir and certs.dir:match("/mr%-certs%.[%w]+$") then sh("rm -rf " .. quote(certs.dir)) end
end

M.sh = sh
M.quote = quote

return M
