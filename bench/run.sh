#!/bin/sh
# make bench: runs every benchmark under each interpreter and prints their
# result lines (ratios measured side by side in one run); a copy goes to
# bench/results/latest.txt. Benchmarks are not tests: nothing here fails on a
# missed target, only on a benchmark that could not run.
#
#   BENCH_INTERPRETERS  default "lua5.4 luajit"
#   BENCH_ONLY          default "sign decode http poll"
#   BENCH_N, BENCH_ROUNDS, BENCH_DECODE_N, BENCH_SIGN_N, BENCH_POLL_ORDERS,
#   BENCH_POLL_CONCURRENCY, BENCH_POLL_LATENCY_MS, BENCH_BATCH_*: see each bench/*.lua
#   (BENCH_ONLY=batch: the 100,000-VIN batch, several minutes per interpreter)
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
interpreters=${BENCH_INTERPRETERS:-"lua5.4 luajit"}
benches=${BENCH_ONLY:-"sign decode http poll"}

. bench/private_tmp.sh

mkdir -p bench/results
out=bench/results/latest.txt
{
    echo "# make bench, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "# machine: $(nproc) cores, $(uname -sr), load average: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "# $(lua5.4 -v 2>&1 | head -1); $(luajit -v 2>&1 | head -1)"
    echo "# $(curl --version | head -1 | cut -d' ' -f1-4); $(nginx -v 2>&1)"
} | tee "$out"

status=0
for lua in $interpreters; do
    case "$lua" in
        luajit) abi=luajit ;;
        *) abi=$lua ;;
    esac
    if ! command -v "$lua" >/dev/null 2>&1; then
        echo "$lua: not installed, skipped" | tee -a "$out"
        continue
    fi
    for bench in $benches; do
        if ! MR_ROOT="$root" \
            LUA_PATH="$root/lua/?.lua;$root/lua/?/init.lua;;" \
            LUA_CPATH="$root/build/$abi/?.so;;" \
            "$lua" "bench/$bench.lua" 2>&1 | tee -a "$out"; then
            status=1
        fi
    done
done
# A pipeline's status is tee's: look for Lua errors in the output instead.
if grep -q -E '^(lua5\.4|luajit|lua): |stack traceback' "$out"; then
    status=1
    echo "bench: a benchmark failed to run (see above)"
fi
echo "# results in $out"
exit $status
