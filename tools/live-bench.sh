#!/usr/bin/env bash
# Live schedule benchmark (BENCHMARKS.md "Live schedule"): STREAMS Server-Sent Events streams
# (default 1,000) open on one process of a fresh `su serve`, MESSAGES writes (default 200)
# posted one at a time PAUSE_MS apart; prints the acknowledgement-to-delivery time (p50, p99,
# max) over every stream and write. Uses release binaries from BIN_DIR (default: the cargo
# target).
set -euo pipefail
STREAMS=${STREAMS:-1000}
MESSAGES=${MESSAGES:-200}
PAUSE_MS=${PAUSE_MS:-20}
PORT=${PORT:-9400}
BIN_DIR=${BIN_DIR:-${CARGO_TARGET_DIR:-target}/release}
WORK=$(mktemp -d)
trap 'kill "${SU_PID:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT
SU_DATA_DIR="$WORK/data" SU_LOG=error SU_MAX_LIVE_READS=$((STREAMS + 16)) \
  "$BIN_DIR/su" serve --bind 127.0.0.1 --port "$PORT" &
SU_PID=$!
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break
  sleep 0.1
done
"$BIN_DIR/su-loadgen" --url "http://127.0.0.1:$PORT" --processes 1 --messages "$MESSAGES" \
  --live-streams "$STREAMS" --live-pause-ms "$PAUSE_MS"
echo "su RSS after: $(awk '/VmRSS/ {print $2 " KiB"}' /proc/$SU_PID/status), peak $(awk '/VmHWM/ {print $2 " KiB"}' /proc/$SU_PID/status)"
