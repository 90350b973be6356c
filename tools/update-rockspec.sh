#!/bin/sh
# Rewrites both rockspecs' Lua module lists from the files under lua/:
# the library and CLI rock gets lua/maintenance_report/, the sandbox rock
# lua/maintenance_report_sandbox/.
cd "$(dirname "$0")/.." || exit 2
update() {
    rock=$1 dir=$2
    tmp=$(mktemp)
    sh tools/gen-rockspec-modules.sh "$dir" > "$tmp.modules"
    awk -v list="$tmp.modules" '
      /^    \["maintenance_report[^"]*"\] = "lua\// { if (!done) { while ((getline line < list) > 0) print line; done = 1 } next }
      { print }
    ' "$rock" > "$tmp" && mv "$tmp" "$rock"
    rm -f "$tmp.modules"
}
update maintenance-report-scm-1.rockspec maintenance_report
update maintenance-report-sandbox-scm-1.rockspec maintenance_report_sandbox
