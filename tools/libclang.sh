#!/usr/bin/env bash
# Says whether bindgen (through clang-sys, which librocksdb-sys's build script uses) will find a
# libclang to load: prints "found PATH" and exits 0, or prints "missing" and exits 1.
#
# clang-sys loads a file named exactly `libclang.so` or `libclang-<version>.so` (for example
# libclang-14.so): from LIBCLANG_PATH, the LLVM lib dirs, or the linker's path. Nothing else
# counts: `libclang-cpp.so.14` (package libclang-cpp14, often preinstalled) is the C++ library
# and bindgen cannot use it, and a bare `libclang.so.1` is not looked at either.
#
# LIBCLANG_SEARCH_DIRS (colon-separated) replaces the default directories; the tests use it.
set -uo pipefail

usable() {
  local name
  name=$(basename "$1")
  case "$name" in
    libclang-cpp*) return 1 ;;
    libclang.so) ;;
    libclang-*.so) ;;
    *) return 1 ;;
  esac
  [ -e "$1" ]
}

dirs=()
if [ -n "${LIBCLANG_SEARCH_DIRS:-}" ]; then
  IFS=: read -r -a dirs <<<"$LIBCLANG_SEARCH_DIRS"
else
  [ -n "${LIBCLANG_PATH:-}" ] && dirs+=("$LIBCLANG_PATH")
  command -v llvm-config >/dev/null 2>&1 && dirs+=("$(llvm-config --libdir 2>/dev/null)")
  for d in /usr/lib/llvm-*/lib /usr/local/llvm*/lib /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu \
    /usr/lib64 /usr/lib /usr/local/lib64 /usr/local/lib; do
    [ -d "$d" ] && dirs+=("$d")
  done
  if command -v ldconfig >/dev/null 2>&1; then
    while read -r path; do dirs+=("$(dirname "$path")"); done < <(ldconfig -p 2>/dev/null | awk '/libclang/ {print $NF}')
  fi
fi

for d in "${dirs[@]}"; do
  [ -n "$d" ] && [ -d "$d" ] || continue
  for f in "$d"/libclang.so "$d"/libclang-*.so; do
    if usable "$f"; then
      echo "found $f"
      exit 0
    fi
  done
done
echo "missing"
exit 1
