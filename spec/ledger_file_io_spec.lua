-- The file ledger's held descriptors and byte-lock claims: the descriptors it
-- keeps do not grow with writes, another process's compaction is followed, a
-- claim excludes every other open of the ledger (other processes, other stores,
-- a key that hashes to the same byte) and dies with its holder; a format 1
-- ledger keeps its per-key claim files. Descriptors are listed from /proc.
local core = require "maintenance_report.core"
local ledger = require "maintenance_report.ledger"
local fds = require "helpers.fds"
local shell = require "helpers.shell"
local tmp = require "helpers.ledger_tmp"

local q = shell.quote
local LUA = os.getenv("MR_SPEC_LUA") or "lua5.4"
local VEHICLE = { vin = "LSVAU2180N2183294", engine_number = "EA888", plate_number = "京A12345" }
local OTHER = { vin = "LSVAU2180N2183295" }

local function order(L, fields, order_id, final)
  local d = assert(L:begin(fields))
  assert.are.equal("order", d.action)
  assert(d.claim:intent())
  if order_id then assert(d.claim:placed(order_id, "REQ-" .. order_id)) end
  if final then assert(d.claim:final("ready", { vin = fields.vin, records = {} })) end
  d.claim:release()
end

-- VINs that differ in their last digits (not valid check digits: the ledger does not check them).
local function vin(i) return ("LSVAU2180N%07d"):format(i) end

