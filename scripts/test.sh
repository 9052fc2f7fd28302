#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit/integration/end-to-end tests,
# and a short fuzzing pass. .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
if [ "${SLUICE_SKIP_FUZZ:-0}" != 1 ] && [ -x scripts/fuzz.sh ]; then
  echo "== short fuzz pass"
  scripts/fuzz.sh "${SLUICE_FUZZ_SECONDS:-30}"
fi
