#!/usr/bin/env bash
# The README's run command in miniature: `su serve` on a fresh data dir with no network and
# no configuration must answer GET / within seconds; then the systemd unit is checked.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$PWD/target}"
case "$target" in /*) ;; *) target="$PWD/$target" ;; esac
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
port=$(( 20000 + RANDOM % 20000 ))
(cd "$work" && exec env -u SU_WALLET_PATH -u SU_DATA_DIR "$target/debug/su" serve --bind 127.0.0.1 --port "$port" 2>"$work/log") &
pid=$!
for _ in $(seq 1 100); do
  if body=$(curl -sf "http://127.0.0.1:$port/" 2>/dev/null); then
    echo "GET / -> $body"
    echo "$body" | grep -q '"address":' || { echo "unexpected body" >&2; exit 1; }
    kill -TERM "$pid"; wait "$pid" || { echo "su exited non-zero after SIGTERM" >&2; exit 1; }
    test -f "$work/data/wallet.json" || { echo "no dev wallet generated" >&2; exit 1; }
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
  sleep 0.1
done
echo "su did not answer GET / within 10 s" >&2; cat "$work/log" >&2; exit 1
