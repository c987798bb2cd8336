#!/usr/bin/env bash
# The identity read benchmark: ROWS synthetic persons imported into `bangfu up` (SQLite, or the
# PostgreSQL server given), then each read loaded with `bangfu bench call` on the same server:
# gRPC health (the yardstick), GetPerson, LookupPerson, BatchGetPersons of 1,000 names, and
# ListPersons under a region prefix on its first page and on a page 500,000 rows deep; with
# 32 callers (throughput) and with one (the latency of a single call).
#
#   bench/reads.sh [ROWS] [sqlite|POSTGRES_SERVER_URL]
#
# Needs a release build (cargo build --release -p bangfu). Not run in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-1000000}
BACKEND=${2:-sqlite}
# BIN: another build to compare (a copy of an earlier release build).
BIN=${BIN:-$PWD/target/release/bangfu}
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ADDR=http://127.0.0.1:$PORT
DURATION=${DURATION:-10s}

EXTRA=()
if [ "$BACKEND" != sqlite ]; then
  # Every database `up` makes, under a prefix of the benchmark's own: a database left by an
  # earlier run holds that run's data keys, and `up` refuses to serve with new ones.
  PREFIX=bench_reads
  for db in identity subsidy welfare_post work_relief jobs exchange reports; do
    PGOPTIONS="--client-min-messages=warning" psql -q "$BACKEND/postgres" -c "DROP DATABASE IF EXISTS ${PREFIX}_$db WITH (FORCE)" >/dev/null
  done
  EXTRA=(--database-url "$BACKEND/postgres" --database-prefix "$PREFIX")
fi
"$BIN" bench persons-csv --rows "$ROWS" --out "$WORK/persons.csv" >/dev/null
BANGFU_LOG=warn "$BIN" up --data "$WORK/data" --listen "127.0.0.1:$PORT" "${EXTRA[@]}" >"$WORK/up.log" 2>&1 &
for _ in $(seq 300); do "$BIN" health --addr "$ADDR" >/dev/null 2>&1 && break; sleep 0.2; done
"$BIN" identity import "$WORK/persons.csv" --addr "$ADDR" --token-file "$WORK/data/admin.jwt" \
  --export-date 2026-01-31 --json >/dev/null
echo "backend: $BACKEND, persons: $ROWS, each load $DURATION, 32 callers on 4 connections"

call() {
  "$BIN" bench call --addr "$ADDR" --token-file "$WORK/data/admin.jwt" --duration "$DURATION" "$@"
}
# The per-subject lookup limit (60 a minute by default) would refuse almost every lookup of the
# load; the benchmark measures the lookup itself.
"$BIN" identity parameter set identity.lookups_per_minute --region '*' --from 2021-01-01 \
  --value 100000000 --document "benchmark: no per-subject limit" \
  --addr "$ADDR" --token-file "$WORK/data/admin.jwt" >/dev/null
call --call health
call --call get-person
# The first generated row: born 1950-01-01, sequence 000, issued in 370402.
call --call lookup-person --citizen-id 37040219500101000X --name 王伟
call --call batch-get-persons --concurrency 4 --connections 2
call --call list-persons --region-prefix 3704
call --call list-persons --region-prefix 3704 --skip-pages 500
echo "one caller, one connection: the latency of a single call"
call --call get-person --concurrency 1 --connections 1
call --call batch-get-persons --concurrency 1 --connections 1
call --call list-persons --region-prefix 3704 --concurrency 1 --connections 1
call --call list-persons --region-prefix 3704 --skip-pages 500 --concurrency 1 --connections 1
