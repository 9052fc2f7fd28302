#!/usr/bin/env bash
# Small objects at wire speed (issue #21): sluice against nginx (WebDAV PUT,
# static GET), side by side, files on disk (the checkout's disk), on SQLite
# and PostgreSQL, native API and S3 face, bodies of 1, 4, 64 and 256 KiB
# (the last above --small-object-max, to show the boundary); see
# bench/small.py for what is measured and checked.
# Usage: bench/small.sh   Env: SECONDS_EACH (60), SIZES (1,4,64,256),
#        BACKENDS (sqlite,postgres), BENCH_DIR (bench/tmp, on disk)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
missing=()
for pair in nginx:nginx wrk:wrk; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair##*:}")
done
[ -x /usr/lib/postgresql/*/bin/initdb ] 2>/dev/null || missing+=(postgresql)
[ ${#missing[@]} -eq 0 ] || scripts/apt_install.sh "${missing[@]}"
VENV=target/venv-bench
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -c 'import blake3' 2>/dev/null || "$VENV/bin/pip" install -q blake3
cargo build --release --locked -p sluice-cli
work=${BENCH_DIR:-$root/bench/tmp}/small
rm -rf "$work"; mkdir -p "$work"
backends=${BACKENDS:-sqlite,postgres}
pg_args=()
cleanup() {
  [ -f "$work/pg/postmaster.pid" ] && scripts/postgres.sh stop "$work/pg" || true
  rm -rf "$work"
}
trap cleanup EXIT
if [[ $backends == *postgres* ]]; then
  [ "$(id -u)" = 0 ] && chmod 755 "$work"
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  pg_args=(--pg "$(scripts/postgres.sh start "$work/pg" "$port")")
fi
"$VENV/bin/python" bench/small.py --sluice "$root/target/release/sluice" --work "$work" \
  --seconds "${SECONDS_EACH:-60}" --sizes "${SIZES:-1,4,64,256}" --backends "$backends" \
  "${pg_args[@]}" --out "${OUT:-$root/bench/tmp/small-results.json}"
