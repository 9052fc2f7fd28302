#!/usr/bin/env bash
# The service against the CLI on the same machine and disk:
#   1. upload-to-stored throughput of one 1 GiB file (generated text, and
#      real data where bench/corpus-real holds it) (curl -T ...?wait=true)
#      vs `sluice process` of the same file, alternating runs (both durable:
#      the CLI syncs its output, the service its staged upload and container);
#   2. a whole-object download of it to a file (curl; curl --compressed,
#      which takes the stored chunks as zstd frames; `sluice pull`, which
#      takes them too and decompresses on every core) vs `sluice restore`
#      to a file (none syncs);
#   3. 8 concurrent 256 MiB uploads: aggregate throughput and server peak RSS;
#   4. small objects: 4 KiB uploads at concurrency 32 (wrk), P50/P99 latency;
#   5. range reads: random 64 KiB ranges of a stored 256 MiB object at
#      concurrency 8 (wrk), with the opened-index cache and without it.
# Usage: bench/serve.sh    Env: RUNS (3), BENCH_DIR (bench/tmp, on disk)
set -euo pipefail
# Servers started here serve no S3 API unless asked (several run at once;
# the S3 face's own tests give it an address).
export SLUICE_S3_LISTEN=${SLUICE_S3_LISTEN:-off}
cd "$(dirname "$0")/.."
root=$(pwd)
RUNS=${RUNS:-3}
tmp=${BENCH_DIR:-$root/bench/tmp}/serve
rm -rf "$tmp"; mkdir -p "$tmp"
missing=()
for pair in curl:curl wrk:wrk; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair##*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${missing[@]}"
fi
cargo build --release --locked -p sluice-cli
S=$root/target/release/sluice

# Inputs: 1 GiB of the generated text corpus, and of a real one
# (bench/corpus-real, bench/real_corpus.sh) where present; 256 MiB of the
# generated mixed one.
[ -f bench/corpus/text.bin ] || python3 bench/gen_corpus.py bench/corpus --text-mib 512 --random-mib 256 --mixed-mib 512
cat bench/corpus/text.bin bench/corpus/text.bin > "$tmp/text.bin"
inputs=(text)
if [ -f bench/corpus-real/binaries.tar ]; then
  head -c $((1 << 30)) bench/corpus-real/binaries.tar > "$tmp/real.bin"
  inputs+=(real)
fi
head -c $((256 << 20)) bench/corpus/mixed.bin > "$tmp/256m.bin"

data=$tmp/data
$S admin --data-dir "$data" tenant create bench >/dev/null 2>&1
TOKEN=$($S admin --data-dir "$data" token create --tenant bench --scope write 2>/dev/null)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
U=http://127.0.0.1:$port
start_server() {
  # The rate limiter off: what is measured is the server, not its limit.
  $S serve --data-dir "$data" --listen "127.0.0.1:$port" --default-rate 0 "$@" 2>>"$tmp/server.log" &
  server=$!
  for _ in $(seq 100); do curl -sf "$U/healthz" >/dev/null && break; sleep 0.1; done
}
start_server
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$tmp"' EXIT
$S keygen --raw -o "$tmp/k.bin" >/dev/null
H="Authorization: Bearer $TOKEN"
export SLUICE_TOKEN=$TOKEN  # for sluice pull

# Upload-to-stored and whole-object downloads of one 1 GiB file ($1: its
# name, `text` or `real`), against process and restore of the same file.
whole_file() {
  local input=$1 f=$tmp/$1.bin
  echo "== 1 GiB ($input): upload-to-stored vs sluice process"
  python3 bench/run.py "$tmp/one-$input.json" "$RUNS" \
    "service" "curl -sf -o /dev/null -H '$H' -T $f '$U/v1/objects/$input?wait=true'" \
    "process" "$S process $f -o $tmp/$input.sluice --key-file $tmp/k.bin -f -q"
  python3 - "$tmp/one-$input.json" <<'PY'
import json, sys
r = {x["command"]: x["median"] for x in json.load(open(sys.argv[1]))["results"]}
print(f"service {1024/r['service']:.0f} MiB/s, process {1024/r['process']:.0f} MiB/s: "
      f"service / process throughput = {r['process']/r['service']:.2f}")
PY

  echo "== 1 GiB ($input): whole-object download (curl; curl --compressed; sluice pull) vs sluice restore to a file (none syncs)"
  # Each starts with no dirty pages left by the one before (none syncs).
  BENCH_SETTLE=sync python3 bench/run.py "$tmp/down-$input.json" "$RUNS" \
    "download" "curl -sf -o $tmp/dl.bin -H '$H' '$U/v1/objects/$input/content'" \
    "zstd" "curl -sf --compressed -o $tmp/dz.bin -H '$H' '$U/v1/objects/$input/content'" \
    "pull" "$S pull $input --server $U -o $tmp/pl.bin -f -q" \
    "restore" "$S restore $tmp/$input.sluice -o $tmp/rs.bin --key-file $tmp/k.bin -f -q"
  for g in dl dz pl rs; do cmp -s "$tmp/$g.bin" "$f" || { echo "$g.bin: a restored copy differs"; exit 1; }; done
  python3 - "$tmp/down-$input.json" <<'PY'
import json, sys
r = {x["command"]: x["median"] for x in json.load(open(sys.argv[1]))["results"]}
print(f"curl {1024/r['download']:.0f} MiB/s, curl --compressed {1024/r['zstd']:.0f} MiB/s, "
      f"pull {1024/r['pull']:.0f} MiB/s, restore {1024/r['restore']:.0f} MiB/s: "
      f"download / restore throughput = {r['restore']/r['download']:.2f} (curl), "
      f"{r['restore']/r['zstd']:.2f} (curl --compressed), {r['restore']/r['pull']:.2f} (pull)")
PY
  rm -f "$tmp/dl.bin" "$tmp/dz.bin" "$tmp/pl.bin" "$tmp/rs.bin"
}
for input in "${inputs[@]}"; do whole_file "$input"; done

