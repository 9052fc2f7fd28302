#!/usr/bin/env bash
# The S3 face against the CLI and the native API, on one machine and disk,
# with a real S3 client (the AWS CLI at its defaults: 8 MiB parts, 10 at a
# time, CRC32 checksums) on the other end, alternating runs:
#   1. a 1 GiB upload, multipart as the AWS CLI does it, until stored
#      (durable: parts, container and rows synced) vs `sluice process` of
#      the same file (which syncs its output);
#   2. a whole-object download to a file (`aws s3 cp`, ranged GETs in
#      parallel) vs `sluice restore` to a file (none syncs); beside them
#      the same `aws s3 cp` from nginx serving the plaintext file as it
#      lies (sendfile, no auth): the most any server could give that client;
#   3. random 64 KiB range GETs of a stored 256 MiB object at concurrency 8
#      (wrk): a presigned S3 URL vs the native API's range reads.
# Each on the generated text corpus and on a real one (bench/corpus-real,
# bench/real_corpus.sh), where present.
# Usage: bench/s3.sh    Env: RUNS (3), BENCH_DIR (bench/tmp, on disk)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
RUNS=${RUNS:-3}
tmp=${BENCH_DIR:-$root/bench/tmp}/s3
rm -rf "$tmp"; mkdir -p "$tmp"
missing=()
for pair in curl:curl wrk:wrk /usr/bin/time:time nginx:nginx; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair##*:}")
done
[ ${#missing[@]} -eq 0 ] || scripts/apt_install.sh "${missing[@]}"
VENV=target/venv-bench
if [ ! -x "$VENV/bin/aws" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q awscli boto3
fi
cargo build --release --locked -p sluice-cli
S=$root/target/release/sluice
# The AWS CLI's CA bundle is irrelevant over http, and some hosts set a broken one.
unset AWS_CA_BUNDLE

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
read -r AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY < <($S admin --data-dir "$data" s3-key create --tenant bench 2>/dev/null)
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_DEFAULT_REGION=us-east-1
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
s3_port=$(free_port)
U=http://127.0.0.1:$port
E=http://127.0.0.1:$s3_port
# The rate limiter off: what is measured is the server, not its limit.
$S serve --data-dir "$data" --listen "127.0.0.1:$port" --s3-listen "127.0.0.1:$s3_port" --default-rate 0 \
  2>>"$tmp/server.log" &
server=$!
# nginx serves the inputs' plaintext at the same bucket/key paths, to show
# what the AWS CLI itself can download on this host.
ngx=$tmp/nginx
mkdir -p "$ngx/www/bench" "$ngx/tmp" "$ngx/logs"
ngx_port=$(free_port)
cat >"$ngx/nginx.conf" <<NGX
$([ "$(id -u)" = 0 ] && echo "user root root;" || true)
worker_processes auto;
daemon off;
pid $ngx/nginx.pid;
error_log $ngx/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  client_body_temp_path $ngx/tmp;
  server {
    listen 127.0.0.1:$ngx_port;
    root $ngx/www;
  }
}
NGX
nginx -c "$ngx/nginx.conf" -p "$ngx" 2>/dev/null &
nginx_pid=$!
trap 'kill $server $nginx_pid 2>/dev/null; wait $server $nginx_pid 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do curl -sf "$U/healthz" >/dev/null && break; sleep 0.1; done
AWS="$root/$VENV/bin/aws --endpoint-url $E"
$AWS s3 mb s3://bench >/dev/null
$S keygen --raw -o "$tmp/k.bin" >/dev/null
H="Authorization: Bearer $TOKEN"
ratio() {
  python3 - "$@" <<'PY'
import json, sys
path, a, b, what = sys.argv[1:5]
r = {x["command"]: x["median"] for x in json.load(open(path))["results"]}
print(f"{a} {1024/r[a]:.0f} MiB/s, {b} {1024/r[b]:.0f} MiB/s: {what} = {r[b]/r[a]:.2f}")
PY
}

for input in "${inputs[@]}"; do
  f=$tmp/$input.bin
  echo "== 1 GiB ($input): aws s3 cp (multipart) until stored vs sluice process"
  python3 bench/run.py "$tmp/up-$input.json" "$RUNS" \
    "s3" "$AWS s3 cp --only-show-errors $f s3://bench/$input.bin" \
    "process" "$S process $f -o $tmp/$input.sluice --key-file $tmp/k.bin -f -q"
  ratio "$tmp/up-$input.json" s3 process "S3 upload / process throughput"

  echo "== 1 GiB ($input): aws s3 cp download to a file (from sluice; from nginx) vs sluice restore to a file"
  ln -f "$f" "$ngx/www/bench/$input.bin"
  # Each starts with no dirty pages left by the one before (none syncs).
  BENCH_SETTLE=sync python3 bench/run.py "$tmp/down-$input.json" "$RUNS" \
    "s3" "$AWS s3 cp --only-show-errors s3://bench/$input.bin $tmp/dl.bin" \
    "nginx" "$root/$VENV/bin/aws --endpoint-url http://127.0.0.1:$ngx_port s3 cp --only-show-errors s3://bench/$input.bin $tmp/ng.bin" \
    "restore" "$S restore $tmp/$input.sluice -o $tmp/rs.bin --key-file $tmp/k.bin -f -q"
  for g in dl ng rs; do cmp -s "$tmp/$g.bin" "$f" || { echo "$g.bin: a restored copy differs"; exit 1; }; done
  ratio "$tmp/down-$input.json" s3 restore "S3 download / restore throughput"
  ratio "$tmp/down-$input.json" nginx restore "the AWS CLI's own ceiling (from nginx) / restore throughput"
  ratio "$tmp/down-$input.json" s3 nginx "S3 download / the same client from nginx"
  rm -f "$tmp/dl.bin" "$tmp/ng.bin" "$tmp/rs.bin" "$tmp/$input.sluice"

  # Where the time goes: CPU seconds of the server (its /proc counters) and
  # of the client for one more upload and download.
  cpu() { awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$server/stat"; }
  for dir in up down; do
    before=$(cpu)
    if [ $dir = up ]; then
      /usr/bin/time -f "%e %U %S" -o "$tmp/time" $AWS s3 cp --only-show-errors "$f" "s3://bench/cpu-$input.bin"
    else
      /usr/bin/time -f "%e %U %S" -o "$tmp/time" $AWS s3 cp --only-show-errors "s3://bench/cpu-$input.bin" "$tmp/dl.bin"
    fi
    after=$(cpu)
    read -r wall user sys <"$tmp/time"
    echo "$dir ($input): $wall s; server $(python3 -c "print(round($after - $before, 2))") CPU-s, client $(python3 -c "print(round($user + $sys, 2))") CPU-s"
  done
  rm -f "$tmp/dl.bin"
done

echo "== random 64 KiB ranges of a 256 MiB object, concurrency 8, 10 s each (wrk)"
$AWS s3 cp --only-show-errors "$tmp/256m.bin" s3://bench/ranges.bin
url=$("$VENV/bin/python" - "$E" <<'PY'
import sys, boto3
from botocore.config import Config
c = boto3.client("s3", endpoint_url=sys.argv[1], config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
print(c.generate_presigned_url("get_object", Params={"Bucket": "bench", "Key": "ranges.bin"}, ExpiresIn=3600))
PY
)
path_query=${url#"$E"}
cat > "$tmp/range-s3.lua" <<LUA
local size = 256 * 1048576
request = function()
  local a = math.random(0, size - 65536)
  return wrk.format("GET", "$path_query", { Range = "bytes=" .. a .. "-" .. (a + 65535) })
end
LUA
cat > "$tmp/range-native.lua" <<LUA
local size = 256 * 1048576
request = function()
  local a = math.random(0, size - 65536)
  return wrk.format("GET", "/v1/objects/bench/ranges.bin/content",
    { Authorization = "Bearer $TOKEN", Range = "bytes=" .. a .. "-" .. (a + 65535) })
end
LUA
# Both read the same stored object: S3's bench/ranges.bin is the native bench/ranges.bin.
rates=()
for round in $(seq "$RUNS"); do
  for face in s3 native; do
    base=$E; [ $face = native ] && base=$U
    out=$(wrk -t 2 -c 8 -d 10s --latency -s "$tmp/range-$face.lua" "$base")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
    [ -z "$non2xx" ] || { echo "$face: $non2xx answers were not 2xx"; exit 1; }
    echo "round $round $face: $rps req/s, P50 $(awk '$1=="50%" {print $2}' <<<"$out"), P99 $(awk '$1=="99%" {print $2}' <<<"$out")"
    rates+=("$face=$rps")
  done
done
python3 - "${rates[@]}" <<'PY'
import statistics, sys
by = {}
for x in sys.argv[1:]:
    face, rps = x.split("=")
    by.setdefault(face, []).append(float(rps))
s3, native = statistics.median(by["s3"]), statistics.median(by["native"])
print(f"median: S3 {s3:.0f} req/s, native {native:.0f} req/s: S3 / native range reads = {s3/native:.2f}")
PY
hwm=$(awk '/VmHWM/ {print int($2/1024)}' /proc/$server/status)
echo "server peak RSS over the whole run: $hwm MiB"
