#!/usr/bin/env bash
# Fuzz every target for a bounded time: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Installs cargo-fuzz if needed, builds the seed corpus from real containers
# (every suite, codec and key kind), then runs libFuzzer on each target.
# Works on the stable toolchain through RUSTC_BOOTSTRAP=1. A crash, leak,
# timeout or out-of-memory fails the script and leaves the input in
# fuzz/artifacts/TARGET/; turn it into a regression test in
# crates/sluice-engine/tests/fuzz_regressions.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(header decode range inspect)

export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install cargo-fuzz --version 0.13.2 --locked
fi
# The dev profile and the workspace's features, so the test suite's build
# is reused (its dependencies are optimised anyway); a release build of its
# own cost CI minutes.
cargo run --quiet --example make_fuzz_seeds -- fuzz/corpus
for t in "${targets[@]}"; do
  echo "== fuzzing $t for ${secs}s"
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  log=$(mktemp)
  cargo fuzz run "$t" "fuzz/corpus/$t" -- \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -artifact_prefix="fuzz/artifacts/$t/" -print_final_stats=1 2>"$log" || {
      # The sanitizer's or the panic's own report, then where the input was saved.
      grep -E -A40 "^==[0-9]+==ERROR|panicked at|Direct leak|Indirect leak" "$log" | head -80
      grep -E "Test unit written|Failing input" -A1 "$log"
      exit 1
    }
  runs=$(grep -m1 'stat::number_of_executed_units' "$log" | awk '{print $2}')
  echo "$t: ${runs:-?} executions, no finding"
  rm -f "$log"
done
