#!/usr/bin/env bash
# The reports benchmark: a province's quarter (附件1 for Shandong, 16 cities and 136 counties,
# and its project list) generated from a suite holding ROWS persons in identity and a year's
# posts, work relief and job matching seeded by the other benches: `bangfu up` (SQLite), ROWS
# synthetic persons imported, then
#   - bench close-month: HOLDERS post holders with their signings and a month closed (2025-03);
#   - bench relief-month: PROJECTS work-relief projects, WORKERS workers, a month paid (2025-11);
#   - bench recommend: every person a job seeker, 10,000 postings across Shandong (1 sample);
# then GenerateReport for 37, 2025Q4, timed three times each form, with the server's peak memory.
#
#   bench/reports.sh [ROWS] [HOLDERS] [WORKERS]
#
# Needs a release build (cargo build --release -p bangfu). Not run in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-1000000}
HOLDERS=${2:-20000}
WORKERS=${3:-30000}
PROJECTS=${PROJECTS:-500}
BIN=${BIN:-$PWD/target/release/bangfu}
WORK=${WORK:-$(mktemp -d)}
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ADDR="http://127.0.0.1:$PORT"
DATA="$WORK/data"
step() { printf '%s  %s\n' "$(date +%T)" "$*"; }

# A WORK folder kept from an earlier run (WORK=… bench/reports.sh) keeps its imported persons.
FRESH=1
[ -f "$DATA/identity.db" ] && FRESH=0
BANGFU_LOG=warn "$BIN" up --data "$DATA" --listen "127.0.0.1:$PORT" >"$WORK/up.log" 2>&1 &
UP=$!
for _ in $(seq 300); do "$BIN" health --addr "$ADDR" >/dev/null 2>&1 && break; sleep 0.2; done
if [ "$FRESH" = 1 ]; then
  step "persons file ($ROWS rows), import"
  "$BIN" bench persons-csv --rows "$ROWS" --out "$WORK/persons.csv" >/dev/null
  time "$BIN" identity import "$WORK/persons.csv" --addr "$ADDR" --token-file "$DATA/admin.jwt" \
    --export-date 2026-01-31 --json >/dev/null
fi
# The synthetic persons live in Zaozhuang: rural affairs of the city confirms their categories.
step "the import's pending certifications confirmed"
AGRI=$("$BIN" token issue --dept agri --role reviewer --region 3704 --keys "$DATA/keys" --subject bench-agri)
time "$BIN" identity confirm --all --page-size 1000 --json --addr "$ADDR" --token "$AGRI" >/dev/null
"$BIN" token issue --dept ndrc --role admin --region '*' --keys "$DATA/keys" --subject bench-approver \
  > "$WORK/approver.jwt"
step "posts: close-month, $HOLDERS holders"
"$BIN" bench close-month --addr "$ADDR" --token-file "$DATA/admin.jwt" \
  --posts-database "sqlite://$DATA/welfare_post.db?mode=rwc" --holders "$HOLDERS"
step "work relief: relief-month, $PROJECTS projects, $WORKERS workers"
"$BIN" bench relief-month --addr "$ADDR" --token-file "$DATA/admin.jwt" \
  --approver-token-file "$WORK/approver.jwt" --relief-database "sqlite://$DATA/work_relief.db?mode=rwc" \
  --projects "$PROJECTS" --workers "$WORKERS"
step "job matching: recommend, $ROWS seekers"
"$BIN" bench recommend --addr "$ADDR" --token-file "$DATA/admin.jwt" \
  --jobs-database "sqlite://$DATA/jobs.db?mode=rwc" --identity-database "sqlite://$DATA/identity.db?mode=rwc" \
  --seekers "$ROWS" --samples 1
step "reports"
"$BIN" bench reports --addr "$ADDR" --token-file "$DATA/admin.jwt" --region 37 --period 2025Q4 \
  --runs 3 --server-pid "$UP"
ls -la "$DATA"/*.db
