#!/bin/sh
# Runs the busted specs under lua5.4 and luajit and prints one summary line:
# "N passed, N failed". Exits non-zero when anything failed.
# SPEC_INTERPRETERS and SPEC_FILES narrow the run (default: both, all of spec/).
set -u
cd "$(dirname "$0")/.." || exit 2
root=$(pwd)
interpreters=${SPEC_INTERPRETERS:-"lua5.4 luajit"}
files=${SPEC_FILES:-spec}
log_dir=$(mktemp -d)
trap 'rm -rf "$log_dir"' EXIT
passed=0
failed=0
status=0
for lua in $interpreters; do
    case "$lua" in
        luajit) build=luajit ;;
        *) build=$lua ;;
    esac
    log="$log_dir/$lua.tap"
    echo "== busted under $lua"
    # shellcheck disable=SC2086
    LUA_PATH="$root/lua/?.lua;$root/lua/?/init.lua;$root/spec/?.lua;;" \
    LUA_CPATH="$root/build/$build/?.so;;" \
    MR_SPEC_LUA="$lua" \
        "$lua" /usr/bin/busted --output=TAP $files >"$log" 2>&1
    rc=$?
    grep -v '^ok ' "$log"
    ok=$(grep -c '^ok ' "$log")
    bad=$(grep -c '^not ok ' "$log")
    echo "$lua: $ok passed, $bad failed (busted exit $rc)"
    if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
        bad=1 # busted itself failed (a spec file did not load, for example)
    fi
    passed=$((passed + ok))
    failed=$((failed + bad))
    [ "$rc" -ne 0 ] && status=1
done
echo "$passed passed, $failed failed"
exit $status
