#!/usr/bin/env bash
# The import benchmark (BENCHMARKS.md): messages imported per second from a reference-layout
# Postgres database, with every signature verified and with --skip-signatures, and the
# importer's peak RSS. Needs PostgreSQL at 127.0.0.1:5432 (user postgres, trust).
#   tools/import-bench.sh [SIGNED_MESSAGES] [PLAIN_MESSAGES] [ROUNDS]
# The verified runs alternate with `rsa-rate` (RSA-4096 verifications per second on every
# core, through the same function the importer uses): each round's ratio is the import's
# signatures per second over the mean of the rates measured right before and right after it,
# since a shared machine's speed drifts within minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
signed=${1:-60000}
plain=${2:-1000000}
rounds=${3:-4}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/ao-su-target}
flock /tmp/cargo.lock cargo build --release --bin su --bin su-import-bench
bin=$CARGO_TARGET_DIR/release
server=postgres://postgres@127.0.0.1:5432
nice -n 19 "$bin/su-import-bench" prepare --name su_bench_signed_$signed --messages "$signed" --processes 10 --signed
nice -n 19 "$bin/su-import-bench" prepare --name su_bench_plain_$plain --messages "$plain" --processes 10
rsa_rate() { "$bin/su-import-bench" rsa-rate --seconds 3 | sed 's/.*rsa4096_verify_per_s=\([0-9]*\).*/\1/'; }
# Imports into a fresh data dir; prints "wall_seconds signatures", the summary and /usr/bin/time's line.
run() {
  local name=$1; shift
  local dir; dir=$(mktemp -d)
  local out; out=$(/usr/bin/time -f "peak_rss_kb=%M wall_s=%e cpu_s=%U+%S" env -i PATH="$PATH" \
    SU_DATA_DIR="$dir" "$bin/su" import-postgres --database-url "$server/$name" "$@" 2>&1 | tail -5)
  echo "$out" | grep -E '^imported|peak_rss' >&2
  du -sh "$dir" | sed 's/^/store size: /' >&2
  rm -rf "$dir"
  # The rate counts the whole process (wall time from /usr/bin/time, to the hundredth): opening
  # the store, the import and the final flush and close, not just the summary's own clock.
  local signatures wall
  signatures=$(echo "$out" | sed -n 's/^imported .* \([0-9]*\) signatures verified in .*$/\1/p')
  wall=$(echo "$out" | sed -n 's/^peak_rss_kb=.* wall_s=\([0-9.]*\) .*$/\1/p')
  echo "$wall $signatures"
}
echo "== $signed signed messages, every signature verified, $rounds rounds"
before=$(rsa_rate)
for round in $(seq "$rounds"); do
  read -r seconds signatures < <(run su_bench_signed_$signed)
  after=$(rsa_rate)
  awk -v s="$seconds" -v n="$signatures" -v b="$before" -v a="$after" -v r="$round" -v m="$signed" \
    'BEGIN { rate = n / s; allowed = (a + b) / 2;
             printf "round %d: %.0f messages/s, %.0f signatures/s; rsa-rate %d before, %d after: ratio %.2f\n",
                    r, m / s, rate, b, a, rate / allowed }'
  before=$after
done
echo "== $plain messages, --skip-signatures"
read -r seconds _ < <(run su_bench_plain_$plain --skip-signatures)
awk -v s="$seconds" -v m="$plain" 'BEGIN { printf "%.0f messages/s (wall %.2f s)\n", m / s, s }'
