#!/usr/bin/env bash
# The floors of the architecture, checked (docs/ARCHITECTURE.md):
# - the service core names no HTTP type: sluice-service's dependency tree
#   holds no axum, hyper, tower or tower-http, and the `http` types crate
#   only as object_store's own dependency (its client abstraction, unused);
# - the engine knows no HTTP, SQL or async runtime;
# - no route of the native API touches the database or the object store:
#   they call the service.
set -euo pipefail
cd "$(dirname "$0")/.."
fail=0
tree=$(cargo tree -p sluice-service -e normal --prefix none --locked)
if grep -E '^(axum|axum-core|hyper|hyper-util|tower|tower-http|reqwest) ' <<<"$tree"; then
  echo "sluice-service depends on an HTTP server or client (above)"; fail=1
fi
http_users=$(cargo tree -p sluice-service -e normal --locked -i http --depth 1 --prefix none | tail -n +2 | awk '{print $1}' | sort -u)
if [ -n "$http_users" ] && [ "$http_users" != "object_store" ]; then
  echo "the http crate is used by: $http_users (only object_store may)"; fail=1
fi
if cargo tree -p sluice-engine -e normal --prefix none --locked | grep -E '^(tokio|sqlx|axum|hyper|http) '; then
  echo "sluice-engine depends on an async runtime, SQL or HTTP (above)"; fail=1
fi
if grep -nE '\.db\b|\bDb\b|sqlx|\.objects\.|sluice_store' crates/sluice-server/src/routes/*.rs; then
  echo "a route reaches the database or the object store (above): call the service"; fail=1
fi
[ "$fail" = 0 ] && echo "layers: ok (sluice-service names no HTTP crate; routes call the service)"
exit "$fail"
