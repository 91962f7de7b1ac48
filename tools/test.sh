#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit + integration + end-to-end tests (which run
# the real su binary over HTTP), the interop check with the independent Node client, a short
# fuzz-style property run, and a build of the benches. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
export CARGO_TERM_COLOR=never
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets -- -D warnings
echo "== cargo build (su binary for the end-to-end tests)"
cargo build --bin su
echo "== cargo test"
cargo test --all-targets
echo "== interop with gen-items (arbundles)"
tools/interop.sh
echo "== benches compile"
cargo bench --no-run >/dev/null
echo "== the README's run command starts the SU and answers GET /"
tools/smoke.sh
echo "all checks passed"
