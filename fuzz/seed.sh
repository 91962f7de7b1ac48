#!/usr/bin/env bash
# Seeds the fuzz corpus with every real item and bundle from ../shared/fixtures, then runs
# the target: `fuzz/seed.sh [seconds]` (needs `cargo install cargo-fuzz` and a nightly toolchain).
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p corpus/ans104_parse
cp ../../shared/fixtures/schedule-*/*.bin ../../shared/fixtures/single/*.bin \
   ../../shared/fixtures/items/*.bin ../../shared/fixtures/verbatim/message.bin corpus/ans104_parse/
cargo +nightly fuzz run ans104_parse corpus/ans104_parse -- -max_total_time="${1:-60}"
