#!/bin/sh
# Rewrites the rockspec's Lua module list from the files under lua/.
cd "$(dirname "$0")/.." || exit 2
rock=maintenance-report-scm-1.rockspec
tmp=$(mktemp)
sh tools/gen-rockspec-modules.sh > "$tmp.modules"
awk -v list="$tmp.modules" '
  /^    \["maintenance_report[^"]*"\] = "lua\// { if (!done) { while ((getline line < list) > 0) print line; done = 1 } next }
  { print }
' "$rock" > "$tmp" && mv "$tmp" "$rock"
rm -f "$tmp.modules"
