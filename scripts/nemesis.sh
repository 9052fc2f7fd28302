#!/usr/bin/env bash
# The randomized fault test: concurrent clients on a small key space of a
# real sluice, random faults meanwhile, the whole history checked against
# the consistency model (tests/nemesis/: run.py, checker.py).
#
#   scripts/nemesis.sh [--minutes N | --seconds N] [--backend sqlite|postgres]
#                      [--faults LIST|all] [--seed N] [--out DIR] [run.py options]
#
# sqlite: one `sluice serve` on SQLite and the local store; faults kill,
# pause, disk-full (the data directory on a small tmpfs of its own, so
# root is needed for that one). postgres: two `serve` nodes and a `worker`
# on PostgreSQL (Debian's, started here) and S3 (moto, PyPI, started here,
# behind a proxy the nemesis can cut or slow); faults kill, pause,
# pg-restart, s3-outage, s3-latency, clock-skew (Debian's faketime).
# Prints a summary; the history, summary.json and node logs stay in the
# output directory (default target/nemesis/BACKEND-SEED). Exits non-zero
# when the checker finds an anomaly. SLUICE names the binary (default
# target/debug/sluice, built if missing).
set -euo pipefail
# Servers started here serve no S3 API unless asked (several run at once;
# the S3 face's own tests give it an address).
export SLUICE_S3_LISTEN=${SLUICE_S3_LISTEN:-off}
cd "$(dirname "$0")/.."
seconds=60 backend=sqlite faults="" seed="" out="" extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) seconds=$(($2 * 60)); shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --backend) backend=$2; shift 2 ;;
    --faults) faults=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) extra+=("$1"); shift ;;
  esac
done
case "$backend" in
  sqlite) faults=${faults:-kill,pause} ;;
  postgres) faults=${faults:-all} ;;
  *) echo "nemesis.sh: --backend must be sqlite or postgres, got $backend" >&2; exit 2 ;;
esac
[ -n "$seed" ] || seed=$(python3 -c 'import random; print(random.SystemRandom().randrange(1 << 31))')
out=${out:-target/nemesis/$backend-$seed}
rm -rf "$out"
mkdir -p "$out"
out=$(cd "$out" && pwd)
sluice=${SLUICE:-target/debug/sluice}
[ -x "$sluice" ] || cargo build --locked --quiet
echo "nemesis: checker self-tests"
python3 -m unittest -q tests/nemesis/test_checker.py

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
cleanup() {
  [ -n "${moto_pid:-}" ] && kill "$moto_pid" 2>/dev/null || true
  [ -n "${pg:-}" ] && [ -f "$pg/postmaster.pid" ] && scripts/postgres.sh stop "$pg" || true
  [ -n "${mnt:-}" ] && umount "$mnt" 2>/dev/null || true
  [ -n "${pgroot:-}" ] && rm -rf "$pgroot" || true
}
trap cleanup EXIT

args=(--binary "$sluice" --backend "$backend" --seconds "$seconds" --faults "$faults"
      --seed "$seed" --out "$out")
wants() { [ "$faults" = all ] || [[ ",$faults," == *",$1,"* ]]; }

if [ "$backend" = sqlite ] && wants disk-full; then
  if [ "$(id -u)" != 0 ]; then
    echo "nemesis.sh: disk-full mounts a small tmpfs for the data directory and needs root" >&2
    exit 2
  fi
  mnt="$out/data"
  mkdir -p "$mnt"
  mount -t tmpfs -o size=512m tmpfs "$mnt"
  args+=(--data-dir "$mnt")
fi

if [ "$backend" = postgres ]; then
  if wants clock-skew && [ ! -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ]; then
    scripts/apt_install.sh faketime
  fi
  pgroot=$(mktemp -d)
  chmod 755 "$pgroot"   # the postgres user must reach its data directory
  pg="$pgroot/pg"
  pg_url=$(scripts/postgres.sh start "$pg" "$(free_port)")
  MOTO_VENV=target/venv-moto
  if [ ! -x "$MOTO_VENV/bin/moto_server" ]; then
    rm -rf "$MOTO_VENV"
    python3 -m venv "$MOTO_VENV"
    "$MOTO_VENV/bin/pip" install -q 'moto[server]>=5,<6'
  fi
  moto_port=$(free_port)
  "$MOTO_VENV/bin/moto_server" -H 127.0.0.1 -p "$moto_port" >"$out/moto.log" 2>&1 &
  moto_pid=$!
  s3="http://127.0.0.1:$moto_port"
  python3 - "$s3" <<'PY'
import sys, time, urllib.request
for _ in range(150):
    try:
        urllib.request.urlopen(sys.argv[1], timeout=2)
        break
    except OSError:
        time.sleep(0.2)
urllib.request.urlopen(urllib.request.Request(sys.argv[1] + "/sluice-nemesis", method="PUT"), timeout=10)
PY
  args+=(--database "$pg_url/postgres" --s3-endpoint "$s3" --bucket sluice-nemesis
         --pg-ctl "$PWD/scripts/postgres.sh" --pg-dir "$pg")
fi

python3 tests/nemesis/run.py "${args[@]}" "${extra[@]}"
