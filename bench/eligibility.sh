#!/usr/bin/env bash
# The eligibility benchmark (issue 14): CheckEligibility of one applicant against a post under
# load, on `bangfu up` (SQLite, or the PostgreSQL server given) holding ROWS synthetic persons
# imported into identity with their certifications confirmed. Each call runs every rule: the
# person read from identity for the hire date, age, registration, cadres and their households,
# another signing over the same days, placements, and subsidy payment's dry run (EvaluateClaim)
# for the first month, which reads identity again. Loaded with 32 callers on 4 connections
# (throughput and p99 under load) and with one caller (a single call's latency), beside gRPC
# health on the same server as the yardstick.
#
#   bench/eligibility.sh [ROWS] [sqlite|POSTGRES_SERVER_URL]
#
# Needs a release build (cargo build --release -p bangfu). Not run in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-100000}
BACKEND=${2:-sqlite}
BIN=${BIN:-$PWD/target/release/bangfu}
DURATION=${DURATION:-10s}
. bench/suite.sh
POSTS_DB=$(database_url welfare_post)
start_suite
confirm_certifications
echo "backend: $BACKEND, persons: $ROWS, each load $DURATION"

call() {
  "$BIN" bench call --addr "$ADDR" --token-file "$WORK/data/admin.jwt" --duration "$DURATION" "$@"
}
echo "32 callers on 4 connections"
call --call health
# The post is seeded once per load (the shipped policies end with 2025, and CreatePost takes
# only a policy in force today); the hire date, 2025-06-01, is one the policy covers.
call --call check-eligibility --region-prefix 3704 --posts-database "$POSTS_DB"
echo "one caller, one connection: the latency of a single call"
call --call health --concurrency 1 --connections 1
call --call check-eligibility --region-prefix 3704 --posts-database "$POSTS_DB" --concurrency 1 --connections 1
