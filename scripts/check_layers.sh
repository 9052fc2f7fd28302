#!/usr/bin/env bash
# The floors of the architecture, checked (docs/ARCHITECTURE.md):
# - the service core names no HTTP type: sluice-service's dependency tree
#   holds no axum, hyper, tower, tower-http or http (nor object_store, which
#   brings `http`: the remote backends are behind sluice-store's `remote`
#   and `s3` features, which only the binary turns on);
# - the engine knows no HTTP, SQL or async runtime;
# - no route of the native API, and nothing of the S3 face, touches the
#   database or the object store: they call the service.
set -euo pipefail
cd "$(dirname "$0")/.."
fail=0
tree=$(cargo tree -p sluice-service -e normal --prefix none --locked)
if grep -E '^(axum|axum-core|hyper|hyper-util|tower|tower-http|http|http-body|reqwest|object_store) ' <<<"$tree"; then
  echo "sluice-service depends on an HTTP crate or a remote object store client (above)"; fail=1
fi
if cargo tree -p sluice-engine -e normal --prefix none --locked | grep -E '^(tokio|sqlx|axum|hyper|http) '; then
  echo "sluice-engine depends on an async runtime, SQL or HTTP (above)"; fail=1
fi
if grep -nE '\.db\b|\bDb\b|sqlx|\.objects\.|sluice_store' crates/sluice-server/src/routes/*.rs; then
  echo "a route reaches the database or the object store (above): call the service"; fail=1
fi
if grep -nE '\.db\b|\bDb\b|sqlx|\.objects\.|sluice_store' crates/sluice-s3/src/*.rs; then
  echo "the S3 face reaches the database or the object store (above): call the service"; fail=1
fi
[ "$fail" = 0 ] && echo "layers: ok (sluice-service names no HTTP crate; routes call the service)"
exit "$fail"
