#!/bin/sh
# Report-read throughput of the sandbox over keep-alive.
# Usage: bench/sandbox_wrk.sh [duration=10s] [connections=64] [wrk threads=2] [nginx workers=2]
# Starts the sandbox (bin/maintenance-report sandbox), creates one order, runs
# wrk against its report URL with a signed header, prints requests/s, stops
# the sandbox.
set -eu
cd "$(dirname "$0")/.."

DURATION=${1:-10s}
CONNECTIONS=${2:-64}
THREADS=${3:-2}
WORKERS=${4:-2}
ID=AKIDbench
KEY=bench-secret

for tool in wrk curl openssl lua5.4; do
  command -v "$tool" >/dev/null 2>&1 || { echo "sandbox_wrk: $tool not found" >&2; exit 2; }
done

tmp=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

mkfifo "$tmp/ready"
bin/maintenance-report sandbox --port 0 --workers "$WORKERS" --pending-polls 0 \
  --secret-id "$ID" --secret-key "$KEY" > "$tmp/ready" 2> "$tmp/stderr" &
pid=$!
# Blocks until the sandbox prints its ready line (or exits).
read -r line < "$tmp/ready" || { cat "$tmp/stderr" >&2; exit 1; }
base=$(printf '%s\n' "$line" | sed -n 's|.*\(http://[^ ]*\).*|\1|p')

xdate=$(LC_ALL=C date -u '+%a, %d %b %Y %H:%M:%S GMT')
signature=$(printf 'x-date: %s\nx-source: market' "$xdate" \
  | openssl dgst -sha1 -hmac "$KEY" -binary | base64)
auth="hmac id=\"$ID\", algorithm=\"hmac-sha1\", headers=\"x-date x-source\", signature=\"$signature\""

get() {
  curl -sS --noproxy '*' -H "X-Date: $xdate" -H "X-Source: market" -H "Authorization: $auth" "$1"
}
order_id=$(get "$base/maintenance/order?vin=LSVAB2BM5KN000001" \
  | sed -n 's/.*"orderId":"\([0-9a-f]*\)".*/\1/p')
[ -n "$order_id" ] || { echo "sandbox_wrk: ordering failed" >&2; exit 1; }
url="$base/maintenance_report/get?order_id=$order_id"
# One read first: it generates and caches the report, and proves it is ready.
get "$url" | grep -q '"resultCode":"1205"' || { echo "sandbox_wrk: report not ready" >&2; exit 1; }

echo "sandbox_wrk: $WORKERS nginx workers, wrk -t$THREADS -c$CONNECTIONS -d$DURATION $url"
SANDBOX_XDATE=$xdate SANDBOX_AUTH=$auth \
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s bench/sandbox_wrk.lua "$url" > "$tmp/wrk.out"
cat "$tmp/wrk.out"
if grep -q 'Non-2xx' "$tmp/wrk.out"; then
  echo "sandbox_wrk: some answers were not 2xx" >&2
  exit 1
fi
rps=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$tmp/wrk.out")
echo "requests/s: $rps"
