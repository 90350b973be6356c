-- World Manufacturer Identifiers (VIN positions 1-3) common on the China
-- market, with enough model data to make generated reports look real.
-- Fields: brand, manufacturer, import (sold as an imported car), ev (battery
-- electric), series (series name, series label as the vendor writes it,
-- engine displacements).
local M = {}

local function e(brand, manufacturer, series, opts)
  opts = opts or {}
  return { brand = brand, manufacturer = manufacturer, series = series,
           import = opts.import or false, ev = opts.ev or false }
end

M.table = {
  LSV = e("大众", "上汽大众", { { "朗逸", "1.5L", "1.4T" }, { "帕萨特", "1.4T", "2.0T" }, { "途观L", "2.0T" } }),
  LFV = e("大众", "一汽-大众", { { "速腾", "1.4T", "1.2T" }, { "迈腾", "1.8T", "2.0T" }, { "宝来", "1.5L" } }),
  WVW = e("大众", "进口大众", { { "高尔夫", "1.4T" }, { "途锐", "3.0T" } }, { import = true }),
  LHG = e("本田", "广汽本田", { { "雅阁", "1.5T", "2.0L" }, { "飞度", "1.5L" }, { "缤智", "1.5L" } }),
  LVH = e("本田", "东风本田", { { "思域", "1.5T" }, { "CR-V", "1.5T", "2.0L" } }),
  JHM = e("本田", "进口本田", { { "奥德赛", "2.4L" } }, { import = true }),
  LVS = e("福特", "长安福特", { { "福克斯", "1.5L", "1.5T" }, { "蒙迪欧", "2.0T" }, { "锐界", "2.0T" } }),
  LGB = e("日产", "东风日产", { { "轩逸", "1.6L" }, { "天籁", "2.0L", "2.0T" }, { "奇骏", "2.0L" } }),
  JN1 = e("日产", "进口日产", { { "途乐", "4.0L" } }, { import = true }),
  LBV = e("宝马", "华晨宝马", { { "3系", "2.0T" }, { "5系", "2.0T" }, { "X1", "1.5T", "2.0T" } }),
  WBA = e("宝马", "进口宝马", { { "7系", "3.0T" }, { "X5", "3.0T" } }, { import = true }),
  SAL = e("路虎", "进口路虎", { { "揽胜运动版", "3.0T" }, { "发现", "3.0T" } }, { import = true }),
  SAJ = e("捷豹", "进口捷豹", { { "XF", "2.0T" } }, { import = true }),
  JTD = e("丰田", "进口丰田", { { "普拉多", "3.5L" } }, { import = true }),
  LVG = e("丰田", "广汽丰田", { { "凯美瑞", "2.0L", "2.5L" }, { "汉兰达", "2.0T" } }),
  LFM = e("丰田", "一汽丰田", { { "卡罗拉", "1.2T", "1.8L" }, { "RAV4荣放", "2.0L" } }),
  LSG = e("别克", "上汽通用", { { "英朗", "1.5L" }, { "君威", "1.5T" }, { "GL8", "2.0T" } }),
  LDC = e("标致", "神龙汽车", { { "308", "1.6L" }, { "4008", "1.6T" } }),
  VF3 = e("标致", "进口标致", { { "508", "1.6T" } }, { import = true }),
  LGW = e("哈弗", "长城汽车", { { "H6", "1.5T", "2.0T" }, { "M6", "1.5T" } }),
  LB3 = e("吉利", "吉利汽车", { { "帝豪", "1.5L" }, { "博越", "1.8T" } }),
  LGX = e("比亚迪", "比亚迪汽车", { { "秦", "1.5L" }, { "宋", "1.5T" } }),
  LC0 = e("比亚迪", "比亚迪汽车", { { "汉EV", "电动" }, { "海豚", "电动" } }, { ev = true }),
  LS5 = e("长安", "长安汽车", { { "逸动", "1.6L" }, { "CS75", "1.5T" } }),
  LZW = e("五菱", "上汽通用五菱", { { "宏光", "1.5L" }, { "五菱之光", "1.2L" } }),
  LVV = e("奇瑞", "奇瑞汽车", { { "艾瑞泽5", "1.5L" }, { "瑞虎8", "1.6T" } }),
  LJD = e("起亚", "东风悦达起亚", { { "K3", "1.5L" }, { "智跑", "2.0L" } }),
  LBE = e("现代", "北京现代", { { "伊兰特", "1.5L" }, { "途胜", "1.5T" }, { "索纳塔", "2.0L" } }),
  KMH = e("现代", "进口现代", { { "格越", "3.0L" } }, { import = true }),
  LE4 = e("奔驰", "北京奔驰", { { "C级", "1.5T", "2.0T" }, { "E级", "2.0T" }, { "GLC", "2.0T" } }),
  WDD = e("奔驰", "进口奔驰", { { "S级", "3.0T" }, { "GLE", "3.0T" } }, { import = true }),
  WAU = e("奥迪", "进口奥迪", { { "A8L", "3.0T" }, { "Q7", "3.0T" } }, { import = true }),
  LFP = e("奔腾", "一汽轿车", { { "B70", "1.5T" }, { "X40", "1.6L" } }),
  LSJ = e("荣威", "上汽乘用车", { { "i5", "1.5L" }, { "RX5", "1.5T" } }),
  LNB = e("北京汽车", "北汽", { { "BJ40", "2.0T" }, { "EU5", "电动" } }),
  LRW = e("特斯拉", "特斯拉上海", { { "Model 3", "电动" }, { "Model Y", "电动" } }, { ev = true }),
  ["5YJ"] = e("特斯拉", "进口特斯拉", { { "Model S", "电动" }, { "Model X", "电动" } }, { import = true, ev = true }),
  VF1 = e("雷诺", "进口雷诺", { { "科雷傲", "2.5L" } }, { import = true }),
  LMG = e("传祺", "广汽乘用车", { { "GS4", "1.5T" }, { "GS8", "2.0T" } }),
  LVR = e("马自达", "长安马自达", { { "昂克赛拉", "1.5L", "2.0L" }, { "CX-5", "2.0L" } }),
  JM1 = e("马自达", "进口马自达", { { "MX-5", "2.0L" } }, { import = true }),
  LVY = e("沃尔沃", "沃尔沃亚太", { { "S90", "2.0T" }, { "XC60", "2.0T" } }),
  YV1 = e("沃尔沃", "进口沃尔沃", { { "XC90", "2.0T" } }, { import = true }),
  WP0 = e("保时捷", "进口保时捷", { { "卡宴", "3.0T" }, { "Macan", "2.0T" } }, { import = true }),
  LJ1 = e("江淮", "江淮汽车", { { "瑞风S3", "1.5L" } }),
}

-- Sorted WMI list, so a fallback pick never depends on hash order.
local sorted = {}
for k in pairs(M.table) do sorted[#sorted + 1] = k end
table.sort(sorted)
M.sorted = sorted

-- Entry for a VIN prefix. Unknown WMIs fall back to a listed maker from the
-- same region (first character), chosen by `pick(n)` (1..n, deterministic).
function M.lookup(wmi, pick)
  local entry = M.table[wmi]
  if entry then return entry, true end
  local same_region = {}
  for _, k in ipairs(sorted) do
    if k:sub(1, 1) == wmi:sub(1, 1) then same_region[#same_region + 1] = k end
  end
  local pool = #same_region > 0 and same_region or sorted
  return M.table[pool[pick(#pool)]], false
end

return M
