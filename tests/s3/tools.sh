#!/usr/bin/env bash
# End to end: rclone, restic's S3 backend and s3cmd (Debian's packages,
# installed here if missing) against `sluice serve --s3-listen` on
# 127.0.0.1, each used as a user would: rclone copies a tree up and down
# and checks it, restic backs a tree up, checks every pack it wrote and
# restores it, s3cmd puts (multipart too), lists, gets and deletes.
# Usage: tests/s3/tools.sh   Env: SLUICE (target/debug/sluice)
set -euo pipefail
cd "$(dirname "$0")/../.."
SLUICE=${SLUICE:-target/debug/sluice}
missing=()
for t in rclone restic s3cmd; do command -v "$t" >/dev/null || missing+=("$t"); done
if [ ${#missing[@]} -gt 0 ]; then
  scripts/apt_install.sh "${missing[@]}"
fi
# AWS_CA_BUNDLE (set on some hosts) makes rclone 1.60 fail even over http.
unset AWS_CA_BUNDLE
work=$(mktemp -d)
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; [ -n "$server" ] && wait "$server" 2>/dev/null; rm -rf "$work"' EXIT
data=$work/data
"$SLUICE" admin --data-dir "$data" tenant create tools >/dev/null 2>&1
read -r access secret < <("$SLUICE" admin --data-dir "$data" s3-key create --tenant tools 2>/dev/null)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
s3_port=$(free_port)
"$SLUICE" serve --data-dir "$data" --listen "127.0.0.1:$port" --s3-listen "127.0.0.1:$s3_port" \
  --default-rate 0 2>"$work/server.log" &
server=$!
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$s3_port") 2>/dev/null && break
  sleep 0.1
done
endpoint="http://127.0.0.1:$s3_port"
ok() { echo "ok   $*"; }
fail() {
  echo "FAIL $*"
  echo "the server's log ends:"
  tail -15 "$work/server.log"
  exit 1
}

# A tree to store: small files, an empty one, one past the tools' multipart thresholds.
tree=$work/tree
mkdir -p "$tree/a/b" "$tree/c"
for i in $(seq 20); do head -c $((i * 997)) /dev/urandom >"$tree/a/f$i.bin"; done
echo "hello" >"$tree/a/b/hello.txt"
: >"$tree/c/empty"
head -c $((70 << 20)) /dev/urandom >"$tree/c/big.bin"

# rclone: copy up, check against the tree (sizes and MD5 ETags), copy down.
export RCLONE_CONFIG_SLUICE_TYPE=s3 RCLONE_CONFIG_SLUICE_PROVIDER=Other \
  RCLONE_CONFIG_SLUICE_ACCESS_KEY_ID=$access RCLONE_CONFIG_SLUICE_SECRET_ACCESS_KEY=$secret \
  RCLONE_CONFIG_SLUICE_ENDPOINT=$endpoint RCLONE_CONFIG_SLUICE_FORCE_PATH_STYLE=true
rclone=(rclone --config /dev/null -q)
"${rclone[@]}" mkdir sluice:rclone || fail "rclone mkdir"
"${rclone[@]}" copy "$tree" sluice:rclone/tree || fail "rclone copy up"
ok "rclone copy up (the 70 MB file in parts)"
"${rclone[@]}" check "$tree" sluice:rclone/tree || fail "rclone check"
ok "rclone check (sizes and hashes)"
"${rclone[@]}" copy sluice:rclone/tree "$work/rclone-down" || fail "rclone copy down"
diff -r "$tree" "$work/rclone-down" >/dev/null || fail "rclone copy down differs"
ok "rclone copy down: the tree came back whole"
[ "$("${rclone[@]}" lsf -R sluice:rclone/tree | grep -c .)" = 26 ] || fail "rclone lsf -R"
ok "rclone lsf -R"
"${rclone[@]}" purge sluice:rclone || fail "rclone purge"
ok "rclone purge"

# restic: a repository in a bucket; backup, check every pack, restore.
export AWS_ACCESS_KEY_ID=$access AWS_SECRET_ACCESS_KEY=$secret RESTIC_PASSWORD=not-a-secret
repo="s3:$endpoint/restic"
restic -q -r "$repo" init >/dev/null || fail "restic init"
restic -q -r "$repo" backup "$tree" >/dev/null || fail "restic backup"
ok "restic init, backup"
restic -q -r "$repo" check --read-data >/dev/null || fail "restic check --read-data"
ok "restic check --read-data"
restic -q -r "$repo" restore latest --target "$work/restic-down" >/dev/null || fail "restic restore"
diff -r "$tree" "$work/restic-down$tree" >/dev/null || fail "restic restore differs"
ok "restic restore: the tree came back whole"

# s3cmd: the MD5 ETag it checks, multipart above 15 MB. Its default region
# ("US", as `s3cmd --configure` offers) is no signing region: give us-east-1.
s3cmd=(s3cmd --no-ssl --host="127.0.0.1:$s3_port" --host-bucket="127.0.0.1:$s3_port"
  --access_key="$access" --secret_key="$secret" --region=us-east-1 --config=/dev/null -q)
"${s3cmd[@]}" mb s3://s3cmd >/dev/null || fail "s3cmd mb"
"${s3cmd[@]}" put "$tree/a/b/hello.txt" s3://s3cmd/hello.txt || fail "s3cmd put"
"${s3cmd[@]}" put --multipart-chunk-size-mb=15 "$tree/c/big.bin" s3://s3cmd/big.bin || fail "s3cmd put (multipart)"
ok "s3cmd put, multipart put"
[ "$("${s3cmd[@]:0:${#s3cmd[@]}-1}" ls s3://s3cmd | grep -c s3://)" = 2 ] || fail "s3cmd ls"
ok "s3cmd ls"
"${s3cmd[@]}" get s3://s3cmd/big.bin "$work/big.got" || fail "s3cmd get"
cmp "$tree/c/big.bin" "$work/big.got" || fail "s3cmd get differs"
ok "s3cmd get"
"${s3cmd[@]}" del s3://s3cmd/hello.txt s3://s3cmd/big.bin >/dev/null || fail "s3cmd del"
"${s3cmd[@]}" rb s3://s3cmd >/dev/null || fail "s3cmd rb"
ok "s3cmd del, rb"
echo "s3 tools: rclone, restic and s3cmd all passed"
