#!/bin/sh
# `make asan`: the busted suite under lua5.4 with the AddressSanitizer/UBSan
# build of the core (build/asan). Mirrors tools/run-specs.sh for one
# interpreter. Fails on a failed spec or on any sanitizer report, including
# LeakSanitizer's at exit. Needs ASAN_RUNTIME (path of libasan.so) and
# ASAN_PRELOAD (build/asan/asan_preload.so); the Makefile gives both.
set -u
cd "$(dirname "$0")/.." || exit 2
root=$(pwd)
: "${ASAN_RUNTIME:?path of libasan.so}"
: "${ASAN_PRELOAD:=build/asan/asan_preload.so}"
lua=${ASAN_LUA:-lua5.4}
files=${SPEC_FILES:-spec}
[ -f "$ASAN_RUNTIME" ] || { echo "run-asan: no sanitizer runtime at '$ASAN_RUNTIME'"; exit 2; }
[ -f build/asan/maintenance_report/core.so ] || { echo "run-asan: build/asan core missing (make asan)"; exit 2; }
log_dir=$(mktemp -d)
trap 'rm -rf "$log_dir"' EXIT
log="$log_dir/$lua.tap"

# Only lua5.4 gets the runtime: asan_preload.so unsets LD_PRELOAD in it, so
# children inherit a clean environment (ASAN_OPTIONS alone does nothing there).
# Reports go to files, so that one in any process is seen even if a spec
# swallowed its output.
# A spec that starts another interpreter runs $MR_SPEC_LUA: under asan, this
# wrapper, which gives the child the runtime back (it loads the sanitized core).
wrapper="$log_dir/$lua-asan"
printf '#!/bin/sh\nLD_PRELOAD="$MR_ASAN_LD_PRELOAD" exec %s "$@"\n' "$lua" >"$wrapper"
chmod +x "$wrapper"

echo "== busted under $lua with AddressSanitizer + UBSan (build/asan)"
start=$(date +%s)
# shellcheck disable=SC2086
LUA_PATH="$root/lua/?.lua;$root/lua/?/init.lua;$root/spec/?.lua;;" \
LUA_CPATH="$root/build/asan/?.so;$root/build/lua5.4/?.so;;" \
MR_SPEC_LUA="$wrapper" \
MR_SPEC_SANITIZED=1 \
ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1:log_path=$log_dir/asan" \
LSAN_OPTIONS="suppressions=$root/tools/lsan.supp:print_suppressions=0" \
UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$log_dir/ubsan" \
LD_PRELOAD="$ASAN_RUNTIME $root/$ASAN_PRELOAD" \
    "$lua" /usr/bin/busted --output=TAP $files >"$log" 2>&1
rc=$?
end=$(date +%s)
grep -v '^ok ' "$log"
ok=$(grep -c '^ok ' "$log")
bad=$(grep -c '^not ok ' "$log")
echo "$lua (asan): $ok passed, $bad failed (busted exit $rc, $((end - start))s)"
status=0
[ "$rc" -ne 0 ] && status=1
reports=$(find "$log_dir" -name 'asan.*' -o -name 'ubsan.*' | sort)
for r in $reports; do echo "---- $(basename "$r")"; cat "$r"; done
if [ -n "$reports" ] || grep -qE 'runtime error:|ERROR: (Address|Leak|UndefinedBehavior)Sanitizer' "$log"; then
    echo "run-asan: sanitizer reports above"
    status=1
fi
[ "$status" -eq 0 ] && echo "asan: clean"
exit $status
