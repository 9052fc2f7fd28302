#!/usr/bin/env bash
# Side-by-side benchmark of sluice against the tools users would pick instead,
# on a directory on disk (not tmpfs), with the same durability on both sides:
#   process  vs  zstd -T0 -3 (page cache only)  and  zstd -T0 -3 && sync FILE DIR
#            and zstd -T0 -3 | age -r KEY && sync   (sluice's default is durable)
#   restore  vs  zstd -d                        and  zstd -d && sync FILE DIR
#            and age -d | zstd -d                   (sluice's default is not synced)
# plus peak RSS, output sizes, and RSS for a 512 MiB vs a 4 GiB (streamed) input.
# Runs alternate (every command once per round, bench/run.py), so the noise
# of a shared machine lands on all of them alike; medians are reported.
#
# Usage: bench/compare.sh                 generated corpus (text/random/mixed,
#                                         512/256/512 MiB) + real corpus
#                                         (bench/real_corpus.sh: source.tar, binaries.tar)
#        bench/compare.sh PATH...         your own files; a directory is measured as a tar of it
#        QUICK=1 bench/compare.sh         64/32/64 MiB generated only, 3 runs (a smoke test)
# Env: RUNS (5), VARIANTS=1 (also lz4, --encrypt none, -j1, --no-adaptive),
#      BENCH_DIR (bench/tmp: on the disk this checkout is on), TMPFS=1 (use /dev/shm instead)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

if [ "${QUICK:-0}" = 1 ]; then
  sizes=(64 32 64); RUNS=${RUNS:-3}; corpus=${CORPUS_DIR:-bench/corpus-quick}
else
  sizes=(512 256 512); RUNS=${RUNS:-5}; corpus=${CORPUS_DIR:-bench/corpus}
