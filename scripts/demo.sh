#!/usr/bin/env bash
# The main job on a sample file, on embedded defaults: build sluice, make
# 64 MiB of log data, then
#   1. the CLI: keygen -> process -> info -> verify -> restore -> compare;
#   2. the service: sluice serve (SQLite + local store in a temporary data
#      dir, 127.0.0.1) -> tenant and token -> upload -> job -> content and a
#      byte range -> compare -> graceful stop.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p sluice-cli
bin=$(pwd)/target/release/sluice
work=$(mktemp -d)
server=""
cleanup() {
  [ -z "$server" ] || { kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true; }
  rm -rf "$work"
}
trap cleanup EXIT
python3 bench/gen_corpus.py "$work" --text-mib 64 --random-mib 0 --mixed-mib 0

echo "== the CLI"
recipient=$("$bin" keygen -o "$work/me.key")
echo "recipient: $recipient"
time "$bin" process "$work/text.bin" -o "$work/text.bin.sluice" -r "$recipient"
"$bin" info "$work/text.bin.sluice"
"$bin" verify "$work/text.bin.sluice" -i "$work/me.key"
time "$bin" restore "$work/text.bin.sluice" -o "$work/restored.bin" -i "$work/me.key"
cmp "$work/text.bin" "$work/restored.bin"
echo "restored file is identical to the original"

echo "== the service"
data=$work/sluice-data
"$bin" admin --data-dir "$data" tenant create demo >/dev/null
token=$("$bin" admin --data-dir "$data" token create --tenant demo --scope write 2>/dev/null)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port
"$bin" serve --data-dir "$data" --listen "127.0.0.1:$port" 2>"$work/server.log" &
server=$!
for _ in $(seq 100); do curl -sf "$url/readyz" >/dev/null && break; sleep 0.1; done
auth="Authorization: Bearer $token"
echo "upload:"; curl -sf -H "$auth" -T "$work/text.bin" "$url/v1/objects/logs/text.bin?wait=true"; echo
curl -sf -H "$auth" "$url/v1/objects/logs/text.bin/content" -o "$work/served.bin"
cmp "$work/text.bin" "$work/served.bin"
curl -sf -H "$auth" -H "Range: bytes=1000000-1999999" "$url/v1/objects/logs/text.bin/content" -o "$work/range.bin"
cmp "$work/range.bin" <(tail -c +1000001 "$work/text.bin" | head -c 1000000)
echo "served content and a byte range are identical to the original"
kill -TERM "$server"; wait "$server"; server=""
echo "server stopped cleanly"
