#!/usr/bin/env bash
# Start or stop a throwaway PostgreSQL cluster on loopback for the tests.
#   .ci/postgres.sh start DIR PORT   -> prints the admin URL
#   .ci/postgres.sh stop DIR
# Runs the server as the `postgres` system user (initdb refuses root).
set -euo pipefail
cmd=$1; dir=$2; port=${3:-55432}
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
case "$cmd" in
  start)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    if [ ! -f "$dir/PG_VERSION" ]; then
      as_pg "$bin/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 >/dev/null
    fi
    as_pg "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w \
      -o "-c listen_addresses=127.0.0.1 -p $port -k /tmp -c max_connections=300 -c fsync=off" start >/dev/null
    echo "postgresql+psycopg://postgres@127.0.0.1:$port/postgres"
    ;;
  stop)
    as_pg "$bin/pg_ctl" -D "$dir" -m fast -w stop >/dev/null || true
    ;;
  restart)
    as_pg "$bin/pg_ctl" -D "$dir" -m fast -w restart >/dev/null
    ;;
  *) echo "usage: $0 start|stop|restart DIR [PORT]" >&2; exit 2 ;;
esac
