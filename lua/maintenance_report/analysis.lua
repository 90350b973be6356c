-- Findings a used-car buyer asks of a report: was the odometer rolled back,
-- was the car in an accident, a flood or a fire, was it serviced regularly.
-- Every rule here is a HEURISTIC over the vendor's records (README, "Report
-- analysis"); every keyword list and threshold is in analysis.DEFAULTS and can
-- be overridden per call. Nothing here reads the clock except the default
-- as_of (today in China time), so a given as_of always gives the same result.
--
-- analyze(report, opts) -> {
--   verdict  = { level = "ok"|"attention"|"high_risk"|"no_records", zh =, en =, rule = },
--   findings = { { id =, severity = "high"|"medium"|"info", zh =, en =, supporting_records = {record…} }… },
--   as_of = "YYYY-MM-DD", thresholds = { … the values used … } }
-- `supporting_records` are the report's own record tables that support the finding.
local civil_date = require "maintenance_report.civil_date"
local options = require "maintenance_report.options"
-- The keyword search in C (src/analysis_search.c) on Lua 5.x, where it takes
-- about a third of the Lua search's instructions; LuaJIT compiles the Lua
-- search below into code faster than the C one's API calls (bench/analysis.lua).
local has_core, core = pcall(require, "maintenance_report.core")
local keyword_matches = not rawget(_G, "jit") and has_core and type(core) == "table" and core.keyword_matches or nil

local analysis = {}

analysis.DEFAULTS = {
  -- a later record this many km below an earlier one is a rollback (typing slips are smaller)
  rollback_tolerance_km = 500,
  -- between two records: more than max_km_per_year (pro rata) plus burst_km is implausible
  max_km_per_year = 100000,
  burst_km = 3000,
  -- two services further apart than this (days or km) leave a gap
  service_gap_days = 548, -- 18 months
  service_gap_km = 20000,
  -- the last service older than this (days before as_of) is "long ago"
  last_service_days = 548,
  -- services per year counted from the records vs the vendor's mainTainTimes:
  -- a mismatch when they differ by more than this many services per year
  service_rate_tolerance = 0.5,
  keywords = {
    -- a record that mentions one of these is a service visit (whatever else was done)
    service = { "保养", "机油", "机滤" },
    structural = { "纵梁", "大梁", "A柱", "B柱", "C柱", "切割", "焊接", "车身校正", "减震器座", "防火墙" },
    airbag = { "气囊" },
    flood = { "泡水", "水淹", "水浸", "涉水" },
    fire = { "火烧", "烧蚀", "起火", "自燃" },
    major_component = { "发动机总成", "变速箱总成", "变速器总成", "转向机总成", "发动机大修", "变速箱大修",
      "缸体", "缸盖", "曲轴" },
  },
}

-- Damage categories in display order: key, severity, Chinese and English names.
analysis.DAMAGE = {
  { "structural", "high", "结构件维修", "structural repair" },
  { "airbag", "high", "气囊", "airbag work" },
  { "flood", "high", "泡水", "flood damage" },
  { "fire", "high", "火烧", "fire damage" },
  { "major_component", "medium", "重要部件维修", "major component repair" },
}

analysis.VERDICTS = {
  ok = { zh = "无明显异常", en = "no notable issue" },
  attention = { zh = "需注意", en = "needs attention" },
  high_risk = { zh = "高风险", en = "high risk" },
  no_records = { zh = "无记录，无法评估", en = "no records to assess" },
}
analysis.RULE = {
  zh = "任一高风险发现为“高风险”；否则任一需注意发现为“需注意”；否则为“无明显异常”（提示类发现不计）。",
  en = "any high finding gives high risk; else any medium finding gives needs attention; "
    .. "else no notable issue (info findings do not count).",
}

local function is_keyword_list(v)
  if type(v) ~= "table" then return "must be a list of strings" end
  for k, s in pairs(v) do
    if type(k) ~= "number" or type(s) ~= "string" or s == "" then return "must be a list of non-empty strings" end
  end
  return nil
end

