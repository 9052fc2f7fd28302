#!/usr/bin/env bash
# Measures the knobs whose defaults docs/PERFORMANCE.md justifies: chunk size
# (speed, output size, RSS) and chunks in flight, on disk, at the default
# durability, against zstd -T0 -3's output size on the same file.
# Usage: bench/tune.sh [FILE...]   (default: the generated text and mixed
#        corpora and the real source.tar; run bench/compare.sh first, it builds them)
# Env: RUNS (3), CHUNKS ("1MiB 4MiB 8MiB 16MiB"), IN_FLIGHT ("default 4 8"),
#      BENCH_DIR (bench/tmp, on disk)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
tmp=${BENCH_DIR:-$(pwd)/bench/tmp}
mkdir -p "$tmp"
files=("$@")
[ ${#files[@]} -gt 0 ] || files=(bench/corpus/text.bin bench/corpus/mixed.bin bench/corpus-real/source.tar)
cargo build --release --locked -p sluice-cli
S=$(pwd)/target/release/sluice
[ -f "$tmp/k.bin" ] || "$S" keygen --raw -o "$tmp/k.bin" >/dev/null
K="--key-file $tmp/k.bin"
median() { python3 -c "import json;print('%.3f'%json.load(open('$1'))['results'][0]['median'])"; }
printf "| file | chunk | in-flight | process s | restore s | output / zstd -T0 -3 | RSS process MiB |\n|---|---|---|---|---|---|---|\n"
for f in "${files[@]}"; do
  [ -f "$f" ] || { echo "missing $f: run bench/compare.sh first" >&2; exit 1; }
  cat "$f" >/dev/null
  zstd -T0 -3 -q -c "$f" > "$tmp/t.zst"
  zsize=$(stat -c %s "$tmp/t.zst")
  for chunk in ${CHUNKS:-1MiB 4MiB 8MiB 16MiB}; do
    for inflight in ${IN_FLIGHT:-default 4 8}; do
      fl=""; [ "$inflight" = default ] || fl="--in-flight $inflight"
      python3 bench/run.py "$tmp/t.json" "$RUNS" x "$S $fl process $f -o $tmp/t.sluice $K --chunk-size $chunk --force -q" >/dev/null
      enc=$(median "$tmp/t.json")
      python3 bench/run.py "$tmp/t.json" "$RUNS" x "$S $fl restore $tmp/t.sluice -o $tmp/t.out $K --force -q" >/dev/null
      dec=$(median "$tmp/t.json")
      rss=$(/usr/bin/time -f %M $S $fl process "$f" -o "$tmp/r.sluice" $K --chunk-size $chunk --force -q 2>&1 | tail -1)
      printf "| %s | %s | %s | %s | %s | %.4f | %d |\n" "$(basename "$f")" "$chunk" "$inflight" "$enc" "$dec" \
        "$(echo "$(stat -c %s "$tmp/t.sluice") / $zsize" | bc -l)" $((rss / 1024))
    done
  done
done
rm -f "$tmp"/t.* "$tmp"/r.sluice
