# Sourced by the bench drivers: a private TMPDIR under which every nginx the
# benchmarks start keeps its prefix; on any exit, whatever still runs there is
# stopped, so no process outlives the run. Also keeps proxies out of loopback.
unset http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy ALL_PROXY 2>/dev/null || true
bench_tmp=$(mktemp -d "${TMPDIR:-/tmp}/mr-bench.XXXXXX")
# shellcheck disable=SC2317 # invoked by the trap
bench_cleanup() {
    for pidfile in "$bench_tmp"/*/nginx.pid; do
        [ -s "$pidfile" ] || continue
        pid=$(cat "$pidfile")
        if [ "$(ps -o comm= -p "$pid" 2>/dev/null)" = nginx ]; then
            kill -TERM "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$bench_tmp"
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM
export TMPDIR="$bench_tmp"
