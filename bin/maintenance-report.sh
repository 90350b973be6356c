#!/bin/sh
# maintenance-report, as a LuaRocks install puts it on PATH (TREE/bin): runs
# the CLI on the interpreter its C core was built for, whichever tree it is in.
# A Lua 5.4 install (TREE/lib/lua/5.4) runs on lua5.4, a LuaJIT install
# (luarocks --lua-version 5.1, TREE/lib/lua/5.1) on luajit; a tree with both
# runs lua5.4. MAINTENANCE_REPORT_LUA names another interpreter.
# A shell script on purpose: LuaRocks would wrap a Lua script in a call to its
# own idea of the interpreter (lua5.1 for a 5.1 tree, which cannot load a LuaJIT core).
self=$0
case $self in */*) ;; *) self=$(command -v -- "$self") ;; esac
# Symlinked into another bin/: the tree is where the link points. The secrets
# stay out of the child's environment.
resolved=$(unset MAINTENANCE_REPORT_SECRET_KEY MAINTENANCE_REPORT_REDIS_PASSWORD
    readlink -f -- "$self" 2>/dev/null) && [ -n "$resolved" ] && self=$resolved
tree=$(cd "${self%/*}/.." && pwd) || tree=${self%/*}/..
interpreter() {
    case $1 in
        5.4) echo "${MAINTENANCE_REPORT_LUA:-lua5.4}" ;;
        *) echo "${MAINTENANCE_REPORT_LUA:-luajit}" ;;
    esac
}
missing='' fallback_lua='' fallback_main=''
for version in 5.4 5.1; do
    main=$tree/share/lua/$version/maintenance_report/cli/main.lua
    [ -f "$main" ] || continue
    lua=$(interpreter $version)
    command -v "$lua" >/dev/null 2>&1 || { missing="$missing $lua"; continue; }
    [ -f "$tree/lib/lua/$version/maintenance_report/core.so" ] && exec "$lua" "$main" "$@"
    # Without its core: the CLI itself says what is missing and where it looked.
    [ -n "$fallback_lua" ] || { fallback_lua=$lua; fallback_main=$main; }
done
[ -n "$fallback_lua" ] && exec "$fallback_lua" "$fallback_main" "$@"
if [ -n "$missing" ]; then
    echo "maintenance-report: the interpreter for this install is not on PATH:$missing" >&2
else
    echo "maintenance-report: no Lua 5.4 or LuaJIT install of maintenance-report under $tree" \
        "(looked for share/lua/5.4 and share/lua/5.1)" >&2
fi
exit 9
