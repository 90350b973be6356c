-- Batch input: CSV or plain lines `vin[,engine_number[,plate_number]]`.
--
-- - A UTF-8 byte order mark is dropped; CRLF and LF line ends both work.
-- - Blank lines and lines starting with '#' (after spaces) are skipped.
-- - Fields may be quoted "like, this" with "" for a quote (RFC 4180); a
--   quoted field cannot span lines.
-- - An optional header row names the columns (vin, engine_number,
--   plate_number, and a few aliases, in any order; other columns are
--   ignored). Without one, the columns are vin, engine_number, plate_number.
-- - Every row is validated as the client would (VIN check digit included),
--   so that invalid rows are known, with their line numbers, before any order.
-- - A VIN seen again (after normalization) is a duplicate: ordered once.
local validate = require "maintenance_report.validate"

local csv = {}

local HEADER_ALIASES = {
  vin = "vin", ["车架号"] = "vin", ["车辆识别代号"] = "vin", ["vin码"] = "vin",
  engine_number = "engine_number", engine = "engine_number", engine_no = "engine_number",
  ["发动机号"] = "engine_number",
  plate_number = "plate_number", plate = "plate_number", plate_no = "plate_number", ["车牌号"] = "plate_number",
  ["车牌"] = "plate_number",
}

local function trim(s)
  return (s:gsub("^[ \t]+", ""):gsub("[ \t]+$", ""))
end

