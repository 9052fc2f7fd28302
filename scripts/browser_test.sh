#!/usr/bin/env bash
# The web dashboard in a real browser: headless Chromium (Debian's chromium
# + chromium-driver, installed if missing, services not started) driven by
# Selenium (PyPI, in a venv) against a live `sluice serve` on 127.0.0.1.
# Screenshots of each page go to $SHOTS (default target/screenshots).
# Env: SLUICE (binary; default target/debug/sluice, built if missing),
#      VENV (default target/venv-browser), SHOTS.
set -euo pipefail
# Servers started here serve no S3 API unless asked (several run at once;
# the S3 face's own tests give it an address).
export SLUICE_S3_LISTEN=${SLUICE_S3_LISTEN:-off}
cd "$(dirname "$0")/.."
S=${SLUICE:-target/debug/sluice}
[ -x "$S" ] || cargo build --locked -p sluice-cli
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  scripts/apt_install.sh chromium chromium-driver
fi
VENV=${VENV:-target/venv-browser}
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import selenium' 2>/dev/null; then
  rm -rf "$VENV"
  python3 -m venv "$VENV" 2>/dev/null || {
    scripts/apt_install.sh python3-venv && rm -rf "$VENV" && python3 -m venv "$VENV"
  }
  "$VENV/bin/pip" install -q 'selenium>=4.20,<5'
fi
SHOTS=${SHOTS:-$PWD/target/screenshots}
rm -rf "$SHOTS"; mkdir -p "$SHOTS"
# Selenium must use the given chromedriver, never fetch one.
export SE_OFFLINE=true
"$VENV/bin/python" tests/browser/dashboard_test.py "$S" "$SHOTS"
echo "screenshots: $SHOTS"
ls "$SHOTS"
