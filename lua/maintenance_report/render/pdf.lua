-- The HTML page printed to PDF by headless Chromium (`--format pdf`). The page's
-- own print stylesheet decides the paper (A4), the running header with the VIN
-- and the page numbers; Chromium's default header and footer (URL, date) are off.
--
-- Chromium runs with a throw-away profile in a temporary directory, under
-- `timeout`, and as root only with --no-sandbox (Chromium refuses otherwise).
-- The page has no scripts and no external resources.
local errors = require "maintenance_report.errors"

local pdf = {}

pdf.ENV = "MAINTENANCE_REPORT_CHROMIUM"
pdf.CANDIDATES = { "chromium", "chromium-browser", "google-chrome", "google-chrome-stable" }
pdf.TIMEOUT = 120

local function quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function capture(cmd)
  local p = io.popen(cmd .. " 2>/dev/null")
  if not p then return nil end
  local out = p:read("*a")
  p:close()
  out = out and out:gsub("%s+$", "")
  if out == "" then return nil end
  return out
end

local function ok(cmd)
  local a, _, c = os.execute(cmd)
  if type(a) == "number" then return a == 0 end
  return a == true and (c == nil or c == 0)
end

--- The Chromium executable: $MAINTENANCE_REPORT_CHROMIUM, else the first of
--- pdf.CANDIDATES on PATH. nil, err (invalid_input, naming the package) when none.
function pdf.chromium(getenv)
  local env = (getenv or os.getenv)(pdf.ENV)
  if env and env ~= "" then
    if capture("command -v " .. quote(env)) then return env end
    return nil, errors.new("invalid_input", "--format pdf: $" .. pdf.ENV .. " is " .. env
      .. ", which is not an executable")
  end
  for _, name in ipairs(pdf.CANDIDATES) do
    local path = capture("command -v " .. name)
    if path then return path end
  end
  return nil, errors.new("invalid_input", "--format pdf needs headless Chromium, and none was found on PATH: "
    .. "install it (Debian: apt-get install chromium) or set $" .. pdf.ENV .. " to its path; "
    .. "--format html writes the same page for any browser to print")
end

--- Whether fontconfig knows a font with Chinese glyphs (without one, every Chinese
--- character in the PDF is a box). nil when fc-list itself is missing.
function pdf.has_cjk_font()
  if not capture("command -v fc-list") then return nil end
  return capture("fc-list :lang=zh family") ~= nil
end

pdf.FONT_HINT = "no font with Chinese glyphs is installed (fc-list :lang=zh is empty): Chinese text "
  .. "in the PDF will show as boxes; install one (Debian: apt-get install fonts-noto-cjk)"

--- PDF bytes for an HTML page, or nil, err. opts.chromium: the executable (default
--- pdf.chromium()); opts.timeout: seconds (default pdf.TIMEOUT).
function pdf.render(page, opts)
  opts = opts or {}
  local exe = opts.chromium
  if not exe then
    local err
    exe, err = pdf.chromium()
    if not exe then return nil, err end
  end
  local dir = capture("mktemp -d \"${TMPDIR:-/tmp}/maintenance-report-pdf.XXXXXX\"")
  if not dir then return nil, errors.new("invalid_input", "--format pdf: cannot make a temporary directory") end
  local function done(...)
    os.execute("rm -rf " .. quote(dir))
    return ...
  end
  local f = io.open(dir .. "/report.html", "wb")
  if not f then return done(nil, errors.new("invalid_input", "--format pdf: cannot write " .. dir)) end
  f:write(page)
  f:close()
  local root = capture("id -u") == "0"
  local cmd = table.concat({
    "timeout", tostring(opts.timeout or pdf.TIMEOUT), quote(exe), "--headless", "--disable-gpu",
    root and "--no-sandbox" or "", "--no-first-run", "--no-pdf-header-footer",
    "--user-data-dir=" .. quote(dir .. "/profile"),
    "--print-to-pdf=" .. quote(dir .. "/report.pdf"), quote("file://" .. dir .. "/report.html"),
    ">" .. quote(dir .. "/chromium.log"), "2>&1",
  }, " ")
  local ran = ok(cmd)
  local out = io.open(dir .. "/report.pdf", "rb")
  local bytes = out and out:read("*a")
  if out then out:close() end
  if not bytes or bytes:sub(1, 5) ~= "%PDF-" then
    local log = io.open(dir .. "/chromium.log", "rb")
    local tail = log and log:read("*a") or ""
    if log then log:close() end
    tail = tail:gsub("%s+$", ""):match("([^\n]*)$") or ""
    return done(nil, errors.new("invalid_input", "--format pdf: " .. exe .. " made no PDF"
      .. (ran and "" or " (it failed or timed out)") .. (tail ~= "" and (": " .. tail) or "")))
  end
  return done(bytes)
end

return pdf
