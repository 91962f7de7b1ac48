#!/usr/bin/env bash
# Router benchmark (BENCHMARKS.md "Router"): a placement table of ROUTES synthetic processes
# (default one million), then GET /processes/{id} for ids drawn uniformly from it, over
# CONNECTIONS keep-alive connections, against `su router` on loopback; prints redirects per
# second and the router's RSS. Uses release binaries from BIN_DIR (default: the cargo target).
set -euo pipefail
ROUTES=${ROUTES:-1000000}
REQUESTS=${REQUESTS:-300000}
CONNECTIONS=${CONNECTIONS:-32}
PORT=${PORT:-9300}
BIN_DIR=${BIN_DIR:-${CARGO_TARGET_DIR:-target}/release}
WORK=$(mktemp -d)
trap 'kill "${ROUTER_PID:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT
SUS=http://127.0.0.1:9101,http://127.0.0.1:9102
"$BIN_DIR/su-loadgen" --router-prefill "$WORK/data" --router-table "$ROUTES" --router-sus "$SUS"
echo '[{"url":"http://127.0.0.1:9101"},{"url":"http://127.0.0.1:9102"}]' > "$WORK/schedulers.json"
SU_DATA_DIR="$WORK/data" SCHEDULER_LIST_PATH="$WORK/schedulers.json" SU_LOG=error \
  "$BIN_DIR/su" router --bind 127.0.0.1 --port "$PORT" &
ROUTER_PID=$!
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break
  sleep 0.1
done
echo "router RSS at start: $(awk '/VmRSS/ {print $2 " KiB"}' /proc/$ROUTER_PID/status)"
"$BIN_DIR/su-loadgen" --url "http://127.0.0.1:$PORT" --router-redirects "$REQUESTS" \
  --router-table "$ROUTES" --concurrency "$CONNECTIONS" --server-pid "$ROUTER_PID"
