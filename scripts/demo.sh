#!/usr/bin/env bash
# The main job on a sample file: build sluice, make 64 MiB of log data, then
# keygen -> process -> info -> verify -> restore -> compare.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p sluice-cli
bin=target/release/sluice
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 bench/gen_corpus.py "$work" --text-mib 64 --random-mib 0 --mixed-mib 0
recipient=$("$bin" keygen -o "$work/me.key")
echo "recipient: $recipient"
time "$bin" process "$work/text.bin" -o "$work/text.bin.sluice" -r "$recipient"
"$bin" info "$work/text.bin.sluice"
"$bin" verify "$work/text.bin.sluice" -i "$work/me.key"
time "$bin" restore "$work/text.bin.sluice" -o "$work/restored.bin" -i "$work/me.key"
cmp "$work/text.bin" "$work/restored.bin"
echo "restored file is identical to the original"
