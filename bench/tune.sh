#!/usr/bin/env bash
# Measures the knobs whose defaults docs/PERFORMANCE.md justifies:
# chunk size (speed, output size, RSS) and chunks in flight, on the text and
# mixed corpora. Run bench/compare.sh first (it generates the corpus).
# Usage: bench/tune.sh   Env: RUNS (3), CORPUS_DIR (bench/corpus), BENCH_TMP
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
corpus=${CORPUS_DIR:-bench/corpus}
tmp=${BENCH_TMP:-/dev/shm/sluice-bench}
mkdir -p "$tmp"
cargo build --release --locked -p sluice-cli
S=$(pwd)/target/release/sluice
[ -f "$tmp/k.bin" ] || "$S" keygen --raw -o "$tmp/k.bin" >/dev/null
K="--key-file $tmp/k.bin"
printf "| corpus | chunk | in-flight | process s | restore s | output bytes | RSS enc MiB |\n|---|---|---|---|---|---|---|\n"
for name in text mixed; do
  f=$corpus/$name.bin
  [ -f "$f" ] || { echo "missing $f: run bench/compare.sh first" >&2; exit 1; }
  cat "$f" >/dev/null
  for chunk in 1MiB 2MiB 4MiB 8MiB 16MiB; do
    for inflight in default 4 12; do
      fl=""; [ "$inflight" = default ] || fl="--in-flight $inflight"
      enc=$(python3 bench/run.py "$tmp/t.json" "$RUNS" x "$S $fl process $f -o $tmp/t.sluice $K --chunk-size $chunk --force -q" >/dev/null && python3 -c "import json;print('%.3f'%json.load(open('$tmp/t.json'))['results'][0]['median'])")
      dec=$(python3 bench/run.py "$tmp/t.json" "$RUNS" x "$S $fl restore $tmp/t.sluice -o $tmp/t.out $K --force -q" >/dev/null && python3 -c "import json;print('%.3f'%json.load(open('$tmp/t.json'))['results'][0]['median'])")
      rss=$(/usr/bin/time -f %M $S $fl process "$f" -o "$tmp/r.sluice" $K --chunk-size $chunk --force -q 2>&1 | tail -1)
      printf "| %s | %s | %s | %s | %s | %s | %d |\n" "$name" "$chunk" "$inflight" "$enc" "$dec" "$(stat -c %s "$tmp/t.sluice")" $((rss / 1024))
    done
  done
done
rm -f "$tmp"/t.* "$tmp"/r.sluice
