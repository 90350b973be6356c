#!/bin/sh
# Prints a rockspec's Lua module lines (sorted) for the files under lua/DIR,
# where DIR is the rock's top-level namespace (maintenance_report or
# maintenance_report_sandbox), so the rockspec can be checked or refreshed.
cd "$(dirname "$0")/.." || exit 2
dir=${1:-maintenance_report}
find "lua/$dir" -name '*.lua' | LC_ALL=C sort | while read -r f; do
    mod=$(echo "$f" | sed -e 's|^lua/||' -e 's|/init\.lua$||' -e 's|\.lua$||' -e 's|/|.|g')
    printf '    ["%s"] = "%s",\n' "$mod" "$f"
done
