#!/usr/bin/env bash
# A PostgreSQL server of the benchmarks' own, set as the reference floors were measured
# (shared_buffers 2 GB, max_wal_size 8 GB, fsync on, autovacuum on), so that a month's figures
# do not depend on how a shared server happens to be set or on what else wrote to it. A server
# with the default 128 MB of buffers and 1 GB of WAL took 410 requested checkpoints in an hour of
# benchmarks and tests here, and the same month measured between 35 s and 66 s on it.
#
#   bench/pg.sh start    creates the cluster if needed, starts it, prints its URL
#   bench/pg.sh stop     stops it
#   bench/pg.sh remove   stops it and deletes its files
#
# Then, e.g.: bench/months.sh 660000 "$(bench/pg.sh start)" 30000 200000
# BENCH_PG_DIR (default /tmp/bangfu-bench-pg) and BENCH_PG_PORT (default 5499) place it.
# Needs PostgreSQL's server programs (initdb, pg_ctl); run as root, the cluster belongs to the
# postgres user, since PostgreSQL refuses to run as root. Not run in CI.
set -euo pipefail
DIR=${BENCH_PG_DIR:-/tmp/bangfu-bench-pg}
PORT=${BENCH_PG_PORT:-5499}
BINDIR=${PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
[ -x "$BINDIR/initdb" ] || { echo "initdb not found; set PG_BINDIR" >&2; exit 2; }

as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "${1:-}" in
  start)
    if [ ! -f "$DIR/PG_VERSION" ]; then
      mkdir -p "$DIR"
      [ "$(id -u)" != 0 ] || chown postgres: "$DIR"
      as_owner "$BINDIR/initdb" -D "$DIR" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
      cat >>"$DIR/postgresql.conf" <<EOF
# bench/pg.sh: as the reference floors were measured
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$DIR'
shared_buffers = 2GB
max_wal_size = 8GB
fsync = on
synchronous_commit = on
autovacuum = on
max_connections = 200
EOF
    fi
    if ! as_owner "$BINDIR/pg_ctl" -D "$DIR" status >/dev/null 2>&1; then
      as_owner "$BINDIR/pg_ctl" -D "$DIR" -l "$DIR/server.log" -w start >/dev/null
    fi
    echo "postgres://postgres@127.0.0.1:$PORT"
    ;;
  stop)
    as_owner "$BINDIR/pg_ctl" -D "$DIR" -m fast stop >/dev/null 2>&1 || true
    ;;
  remove)
    as_owner "$BINDIR/pg_ctl" -D "$DIR" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$DIR"
    ;;
  *)
    sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
