-- The core's process primitives: an exclusive lock the kernel owns, the pid, a
-- directory fsync; and no way to replace the process (exec lives in the sandbox).
local core = require "maintenance_report.core"
local shell = require "helpers.shell"

local LUA = os.getenv("MR_SPEC_LUA") or "lua5.4"

local function tmp_path()
  local path = os.tmpname()
  os.remove(path)
  return path
end

-- A second interpreter that takes the lock, prints "held <pid>" and stays until killed.
local function spawn_holder(path)
  local script = ("local core = require 'maintenance_report.core'; "
    .. "local lock = assert(core.flock(%q)); io.write('held ', core.getpid(), '\\n'); io.flush(); "
    .. "core.sleep(60); lock:release()"):format(path)
  local pipe = assert(io.popen(("exec %s -e %s"):format(LUA, shell.quote(script))))
  local line = assert(pipe:read("*l"), "the holder printed nothing")
  local pid = assert(tonumber(line:match("^held (%d+)$")), line)
  return pipe, pid
end

describe("core.flock", function()
  it("creates the file with mode 0600 and gives a lock that can be released twice", function()
    local path = tmp_path()
    local lock = assert(core.flock(path))
    assert.matches("held", tostring(lock))
    local mode = io.popen("stat -c %a " .. shell.quote(path)):read("*l")
    assert.are.equal("600", mode)
    lock:release()
    lock:release()
    assert.matches("released", tostring(lock))
    assert(core.flock(path)):release()
    os.remove(path)
  end)

  it("says busy while another process holds it, and is free once the holder is SIGKILLed", function()
    local path = tmp_path()
    local pipe, pid = spawn_holder(path)
    local lock, message, reason = core.flock(path)
    assert.is_nil(lock)
    assert.are.equal("busy", reason)
    assert.is_string(message)
    local killed = os.execute("kill -KILL " .. pid)
    assert.truthy(killed == true or killed == 0)
    pipe:close() -- waits for the holder to be gone; the kernel dropped its lock on exit
    lock = assert(core.flock(path))
    lock:release()
    os.remove(path)
  end)

  it("is held per open file: the same process locking twice is busy too", function()
    local path = tmp_path()
    local first = assert(core.flock(path))
    local second, _, reason = core.flock(path)
    assert.is_nil(second)
    assert.are.equal("busy", reason)
    first:release()
    assert(core.flock(path)):release()
    os.remove(path)
  end)

  it("returns nil, message (no reason) when the file cannot be opened", function()
    local lock, message, reason = core.flock("/nonexistent-dir/lock")
    assert.is_nil(lock)
    assert.matches("No such file", message)
    assert.is_nil(reason)
  end)

  it("is released by the garbage collector", function()
    local path = tmp_path()
    core.flock(path) -- dropped at once
    collectgarbage()
    collectgarbage()
    assert(core.flock(path)):release()
    os.remove(path)
  end)

  it("raises for a path with a NUL byte instead of locking a shorter one", function()
    assert.has_error(function() core.flock("/tmp/x\0y") end)
  end)
end)

describe("core.getpid", function()
  it("is this process's pid, as the shell sees it", function()
    local ppid = io.popen("echo $PPID"):read("*l")
    assert.are.equal(tonumber(ppid), core.getpid())
  end)
end)

describe("core.fsync_dir", function()
  it("fsyncs a directory, and fails for a missing one or a NUL in the path", function()
    assert.is_true(core.fsync_dir("/tmp"))
    local ok, message = core.fsync_dir("/nonexistent-dir")
    assert.is_nil(ok)
    assert.matches("No such file", message)
    assert.has_error(function() core.fsync_dir("/tmp\0/x") end)
  end)
end)

describe("core.append_durable", function()
  it("raises for a path with a NUL byte instead of writing to a shorter one", function()
    assert.has_error(function() core.append_durable("/tmp/x\0y", "a") end)
  end)
end)

describe("core.open_fd", function()
  it("appends at the end and reads back lines longer than its 16 KiB read buffer, and ranges", function()
    local path = tmp_path()
    assert.is_nil((core.open_fd(path)))
    assert.are.equal("missing", select(3, core.open_fd(path)))
    local fd = assert(core.open_fd(path, true))
    local long = string.rep("x", 40000)
    local edge = string.rep("y", 16383) -- its newline is the buffer's last byte
    assert(fd:append("first\n", false))
    assert(fd:append(long .. "\n" .. edge .. "\nlast"))
    assert.are.equal("first", fd:read_line(0))
    assert.are.equal(long, fd:read_line(6))
    assert.are.equal(edge, fd:read_line(6 + 40001))
    assert.are.equal("last", fd:read_line(6 + 40001 + 16384)) -- no newline: up to the end
    assert.are.equal("", fd:read_line(6 + 40001 + 16384 + 4))
    assert.are.equal("irst\nx", fd:read(1, 6))
    assert.are.equal("st", fd:read(6 + 40001 + 16384 + 2, 100))
    local id, size = fd:identity()
    assert.are.same({ id, size }, { core.file_identity(path) })
    assert.are.equal(6 + 40001 + 16384 + 4, size)
    os.remove(path)
    assert.are.equal("missing", select(3, core.file_identity(path)))
    fd:close()
    fd:close()
    assert.has_error(function() fd:read_line(0) end)
  end)

  it("byte locks exclude another open of the file, not their own, and a closed fd's are gone", function()
    local path = tmp_path()
    local a, b = assert(core.open_fd(path, true)), assert(core.open_fd(path))
    assert.is_true(a:range_lock(2 ^ 51 + 7))
    assert.is_true(a:range_lock(2 ^ 51 + 7))
    assert.is_false(b:range_lock(2 ^ 51 + 7))
    assert.is_true(b:range_lock(2 ^ 51 + 8))
    assert.is_true(a:range_unlock(2 ^ 51 + 7))
    assert.is_true(b:range_lock(2 ^ 51 + 7))
    assert.is_false(a:range_lock(2 ^ 51 + 8))
    b:close()
    assert.is_true(a:range_lock(2 ^ 51 + 8))
    assert.has_error(function() a:range_lock(-1) end)
    assert.has_error(function() a:range_lock(1.5) end)
    a:close()
    os.remove(path)
  end)

  it("key_slot is FNV-1a 64 of the key, its top 52 bits", function()
    -- FNV-1a 64 of "a" is 0xaf63dc4c8601ec8c (the FNV reference test vectors).
    assert.are.equal(0xaf63dc4c8601e, core.key_slot("a"))
    -- of "" the offset basis 0xcbf29ce484222325
    assert.are.equal(0xcbf29ce484222, core.key_slot(""))
  end)
end)

describe("the client core", function()
  it("has no exec", function()
    assert.is_nil(core.exec)
  end)

  it("leaves exec to maintenance_report_sandbox.process", function()
    local process = require "maintenance_report_sandbox.process"
    assert.is_function(process.exec)
    local ok, err = process.exec{ "/nonexistent/program" }
    assert.is_nil(ok)
    assert.matches("No such file", err)
    assert.has_error(function() process.exec{ "/bin/sh\0x" } end)
  end)
end)
