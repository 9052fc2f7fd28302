#!/usr/bin/env bash
# Mutation testing of the format crate: every check in sluice-format should
# have a test (in the format or engine crate) that fails when the check is
# removed or weakened. Prints the mutants that survived; a security check in
# that list is a missing test.
#
# Usage: scripts/mutants.sh [FILE...]   (default: every file of the crate)
# Env:   MUTANTS_JOBS (default 2), MUTANTS_OUT (default target/mutants)
# Takes about an hour for the whole crate on 2 cores; not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! cargo mutants --version >/dev/null 2>&1; then
  echo "installing cargo-mutants"
  cargo install cargo-mutants --version 27.1.0 --locked
fi
files=()
for f in "$@"; do files+=(--file "$f"); done
out=${MUTANTS_OUT:-target/mutants}
mkdir -p "$out"
status=0
cargo mutants --package sluice-format --test-package sluice-format --test-package sluice-engine \
  --jobs "${MUTANTS_JOBS:-2}" --timeout 120 --output "$out" "${files[@]}" || status=$?
echo
echo "== survivors (missed), from $out/mutants.out/missed.txt:"
cat "$out/mutants.out/missed.txt" 2>/dev/null || true
# cargo-mutants exits 2 when mutants were missed, 3 on timeouts; both are
# reported above. Anything else is a failure of the run itself.
case $status in 0|2|3) exit 0 ;; *) exit "$status" ;; esac
