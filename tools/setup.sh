#!/usr/bin/env bash
# Installs what building and testing su need on a fresh Debian machine: a C/C++ toolchain,
# libclang (librocksdb-sys runs bindgen), curl, git, and Node.js for the interop tests.
# Idempotent: does nothing when everything is present.
set -euo pipefail
need=()
command -v cc >/dev/null 2>&1 || need+=(build-essential)
command -v c++ >/dev/null 2>&1 || need+=(g++)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v git >/dev/null 2>&1 || need+=(git)
# The interop tests run the independent Node client (../shared/tools/gen-items).
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
# bindgen loads libclang.so or libclang-<version>.so; tools/libclang.sh looks where clang-sys does
# (libclang-cpp, often preinstalled, is a different library and does not count).
"$(dirname "$0")/libclang.sh" >/dev/null || need+=(libclang-dev)
if [ ${#need[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  echo "setup: installing ${need[*]}" >&2
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v cargo >/dev/null 2>&1 || { echo "setup: cargo is required (https://rustup.rs)" >&2; exit 1; }
