#!/usr/bin/env bash
# API fuzzing: schemathesis (PyPI, in a venv of its own) against
# /v1/openapi.json of a live `sluice serve` on 127.0.0.1. Fails on any 5xx,
# any response that breaks the documented schema, or a panic in the log.
# Usage: scripts/api_fuzz.sh [MAX_EXAMPLES]   (default 30 per operation)
# Env: SLUICE (binary; default target/debug/sluice, built if missing),
#      VENV (default target/venv-schemathesis).
set -euo pipefail
# Servers started here serve no S3 API unless asked (several run at once;
# the S3 face's own tests give it an address).
export SLUICE_S3_LISTEN=${SLUICE_S3_LISTEN:-off}
cd "$(dirname "$0")/.."
examples=${1:-30}
S=${SLUICE:-target/debug/sluice}
[ -x "$S" ] || cargo build --locked -p sluice-cli
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
command -v curl >/dev/null 2>&1 || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq curl; }
VENV=${VENV:-target/venv-schemathesis}
if [ ! -x "$VENV/bin/schemathesis" ]; then
  rm -rf "$VENV"
  python3 -m venv "$VENV" 2>/dev/null || {
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq python3-venv && rm -rf "$VENV" && python3 -m venv "$VENV"
  }
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q 'schemathesis>=4,<5'
fi
tmp=$(mktemp -d)
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
$S admin --data-dir "$tmp/data" tenant create fuzz >/dev/null 2>&1
TOKEN=$($S admin --data-dir "$tmp/data" token create --tenant fuzz --scope admin 2>/dev/null)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# Generous limits: the fuzzer must meet the handlers, not the rate limiter.
$S serve --data-dir "$tmp/data" --listen "127.0.0.1:$port" --default-rate 0 2>"$tmp/server.log" &
server=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
echo "== schemathesis: $examples examples per operation against 127.0.0.1:$port"
status=0
"$VENV/bin/schemathesis" run "http://127.0.0.1:$port/v1/openapi.json" \
  --url "http://127.0.0.1:$port" \
  -H "Authorization: Bearer $TOKEN" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --max-examples "$examples" --seed "${SEED:-1}" --request-timeout 30 \
  --suppress-health-check all --warnings off || status=$?
if grep -q "panicked" "$tmp/server.log"; then
  echo "FAIL: the server panicked:"; grep -A5 "panicked" "$tmp/server.log" | head -40
  status=1
fi
exit $status
