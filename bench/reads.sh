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
DURATION=${DURATION:-10s}
. bench/suite.sh
start_suite
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
