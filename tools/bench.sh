#!/usr/bin/env bash
# Reproduces every figure in BENCHMARKS.md in one run, next to the machine's own
# `openssl speed rsa4096` rates. Loopback only; bounded in count and time.
# Usage: tools/bench.sh [--quick]   (needs release builds: cargo build --release --bins)
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$PWD/target}"
su="$target/release/su"
loadgen="$target/release/su-loadgen"
messages=3000; many=6000
[ "${1:-}" = "--quick" ] && { messages=600; many=1200; }
work=$(mktemp -d)
trap 'pkill -f "$work" 2>/dev/null || true; rm -rf "$work"' EXIT

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "== openssl speed -seconds 3 rsa4096 (one core)"
openssl speed -seconds 3 rsa4096 2>/dev/null | grep '^rsa 4096'
echo "== openssl speed -seconds 3 -multi $(nproc) rsa4096 (all cores)"
openssl speed -seconds 3 -multi "$(nproc)" rsa4096 2>/dev/null | grep '^rsa 4096'

port=$(( 20000 + RANDOM % 20000 ))
start_su() { # data dir
  (cd "$1" && SU_LOG=warn exec "$su" serve --bind 127.0.0.1 --port "$port" 2>>"$1/su.log") &
  for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$port/" >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "su did not start" >&2; return 1
}
stop_su() { pkill -TERM -f "$su serve --bind 127.0.0.1 --port $port" || true; sleep 1; }
su_pid() { pgrep -f "$su serve --bind 127.0.0.1 --port $port" | head -1; }
run() { # name, data dir, loadgen args...
  local name=$1 dir=$2; shift 2
  mkdir -p "$dir"; start_su "$dir"
  echo "== $name"
  grep -E '^VmRSS' /proc/"$(su_pid)"/status | sed 's/^/idle /'
  "$loadgen" --url "http://127.0.0.1:$port" --server-pid "$(su_pid)" "$@" 2>/dev/null
  stop_su
}

run "one hot process, concurrency 8" "$work/one" --processes 1 --messages "$messages" --concurrency 8
run "50 processes, concurrency 64" "$work/many" --processes 50 --messages "$many" --concurrency 64
echo "(pass --rate to measure latency at a fixed offered load; see BENCHMARKS.md)"
if [ -n "${HALF_RATE:-}" ]; then
  run "50 processes, concurrency 64, offered $HALF_RATE writes/s" "$work/half" --processes 50 --messages "$messages" --concurrency 64 --rate "$HALF_RATE"
fi

echo "== reads: one process of 100000 entries, pages of 1000"
mkdir -p "$work/reads"
"$loadgen" --prefill-dir "$work/reads/data" --processes 1 --prefill-entries 100000 | tee "$work/reads.out" | tail -1
pid=$(grep -o 'process [A-Za-z0-9_-]*' "$work/reads.out" | head -1 | cut -d' ' -f2)
start_su "$work/reads"
"$loadgen" --url "http://127.0.0.1:$port" --read-process "$pid" 2>/dev/null
stop_su

echo "== scale: 1000000 stored entries"
mkdir -p "$work/scale"
"$loadgen" --prefill-dir "$work/scale/data" --processes 10 --prefill-entries 1000000 | tail -1
t0=$(date +%s%N)
(cd "$work/scale" && SU_LOG=warn exec "$su" serve --bind 127.0.0.1 --port "$port" 2>>"$work/scale/su.log") &
until curl -sf "http://127.0.0.1:$port/" >/dev/null 2>&1; do sleep 0.005; done
t1=$(date +%s%N)
echo "start-up to first answered request: $(( (t1 - t0) / 1000000 )) ms"
echo "idle $(grep -E '^VmRSS' /proc/"$(su_pid)"/status)"
"$loadgen" --url "http://127.0.0.1:$port" --server-pid "$(su_pid)" --processes 1 --messages "$messages" --concurrency 8 2>/dev/null
stop_su