local KM = options.number(0, 1e7)
local DAYS = options.number(1, 36500, true)
local RULES = {
  as_of = { type = "string", check = function(v)
    if not civil_date.parse(v) then return "must be a date YYYY-MM-DD" end
  end },
  rollback_tolerance_km = { type = "number", min = KM.min, max = KM.max },
  max_km_per_year = { type = "number", min = 1, max = 1e7 },
  burst_km = { type = "number", min = KM.min, max = KM.max },
  service_gap_days = { type = "number", min = DAYS.min, max = DAYS.max, integer = true },
  service_gap_km = { type = "number", min = 1, max = 1e7 },
  last_service_days = { type = "number", min = DAYS.min, max = DAYS.max, integer = true },
  service_rate_tolerance = { type = "number", min = 0, max = 100 },
  keywords = { type = "table", check = function(v)
    for k, list in pairs(v) do
      if analysis.DEFAULTS.keywords[k] == nil then return "has an unknown category '" .. tostring(k) .. "'" end
      local bad = is_keyword_list(list)
      if bad then return k .. " " .. bad end
    end
  end },
}

local function number(n)
  local s = string.format("%d", math.floor(n + 0.5))
  local sign, digits = s:match("^(-?)(%d+)$")
  return sign .. digits:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", "")
end

local today_day, today_text
local function today_china()
  local day = math.floor((os.time() + 8 * 3600) / 86400)
  if day ~= today_day then today_day, today_text = day, civil_date.format(day) end
  return today_text
end

-- civil_date.parse, remembered: every analysis reads each record's date three
-- times, and a polled report brings the same dates again. Bounded: a long-lived
-- worker reading many reports starts over every 4096 dates.
local day_cache, day_cache_size = {}, 0
local function day_of(s)
  if type(s) ~= "string" then return civil_date.parse(s) end
  local d = day_cache[s]
  if d == nil then
    d = civil_date.parse(s) or false
    if day_cache_size >= 4096 then day_cache, day_cache_size = {}, 0 end
    day_cache[s], day_cache_size = d, day_cache_size + 1
  end
  return d or nil
end

-- Settings: the defaults with opts laid over them (keyword lists replaced per category).
local function settings(opts)
  local s = {}
  for k, v in pairs(analysis.DEFAULTS) do s[k] = v end
  s.keywords = {}
  for k, v in pairs(analysis.DEFAULTS.keywords) do s.keywords[k] = v end
  for k, v in pairs(opts) do
    if k == "keywords" then
      for cat, list in pairs(v) do s.keywords[cat] = list end
    else
      s[k] = v
    end
  end
  s.as_of = s.as_of or today_china()
  return s
end

local EMPTY = {}
local RECORD_LISTS = { "records", "structural_records", "component_records", "exterior_records" }

