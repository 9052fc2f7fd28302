#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit/integration/end-to-end tests
# (then the service's again on PostgreSQL + S3, both started here),
# the alert rules and dashboard (promtool, Debian's prometheus), the web
# dashboard in headless Chromium (Debian's chromium + chromium-driver,
# Selenium from PyPI in a venv), API fuzzing (schemathesis, PyPI, in a
# venv), a short load test, randomized fault runs checked against the
# consistency model (scripts/nemesis.sh) and a short fuzzing pass.
# .ci/run calls exactly this. It installs what it needs, starts no
# package's service, binds only to 127.0.0.1 and stops what it started.
set -euo pipefail
# Servers started here serve no S3 API unless asked (several run at once;
# the S3 face's own tests give it an address).
export SLUICE_S3_LISTEN=${SLUICE_S3_LISTEN:-off}
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
# A full run gains nothing from incremental state, which only costs disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
df -h . | awk 'NR == 2 { print "disk before the run: " $4 " free" }'
# Each step's heading says how long the run has taken so far.
step() { printf '== [%dm%02ds] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }
step "cargo fmt --check"
cargo fmt --all --check
step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
step "layers: the service core names no HTTP crate, routes call the service"
scripts/check_layers.sh
step "cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet
# The S3 end-to-end tests need an S3-compatible server: moto (PyPI), in a
# venv of its own; the tests start and stop it on 127.0.0.1.
if [ "${SLUICE_SKIP_SERVICE_CHECKS:-0}" != 1 ]; then
  MOTO_VENV=target/venv-moto
  if [ ! -x "$MOTO_VENV/bin/moto_server" ] || [ ! -x "$MOTO_VENV/bin/aws" ]; then
    step "installing moto[server] (PyPI) into $MOTO_VENV"
    rm -rf "$MOTO_VENV"
    python3 -m venv "$MOTO_VENV"
    "$MOTO_VENV/bin/pip" install -q 'moto[server]>=5,<6' awscli
  fi
  export SLUICE_TEST_MOTO="$PWD/$MOTO_VENV/bin/moto_server"
fi
step "cargo test"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# What this run provides is required: a test that needs it fails if it is
# missing instead of passing as skipped. The shared-state tests need
# PostgreSQL and run in the next step, which provides it.
if [ "${SLUICE_SKIP_SERVICE_CHECKS:-0}" != 1 ]; then
  export SLUICE_TEST_REQUIRE=moto
fi
cargo test --workspace --locked -- --skip shared_state:: 2>&1 | tee "$log"
if [ "${SLUICE_SKIP_SERVICE_CHECKS:-0}" != 1 ]; then
  # Real S3 clients against the S3 face (boto3 comes with moto's venv, the AWS CLI is installed there).
  step "the S3 face with real clients (boto3)"
  SLUICE=target/debug/sluice AWS_CLI="$MOTO_VENV/bin/aws" "$MOTO_VENV/bin/python" tests/s3/clients.py 2>&1 | tee -a "$log"
  step "the S3 face with rclone, restic and s3cmd (Debian)"
  SLUICE=target/debug/sluice tests/s3/tools.sh 2>&1 | tee -a "$log"
  step "S3 conformance: ceph/s3-tests core selection (../shared/s3-tests; its venv from PyPI)"
  SLUICE=target/debug/sluice scripts/s3_conformance.sh 2>&1 | tee -a "$log"
  step "several nodes on shared state: PostgreSQL (Debian) + S3 (moto)"
  scripts/shared_state_test.sh 2>&1 | tee -a "$log"
  # The consistency model checked under random faults (tests/nemesis/):
  # the checker's self-tests, then a short run on each backend, side by
  # side (each mostly waits on its faults; together they take the time of
  # one). A failing run prints its seed; its history stays in
  # target/nemesis/.
  step "randomized faults: SQLite (kill -9, SIGSTOP) beside PostgreSQL + S3 (every kind that applies); slow clients beside them"
  nemesis_secs=${SLUICE_NEMESIS_SECONDS:-60}
  mkdir -p target/nemesis
  # One tenant's 200 slow downloads and slow uploads must not slow another
  # tenant's requests (tests/slow_clients/run.py); it mostly waits on its
  # slow clients, so it runs beside the fault runs.
  SLUICE=target/debug/sluice python3 tests/slow_clients/run.py >target/nemesis/ci-slow-clients.log 2>&1 &
  slow_run=$!
  SLUICE=target/debug/sluice scripts/nemesis.sh --backend sqlite --faults kill,pause \
    --seconds "$nemesis_secs" >target/nemesis/ci-sqlite.log 2>&1 &
  sqlite_run=$!
  SLUICE=target/debug/sluice scripts/nemesis.sh --backend postgres --faults all \
    --seconds "$nemesis_secs" >target/nemesis/ci-postgres.log 2>&1 &
  postgres_run=$!
  sqlite_rc=0 postgres_rc=0
  wait "$sqlite_run" || sqlite_rc=$?
  wait "$postgres_run" || postgres_rc=$?
  slow_rc=0
  wait "$slow_run" || slow_rc=$?
  cat target/nemesis/ci-sqlite.log target/nemesis/ci-postgres.log target/nemesis/ci-slow-clients.log
  if [ "$slow_rc" != 0 ]; then
    echo "slow clients: the run exited $slow_rc"
    exit 1
  fi
  if [ "$sqlite_rc" != 0 ] || [ "$postgres_rc" != 0 ]; then
    echo "randomized faults: the SQLite run exited $sqlite_rc, the PostgreSQL run $postgres_rc"
    exit 1
  fi
  step "small objects survive kill -9: SQLite, then PostgreSQL (Debian)"
  SLUICE=target/debug/sluice scripts/small_crash.sh
fi
step "deploy/: alert rules (promtool check + unit tests), dashboard queries"
deploy/check.sh
if [ "${SLUICE_SKIP_SERVICE_CHECKS:-0}" != 1 ]; then
  step "the web dashboard in headless Chromium"
  scripts/browser_test.sh
  step "API fuzzing: schemathesis against a live server"
  scripts/api_fuzz.sh "${SLUICE_API_FUZZ_EXAMPLES:-25}"
  step "load and abuse, short form (the full run: bench/load.sh)"
  SLUICE=target/debug/sluice bench/load.sh --short
fi
if [ "${SLUICE_SKIP_FUZZ:-0}" != 1 ] && [ -x scripts/fuzz.sh ]; then
  step "short fuzz pass"
  scripts/fuzz.sh "${SLUICE_FUZZ_SECONDS:-10}"
fi
step "done"
du -sh target fuzz/target 2>/dev/null | awk '{ print "disk used by " $2 ": " $1 }'
# One closing total over every test binary (cargo's own last lines are the
# doc-test runs, which hold no tests).
awk '/^test result:/ { for (i = 1; i < NF; i++) {
       if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