# The same without the file: curl writes its file from one thread while
# restore writes its chunks from every core, so the file-to-file ratio
# measures curl's page-cache writes as much as the server. (Not a pipe
# either: curl writes a pipe in small pieces and that costs it more than
# the transfer.)
echo "== 1 GiB: whole-object download vs sluice restore, both to /dev/null"
python3 bench/run.py "$tmp/down-null.json" "$RUNS" \
  "download" "curl -sf -o /dev/null -H '$H' '$U/v1/objects/text/content'" \
  "restore" "$S restore $tmp/text.sluice -o - --key-file $tmp/k.bin -q > /dev/null"
python3 - "$tmp/down-null.json" <<'PY'
import json, sys
r = {x["command"]: x["median"] for x in json.load(open(sys.argv[1]))["results"]}
print(f"download {1024/r['download']:.0f} MiB/s, restore {1024/r['restore']:.0f} MiB/s: "
      f"download / restore throughput = {r['restore']/r['download']:.2f}")
PY

echo "== 8 concurrent 256 MiB uploads"
start=$(date +%s.%N)
seq 8 | xargs -P 8 -I{} curl -sf -o /dev/null -H "$H" -T "$tmp/256m.bin" "$U/v1/objects/c{}?wait=true"
end=$(date +%s.%N)
hwm=$(awk '/VmHWM/ {print int($2/1024)}' /proc/$server/status)
python3 -c "print(f'aggregate {8*256/($end-$start):.0f} MiB/s; server peak RSS so far {$hwm} MiB')"

echo "== 4 KiB uploads, concurrency 32, 10 s (wrk)"
head -c 4096 bench/corpus/text.bin > "$tmp/small.bin"
cat > "$tmp/put.lua" <<LUA
wrk.method = "PUT"
wrk.headers["Authorization"] = "Bearer $TOKEN"
local f = io.open("$tmp/small.bin", "rb"); wrk.body = f:read("*a"); f:close()
local n = 0
request = function() n = n + 1; return wrk.format(nil, "/v1/objects/small/" .. n) end
LUA
wrk -t 2 -c 32 -d 10s --latency -s "$tmp/put.lua" "$U" | grep -E "Requests/sec|50%|99%|Non-2xx|Socket errors" || true
hwm=$(awk '/VmHWM/ {print int($2/1024)}' /proc/$server/status)
echo "server peak RSS over the whole run: $hwm MiB"

echo "== random 64 KiB ranges of a 256 MiB object, concurrency 8, 10 s each (wrk)"
# The same object stored twice: default 8 MiB chunks, and 1 MiB chunks.
curl -sf -o /dev/null -X PUT -H "$H" -d '{"chunk_size":"1MiB"}' "$U/v1/pipelines/small-chunks"
curl -sf -o /dev/null -H "$H" -T "$tmp/256m.bin" "$U/v1/objects/r1?wait=true&pipeline=small-chunks"
for key in c1 r1; do
  cat > "$tmp/range-$key.lua" <<LUA
local size = 256 * 1048576
request = function()
  local a = math.random(0, size - 65536)
  return wrk.format("GET", "/v1/objects/$key/content",
    { Authorization = "Bearer $TOKEN", Range = "bytes=" .. a .. "-" .. (a + 65535) })
end
LUA
done
ranges() {
  echo "-- $1"
  wrk -t 2 -c 8 -d 10s --latency -s "$tmp/range-$2.lua" "$U" | grep -E "Requests/sec|50%|99%|Non-2xx|Socket errors" || true
}
ranges "8 MiB chunks, index cache on (default)" c1
ranges "1 MiB chunks, index cache on" r1
kill $server; wait $server 2>/dev/null || true
start_server --index-cache-mib 0
ranges "8 MiB chunks, index cache off (--index-cache-mib 0: header, key and index read per request)" c1
ranges "1 MiB chunks, index cache off" r1