local function finding(list, id, severity, zh, en, records)
  list[#list + 1] = { id = id, severity = severity, zh = zh, en = en, supporting_records = records or {} }
end

-- Dated records with a mileage, in date order (the normalizer sorts them
-- stably): the records and their day numbers as two lists, and their count.
local function odometer_points(records)
  local rs, ds, n = {}, {}, 0
  for _, r in ipairs(records) do
    local d = r.date and day_of(r.date)
    if d and type(r.mileage) == "number" then
      n = n + 1
      rs[n], ds[n] = r, d
    end
  end
  return rs, ds, n
end

local function odometer(report, s, out)
  local rs, ds, n = odometer_points(report.records or {})
  local suspicious, dropped = false, {}
  local peak -- the index of the highest reading so far
  for i = 1, n do
    local p, top = rs[i], peak and rs[peak]
    if top and top.mileage - p.mileage > s.rollback_tolerance_km then
      suspicious, dropped[i] = true, true
      local high, low, drop = number(top.mileage), number(p.mileage), number(top.mileage - p.mileage)
      finding(out, "odometer_rollback", "high",
        string.format("里程回退：%s 为 %s 公里，之后 %s 仅 %s 公里（少 %s 公里）", top.date, high, p.date, low, drop),
        string.format("odometer rollback: %s km on %s, then %s km on %s (%s km less)", high, top.date, low, p.date,
          drop),
        { top, p })
      peak = i -- one finding per drop: the odometer counts on from the lower value
    elseif not top or p.mileage > top.mileage then
      peak = i
    end
  end
  for i = 2, n do
    local a, b = rs[i - 1], rs[i]
    local km, days = b.mileage - a.mileage, ds[i] - ds[i - 1]
    -- the climb back from a rolled-back reading is the rollback's, not a second finding
    if not dropped[i - 1] and km > s.max_km_per_year * days / 365 + s.burst_km then
      suspicious = true
      local rise, limit = number(km), number(s.max_km_per_year)
      finding(out, "implausible_mileage_rate", "medium",
        string.format("里程增长过快：%s 至 %s 的 %d 天内增加 %s 公里（上限按每年 %s 公里计）", a.date, b.date, days,
          rise, limit),
        string.format("implausible mileage: %s km in %d days from %s to %s (limit %s km a year)", rise, days,
          a.date, b.date, limit),
        { a, b })
    end
  end
  local flag = (report.flags or {}).mileage_normal
  if flag == true and suspicious then
    finding(out, "mileage_flag_contradicted", "high",
      "厂商标记“里程正常”，但记录显示里程异常（见上）",
      "the vendor marks the mileage as normal, but the records show an anomaly (above)")
  elseif flag == false and not suspicious and n >= 2 then
    finding(out, "mileage_flag_contradicted", "medium",
      "厂商标记“里程异常”，但记录中的里程未见回退或异常增长",
      "the vendor marks the mileage as abnormal, but the records show no rollback or implausible rise")
  end
end

-- A record's identity for all_records: equal ids are the same visit.
local function record_id(r)
  local str = tostring
  return str(r.date) .. "\0" .. str(r.mileage) .. "\0" .. str(r.type) .. "\0" .. table.concat(r.items or EMPTY, "\1")
end

-- Every record once, from the main list and the vendor's analysis lists: the
-- first of each id, in list order. Ids are only built for records that share
-- the id's start (the date, up to any NUL) with an earlier one: most dates are
-- unique, and hashing long ids as table keys was a tenth of an analysis.
local function all_records(report)
  local out, first, ids = {}, {}, {}
  for _, key in ipairs(RECORD_LISTS) do
    for _, r in ipairs(report[key] or EMPTY) do
      local head = tostring(r.date)
      local nul = head:find("\0", 1, true)
      if nul then head = head:sub(1, nul - 1) end
      local earlier = first[head]
      if earlier == nil then
        first[head] = r
        out[#out + 1] = r
      else
        local seen = ids[head]
        if not seen then
          seen = { [record_id(earlier)] = true }
          ids[head] = seen
        end
        local id = record_id(r)
        if not seen[id] then
          seen[id] = true
          out[#out + 1] = r
        end
      end
    end
  end
  return out
end

-- Keyword search. Matching is ASCII-case-insensitive ("a柱" is A柱): texts and
-- keywords are compared upper-cased. A record's texts are its type, then its
-- items; a record matches a list with the first keyword found in its first
-- text that has one (texts in order, then keywords in order).
--
-- Instead of one find per text, record and keyword (thousands of calls per
-- report), all texts of the analysis are upper-cased and joined once, with a
-- NUL between texts, and each keyword is searched in that one string, jumping
-- to the next record after a hit. A keyword without a NUL cannot match across
-- a boundary, so a hit lies inside one text; keywords with one (only a caller
-- could give such a list) take the per-text path, which gives the same answer.
local SEP = "\0"

-- index = { text = every record's texts, upper-cased, joined by SEP, records
--   one after the other; starts = { byte where record j's texts start, then one
--   past the end }; owner = { record j }, n = number of records with a text }
local function text_index(records_lists)
  local parts, starts, owner, seen = {}, {}, {}, {}
  local concat = table.concat
  local pos, n = 1, 0
  for _, records in ipairs(records_lists) do
    for _, r in ipairs(records) do
      if not seen[r] then
        seen[r] = true
        local t, items = r.type, r.items
        local joined = items and items[1] ~= nil and concat(items, SEP) or nil
        if t then joined = joined and (t .. SEP .. joined) or t end
        if joined then
          n = n + 1
          parts[n], starts[n], owner[n] = joined, pos, r
          pos = pos + #joined + 1
        end
      end
    end
  end
  starts[n + 1] = pos
  return { text = concat(parts, SEP):upper(), starts = starts, owner = owner, n = n }
end

-- The record holding byte pos: the last j with starts[j] <= pos.
local function record_at(starts, n, pos)
  local lo, hi = 1, n
  while lo < hi do
    local mid = math.floor((lo + hi + 1) / 2)
    if starts[mid] <= pos then lo = mid else hi = mid - 1 end
  end
  return lo
end

-- Upper-cased copies of keyword lists, kept while the list lives. A list a
-- caller changes in place afterwards is noticed (the copy keeps the originals).
local upper_cache = setmetatable({}, { __mode = "k" })

local function upper_keywords(keywords)
  local cached = upper_cache[keywords]
  if cached and cached.n == #keywords then
    local same = true
    for i = 1, cached.n do
      if rawequal(keywords[i], cached.original[i]) == false then same = false break end
    end
    if same then return cached end
  end
  local upper, original, tail, plain = {}, {}, {}, true
  for i, k in ipairs(keywords) do
    upper[i], original[i] = k:upper(), k
    if k == "" or k:find(SEP, 1, true) then plain = false end
    -- A UTF-8 lead byte (E4-E9 for most Chinese) starts every third byte of the
    -- texts; the byte after it is far rarer, so the search looks for the rest
    -- of the keyword and checks the lead byte before it.
    if #k >= 2 and k:byte(1) >= 0xC0 then tail[i] = upper[i]:sub(2) end
  end
  cached = { n = #upper, upper = upper, original = original, tail = tail, plain = plain }
  upper_cache[keywords] = cached
  return cached
end

-- Which of record r's texts holds byte pos of the index, its texts starting at byte start
-- (by their lengths: a text may hold a NUL itself).
local function text_of(r, start, pos)
  local t, after = 0, start
  if r.type then
    t, after = 1, start + #r.type + 1
    if pos < after then return t end
  end
  for _, item in ipairs(r.items or EMPTY) do
    t, after = t + 1, after + #item + 1
    if pos < after then return t end
  end
  return t
end

-- record -> the matching keyword (as given), for every record of the index that matches.
local function match_list(index, keywords)
  local kw = upper_keywords(keywords)
  local found = {}
  local n = index.n
  if kw.n == 0 or n == 0 then return found end
  local find = string.find
  if kw.plain then
    local text, starts, owner = index.text, index.starts, index.owner
    local byte, best = string.byte, {} -- best: record -> byte of its best hit so far
    for i = 1, kw.n do
      local k, rest = kw.upper[i], kw.tail[i]
      local lead = rest and byte(k, 1)
      local init = 1
      while true do
        local at
        if rest then
          at = find(text, rest, init + 1, true)
          while at and byte(text, at - 1) ~= lead do at = find(text, rest, at + 1, true) end
          at = at and at - 1
        else
          at = find(text, k, init, true)
        end
        if not at then break end
        local j = record_at(starts, n, at)
        local r = owner[j]
        local b = best[r]
        -- a later keyword wins only in an earlier text of the record
        if not b or (at < b and text_of(r, starts[j], at) < text_of(r, starts[j], b)) then
          best[r], found[r] = at, kw.original[i]
        end
        init = starts[j + 1] -- the next record's texts (or the end)
      end
    end
  else
    for j = 1, n do
      local r = index.owner[j]
      local texts = {}
      if r.type then texts[1] = r.type end
      for _, item in ipairs(r.items or EMPTY) do texts[#texts + 1] = item end
      for _, t in ipairs(texts) do
        local upper = t:upper()
        for i = 1, kw.n do
          if find(upper, kw.upper[i], 1, true) then found[r] = kw.original[i] break end
        end
        if found[r] then break end
      end
    end
  end
  return found
end

local VENDOR_FLAG = { structural = "structural", flood = "flood", fire = "fire", major_component = "major_component" }

-- The found table (record -> keyword) of each list, in order. The C search
-- takes plain data only and says nil for anything else; the Lua search then
-- gives its own answer, or raises as it always has, list by list.
local function keyword_search(records, extra, lists, count)
  local all_tables = true
  for i = 1, count do
    if type(lists[i]) ~= "table" then all_tables = false break end
  end
  local found = all_tables and keyword_matches and keyword_matches(records, extra, lists)
  if found then return found end
  local index = text_index{ records, extra }
  found = {}
  for i = 1, count do found[i] = match_list(index, lists[i]) end
  return found
end

local function damage(report, out, found_lists, records)
  local flags = report.flags or {}
  for c, cat in ipairs(analysis.DAMAGE) do
    local key, severity, zh_name, en_name = cat[1], cat[2], cat[3], cat[4]
    local found = found_lists[c]
    local hits, words = EMPTY, nil
    if next(found) ~= nil then
      local seen_word = {}
      hits, words = {}, {}
      for _, r in ipairs(records) do
        local word = found[r]
        if word then
          hits[#hits + 1] = r
          if not seen_word[word] then seen_word[word], words[#words + 1] = true, word end
        end
      end
    end
    local flag = VENDOR_FLAG[key] and flags[VENDOR_FLAG[key]]
    local vendor_zh = flag == true and "厂商标记：有" or flag == false and "厂商标记：无" or nil
    local vendor_en = flag == true and "vendor flag: yes" or flag == false and "vendor flag: no" or nil
    if #hits > 0 then
      local dates = {}
      for i, r in ipairs(hits) do dates[i] = r.date or "日期不详" end
      finding(out, key, severity,
        string.format("%s：%d 条记录含“%s”（%s）%s", zh_name, #hits, table.concat(words, "、"),
          table.concat(dates, "、"), vendor_zh and ("；" .. vendor_zh) or ""),
        string.format("%s: %d record(s) mention %s (%s)%s", en_name, #hits, table.concat(words, ", "),
          table.concat(dates, ", "), vendor_en and ("; " .. vendor_en) or ""),
        hits)
    elseif flag == true then
      finding(out, key, severity, string.format("%s：厂商标记为有，记录中未找到关键词", zh_name),
        string.format("%s: flagged by the vendor; no record mentions a keyword", en_name))
    end
  end
end

-- The dated service visits among the records: records, day numbers, count.
local function services_of(report, found)
  local rs, ds, n = {}, {}, 0
  for _, r in ipairs(report.records or EMPTY) do
    local d = found[r] and r.date and day_of(r.date)
    if d then
      n = n + 1
      rs[n], ds[n] = r, d
    end
  end
  return rs, ds, n
end

local function service_history(report, s, out, found_service)
  local services, service_days, count = services_of(report, found_service)
  for i = 2, count do
    local a, b = services[i - 1], services[i]
    local days = service_days[i] - service_days[i - 1]
    local km = (type(a.mileage) == "number" and type(b.mileage) == "number") and b.mileage - a.mileage or nil
    if days > s.service_gap_days or (km and km > s.service_gap_km) then
      local months, km_text = math.floor(days / 30.44), km and number(km)
      finding(out, "service_gap", "medium",
        string.format("保养间隔过长：%s 至 %s 相隔 %d 个月%s", a.date, b.date, months,
          km_text and ("、" .. km_text .. " 公里") or ""),
        string.format("service gap: %d months%s between %s and %s", months,
          km_text and (" and " .. km_text .. " km") or "", a.date, b.date),
        { a, b })
    end
  end
  local as_of = day_of(s.as_of)
  local last = services[count]
  local last_day = last and service_days[count]
  local vendor_last = report.last_maintenance_date and day_of(report.last_maintenance_date)
  if vendor_last and (not last_day or vendor_last > last_day) then last_day = vendor_last end
  if last_day and as_of - last_day > s.last_service_days then
    local last_text, months = civil_date.format(last_day), math.floor((as_of - last_day) / 30.44)
    finding(out, "last_service_old", "medium",
      string.format("最近一次保养在 %s，距 %s 已 %d 个月", last_text, s.as_of, months),
      string.format("last service on %s, %d months before %s", last_text, months, s.as_of),
      last and { last } or {})
  end
  -- Our reading of mainTainTimes: services per year over the span from the
  -- first dated record to the last (at least one year).
  local vendor_rate = report.maintenance_per_year
  local first, final
  for _, r in ipairs(report.records or {}) do
    local d = r.date and day_of(r.date)
    if d then
      first = first and math.min(first, d) or d
      final = final and math.max(final, d) or d
    end
  end
  if type(vendor_rate) == "number" and first then
    local years = math.max(1, (final - first) / 365)
    local rate = count / years
    if math.abs(rate - vendor_rate) > s.service_rate_tolerance then
      finding(out, "service_count_mismatch", "info",
        string.format("保养次数不符：记录中 %d 次保养，约每年 %.1f 次；厂商给出每年 %s 次", count, rate,
          tostring(vendor_rate)),
        string.format("service count mismatch: %d services in the records, about %.1f a year; the vendor says %s",
          count, rate, tostring(vendor_rate)))
    end
  end
end

local SEVERITY_RANK = { high = 1, medium = 2, info = 3 }

local function by_severity(a, b)
  local ra, rb = SEVERITY_RANK[a.severity], SEVERITY_RANK[b.severity]
  if ra ~= rb then return ra < rb end
  return a.position < b.position
end
analysis.SEVERITY_LABELS = { high = "高风险", medium = "需注意", info = "提示" }

--- The analysis of a normalized report (see the top of this file), or nil for a
--- pending report. opts: overrides of analysis.DEFAULTS plus as_of ("YYYY-MM-DD",
--- default today in China time). pause (optional): a function called between the
--- analysis' parts (the odometer, the keyword search, the rest), with nothing and
--- for nothing back: the client passes its scheduler's checkpoint, so that in a
--- host's loop the parts may run in different calls. Raises for a programmer error
--- in opts; returns nil, err (invalid_input) for a value out of range.
function analysis.analyze(report, opts, pause)
  opts = opts or {}
  local ok, err = options.check("analysis.analyze", opts, RULES, 2)
  if not ok then return nil, err end
  if type(report) ~= "table" then error("analysis.analyze: report must be a table", 2) end
  if pause ~= nil and type(pause) ~= "function" then error("analysis.analyze: pause must be a function", 2) end
  pause = pause or function() end
  if report.status == "pending" then return nil end
  local s = settings(opts)
  local used = {}
  for k in pairs(analysis.DEFAULTS) do used[k] = s[k] end
  local result = { as_of = s.as_of, findings = {}, thresholds = used }
  if report.status == "no_records" then
    local v = analysis.VERDICTS.no_records
    result.verdict = { level = "no_records", zh = v.zh, en = v.en, rule = analysis.RULE.zh, rule_en = analysis.RULE.en }
    return result
  end
  local out = result.findings
  odometer(report, s, out)
  pause()
  local records = all_records(report)
  local lists, count = {}, 0
  for _, cat in ipairs(analysis.DAMAGE) do
    count = count + 1
    lists[count] = s.keywords[cat[1]]
  end
  count = count + 1
  lists[count] = s.keywords.service
  local found = keyword_search(records, report.records or EMPTY, lists, count)
  pause()
  damage(report, out, found, records)
  service_history(report, s, out, found[count])
  -- stable sort by severity: table.sort is not stable, so sort on (rank, position)
  for i, f in ipairs(out) do f.position = i end
  table.sort(out, by_severity)
  local level = "ok"
  for _, f in ipairs(out) do
    f.position = nil
    if f.severity == "high" then level = "high_risk"
    elseif f.severity == "medium" and level == "ok" then level = "attention" end
  end
  local v = analysis.VERDICTS[level]
  result.verdict = { level = level, zh = v.zh, en = v.en, rule = analysis.RULE.zh, rule_en = analysis.RULE.en }
  return result
end

--- report.analysis, computed (with opts) when the report has none yet. Returns it.
function analysis.attach(report, opts)
  if type(report) == "table" and report.analysis == nil then
    report.analysis = analysis.analyze(report, opts)
  end
  return report.analysis
end

return analysis
