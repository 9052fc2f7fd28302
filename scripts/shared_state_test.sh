#!/usr/bin/env bash
# The service's tests against shared state: a real PostgreSQL (Debian's,
# initdb + pg_ctl into a temporary directory, 127.0.0.1 only) and a real
# S3-compatible server (moto, PyPI, in target/venv-moto), both started here
# and stopped on exit. Runs the store's tests on PostgreSQL, then the same
# end-to-end tests of the service as the default run, with every server,
# worker and admin command of a test on a database and a bucket prefix of
# its own. Called by scripts/test.sh; extra arguments go to the test filter.
set -euo pipefail
# Servers started here serve no S3 API unless asked (several run at once;
# the S3 face's own tests give it an address).
export SLUICE_S3_LISTEN=${SLUICE_S3_LISTEN:-off}
cd "$(dirname "$0")/.."
root=$(mktemp -d)
chmod 755 "$root"   # the postgres user must reach its data directory
pg="$root/pg"
moto_pid=""
cleanup() {
  [ -n "$moto_pid" ] && kill "$moto_pid" 2>/dev/null || true
  [ -f "$pg/postmaster.pid" ] && scripts/postgres.sh stop "$pg" || true
  rm -rf "$root"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

pg_url=$(scripts/postgres.sh start "$pg" "$(free_port)")
echo "PostgreSQL at $pg_url (data in $pg)"

MOTO_VENV=target/venv-moto
if [ ! -x "$MOTO_VENV/bin/moto_server" ]; then
  rm -rf "$MOTO_VENV"
  python3 -m venv "$MOTO_VENV"
  "$MOTO_VENV/bin/pip" install -q 'moto[server]>=5,<6'
fi
moto_port=$(free_port)
"$MOTO_VENV/bin/moto_server" -H 127.0.0.1 -p "$moto_port" >"$root/moto.log" 2>&1 &
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
urllib.request.urlopen(urllib.request.Request(sys.argv[1] + "/sluice-e2e", method="PUT"), timeout=10)
PY
echo "S3 (moto) at $s3, bucket sluice-e2e"

export SLUICE_TEST_POSTGRES="$pg_url" SLUICE_TEST_S3="$s3"
# Provided here, so required: a test that finds one missing fails.
export SLUICE_TEST_REQUIRE=moto,postgres,s3
export SLUICE_TEST_PG_CTL="$PWD/scripts/postgres.sh"
export SLUICE_TEST_PG_DIR="$pg"
export SLUICE_TEST_MOTO="$PWD/$MOTO_VENV/bin/moto_server"
# `--workspace` as in scripts/test.sh: the same feature set, so nothing is
# built again.
echo "== the store's and the service's tests on SQLite and PostgreSQL"
cargo test --workspace --locked --lib -- db:: objects::
echo "== the native API's router tests (the error table on both paths) on PostgreSQL"
cargo test --workspace --locked --test routes
echo "== the service's end-to-end tests on PostgreSQL + S3"
# Everything that starts `sluice serve`, `worker` or `admin`; the CLI's own
# file tests (roundtrip, keys, errors, signals, verify_info) keep no state.
cargo test --workspace --locked --test cli -- \
  serve:: harness:: abuse:: limits:: jwt:: observe:: nodes:: resumable:: push_pull:: s3:: shared_state:: "$@"
