#!/usr/bin/env bash
# The import benchmark (BENCHMARKS.md): messages imported per second from a reference-layout
# Postgres database, with every signature verified and with --skip-signatures, and the
# importer's peak RSS. Needs PostgreSQL at 127.0.0.1:5432 (user postgres, trust).
#   tools/import-bench.sh [SIGNED_MESSAGES] [PLAIN_MESSAGES]
set -euo pipefail
cd "$(dirname "$0")/.."
signed=${1:-20000}
plain=${2:-1000000}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/ao-su-target}
flock /tmp/cargo.lock cargo build --release --bin su --bin su-import-bench
bin=$CARGO_TARGET_DIR/release
server=postgres://postgres@127.0.0.1:5432
nice -n 19 "$bin/su-import-bench" prepare --name su_bench_signed_$signed --messages "$signed" --processes 10 --signed
nice -n 19 "$bin/su-import-bench" prepare --name su_bench_plain_$plain --messages "$plain" --processes 10
"$bin/su-import-bench" rsa-rate --seconds 5
run() {
  local name=$1; shift
  local dir; dir=$(mktemp -d)
  /usr/bin/time -f "peak_rss_kb=%M wall_s=%e" env -i PATH="$PATH" SU_DATA_DIR="$dir" \
    "$bin/su" import-postgres --database-url "$server/$name" "$@" | tail -4
  du -sh "$dir" | sed 's/^/store size: /'
  rm -rf "$dir"
}
echo "== $signed signed messages, every signature verified"
run su_bench_signed_$signed
echo "== $plain messages, --skip-signatures"
run su_bench_plain_$plain --skip-signatures
