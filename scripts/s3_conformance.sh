#!/usr/bin/env bash
# The S3 conformance suite (ceph/s3-tests pinned in ../shared/s3-tests, its
# core selection) against a `sluice serve --s3-listen` started here on
# 127.0.0.1 with two tenants (the suite's main and alt identities). Every
# test must pass but those listed in tests/s3/expected-failures.txt (each
# with its reason), and every listed test must still fail, so that the list
# stays true. The suite's venv comes from PyPI (its requirements.lock).
# Tests listed in tests/s3/own-account.txt assume that nothing else uses
# their account while they run (ListBuckets must show only their buckets),
# so they run in a second pass, alone, under tenants of their own; the rest
# run on S3TESTS_JOBS workers. Both passes together are the core selection.
# Usage: scripts/s3_conformance.sh   Env: SLUICE (target/debug/sluice),
#        S3TESTS_DIR (../shared/s3-tests), S3TESTS_JOBS (2)
set -euo pipefail
cd "$(dirname "$0")/.."
SLUICE=${SLUICE:-target/debug/sluice}
SUITE=${S3TESTS_DIR:-../shared/s3-tests}
if [ ! -x "$SUITE/run.sh" ]; then
  echo "s3 conformance: the suite is not at $SUITE (set S3TESTS_DIR)"
  exit 1
fi
work=$(mktemp -d)
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; [ -n "$server" ] && wait "$server" 2>/dev/null; rm -rf "$work"' EXIT
data=$work/data
for t in main alt solo solo-alt; do
  "$SLUICE" admin --data-dir "$data" tenant create "$t" >/dev/null 2>&1
  "$SLUICE" admin --data-dir "$data" s3-key create --tenant "$t" >"$work/$t.key" 2>/dev/null
done
# The core selection split: what runs alone, and the rest.
own=tests/s3/own-account.txt
grep -v '^[[:space:]]*\(#\|$\)' "$own" | awk '{ print $1 }' >"$work/alone.txt"
awk 'NR == FNR { alone[$1] = 1; next } !($1 in alone)' "$work/alone.txt" "$SUITE/core.txt" >"$work/shared.txt"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
s3_port=$(free_port)
# The rate limiter off: the suite is one client sending as fast as it can.
"$SLUICE" serve --data-dir "$data" --listen "127.0.0.1:$port" --s3-listen "127.0.0.1:$s3_port" \
  --default-rate 0 2>"$work/server.log" &
server=$!
export S3_ENDPOINT_HOST=127.0.0.1 S3_ENDPOINT_PORT=$s3_port
# run_pass NAME MAIN_TENANT ALT_TENANT JOBS: one run of the suite over $work/NAME.txt.
run_pass() {
  local name=$1 main_key main_secret alt_key alt_secret rc=0
  read -r main_key main_secret <"$work/$2.key"
  read -r alt_key alt_secret <"$work/$3.key"
  S3_MAIN_ACCESS_KEY=$main_key S3_MAIN_SECRET_KEY=$main_secret \
    S3_ALT_ACCESS_KEY=$alt_key S3_ALT_SECRET_KEY=$alt_secret S3TESTS_JOBS=$4 \
    "$SUITE/run.sh" --selection "$work/$name.txt" --junit "$work/$name.xml" >"$work/$name.log" 2>&1 || rc=$?
  echo "$name pass ($4 worker(s)): $(tail -1 "$work/$name.log")"
  if [ "$rc" != 0 ] || [ ! -s "$work/$name.xml" ]; then
    echo "s3 conformance: the suite did not run (exit $rc)"
    tail -30 "$work/$name.log"
    exit 1
  fi
}
run_pass shared main alt "${S3TESTS_JOBS:-2}"
run_pass alone solo solo-alt 1
python3 - "$work/shared.xml,$work/alone.xml" tests/s3/expected-failures.txt "$work/shared.log,$work/alone.log" <<'PY'
import sys
import xml.etree.ElementTree as ET

junits, listed_file, logs = sys.argv[1:4]
ran, failed = set(), set()
for junit in junits.split(","):
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = case.get("name", "")
        ran.add(name)
        if case.find("failure") is not None or case.find("error") is not None:
            failed.add(name)
listed = {}
for line in open(listed_file):
    line = line.strip()
    if line and not line.startswith("#"):
        name, _, why = line.partition(" ")
        listed[name] = why.strip()
missing_reason = [n for n, why in listed.items() if not why]
unexpected = sorted(failed - set(listed))
fixed = sorted(n for n in listed if n in ran and n not in failed)
print(f"s3 conformance: {len(ran) - len(failed)} of {len(ran)} passed; {len(listed)} listed as expected failures")
for n in unexpected:
    print(f"  FAILED, not listed: {n}")
for n in fixed:
    print(f"  PASSES, but listed (remove it from {listed_file}): {n}")
for n in missing_reason:
    print(f"  listed without a reason: {n}")
if unexpected:
    print("the failures, from the suite's log:")
    text = "".join(open(log).read() for log in logs.split(","))
    for n in unexpected:
        at = text.find(f" {n} _")
        if at >= 0:
            print(text[at : at + 2000])
sys.exit(1 if unexpected or fixed or missing_reason else 0)
PY
