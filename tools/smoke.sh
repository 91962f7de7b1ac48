#!/usr/bin/env bash
# Runs the README's first command (the SU on its embedded default: local RocksDB, generated
# dev wallet, no network) exactly as written, from a scratch copy of the checkout so nothing
# is left behind, and checks that it answers GET / on port 9000; then checks the systemd unit.
set -euo pipefail
cd "$(dirname "$0")/.."
run_command=$(awk '/^```sh/{getline; print; exit}' README.md)
case "$run_command" in *"su -- serve"*) ;; *) echo "smoke: README's first command is not the run command: $run_command" >&2; exit 1 ;; esac
work=$(mktemp -d)
# Build into the checkout's usual target dir, so the copy reuses what is already compiled.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
git ls-files -z | xargs -0 cp --parents -t "$work" 2>/dev/null || cp -r . "$work"
echo "smoke: running \`$run_command\` in a copy of the checkout"
(cd "$work" && exec setsid bash -c "$run_command" >"$work/run.log" 2>&1) &
runner=$!
cleanup() { kill -TERM -- "-$runner" 2>/dev/null || true; wait "$runner" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
for _ in $(seq 1 1800); do
  if body=$(curl -sf "http://127.0.0.1:9000/" 2>/dev/null); then
    echo "GET / -> $body"
    echo "$body" | grep -q '"address":' || { echo "unexpected body" >&2; exit 1; }
    test -f "$work/data/wallet.json" || { echo "no dev wallet generated in ./data" >&2; exit 1; }
    [ "$(stat -c %a "$work/data/wallet.json")" = "600" ] || { echo "wallet mode is not 0600" >&2; exit 1; }
    if command -v systemd-analyze >/dev/null 2>&1; then
      sed "s#^ExecStart=.*#ExecStart=/bin/true#" systemd/su.service > "$work/su.service"
      systemd-analyze verify "$work/su.service"
      echo "systemd-analyze verify: ok"
    else
      echo "systemd-analyze is not installed: unit check skipped"
    fi
    exit 0
  fi
  kill -0 "$runner" 2>/dev/null || { echo "the run command exited" >&2; tail -20 "$work/run.log" >&2; exit 1; }
  sleep 0.2
done
echo "su did not answer GET / within 6 minutes" >&2; tail -20 "$work/run.log" >&2; exit 1
