#!/usr/bin/env bash
# Side-by-side benchmark of sluice against the tools users would pick instead:
#   process  vs  zstd -T0 -3   and   zstd -T0 -3 | age -r KEY
#   restore  vs  zstd -d       and   age -d | zstd -d
# plus lz4, --encrypt none, --no-adaptive and --threads 1 vs 2 variants, peak
# RSS, output sizes, and RSS for a 512 MiB vs a 4 GiB (streamed) input.
# Runs alternate (every command once per round, bench/run.py), so the noise
# of a shared machine lands on all of them alike; medians are reported.
#
# Usage: bench/compare.sh            (corpus sizes from the issue: 512/256/512 MiB)
#        QUICK=1 bench/compare.sh    (64/32/64 MiB, 3 runs: a smoke test)
# Env: RUNS (default 5), CORPUS_DIR (bench/corpus), BENCH_TMP (/dev/shm/sluice-bench)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

if [ "${QUICK:-0}" = 1 ]; then
  sizes=(64 32 64); RUNS=${RUNS:-3}; corpus=${CORPUS_DIR:-bench/corpus-quick}
else
  sizes=(512 256 512); RUNS=${RUNS:-5}; corpus=${CORPUS_DIR:-bench/corpus}
fi
tmp=${BENCH_TMP:-/dev/shm/sluice-bench}
results=bench/out
mkdir -p "$tmp" "$results"

# Tools: installed from Debian if missing.
missing=()
for pair in zstd:zstd age:age /usr/bin/time:time; do
  cmd=${pair%%:*}; pkg=${pair##*:}
  command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${missing[@]}"
fi

# Corpus: deterministic, generated once.
want_text=$((sizes[0] << 20)); want_random=$((sizes[1] << 20)); want_mixed=$((sizes[2] << 20))
if [ "$(stat -c %s "$corpus/text.bin" 2>/dev/null || echo 0)" != "$want_text" ] ||
   [ "$(stat -c %s "$corpus/random.bin" 2>/dev/null || echo 0)" != "$want_random" ] ||
   [ "$(stat -c %s "$corpus/mixed.bin" 2>/dev/null || echo 0)" != "$want_mixed" ]; then
  echo "generating corpus in $corpus (text ${sizes[0]} MiB, random ${sizes[1]} MiB, mixed ${sizes[2]} MiB)"
  python3 bench/gen_corpus.py "$corpus" --text-mib "${sizes[0]}" --random-mib "${sizes[1]}" --mixed-mib "${sizes[2]}"
fi

cargo build --release --locked -p sluice-cli
S=$root/target/release/sluice
rm -f "$tmp/k.bin" "$tmp/age.key"
"$S" keygen --raw -o "$tmp/k.bin" >/dev/null
age-keygen -o "$tmp/age.key" 2>/dev/null
AGE_R=$(age-keygen -y "$tmp/age.key")
K="--key-file $tmp/k.bin"

rss() { # peak RSS in KiB of a shell command
  /usr/bin/time -f %M bash -c "$1" 2>&1 >/dev/null | tail -1
}

for name in text random mixed; do
  f=$root/$corpus/$name.bin
  echo "== $name ($(($(stat -c %s "$f") >> 20)) MiB)"
  cat "$f" >/dev/null # page cache
  echo "process:"
  python3 bench/run.py "$results/$name-encode.json" "$RUNS" \
    "sluice" "$S process $f -o $tmp/s.sluice $K --force -q" \
    "zstd" "zstd -T0 -3 -q -f $f -o $tmp/z.zst" \
    "zstd|age" "zstd -T0 -3 -q -c $f | age -r $AGE_R > $tmp/z.zst.age" \
    "sluice-lz4" "$S process $f -o $tmp/s4.sluice $K --compress lz4 --force -q" \
    "sluice-noenc" "$S process $f -o $tmp/sn.sluice --encrypt none --force -q" \
    "sluice-j1" "$S -j 1 process $f -o $tmp/s1.sluice $K --force -q" \
    "sluice-noadaptive" "$S process $f -o $tmp/sa.sluice $K --no-adaptive --force -q"
  echo "restore:"
  python3 bench/run.py "$results/$name-decode.json" "$RUNS" \
    "sluice" "$S restore $tmp/s.sluice -o $tmp/s.out $K --force -q" \
    "zstd" "zstd -d -q -f $tmp/z.zst -o $tmp/z.out" \
    "age|zstd" "age -d -i $tmp/age.key $tmp/z.zst.age | zstd -d -q -c > $tmp/za.out" \
    "sluice-lz4" "$S restore $tmp/s4.sluice -o $tmp/s4.out $K --force -q" \
    "sluice-j1" "$S -j 1 restore $tmp/s.sluice -o $tmp/s1.out $K --force -q" \
    "sluice>null" "$S restore $tmp/s.sluice -o - $K -q > /dev/null" \
    "zstd>null" "zstd -d -q -c $tmp/z.zst > /dev/null"
  cmp "$f" "$tmp/s.out"
  cmp "$f" "$tmp/za.out"
  cat > "$results/$name-extra.json" <<JSON
{"size": $(stat -c %s "$f"),
 "out_sluice": $(stat -c %s "$tmp/s.sluice"), "out_zstd": $(stat -c %s "$tmp/z.zst"),
 "out_zstd_age": $(stat -c %s "$tmp/z.zst.age"), "out_sluice_lz4": $(stat -c %s "$tmp/s4.sluice")}
JSON
done

# Memory does not grow with input size: 512 MiB file vs 4 GiB streamed through a pipe.
text=$root/$corpus/text.bin
reps=$(( (4096 + sizes[0] - 1) / sizes[0] ))
rss_small=$(rss "$S process $text -o - $K -q > /dev/null")
rss_big=$(rss "for i in \$(seq $reps); do cat $text; done | $S process - -o - $K -q > /dev/null")
echo "{\"rss_small\": $rss_small, \"rss_big\": $rss_big, \"big_mib\": $((reps * sizes[0]))}" > "$results/rss-scaling.json"

rm -f "$tmp"/*.out "$tmp"/*.sluice "$tmp"/*.zst "$tmp"/*.age
python3 bench/report.py "$results" | tee "$results/report.md"
