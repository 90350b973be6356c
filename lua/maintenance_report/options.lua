-- The one checker for option tables, used by every public call (mr.new,
-- query, start_query, wait_report, start_report, step), so that the same
-- option is held to the same rule wherever it is given.
--
-- A programmer error raises, naming the call and the option: an argument that
-- is not a table, an unknown key, a value of the wrong type. A value of the
-- right type that is out of range is a runtime failure (it may come from a
-- config file or the environment): nil, err of kind invalid_input.
local errors = require "maintenance_report.errors"

local options = {}

-- A number rule: finite, within [min, max], optionally whole.
local function number_rule(min, max, integer)
  return { type = "number", min = min, max = max, integer = integer }
end

options.number = number_rule

local function describe_range(rule)
  local what = rule.integer and "a whole number" or "a number"
  return ("%s from %s to %s"):format(what, tostring(rule.min), tostring(rule.max))
end

-- Whether value satisfies a number rule; NaN and ±inf never do.
local function in_range(value, rule)
  if value ~= value or value == math.huge or value == -math.huge then return false end
  if rule.integer and value ~= math.floor(value) then return false end
  return value >= rule.min and value <= rule.max
end

local TYPE_NAMES = { object = "table or userdata" }

local function type_ok(expected, value)
  local actual = type(value)
  if expected == "object" then return actual == "table" or actual == "userdata" end
  if expected == "any" then return true end -- the rule's check decides
  return actual == expected
end

--- Checks `args` against `rules` (name → { type = , min =, max =, integer =, check = fn }).
--- Raises for programmer errors at `level` (the caller of the public call).
--- Returns true, or nil, err for an out-of-range value.
function options.check(call, args, rules, level)
  level = (level or 2) + 1
  if type(args) ~= "table" then
    error(("%s: options must be a table, got %s"):format(call, type(args)), level)
  end
  for key, value in pairs(args) do
    local rule = rules[key]
    if rule == nil then
      error(("%s: unknown option '%s'"):format(call, tostring(key)), level)
    end
    if not type_ok(rule.type, value) then
      error(("%s: option '%s' must be a %s, got %s"):format(
        call, key, TYPE_NAMES[rule.type] or rule.type, type(value)), level)
    end
  end
  for key, rule in pairs(rules) do
    local value = args[key]
    if value ~= nil then
      if rule.type == "number" and rule.min and not in_range(value, rule) then
        return nil, errors.new("invalid_input", ("%s must be %s, got %s"):format(
          key, describe_range(rule), tostring(value)), { field = key })
      end
      if rule.check then
        local message = rule.check(value)
        if message then return nil, errors.new("invalid_input", key .. " " .. message, { field = key }) end
      end
    end
  end
  return true
end

--- Raises unless `value` is a finite number within rule (for plain arguments such as step's timeout).
function options.check_number(call, name, value, rule, level)
  if type(value) ~= "number" or not in_range(value, rule) then
    error(("%s: %s must be %s, got %s"):format(call, name, describe_range(rule), tostring(value)),
      (level or 2) + 1)
  end
  return value
end

return options
