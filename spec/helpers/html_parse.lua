-- A strict little HTML/SVG parser for specs: every element must be closed in
-- order (void elements and "/>" aside), attributes must be quoted, and a bare
-- '&' is an error. Returns a document {root=, elements={...}, find_all=fn} or
-- nil, message. Each element: {name=, attrs={}, children={}, parent=, text=}.
local VOID = { meta = true, link = true, img = true, br = true, hr = true, input = true }
local RAW_TEXT = { style = true, script = true }

local ENTITIES = { amp = "&", lt = "<", gt = ">", quot = '"', apos = "'" }

local function decode_entities(s)
  local bad
  local out = s:gsub("&([^;%s&]*);?", function(name)
    if ENTITIES[name] then return ENTITIES[name] end
    local n = name:match("^#(%d+)$")
    if n then return string.char(tonumber(n) < 128 and tonumber(n) or 63) end
    bad = bad or name
    return ""
  end)
  if bad then return nil, "bare or unknown entity '&" .. bad .. "'" end
  return out
end

local function parse_attrs(s)
  local attrs, pos = {}, 1
  while true do
    local ws = s:match("^%s*", pos)
    pos = pos + #ws
    if pos > #s then break end
    local name = s:match("^[%w_:%.%-]+", pos)
    if not name then return nil, "bad attribute syntax near '" .. s:sub(pos, pos + 20) .. "'" end
    pos = pos + #name
    if s:sub(pos, pos) == "=" then
      local quote = s:sub(pos + 1, pos + 1)
      if quote ~= '"' and quote ~= "'" then return nil, "unquoted attribute " .. name end
      local close = s:find(quote, pos + 2, true)
      if not close then return nil, "unterminated attribute " .. name end
      local value, err = decode_entities(s:sub(pos + 2, close - 1))
      if not value then return nil, err end
      attrs[name:lower()] = value
      pos = close + 1
    else
      attrs[name:lower()] = ""
    end
  end
  return attrs
end

local function find_all(doc, name)
  local out = {}
  for _, el in ipairs(doc.elements) do
    if el.name == name then out[#out + 1] = el end
  end
  return out
end

return function(page)
  local root = { name = "#document", attrs = {}, children = {}, text = "" }
  local doc = { root = root, elements = {}, find_all = find_all }
  local stack = { root }
  local pos = 1
  local function add_text(t)
    for i = 2, #stack do stack[i].text = stack[i].text .. t end
  end
  while pos <= #page do
    local lt = page:find("<", pos, true)
    local chunk = page:sub(pos, (lt or #page + 1) - 1)
    if chunk ~= "" then
      local t, err = decode_entities(chunk)
      if not t then return nil, err end
      if t:find(">", 1, true) and chunk:find(">", 1, true) then return nil, "bare '>' in text" end
      add_text(t)
    end
    if not lt then break end
    if page:sub(lt, lt + 3) == "<!--" then
      local close = page:find("-->", lt + 4, true)
      if not close then return nil, "unterminated comment" end
      pos = close + 3
    elseif page:sub(lt, lt + 1) == "<!" then
      local close = page:find(">", lt, true)
      pos = close + 1
    elseif page:sub(lt, lt + 1) == "</" then
      local name, close = page:match("^</([%w%-]+)%s*>()", lt)
      if not name then return nil, "bad end tag at " .. lt end
      name = name:lower()
      local top = stack[#stack]
      if top.name ~= name then
        return nil, string.format("</%s> closes <%s> at byte %d", name, top.name, lt)
      end
      stack[#stack] = nil
      pos = close
    else
      local name, inside, self_closing, close = page:match("^<([%w%-]+)([^>]-)(/?)>()", lt)
      if not name then return nil, "bad tag at byte " .. lt .. ": " .. page:sub(lt, lt + 30) end
      name = name:lower()
      local attrs, err = parse_attrs(inside)
      if not attrs then return nil, err .. " in <" .. name .. ">" end
      local parent = stack[#stack]
      local el = { name = name, attrs = attrs, children = {}, parent = parent, text = "" }
      parent.children[#parent.children + 1] = el
      doc.elements[#doc.elements + 1] = el
      pos = close
      if RAW_TEXT[name] then
        local stop = page:find("</" .. name .. ">", pos, true)
        if not stop then return nil, "unterminated <" .. name .. ">" end
        el.text = page:sub(pos, stop - 1)
        pos = stop + #name + 3
      elseif self_closing == "" and not VOID[name] then
        stack[#stack + 1] = el
      end
    end
  end
  if #stack ~= 1 then return nil, "unclosed <" .. stack[#stack].name .. ">" end
  return doc
end
