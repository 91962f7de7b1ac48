#!/usr/bin/env bash
# The standby figures of BENCHMARKS.md: a fresh `su sync` catching up on a primary that holds
# ENTRIES signed entries (every signature verified), against the verification ceiling of this
# machine's cores measured in the same run; then the lag of a standby under a fixed write load.
# Loopback only. Needs release builds (cargo build --release --bins).
# Usage: tools/sync-bench.sh [catch-up|lag|all]  (ENTRIES=1000000 RATE=500 INTERVAL=1, BIN_DIR:
# where su and su-loadgen are, default the cargo target's release dir)
# The signed primary store is cached in $SYNC_BENCH_CACHE (default ~/.cache/ao-su-sync-bench):
# making it signs ENTRIES assignments with RSA-4096, minutes of every core.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$PWD/target}"
bin="${BIN_DIR:-$target/release}"
su="$bin/su"
loadgen="$bin/su-loadgen"
entries="${ENTRIES:-1000000}"
rate="${RATE:-500}"
interval="${INTERVAL:-1}"
what="${1:-all}"
cache="${SYNC_BENCH_CACHE:-$HOME/.cache/ao-su-sync-bench}"
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
# The yardstick for signature verification: the primitives' rates on every core. The primary
# made here signs assignments with RSA-4096 and messages with ed25519, so one entry costs one
# of each: capacity = 1 / (1/rsa + 1/ed25519) entries/s.
echo "== openssl speed -seconds 3 -multi $(nproc) rsa4096 ed25519 (all cores; sign/s verify/s)"
openssl speed -seconds 3 -multi "$(nproc)" rsa4096 ed25519 2>/dev/null | grep -E '^rsa 4096|^ *253 bits' || true

port() { echo $(( 20000 + RANDOM % 20000 )); }
cpu_seconds() { # pid: user + system CPU time so far
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f\n", ($14 + $15) / hz }' "/proc/$1/stat"
}
wait_http() { # url
  for _ in $(seq 1 600); do curl -sf "$1" >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "no answer from $1" >&2; return 1
}
metric() { # url name
  curl -sf "$1/metrics" | awk -v name="$2" '$1 == name { printf "%d\n", $2; found = 1 } END { if (!found) print 0 }'
}
primary_last() { # url
  curl -sf "$1/~su/log?after=18446744073709551614&limit=1" | sed -n 's/.*"last_sequence":\([0-9]*\).*/\1/p'
}
start_primary() { # data dir, port
  (cd "$1" && SU_LOG=warn exec "$su" serve --bind 127.0.0.1 --port "$2" 2>>"$1/su.log") &
  primary_pid=$!; pids+=("$!")
  wait_http "http://127.0.0.1:$2/"
}
start_standby() { # data dir, primary port, port
  mkdir -p "$1"
  (cd "$1" && SU_LOG=warn exec "$su" sync --from "http://127.0.0.1:$2" --interval "$interval" \
    --bind 127.0.0.1 --port "$3" 2>>"$1/sync.log") &
  standby_pid=$!; pids+=("$!")
  wait_http "http://127.0.0.1:$3/health"
}

