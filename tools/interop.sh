#!/usr/bin/env bash
# Interop with an independent client: installs gen-items (Node, @dha-team/arbundles, the
# library aoconnect builds on) into a cache dir, then runs tests/interop.rs against it:
# su parses and verifies items arbundles signed, gen-items verifies items su signed, and a
# real `su serve` schedules gen-items' Process and Messages into verifiable Assignments.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="${root}/../shared/tools/gen-items"
cache="${HOME}/.cache/ao-su-gen-items"

die() { echo "interop: $*" >&2; exit 1; }

command -v node >/dev/null 2>&1 || die "node is required (Node.js 18.3 or later); install it and retry"
command -v npm >/dev/null 2>&1 || die "npm is required (it ships with Node.js); install it and retry"
node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 18 || (a === 18 && b >= 3) ? 0 : 1)' \
  || die "Node.js 18.3 or later is required, found $(node --version)"
[ -f "${src}/package.json" ] && [ -f "${src}/gen-items.mjs" ] \
  || die "gen-items not found at ${src} (expected package.json and gen-items.mjs)"

mkdir -p "${cache}"
cp -f "${src}/gen-items.mjs" "${cache}/gen-items.mjs"
# The stamp is the package.json that node_modules was installed from; it is written only
# after a successful install, so an interrupted install is retried next time.
stamp="${cache}/.installed-package.json"
if [ ! -d "${cache}/node_modules" ] || ! cmp -s "${src}/package.json" "${stamp}"; then
  cp -f "${src}/package.json" "${cache}/package.json"
  rm -f "${stamp}"
  echo "interop: npm install in ${cache}" >&2
  (cd "${cache}" && npm install --no-audit --no-fund) || die "npm install failed in ${cache}"
  cp -f "${src}/package.json" "${stamp}"
fi

cd "${root}"
GEN_ITEMS_DIR="${cache}" cargo test --test interop -- --nocapture
