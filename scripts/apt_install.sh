#!/usr/bin/env bash
# Installs Debian packages for the test suite without starting their
# services (CI binds only what it starts itself): scripts/apt_install.sh PKG...
set -euo pipefail
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
$SUDO chmod +x /usr/sbin/policy-rc.d
trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
