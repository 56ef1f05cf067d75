#!/usr/bin/env bash
# Start or stop a throwaway PgBouncer in transaction pooling on loopback, in
# front of a PostgreSQL started by .ci/postgres.sh (trust authentication).
#   .ci/pgbouncer.sh start DIR PORT PG_PORT [SERVER_CONNECTIONS]   (returns once it runs)
#   .ci/pgbouncer.sh stop DIR
# Used by tests/deploy/test_pgbouncer.py and benchmarks/bench_scale.py.
# Runs as the `postgres` system user when started as root (PgBouncer refuses root).
set -euo pipefail
cmd=$1; dir=$2
bin=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
case "$cmd" in
  start)
    port=$3; pg_port=$4; pool=${5:-20}
    mkdir -p "$dir"
    printf '"postgres" ""\n' > "$dir/userlist.txt"
    cat > "$dir/pgbouncer.ini" <<EOF
[databases]
* = host=127.0.0.1 port=$pg_port

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = transaction
default_pool_size = $pool
max_client_conn = 2000
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
EOF
    as_user=()
    if [ "$(id -u)" = 0 ]; then chown -R postgres "$dir"; chmod 755 "$dir"; as_user=(-u postgres); fi
    # -d: into the background once the listening socket is open
    "$bin" -d "${as_user[@]}" "$dir/pgbouncer.ini"
    for _ in $(seq 100); do [ -s "$dir/pgbouncer.pid" ] && exit 0; sleep 0.05; done
    echo "pgbouncer did not start; see $dir/pgbouncer.log" >&2; exit 1
    ;;
  stop)
    if [ -f "$dir/pgbouncer.pid" ]; then
      pid=$(cat "$dir/pgbouncer.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    ;;
  *) echo "usage: $0 start DIR PORT PG_PORT [SERVER_CONNECTIONS] | stop DIR" >&2; exit 2 ;;
esac
