#!/usr/bin/env bash
# A screenshot of the search page of `cargo xtask serve` searching by one indexed image:
#
#   scripts/page_screenshot.sh <index dir> <image id> <out.png> [xtask binary]
#
# Serves the index on a free loopback port with the xtask binary (default: `cargo xtask`),
# opens `/?id=<image id>` in headless Chromium (Debian: apt-get install chromium), waits for
# the results, saves the screenshot and stops the server.
set -euo pipefail
index="$1"
id="$2"
out="$3"
xtask="${4:-}"
port=$((20000 + RANDOM % 20000))
log="$(mktemp)"
profile="$(mktemp -d)"
if [ -n "$xtask" ]; then
  "$xtask" serve --index "$index" --addr "127.0.0.1:$port" >"$log" 2>&1 &
else
  cargo xtask serve --index "$index" --addr "127.0.0.1:$port" >"$log" 2>&1 &
fi
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$profile" "$log"' EXIT
for _ in $(seq 1 600); do
  grep -q "serving" "$log" && break
  kill -0 $server 2>/dev/null || { cat "$log"; exit 1; }
  sleep 0.5
done
grep -q "serving" "$log" || { cat "$log"; echo "the server did not start"; exit 1; }
cat "$log"
# The virtual time budget lets the page's requests (search, thumbnails) finish first.
chromium --headless --no-sandbox --disable-gpu --disable-background-networking --no-first-run \
  --user-data-dir="$profile" --hide-scrollbars --window-size=1200,900 \
  --virtual-time-budget=10000 --screenshot="$out" "http://127.0.0.1:$port/?id=$id" 2>/dev/null
echo "screenshot: $out"
