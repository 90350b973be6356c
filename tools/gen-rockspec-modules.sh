#!/bin/sh
# Prints the rockspec's Lua module lines for every file under lua/ (sorted),
# so the rockspec can be checked or refreshed: the spec compares them.
cd "$(dirname "$0")/.." || exit 2
find lua -name '*.lua' | LC_ALL=C sort | while read -r f; do
    mod=$(echo "$f" | sed -e 's|^lua/||' -e 's|/init\.lua$||' -e 's|\.lua$||' -e 's|/|.|g')
    printf '    ["%s"] = "%s",\n' "$mod" "$f"
done
