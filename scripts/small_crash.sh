#!/usr/bin/env bash
# Small objects survive kill -9 (issue #21): tests/small/crash.py on SQLite,
# then on PostgreSQL (Debian's, started here on 127.0.0.1 and stopped
# after). 64 clients upload small objects as fast as they can while the
# server is SIGKILLed three times; every acknowledged upload must read back
# byte-exact, nothing unacknowledged may be half-written, a sample must
# verify, and deletes must leave nothing behind in the database.
# Usage: scripts/small_crash.sh   Env: SLUICE (target/debug/sluice)
set -euo pipefail
export SLUICE_S3_LISTEN=${SLUICE_S3_LISTEN:-off}
cd "$(dirname "$0")/.."
sluice=${SLUICE:-target/debug/sluice}
[ -x "$sluice" ] || cargo build --locked --quiet
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
pgroot=$(mktemp -d)
[ "$(id -u)" = 0 ] && chmod 755 "$pgroot"
cleanup() {
  [ -f "$pgroot/pg/postmaster.pid" ] && scripts/postgres.sh stop "$pgroot/pg" || true
  rm -rf "$pgroot"
}
trap cleanup EXIT
python3 tests/small/crash.py --binary "$sluice"
pg_url=$(scripts/postgres.sh start "$pgroot/pg" "$(free_port)")
python3 tests/small/crash.py --binary "$sluice" --database "$pg_url/crash"