-- The targets of this process's descriptors that name path (a deleted file's end in " (deleted)").
local function naming(path)
  local lfs = require "lfs"
  local out = {}
  for fd in lfs.dir("/proc/self/fd") do
    local target = lfs.symlinkattributes("/proc/self/fd/" .. fd, "target")
    if type(target) == "string" and target:sub(1, #path) == path then out[#out + 1] = target end
  end
  table.sort(out)
  return out
end

local function spawn(mode, ...)
  local args = { ... }
  for i, a in ipairs(args) do args[i] = q(a) end
  return assert(io.popen(("%s spec/helpers/ledger_child.lua %s %s 2>&1"):format(LUA, mode, table.concat(args, " "))))
end

describe("file ledger descriptors", function()
  local dir, path
  before_each(function()
    dir = tmp.dir()
    path = dir .. "/ledger"
  end)
  after_each(function() tmp.remove(dir) end)

  it("keeps three descriptors (lock, file, claim locks) however many writes, and closes them", function()
    local before = fds.list()
    local L = assert(ledger.file(path))
    order(L, { vin = vin(0) }, "O-0", true)
    local held = fds.list()
    for i = 1, 200 do order(L, { vin = vin(i) }, "O-" .. i, true) end
    assert.are.equal(held, (fds.list()))
    assert.are.same({ path, path .. ".claim-locks", path .. ".lock" }, naming(path))
    assert.are.equal(before + 3, held)
    assert.is_nil(io.open(path .. ".claims")) -- no file per claimed key
    L:close()
    assert.are.equal(before, (fds.list()))
    assert.are.equal("ready", assert(L:get{ vin = vin(200) }).state) -- usable again after close
    L:close()
  end)

  it("follows a compaction by another process: reads the new file and lets go of the old one", function()
    local L = assert(ledger.file(path))
    order(L, VEHICLE, "O-1")
    local child = spawn("compact", path)
    assert.are.equal("COMPACTED", child:read("*l"))
    child:close()
    local locks = { path .. ".claim-locks", path .. ".lock" }
    assert.are.same({ path .. " (deleted)", locks[1], locks[2] }, naming(path)) -- the old file, renamed over
    local other = assert(L:get(OTHER))
    assert.are.same({ "placed", "OTHER-1" }, { other.state, other.order_id })
    assert.are.same({ path, locks[1], locks[2] }, naming(path)) -- the new one, the old one closed
    local d = assert(L:begin(VEHICLE))
    assert.are.same({ "poll", "O-1" }, { d.action, d.order_id })
    assert(d.claim:final("ready", {}))
    d.claim:release()
    local fresh = assert(ledger.file(path))
    assert.are.same({ "ready", 3 }, { assert(fresh:get(VEHICLE)).state, assert(fresh:get(VEHICLE)).version })
    assert.are.equal("OTHER-1", assert(fresh:get(OTHER)).order_id)
    fresh:close()
    L:close()
  end)
end)

describe("file ledger claims", function()
  local dir, path
  before_each(function()
    dir = tmp.dir()
    path = dir .. "/ledger"
  end)
  after_each(function() tmp.remove(dir) end)

  it("a claim held by another process excludes this one until that process is killed", function()
    local key = ledger.key(VEHICLE)
    assert(ledger.file(path)):close()
    local child = spawn("claim", path, key)
    local pid = tonumber(tostring(child:read("*l")):match("^HELD (%d+)$"))
    assert(pid)
    local L = assert(ledger.file(path))
    assert.is_false(L.store:claim(key, "mine"))
    assert.is_true(L.store:claim(ledger.key(OTHER), "mine")) -- another key is free
    shell.run("kill -9 " .. pid)
    child:close()
    assert.is_true(L.store:claim(key, "mine"))
    L:close()
  end)

  it("a claim held here makes another process's claim of the key busy, and the key free once released",
    function()
      local key = ledger.key(VEHICLE)
      local L = assert(ledger.file(path))
      assert.is_true(L.store:claim(key, "mine"))
      local child = spawn("claim", path, key)
      assert.are.equal("BUSY", child:read("*l"))
      child:close()
      L.store:release(key, "mine")
      child = spawn("claim", path, key)
      local pid = tonumber(tostring(child:read("*l")):match("^HELD (%d+)$"))
      assert(pid)
      shell.run("kill -9 " .. pid)
      child:close()
      L:close()
    end)

  it("two stores of one process exclude each other, and closing one's other descriptors keeps its claim",
    function()
      local key = ledger.key(VEHICLE)
      local a, b = assert(ledger.file(path)), assert(ledger.file(path))
      assert.is_true(a.store:claim(key, "a"))
      assert.is_false(b.store:claim(key, "b"))
      -- Another descriptor of the claims file opened and closed in this process: a classic
      -- POSIX fcntl lock would be gone now; the OFD lock is not.
      assert(io.open(path .. ".claim-locks", "rb")):close()
      assert.is_false(b.store:claim(key, "b"))
      a:close()
      assert.is_true(b.store:claim(key, "b"))
      b:close()
    end)

  it("two keys that hash to the same byte never share it: the second waits for the first", function()
    local slot_of = function() return 12345 end
    local a, b = assert(ledger.file(path)), assert(ledger.file(path))
    for _, L in ipairs{ a, b } do
      L.store.core = setmetatable({ key_slot = slot_of }, { __index = core })
    end
    local k1, k2 = ledger.key(VEHICLE), ledger.key(OTHER)
    assert.is_true(a.store:claim(k1, "a1"))
    assert.is_false(a.store:claim(k2, "a2")) -- same store: its own lock would not exclude it
    assert.is_false(b.store:claim(k2, "b2")) -- another store
    local d, err = a:begin(OTHER)
    assert.is_nil(d)
    assert.are.equal("ledger_busy", err.kind)
    a.store:release(k1, "a1")
    assert.is_true(a.store:claim(k2, "a2"))
    assert.is_false(b.store:claim(k1, "b1"))
    a.store:release(k2, "a2")
    assert.is_true(b.store:claim(k1, "b1"))
    a:close()
    b:close()
  end)

  it("a forked child neither passes its parent's file lock and claims as its own nor drops them", function()
    if not rawget(_G, "jit") then
      pending("forking needs LuaJIT's ffi")
      return
    end
    local ffi = require "ffi"
    pcall(ffi.cdef, "int fork(void); void _exit(int); int waitpid(int pid, int *status, int options);")
    local key = ledger.key(VEHICLE)
    local L = assert(ledger.file(path))
    local other = assert(ledger.file(path, { lock_wait = 0 }))
    assert.is_true(L.store:claim(key, "parent"))
    local lock = assert(L.store:try_lock())
    local result = dir .. "/child"
    local pid = ffi.C.fork()
    if pid == 0 then
      local _, out = pcall(function()
        local inherited = L.store:claim(key, "parent") -- the parent's token, in the table it copied
        local own = L.store:claim(key, "child")
        local _, _, why = L.store:try_lock()
        return ("%s %s %s"):format(tostring(inherited), tostring(own), tostring(why))
      end)
      local f = io.open(result, "wb")
      f:write(tostring(out))
      f:close()
      ffi.C._exit(0)
    end
    assert.is_true(pid > 0)
    ffi.C.waitpid(pid, nil, 0)
    assert.are.equal("false false busy", assert(shell.read_file(result)))
    assert.is_false(other.store:claim(key, "other")) -- the parent still holds both
    assert.are.equal("busy", select(3, other.store:try_lock()))
    L.store:unlock(lock)
    L.store:release(key, "parent")
    assert.is_true(other.store:claim(key, "other"))
    other:close()
    L:close()
  end)

  it("a format 1 ledger keeps one claim file per key, which an older process's flock finds held", function()
    local f = assert(io.open(path, "wb"))
    f:write("maintenance-report-ledger 1 gen1\n")
    f:close()
    local L = assert(ledger.file(path))
    local key = ledger.key(VEHICLE)
    assert.is_true(L.store:claim(key, "mine"))
    local hex = key:gsub(".", function(c) return ("%02x"):format(c:byte()) end)
    local lock, _, why = core.flock(path .. ".claims/" .. hex .. ".lock")
    assert.is_nil(lock)
    assert.are.equal("busy", why)
    assert.is_nil(io.open(path .. ".claim-locks"))
    L.store:release(key, "mine")
    order(L, OTHER, "O-2")
    assert(L:compact())
    assert.are.equal("maintenance-report-ledger 1 ", assert(shell.read_file(path)):sub(1, 28))
    L:close()
  end)
end)
