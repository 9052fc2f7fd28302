#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit/integration/end-to-end tests,
# API fuzzing (schemathesis, PyPI, in a venv), a short load test (oha,
# crates.io) and a short fuzzing pass. .ci/run calls exactly this. It
# installs what it needs and binds only to 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet
echo "== cargo test"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked 2>&1 | tee "$log"
if [ "${SLUICE_SKIP_SERVICE_CHECKS:-0}" != 1 ]; then
  echo "== API fuzzing: schemathesis against a live server"
  scripts/api_fuzz.sh "${SLUICE_API_FUZZ_EXAMPLES:-25}"
  echo "== load and abuse, short form (the full run: bench/load.sh)"
  SLUICE=target/debug/sluice bench/load.sh --short
fi
if [ "${SLUICE_SKIP_FUZZ:-0}" != 1 ] && [ -x scripts/fuzz.sh ]; then
  echo "== short fuzz pass"
  scripts/fuzz.sh "${SLUICE_FUZZ_SECONDS:-20}"
fi
# One closing total over every test binary (cargo's own last lines are the
# doc-test runs, which hold no tests).
awk '/^test result:/ { for (i = 1; i < NF; i++) {
       if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
