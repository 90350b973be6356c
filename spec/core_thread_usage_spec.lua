-- core.thread_cputime and core.thread_usage measure the calling thread: the
-- scheduler's CPU budget and the game loop's over-budget diagnostics rely on them.
local core = require "maintenance_report.core"

local function work(n)
  local x = 0
  for i = 1, n do x = (x + i * 7) % 1000003 end
  return x
end

describe("core.thread_cputime", function()
  it("agrees with the process's CPU time (os.clock) for one thread's work, not with a sleep", function()
    local t0, c0 = core.thread_cputime(), os.clock()
    work(3e6)
    local t1, c1 = core.thread_cputime(), os.clock()
    assert.is_true(c1 - c0 > 0.005, "the work took no measurable CPU")
    -- this process runs no other thread now: both clocks see the same work
    local ratio = (t1 - t0) / (c1 - c0)
    assert.is_true(ratio > 0.8 and ratio < 1.25, ("thread %.4f s against process %.4f s"):format(t1 - t0, c1 - c0))
    core.sleep(0.1)
    local t2 = core.thread_cputime()
    assert.is_true(t2 - t1 < 0.02, ("%.4f s of CPU over a 100 ms sleep"):format(t2 - t1))
  end)
end)

describe("core.thread_usage", function()
  it("counts the page faults of touching new memory", function()
    local page = tonumber(assert(io.popen("getconf PAGESIZE")):read("*l"))
    local before = assert(core.thread_usage())
    -- 32 MiB of fresh string: the allocator maps it, and writing it faults each page in
    local s = string.rep("x", 32 * 1024 * 1024)
    local after = assert(core.thread_usage())
    assert.are.equal(32 * 1024 * 1024, #s)
    local pages = 32 * 1024 * 1024 / page
    assert.is_true(after.minor_faults - before.minor_faults >= pages / 2,
      ("%d minor faults for %d new pages"):format(after.minor_faults - before.minor_faults, pages))
    for _, k in ipairs{ "major_faults", "voluntary_switches", "involuntary_switches" } do
      assert.is_true(math.type == nil or math.type(after[k]) == "integer", k)
      assert.is_true(after[k] >= before[k], k)
    end
  end)

  it("counts a sleep as a voluntary switch", function()
    local before = assert(core.thread_usage())
    core.sleep(0.01)
    local after = assert(core.thread_usage())
    assert.is_true(after.voluntary_switches > before.voluntary_switches)
  end)
end)
