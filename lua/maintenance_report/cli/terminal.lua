-- What the CLI asks about its terminal (is it one, may it colour) and how it
-- writes a word the user can paste back into a POSIX shell.
local terminal = {}

local tty_cache = {}

local function execute_ok(command)
  local a, _, c = os.execute(command)
  if type(a) == "number" then return a == 0 end -- Lua 5.1 / LuaJIT without 5.2 compat
  return a == true and (c == nil or c == 0)
end

--- Whether file descriptor fd (1 or 2) is a terminal; asked once per fd.
function terminal.isatty(fd)
  if tty_cache[fd] == nil then
    tty_cache[fd] = execute_ok("test -t " .. tonumber(fd))
  end
  return tty_cache[fd]
end

--- Whether to colour stdout: a terminal, NO_COLOR unset, TERM not "dumb".
function terminal.color_stdout()
  if os.getenv("NO_COLOR") and os.getenv("NO_COLOR") ~= "" then return false end
  if os.getenv("TERM") == "dumb" then return false end
  return terminal.isatty(1)
end

--- s as one POSIX shell word: bare when no character in it is special to the
--- shell (readable resume commands), otherwise in single quotes, each ' written '\''.
function terminal.shell_word(s)
  s = tostring(s)
  if s:find("^[%w@%%+=:,./_-]+$") then return s end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

return terminal