fi
if [ "${TMPFS:-0}" = 1 ]; then tmp=/dev/shm/sluice-bench; else tmp=${BENCH_DIR:-$root/bench/tmp}; fi
results=bench/out
mkdir -p "$tmp" "$results"
rm -f "$results"/*.json
echo "working directory: $tmp ($(df --output=fstype "$tmp" | tail -1 | tr -d ' '))"

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

# The corpus: the user's paths, or generated + real data.
inputs=()
if [ $# -gt 0 ]; then
  for p in "$@"; do
    if [ -d "$p" ]; then
      t="$tmp/input-$(basename "$p").tar"
      tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf "$t" -C "$(dirname "$p")" "$(basename "$p")"
      inputs+=("$t")
    elif [ -f "$p" ]; then
      inputs+=("$(realpath "$p")")
    else
      echo "$p: not a file or directory" >&2; exit 2
    fi
  done
else
  want_text=$((sizes[0] << 20)); want_random=$((sizes[1] << 20)); want_mixed=$((sizes[2] << 20))
  if [ "$(stat -c %s "$corpus/text.bin" 2>/dev/null || echo 0)" != "$want_text" ] ||
     [ "$(stat -c %s "$corpus/random.bin" 2>/dev/null || echo 0)" != "$want_random" ] ||
     [ "$(stat -c %s "$corpus/mixed.bin" 2>/dev/null || echo 0)" != "$want_mixed" ]; then
    echo "generating corpus in $corpus (text ${sizes[0]} MiB, random ${sizes[1]} MiB, mixed ${sizes[2]} MiB)"
    python3 bench/gen_corpus.py "$corpus" --text-mib "${sizes[0]}" --random-mib "${sizes[1]}" --mixed-mib "${sizes[2]}"
  fi
  inputs+=("$root/$corpus/text.bin" "$root/$corpus/random.bin" "$root/$corpus/mixed.bin")
  if [ "${QUICK:-0}" != 1 ]; then
    bench/real_corpus.sh bench/corpus-real
    inputs+=("$root/bench/corpus-real/source.tar" "$root/bench/corpus-real/binaries.tar")
  fi
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

for f in "${inputs[@]}"; do
  name=$(basename "$f"); name=${name%.*}
  echo "== $name ($(($(stat -c %s "$f") >> 20)) MiB, $f)"
  cat "$f" >/dev/null # page cache: the input is read from memory by every tool alike
  echo "process:"
  variants=()
  if [ "${VARIANTS:-0}" = 1 ]; then
    variants=(
      "sluice-lz4" "$S process $f -o $tmp/s4.sluice $K --compress lz4 --force -q"
      "sluice-noenc" "$S process $f -o $tmp/sn.sluice --encrypt none --force -q"
      "sluice-j1" "$S -j 1 process $f -o $tmp/s1.sluice $K --force -q"
      "sluice-noadaptive" "$S process $f -o $tmp/sa.sluice $K --no-adaptive --force -q")
  fi
  python3 bench/run.py "$results/$name-encode.json" "$RUNS" \
    "sluice" "$S process $f -o $tmp/s.sluice $K --force -q" \
    "sluice-nosync" "$S process $f -o $tmp/s.sluice $K --force -q --no-sync" \
    "zstd" "zstd -T0 -3 -q -f $f -o $tmp/z.zst" \
    "zstd+sync" "zstd -T0 -3 -q -f $f -o $tmp/z.zst && sync $tmp/z.zst $tmp" \
    "zstd|age+sync" "zstd -T0 -3 -q -c $f | age -r $AGE_R > $tmp/z.zst.age && sync $tmp/z.zst.age $tmp" \
    "${variants[@]}"
  echo "restore:"
  variants=()
  if [ "${VARIANTS:-0}" = 1 ]; then
    variants=(
      "sluice-lz4" "$S restore $tmp/s4.sluice -o $tmp/s4.out $K --force -q"
      "sluice-j1" "$S -j 1 restore $tmp/s.sluice -o $tmp/s1.out $K --force -q")
  fi
  # Each restore starts with no dirty pages left by the one before (most
  # do not sync), so none pays for another's write-back.
  BENCH_SETTLE=sync python3 bench/run.py "$results/$name-decode.json" "$RUNS" \
    "sluice" "$S restore $tmp/s.sluice -o $tmp/s.out $K --force -q" \
    "zstd" "zstd -d -q -f $tmp/z.zst -o $tmp/z.out" \
    "sluice+sync" "$S restore $tmp/s.sluice -o $tmp/s.out $K --force -q --sync" \
    "zstd+sync" "zstd -d -q -f $tmp/z.zst -o $tmp/z.out && sync $tmp/z.out $tmp" \
    "age|zstd" "age -d -i $tmp/age.key $tmp/z.zst.age | zstd -d -q -c > $tmp/za.out" \
    "sluice>null" "$S restore $tmp/s.sluice -o - $K -q > /dev/null" \
    "zstd>null" "zstd -d -q -c $tmp/z.zst > /dev/null" \
    "${variants[@]}"
  cmp "$f" "$tmp/s.out"
  cmp "$f" "$tmp/za.out"
  cat > "$results/$name-extra.json" <<JSON
{"size": $(stat -c %s "$f"), "order": ${#inputs[@]},
 "out_sluice": $(stat -c %s "$tmp/s.sluice"), "out_zstd": $(stat -c %s "$tmp/z.zst"),
 "out_zstd_age": $(stat -c %s "$tmp/z.zst.age")}
JSON
  rm -f "$tmp"/*.out "$tmp"/*.sluice "$tmp"/*.zst "$tmp"/*.age
done

# Memory does not grow with input size: the first input vs 4 GiB streamed through a pipe.
first=${inputs[0]}
first_mib=$(( $(stat -c %s "$first") >> 20 ))
reps=$(( (4096 + first_mib - 1) / (first_mib > 0 ? first_mib : 1) ))
rss_small=$(rss "$S process $first -o - $K -q > /dev/null")
rss_big=$(rss "for i in \$(seq $reps); do cat $first; done | $S process - -o - $K -q > /dev/null")
echo "{\"rss_small\": $rss_small, \"rss_big\": $rss_big, \"small_mib\": $first_mib, \"big_mib\": $((reps * first_mib))}" > "$results/rss-scaling.json"

rm -f "$tmp"/input-*.tar
python3 bench/report.py "$results" | tee "$results/report.md"
