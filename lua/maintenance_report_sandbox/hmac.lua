-- HMAC for the sandbox gateway, computed inside nginx and independent of the
-- project's C signer: hmac-sha1 uses ngx.hmac_sha1; the SHA-2 family calls
-- OpenSSL's one-shot HMAC() through the LuaJIT FFI (nginx is linked with
-- libcrypto, so the symbols are already loaded). Runs only inside nginx.
local ffi = require "ffi"

local C = ffi.C
local M = {}

-- Declared one by one and protected: another module may have declared some
-- of them already, and a repeated ffi.cdef raises an error.
for _, decl in ipairs({
  "typedef struct evp_md_st EVP_MD;",
  "const EVP_MD *EVP_sha256(void);",
  "const EVP_MD *EVP_sha384(void);",
  "const EVP_MD *EVP_sha512(void);",
  [[unsigned char *HMAC(const EVP_MD *evp_md, const void *key, int key_len,
      const unsigned char *d, size_t n, unsigned char *md, unsigned int *md_len);]],
}) do
  pcall(ffi.cdef, decl)
end

local out = ffi.new("unsigned char[64]")
local out_len = ffi.new("unsigned int[1]")

local DIGESTS = {
  ["hmac-sha256"] = "EVP_sha256",
  ["hmac-sha384"] = "EVP_sha384",
  ["hmac-sha512"] = "EVP_sha512",
}

M.algorithms = { ["hmac-sha1"] = true }
for name in pairs(DIGESTS) do M.algorithms[name] = true end

-- Raw HMAC bytes, or nil for an unknown algorithm.
function M.digest(algorithm, key, data)
  if algorithm == "hmac-sha1" then
    return ngx.hmac_sha1(key, data)
  end
  local fn = DIGESTS[algorithm]
  if not fn then return nil end
  if C.HMAC(C[fn](), key, #key, data, #data, out, out_len) == nil then
    return nil
  end
  return ffi.string(out, out_len[0])
end

return M
