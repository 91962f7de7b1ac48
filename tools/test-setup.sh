#!/usr/bin/env bash
# Checks tools/libclang.sh, the libclang detection of tools/setup.sh, against directories
# laid out like the machines it meets: only libclang-cpp (the C++ library, preinstalled on
# Debian images) must say "missing"; a real libclang must be found.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "test-setup: $*" >&2; exit 1; }

expect() { # expect WANT DIRS...
  local want=$1 got
  shift
  got=$(LIBCLANG_SEARCH_DIRS="$(IFS=:; echo "$*")" "$here/libclang.sh" || true)
  case "$got" in
    "$want"*) ;;
    *) fail "with $(cd "$1" && ls | tr '\n' ' ')expected '$want', got '$got'" ;;
  esac
}

mkdir -p "$dir/cpp-only" "$dir/versioned" "$dir/plain" "$dir/soname-only"
touch "$dir/cpp-only/libclang-cpp.so.14"
expect missing "$dir/cpp-only"
touch "$dir/cpp-only/libclang-cpp.so"
expect missing "$dir/cpp-only"
touch "$dir/soname-only/libclang.so.1"
expect missing "$dir/soname-only"
touch "$dir/versioned/libclang-14.so"
expect found "$dir/cpp-only" "$dir/versioned"
touch "$dir/plain/libclang.so"
expect found "$dir/plain"
expect missing "$dir/does-not-exist"
echo "test-setup: libclang detection ok (6 cases)"
