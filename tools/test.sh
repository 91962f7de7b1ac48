#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit + integration + end-to-end tests (which run
# the real su binary over HTTP), the interop check with the independent Node client, the
# benches run once each in test mode, and the README's run command. Exits non-zero on any
# failure. The fuzz targets build in their own target dir (tools/fuzz.sh), without RocksDB.
#
# Every cargo step builds the same targets with the same features and profile (dev, with
# `--all-targets`), so RocksDB's C++ is compiled once for all of them; the end-to-end tests
# find the binary through CARGO_BIN_EXE_su, which `cargo test` builds with them. The README's
# run command (checked last) builds the release profile, RocksDB's second and last compile.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
export CARGO_TERM_COLOR=never
echo "== setup detects libclang as clang-sys does"
tools/test-setup.sh
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets"
cargo clippy --all-targets -- -D warnings
echo "== cargo test --all-targets (unit, golden, property, end-to-end, crash; benches once each)"
cargo test --all-targets
echo "== fuzz every parser the network reaches, 20 s per target (fuzz/README.md)"
tools/fuzz.sh 20
echo "== interop with gen-items (arbundles)"
tools/interop.sh
echo "== the README's run command starts the SU and answers GET /"
tools/smoke.sh
echo "all checks passed"