catch_up() {
  local primary="$cache/primary-$entries"
  if [ ! -f "$primary/.complete" ]; then
    echo "== making the signed primary store ($entries entries, cached in $primary)"
    rm -rf "$primary"; mkdir -p "$primary"
    nice -n 10 "$loadgen" --prefill-dir "$primary/data" --prefill-signed \
      --processes 100 --prefill-entries "$entries"
    touch "$primary/.complete"
  fi
  echo "== verification ceiling: the standby's signature pass alone, every core, 50000 entries"
  "$loadgen" --prefill-dir "$primary/data" --verify-ceiling 50000
  cp -a "$primary" "$work/primary"
  local pp sp
  pp=$(port); sp=$(port)
  start_primary "$work/primary" "$pp"
  local total
  total=$(primary_last "http://127.0.0.1:$pp")
  echo "== catch-up: a fresh standby follows $total entries"
  local t0 t1 primary_cpu0
  primary_cpu0=$(cpu_seconds "$primary_pid")
  t0=$(date +%s.%N)
  start_standby "$work/standby" "$pp" "$sp"
  local applied=0 last_print=0
  while [ "$applied" -lt "$total" ]; do
    sleep 0.5
    applied=$(metric "http://127.0.0.1:$sp" su_sync_applied_sequence)
    if [ $(( applied - last_print )) -ge 100000 ]; then
      last_print=$applied
      echo "  $applied / $total after $(echo "$(date +%s.%N) - $t0" | bc) s"
    fi
    if ! kill -0 "$standby_pid" 2>/dev/null; then
      echo "the standby stopped:" >&2; tail -5 "$work/standby/sync.log" >&2; return 1
    fi
  done
  t1=$(date +%s.%N)
  echo "catch-up: $total entries in $(echo "$t1 - $t0" | bc) s: $(echo "$total / ($t1 - $t0)" | bc) entries/s"
  echo "standby peak RSS: $(grep VmHWM /proc/"$standby_pid"/status)"
  # Both run on the same cores here; on two machines the standby has them to itself.
  local standby_cpu primary_cpu
  standby_cpu=$(cpu_seconds "$standby_pid")
  primary_cpu=$(echo "$(cpu_seconds "$primary_pid") - $primary_cpu0" | bc)
  echo "CPU during the catch-up: standby ${standby_cpu} s, primary (serving the feed) ${primary_cpu} s, of $(echo "($t1 - $t0) * $(nproc)" | bc) s on $(nproc) cores"
  echo "standby alone: $(echo "$total / $standby_cpu * $(nproc)" | bc) entries/s if it had every core to itself"
  kill -TERM "$standby_pid" "$primary_pid"; wait "$standby_pid" "$primary_pid" || true
  echo "== su verify on the standby's store"
  (cd "$work/standby" && SU_LOG=warn "$su" verify | tail -2)
}

lag() {
  local pp sp
  pp=$(port); sp=$(port)
  mkdir -p "$work/lag-primary"
  start_primary "$work/lag-primary" "$pp"
  start_standby "$work/lag-standby" "$pp" "$sp"
  local seconds=60
  echo "== lag: $rate writes/s for ${seconds} s over 50 processes, standby --interval $interval"
  "$loadgen" --url "http://127.0.0.1:$pp" --processes 50 --messages $(( rate * seconds )) \
    --concurrency 64 --rate "$rate" --no-reads 2>/dev/null > "$work/loadgen.out" &
  local load=$!
  : > "$work/samples"
  while kill -0 "$load" 2>/dev/null; do
    echo "$(date +%s.%N) $(primary_last "http://127.0.0.1:$pp") $(metric "http://127.0.0.1:$sp" su_sync_applied_sequence)" >> "$work/samples"
    sleep 0.1
  done
  for _ in $(seq 1 $(( interval * 10 + 20 ))); do
    echo "$(date +%s.%N) $(primary_last "http://127.0.0.1:$pp") $(metric "http://127.0.0.1:$sp" su_sync_applied_sequence)" >> "$work/samples"
    sleep 0.1
  done
  grep -E 'writes/s|latency' "$work/loadgen.out" || cat "$work/loadgen.out"
  # Lag of sample i: the time until the standby had applied what the primary held at i.
  awk '{ t[NR] = $1; p[NR] = $2; a[NR] = $3 } END {
    for (i = 1; i <= NR; i++) {
      if (p[i] == 0) continue
      for (j = i; j <= NR && a[j] < p[i]; j++) {}
      if (j > NR) { print "unresolved"; continue }
      printf "%.3f %d\n", t[j] - t[i], p[i] - a[i]
    }
  }' "$work/samples" > "$work/lags"
  grep -c unresolved "$work/lags" | sed 's/^/samples never caught up: /' || true
  grep -v unresolved "$work/lags" | sort -n | awk '{ lag[NR] = $1; if ($2 > behind) behind = $2 } END {
    printf "lag over %d samples: p50 %.2f s, p99 %.2f s, max %.2f s; most entries behind %d\n",
      NR, lag[int(NR * 0.5) + 1], lag[int(NR * 0.99) + 1], lag[NR], behind
  }'
  kill -TERM "$standby_pid" "$primary_pid"; wait "$standby_pid" "$primary_pid" || true
}

case "$what" in
  catch-up) catch_up ;;
  lag) lag ;;
  all) catch_up; lag ;;
  *) echo "usage: $0 [catch-up|lag|all]" >&2; exit 2 ;;
esac
