#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests (Debian's postgresql package,
# installed if missing, its own service never started):
#
#   scripts/postgres.sh start DIR PORT   initdb into DIR (if new), start on
#                                        127.0.0.1:PORT, print the base URL
#   scripts/postgres.sh stop DIR         fast shutdown
#   scripts/postgres.sh restart DIR      stop, then start on the same port
#
# PostgreSQL refuses to run as root: as root it runs as the postgres user.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cmd=${1:?start|stop|restart}
dir=${2:?data directory}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  "$here/apt_install.sh" postgresql >/dev/null
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
fi
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case "$cmd" in
  start)
    port=${3:?port}
    if [ ! -f "$dir/PG_VERSION" ]; then
      mkdir -p "$dir"
      [ "$(id -u)" = 0 ] && chown postgres: "$dir"
      chmod 700 "$dir"
      as_owner "$bin/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 --no-locale >/dev/null
      echo "$port" >"$dir.port"
    fi
    port=$(cat "$dir.port")
    as_owner "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 start \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=200 -c fsync=on" >/dev/null
    echo "postgres://postgres@127.0.0.1:$port"
    ;;
  stop)
    as_owner "$bin/pg_ctl" -D "$dir" -m fast -w stop >/dev/null
    ;;
  restart)
    "$0" stop "$dir"
    "$0" start "$dir" "$(cat "$dir.port")" >/dev/null
    ;;
  *) echo "usage: $0 start DIR PORT | stop DIR | restart DIR" >&2; exit 2 ;;
esac
