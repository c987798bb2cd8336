#!/usr/bin/env bash
# The month-end benchmarks of issues 14 and 16 on one suite: a fresh `bangfu up` on PostgreSQL
# (or SQLite) holding ROWS synthetic persons, their pending certifications confirmed, then
#   - bench relief-month: a county's work-relief month (PROJECTS projects, WORKERS workers),
#     muster rolls to claims landed in subsidy payment (2025-11);
#   - bench close-month: HOLDERS public-welfare-post holders' month closed into claims (2025-03).
# Each prints its phases, its total and the server's peak memory.
#
#   bench/months.sh [ROWS] [sqlite|POSTGRES_SERVER_URL] [WORKERS] [HOLDERS]
#
# About a third of the synthetic persons are poverty-alleviated, and both benches draw their
# people from them: ROWS must be about 3.3× the larger of WORKERS and HOLDERS.
# Needs a release build (cargo build --release -p bangfu) and psql for PostgreSQL. Not run in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-200000}
BACKEND=${2:-postgres://postgres@127.0.0.1:5432}
WORKERS=${3:-30000}
HOLDERS=${4:-20000}
PROJECTS=${PROJECTS:-500}
BIN=${BIN:-$PWD/target/release/bangfu}
source bench/suite.sh
step() { printf '%s  %s\n' "$(date +%T)" "$*"; }

step "suite up, $ROWS persons imported"
start_suite
step "the import's pending certifications confirmed"
confirm_certifications
"$BIN" token issue --dept ndrc --role admin --region '*' --keys "$WORK/data/keys" --subject bench-approver \
  >"$WORK/approver.jwt"
step "followers caught up"
settle
step "work relief: relief-month, $PROJECTS projects, $WORKERS workers"
"$BIN" bench relief-month --addr "$ADDR" --token-file "$WORK/data/admin.jwt" \
  --approver-token-file "$WORK/approver.jwt" --relief-database "$(database_url work_relief)" \
  --projects "$PROJECTS" --workers "$WORKERS" --server-pid "$SERVER"
settle
step "posts: close-month, $HOLDERS holders"
"$BIN" bench close-month --addr "$ADDR" --token-file "$WORK/data/admin.jwt" \
  --posts-database "$(database_url welfare_post)" --holders "$HOLDERS" --server-pid "$SERVER"
step "done"