--- Splits one line into fields; returns the list or nil, message.
function csv.split(line)
  local fields, i, n = {}, 1, #line
  while true do
    -- skip spaces before a field
    while i <= n and line:sub(i, i):match("[ \t]") do i = i + 1 end
    if line:sub(i, i) == '"' then
      local buf = {}
      i = i + 1
      while true do
        if i > n then return nil, "unterminated quoted field" end
        local c = line:sub(i, i)
        if c == '"' then
          if line:sub(i + 1, i + 1) == '"' then
            buf[#buf + 1] = '"'
            i = i + 2
          else
            i = i + 1
            break
          end
        else
          buf[#buf + 1] = c
          i = i + 1
        end
      end
      while i <= n and line:sub(i, i):match("[ \t]") do i = i + 1 end
      if i <= n and line:sub(i, i) ~= "," then return nil, "text after a closing quote" end
      fields[#fields + 1] = table.concat(buf)
    else
      local j = line:find(",", i, true) or (n + 1)
      local field = line:sub(i, j - 1)
      if field:find('"', 1, true) then return nil, "a quote inside an unquoted field" end
      fields[#fields + 1] = trim(field)
      i = j
    end
    if i > n then break end
    i = i + 1 -- past the comma
    if i > n then
      fields[#fields + 1] = ""
      break
    end
  end
  return fields
end

-- A header row maps names to columns; nil when the row is data.
local function header_columns(fields)
  local first = (fields[1] or ""):lower()
  if HEADER_ALIASES[first] == nil then return nil end
  local columns = {}
  for index, name in ipairs(fields) do
    local key = HEADER_ALIASES[trim(name):lower()]
    if key and not columns[key] then columns[key] = index end
  end
  return columns
end

local DEFAULT_COLUMNS = { vin = 1, engine_number = 2, plate_number = 3 }

local function check_row(fields, columns, has_header)
  if not has_header and #fields > 3 then
    return nil, string.format("expected vin[,engine_number[,plate_number]], got %d fields", #fields)
  end
  local raw = {
    vin = fields[columns.vin] or "",
    engine_number = columns.engine_number and fields[columns.engine_number] or "",
    plate_number = columns.plate_number and fields[columns.plate_number] or "",
  }
  local row = { input = raw }
  local vin, err = validate.vin(raw.vin)
  if not vin then return nil, err, raw end
  row.vin = vin
  if raw.engine_number ~= "" then
    row.engine_number, err = validate.engine_number(raw.engine_number)
    if not row.engine_number then return nil, err, raw end
  end
  if raw.plate_number ~= "" then
    row.plate_number, err = validate.plate(raw.plate_number)
    if not row.plate_number then return nil, err, raw end
  end
  return row
end

-- An iterator over the text's lines: each call gives the next data line's kind
-- ("row", "invalid" or "header") and its row, problem or line number; nil at the end.
local function lines_of(content)
  if content:sub(1, 3) == "\239\187\191" then content = content:sub(4) end
  local next_line = (content .. "\n"):gmatch("([^\n]*)\n")
  local columns, has_header = DEFAULT_COLUMNS, false
  local line_no, data_seen = 0, false
  return function()
    while true do
      local line = next_line()
      if not line then return nil end
      line_no = line_no + 1
      line = line:gsub("\r$", "")
      local stripped = trim(line)
      if stripped ~= "" and stripped:sub(1, 1) ~= "#" then
        local fields, serr = csv.split(line)
        if not fields then return "invalid", { line = line_no, error = serr, text = line } end
        local header = not data_seen and header_columns(fields)
        data_seen = true
        if header then
          if not header.vin then
            return "invalid", { line = line_no, error = "header has no vin column", text = line }
          end
          columns, has_header = header, true
          return "header", line_no
        end
        local row, err, raw = check_row(fields, columns, has_header)
        if not row then return "invalid", { line = line_no, error = err, text = line, input = raw } end
        row.line = line_no
        return "row", row
      end
    end
  end
end

-- One pass over the text: the header, the invalid lines and the duplicates go into a
-- result table; each valid first occurrence goes to on_row(row).
local function classify(content, on_row)
  local result = { invalid = {}, duplicates = {} }
  local first = {} -- vin → the line of its first occurrence
  for kind, item in lines_of(content) do
    if kind == "header" then
      result.header = item
    elseif kind == "invalid" then
      result.invalid[#result.invalid + 1] = item
    elseif first[item.vin] then
      result.duplicates[#result.duplicates + 1] = { line = item.line, vin = item.vin, first_line = first[item.vin] }
    else
      first[item.vin] = item.line
      on_row(item)
    end
  end
  return result
end

--- Parses the whole input text. Returns {
---   rows = { {line=, vin=, engine_number=, plate_number=, input={...}}, ... } (valid, first occurrences),
---   invalid = { {line=, error=, text=}, ... },
---   duplicates = { {line=, vin=, first_line=}, ... },
---   header = line number or nil,
--- }
function csv.parse(content)
  local rows = {}
  local result = classify(content, function(row) rows[#rows + 1] = row end)
  result.rows = rows
  return result
end

--- csv.parse's result without the rows kept: rows = { count = n, each = fn } where each()
--- is an iterator over the valid first occurrences that parses the text again, each row
--- with its ordinal (row.index, 1 …), so that a batch of 100,000 VINs holds its input
--- text and the lines of its duplicates, not 100,000 rows or a set of their VINs.
function csv.stream(content)
  local count = 0
  local result = classify(content, function() count = count + 1 end)
  local duplicate_lines = {}
  for _, d in ipairs(result.duplicates) do duplicate_lines[d.line] = true end
  result.rows = { count = count, each = function()
    local next_item = lines_of(content)
    local index = 0
    return function()
      while true do
        local kind, item = next_item()
        if not kind then return nil end
        if kind == "row" and not duplicate_lines[item.line] then
          index = index + 1
          item.index = index
          return item
        end
      end
    end
  end }
  return result
end

--- Reads and parses a file; returns the parse result or nil, message.
--- opts.stream: csv.stream's result instead of csv.parse's.
function csv.read_file(path, opts)
  local f, err = io.open(path, "rb")
  if not f then return nil, "cannot read " .. tostring(path) .. ": " .. tostring(err) end
  -- A directory opens fine on Linux; reading it is what fails.
  local content, rerr = f:read("*a")
  f:close()
  if content == nil then return nil, "cannot read " .. tostring(path) .. ": " .. tostring(rerr or "not a file") end
  if opts and opts.stream then return csv.stream(content) end
  return csv.parse(content)
end

return csv
