#!/usr/bin/env bash
# The service under load and abuse (issue #11): see bench/load.py.
# Usage: bench/load.sh [--short]   Env: SLUICE (binary; default: release
# build), BENCH_DIR (default bench/tmp, on disk). Installs curl from Debian
# and, for the full run, the oha load generator from crates.io (into
# target/tools) if missing.
set -euo pipefail
# Servers started here serve no S3 API unless asked (several run at once;
# the S3 face's own tests give it an address).
export SLUICE_S3_LISTEN=${SLUICE_S3_LISTEN:-off}
cd "$(dirname "$0")/.."
missing=()
for tool in curl; do command -v $tool >/dev/null 2>&1 || missing+=($tool); done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${missing[@]}"
fi
# The short form (CI: behaviour only) uses load.py's own client unless OHA
# is set; the full run measures with oha, installed if missing.
if [ "${1:-}" != --short ]; then
  OHA=${OHA:-$(command -v oha || echo target/tools/bin/oha)}
  if [ ! -x "$OHA" ]; then
    cargo install oha --version 1.16.0 --locked --root target/tools --quiet
    OHA=target/tools/bin/oha
  fi
fi
OHA=${OHA:-}
export OHA
if [ -z "${SLUICE:-}" ]; then
  cargo build --release --locked -p sluice-cli
  SLUICE=target/release/sluice
fi
work=${BENCH_DIR:-bench/tmp}/load
rm -rf "$work"; mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
ulimit -n 16384 2>/dev/null || true
python3 bench/load.py "$SLUICE" "$work" "$@"
