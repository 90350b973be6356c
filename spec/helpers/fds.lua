--- The open file descriptors of a process, listed in this process with lfs: a child
--- (`ls /proc/PID/fd`) listing its parent's would race with the parent closing its
--- copy of the pipe's other end after the fork, and sometimes count it. Listing our
--- own counts lfs's directory handle, in every sample alike.
local lfs = require "lfs"

local M = {}

--- → the count, and "3=socket:[1234] 4=pipe …" sorted (pipe numbers left out, so
--- that two listings of the same descriptors compare equal).
function M.list(pid)
  local dir = "/proc/" .. tostring(pid or "self") .. "/fd/"
  local names = {}
  for fd in lfs.dir(dir) do
    if fd ~= "." and fd ~= ".." then
      local target = tostring(lfs.symlinkattributes(dir .. fd, "target")):gsub("pipe:%[%d+%]", "pipe")
      names[#names + 1] = fd .. "=" .. target
    end
  end
  table.sort(names)
  return #names, table.concat(names, " ")
end

return M
