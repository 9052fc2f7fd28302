#!/usr/bin/env bash
# The web dashboard in a real browser: headless Chromium (Debian's chromium
# + chromium-driver, installed if missing, services not started) driven by
# Selenium (PyPI, in a venv) against a live `sluice serve` on 127.0.0.1.
# Screenshots of each page go to $SHOTS (default target/screenshots).
# Env: SLUICE (binary; default target/debug/sluice, built if missing),
#      VENV (default target/venv-browser), SHOTS.
set -euo pipefail
cd "$(dirname "$0")/.."
S=${SLUICE:-target/debug/sluice}
[ -x "$S" ] || cargo build --locked -p sluice-cli
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
  $SUDO rm -f /usr/sbin/policy-rc.d
fi
VENV=${VENV:-target/venv-browser}
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import selenium' 2>/dev/null; then
  rm -rf "$VENV"
  python3 -m venv "$VENV" 2>/dev/null || {
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq python3-venv && rm -rf "$VENV" && python3 -m venv "$VENV"
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
