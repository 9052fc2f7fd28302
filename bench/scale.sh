#!/usr/bin/env bash
# Scaling out with worker processes (issue #13): see bench/scale.py.
# Usage: bench/scale.sh [--quick]   Env: SLUICE (binary; default: release
# build), BENCH_DIR (default bench/tmp, on disk).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${SLUICE:-}" ]; then
  cargo build --release --locked -p sluice-cli
  SLUICE=target/release/sluice
fi
work=${BENCH_DIR:-bench/tmp}/scale
rm -rf "$work"; mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
python3 bench/scale.py "$SLUICE" "$(cd "$work" && pwd)" "$@"
