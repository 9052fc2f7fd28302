#!/usr/bin/env bash
# Scaling out with worker processes (issue #13): see bench/scale.py.
# Usage: bench/scale.sh [--quick] [--postgres]   Env: SLUICE (binary;
# default: release build), BENCH_DIR (default bench/tmp, on disk).
# --postgres: the nodes share a PostgreSQL started here (scripts/postgres.sh,
# data under BENCH_DIR, fsync on) instead of SQLite.
set -euo pipefail
# Servers started here serve no S3 API unless asked (several run at once;
# the S3 face's own tests give it an address).
export SLUICE_S3_LISTEN=${SLUICE_S3_LISTEN:-off}
cd "$(dirname "$0")/.."
if [ -z "${SLUICE:-}" ]; then
  cargo build --release --locked -p sluice-cli
  SLUICE=target/release/sluice
fi
work=${BENCH_DIR:-bench/tmp}/scale
rm -rf "$work"; mkdir -p "$work"
work=$(cd "$work" && pwd)
args=()
pg=""
for a in "$@"; do
  if [ "$a" = --postgres ]; then pg="$work/pg"; else args+=("$a"); fi
done
cleanup() {
  [ -n "$pg" ] && [ -f "$pg/postmaster.pid" ] && scripts/postgres.sh stop "$pg"
  rm -rf "$work"
}
trap cleanup EXIT
if [ -n "$pg" ]; then
  chmod 755 "$work"
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  export SCALE_DATABASE="$(scripts/postgres.sh start "$pg" "$port")/sluice_scale"
fi
python3 bench/scale.py "$SLUICE" "$work" "${args[@]}"
