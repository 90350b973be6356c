#!/bin/sh
# `make valgrind`: the given spec files under lua5.4 and valgrind memcheck,
# with the regular build (build/lua5.4). Fails when a definite or indirect
# leak, or any memcheck error (invalid read/write, uninitialised value, bad
# free…), has maintenance_report/core.so in its stack; or when a spec fails.
# Logs stay in build/valgrind/: memcheck.xml (stacks), errors.txt (one line per
# record), memcheck.log (valgrind's own messages), busted.tap.
set -u
cd "$(dirname "$0")/.." || exit 2
root=$(pwd)
lua=${VALGRIND_LUA:-lua5.4}
core_dir=${VALGRIND_CORE_DIR:-$root/build/lua5.4} # holds maintenance_report/core.so
[ $# -gt 0 ] || set -- spec/core_sign_spec.lua spec/core_http_spec.lua spec/scheduler_spec.lua spec/client_spec.lua
out=build/valgrind
mkdir -p "$out"
rm -f "$out/memcheck.log" "$out/memcheck.xml" "$out/busted.tap"
echo "== valgrind memcheck: $lua busted $*"
start=$(date +%s)
LUA_PATH="$root/lua/?.lua;$root/lua/?/init.lua;$root/spec/?.lua;;" \
LUA_CPATH="$core_dir/?.so;;" \
MR_SPEC_LUA="$lua" \
    valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect \
        --errors-for-leak-kinds=definite,indirect --keep-debuginfo=yes --num-callers=40 \
        --suppressions="$root/tools/valgrind.supp" \
        --log-file="$out/memcheck.log" --xml=yes --xml-file="$out/memcheck.xml" \
        "$lua" /usr/bin/busted --output=TAP "$@" >"$out/busted.tap" 2>&1
rc=$?
end=$(date +%s)
grep -v '^ok ' "$out/busted.tap"
ok=$(grep -c '^ok ' "$out/busted.tap")
bad=$(grep -c '^not ok ' "$out/busted.tap")
echo "$lua (valgrind): $ok passed, $bad failed (busted exit $rc, $((end - start))s)"

# One line per memcheck error: kind, bytes, whether one of our C modules (core.so, hiredis.so;
# labelled core.so) is in its stack.
awk '
/<error>/      { inerr = 1; kind = ""; core = 0; bytes = ""; what = ""; next }
inerr && /<kind>/ { k = $0; gsub(/.*<kind>|<\/kind>.*/, "", k); kind = k }
inerr && /<leakedbytes>/ { b = $0; gsub(/.*<leakedbytes>|<\/leakedbytes>.*/, "", b); bytes = b }
inerr && /<obj>.*maintenance_report\/(core|hiredis)\.so<\/obj>/ { core = 1 }
inerr && /<fn>/ && core == 1 && what == "" { f = $0; gsub(/.*<fn>|<\/fn>.*/, "", f); what = f; core = 2 }
/<\/error>/    { inerr = 0; print kind, (bytes == "" ? "-" : bytes), (core ? "core.so" : "elsewhere"), (what == "" ? "-" : what) }
' "$out/memcheck.xml" >"$out/errors.txt"
awk '{ n++; if ($3 == "core.so") c++ }
     $1 == "Leak_DefinitelyLost" { d += $2 } $1 == "Leak_IndirectlyLost" { i += $2 }
     END { printf "memcheck: %d error record(s), %d with core.so in the stack; definitely lost %d bytes, indirectly lost %d bytes (whole process)\n", n, c, d, i }' "$out/errors.txt"
status=0
if grep -qE '^(Leak_DefinitelyLost|Leak_IndirectlyLost|Invalid|Uninit|Mismatched|Syscall|Overlap|Fishy|ClientCheck)[^ ]* .* core\.so' "$out/errors.txt"; then
    echo "valgrind: errors with core.so in the stack (stacks in $out/memcheck.xml):"
    grep ' core\.so ' "$out/errors.txt"
    status=1
fi
others=$(grep -vc ' core\.so ' "$out/errors.txt")
[ "$others" -gt 0 ] && echo "valgrind: $others error record(s) outside core.so, not counted (see $out/errors.txt)"
if [ "$rc" -ne 0 ] || [ "$bad" -ne 0 ]; then
    echo "valgrind: the specs failed under valgrind"
    status=1
fi
[ "$status" -eq 0 ] && echo "valgrind: clean"
exit $status
