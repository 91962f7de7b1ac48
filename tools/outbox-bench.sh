#!/usr/bin/env bash
# Outbox figures for BENCHMARKS.md, in one run, loopback only:
#   1. drain rate of a prefilled outbox into a fake bundler answering every request after 50 ms;
#   2. time from the bundler's recovery (after a 40 s outage of 503s) to its first accepted upload;
#   3. HTTP writes/s with uploads off, and while the outbox drains into the 50 ms bundler.
# Usage: tools/outbox-bench.sh [debug|release]   (default: release if built, else debug)
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$PWD/target}"
profile="${1:-}"
if [ -z "$profile" ]; then
  if [ -x "$target/release/su" ]; then profile=release; else profile=debug; fi
fi
su="$target/$profile/su"
loadgen="$target/$profile/su-loadgen"
rows="${ROWS:-20000}"
work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
port=$(( 20000 + RANDOM % 20000 )); bport=$(( port + 1 ))
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
metric() { curl -sf "http://127.0.0.1:$port/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }

start_bundler() { # extra loadgen args
  "$loadgen" --fake-bundler "$bport" "$@" > "$work/bundler.out" &
  bundler_pid=$!; pids+=("$bundler_pid")
  for _ in $(seq 1 100); do grep -q "fake bundler on" "$work/bundler.out" 2>/dev/null && return 0; sleep 0.05; done
  echo "fake bundler did not start" >&2; return 1
}
stop_bundler() { kill "$bundler_pid" 2>/dev/null || true; wait "$bundler_pid" 2>/dev/null || true; }
start_su() { # data dir, extra env...
  local dir=$1; shift
  env SU_DATA_DIR="$dir" SU_LOG=warn "$@" "$su" serve --bind 127.0.0.1 --port "$port" 2>>"$dir.log" &
  su_pid=$!; pids+=("$su_pid")
  for _ in $(seq 1 400); do curl -sf "http://127.0.0.1:$port/" >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "su did not start" >&2; return 1
}
stop_su() { kill -TERM "$su_pid" 2>/dev/null || true; wait "$su_pid" 2>/dev/null || true; }

echo "== machine: $(nproc) cores, $profile build, $(date -u +%FT%TZ)"

echo "== 1. drain $rows+1 prefilled rows into a bundler that answers after 50 ms (UPLOAD_CONCURRENCY=128)"
"$loadgen" --prefill-dir "$work/drain" --processes 1 --prefill-entries "$rows" | tail -1
start_bundler --bundler-delay-ms 50
t0=$(now_ms)
start_su "$work/drain" UPLOAD_NODE_URL="http://127.0.0.1:$bport"
depth=$(metric su_outbox_queue_depth || echo "?")
while [ "$(metric su_outbox_queue_depth)" != "0" ]; do sleep 0.05; done
t1=$(now_ms)
echo "drained $(( rows + 1 )) rows in $(( t1 - t0 )) ms from the start of su serve: $(( (rows + 1) * 1000 / (t1 - t0) )) uploads/s (depth seen after start: $depth)"
tail -n 3 "$work/bundler.out"
stop_su; stop_bundler

echo "== 2. recovery: the bundler answers 503 for 40 s after its first request, then 200"
"$loadgen" --prefill-dir "$work/recover" --processes 1 --prefill-entries 2000 | tail -1
start_bundler --bundler-delay-ms 50 --bundler-outage-secs 40
start_su "$work/recover" UPLOAD_NODE_URL="http://127.0.0.1:$bport" UPLOAD_BACKOFF_MAX_SECS=32
until grep -q first_accept_after_outage_ms "$work/bundler.out"; do sleep 0.5; done
grep -m1 first_accept_after_outage_ms "$work/bundler.out"
while [ "$(metric su_outbox_queue_depth)" != "0" ]; do sleep 0.1; done
echo "all 2001 rows delivered; bundler: $(tail -n1 "$work/bundler.out")"
stop_su; stop_bundler

echo "== 3. HTTP writes: 50 processes, concurrency 64, 6000 messages"
mkdir -p "$work/off" "$work/on"
start_su "$work/off"
echo "-- uploads off (no UPLOAD_NODE_URL)"
"$loadgen" --url "http://127.0.0.1:$port" --server-pid "$su_pid" --processes 50 --messages 6000 --concurrency 64 --no-reads 2>/dev/null
stop_su
start_bundler --bundler-delay-ms 50
start_su "$work/on" UPLOAD_NODE_URL="http://127.0.0.1:$bport"
echo "-- uploads on (bundler 50 ms away, draining while the writes run)"
"$loadgen" --url "http://127.0.0.1:$port" --server-pid "$su_pid" --processes 50 --messages 6000 --concurrency 64 --no-reads 2>/dev/null
echo "outbox depth right after the last write: $(metric su_outbox_queue_depth)"
t0=$(now_ms)
while [ "$(metric su_outbox_queue_depth)" != "0" ]; do sleep 0.05; done
echo "drained $(( $(now_ms) - t0 )) ms later; bundler: $(tail -n1 "$work/bundler.out")"
stop_su; stop_bundler
