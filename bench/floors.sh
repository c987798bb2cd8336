#!/usr/bin/env bash
# GetPerson against the floor of its own SQL, in one run: ROWS synthetic persons imported into
# `bangfu up` (SQLite, or the PostgreSQL server given), then, at the same concurrency and on the
# same person,
#   - GetPerson (masked, one person) through every layer (`bangfu bench call`);
#   - the two statements GetPerson runs, straight through sqlx, prepared and cached per
#     connection (`bangfu bench statements`);
#   - on PostgreSQL, the same two statements under `pgbench -M prepared` (the floor issue 18
#     names), when pgbench is installed;
# and each ratio GetPerson / floor. The statements are the ones services/identity/src/store.rs
# runs for GetPerson (get_as_of, certifications_overlapping): keep them the same.
# Then the same for BatchGetPersons of the first 1,000 persons listed, at BATCH_CONCURRENCY
# callers, with persons/s.
#
#   bench/floors.sh [ROWS] [sqlite|POSTGRES_SERVER_URL]
#
# Needs a release build (cargo build --release -p bangfu). Not run in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-100000}
BACKEND=${2:-sqlite}
# BIN: another build to compare (a copy of an earlier release build).
BIN=${BIN:-$PWD/target/release/bangfu}
DURATION=${DURATION:-10s}
CONCURRENCY=${CONCURRENCY:-32}
BATCH_CONCURRENCY=${BATCH_CONCURRENCY:-4}
. bench/suite.sh
IDENTITY_DB=$(database_url identity)
start_suite
# About a third of the persons then hold a certification, as a county's registry does.
confirm_certifications
settle
PERSON=$("$BIN" identity list --page-size 1 --json --addr "$ADDR" --token-file "$WORK/data/admin.jwt" 2>/dev/null |
  python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["name"])')
ID=${PERSON#persons/}
# GetPerson without a period reads as of today in China.
TODAY=$(TZ=Asia/Shanghai date +%F)

# The statements of services/identity/src/store.rs's persons_as_of for a masked read
# (MASKED_PERSON_COLUMNS, FACTS_AS_OF) and certifications_overlapping, for the persons in IDS
# ('id', …) and VALUES ('id'), … as of TODAY.
statements() {
  local ids=$1 values=$2
  cat <<SQL
SELECT id, citizen_id_masked, name_masked, phone_masked, sex, birth_date,
  retirement_track, retirement_month, registered_region, residence_region, labor_capacity, skills, death_date,
  moved_away_date, created_us, updated_us, revision, household_id, household_relation,
  (SELECT r.region FROM person_regions r WHERE r.person_id = persons.id AND r.kind = 'registered'
     AND r.valid_from <= '$TODAY' ORDER BY r.valid_from DESC LIMIT 1) AS registered_as_of,
  (SELECT r.region FROM person_regions r WHERE r.person_id = persons.id AND r.kind = 'residence'
     AND r.valid_from <= '$TODAY' ORDER BY r.valid_from DESC LIMIT 1) AS residence_as_of,
  (SELECT l.labor_capacity FROM person_labor_capacity l WHERE l.person_id = persons.id
     AND l.valid_from <= '$TODAY' ORDER BY l.valid_from DESC LIMIT 1) AS labor_as_of,
  (SELECT e.status FROM employment_records e WHERE e.person_id = persons.id AND e.start_date <= '$TODAY'
     AND (e.end_date IS NULL OR e.end_date >= '$TODAY') ORDER BY e.start_date DESC, e.id DESC LIMIT 1) AS status_as_of
FROM persons WHERE id IN ($ids);
SQL
  if [ "$BACKEND" = sqlite ]; then
    cat <<SQL
SELECT id, person_id, category, household_type, certifying_body, document_reference,
  valid_from, valid_to, annulled, certify_subject, certified_us, revoked_us, annulled_us
FROM certifications WHERE valid_from <= '$TODAY' AND (valid_to IS NULL OR valid_to >= '$TODAY')
  AND person_id IN ($ids) ORDER BY person_id, valid_from, id;
SQL
  else
    cat <<SQL
SELECT c.* FROM (VALUES $values) AS wanted(id) CROSS JOIN LATERAL
  (SELECT id, person_id, category, household_type, certifying_body, document_reference,
     valid_from, valid_to, annulled, certify_subject, certified_us, revoked_us, annulled_us
   FROM certifications WHERE person_id = wanted.id
     AND valid_from <= '$TODAY' AND (valid_to IS NULL OR valid_to >= '$TODAY') OFFSET 0) c
ORDER BY c.person_id, c.valid_from, c.id;
SQL
  fi
}
statements "'$ID'" "('$ID')" >"$WORK/get-person.sql"

rate() { awk '{print $2}'; }
echo "backend: $BACKEND, persons: $ROWS, $PERSON, each load $DURATION, $CONCURRENCY callers"
SERVICE=$("$BIN" bench call --addr "$ADDR" --token-file "$WORK/data/admin.jwt" --duration "$DURATION" \
  --concurrency "$CONCURRENCY" --call get-person --person "$PERSON")
echo "$SERVICE"
FLOOR=$("$BIN" bench statements --database "$IDENTITY_DB" --sql-file "$WORK/get-person.sql" \
  --duration "$DURATION" --concurrency "$CONCURRENCY")
echo "$FLOOR"
python3 -c "print(f'GetPerson / its statements through sqlx: {$(echo "$SERVICE" | rate) / $(echo "$FLOOR" | rate):.2f}')"
if [ "$BACKEND" != sqlite ] && command -v pgbench >/dev/null; then
  SECONDS_RUN=${DURATION%s}
  PGBENCH=$(pgbench -n -M prepared -c "$CONCURRENCY" -j 2 -T "$SECONDS_RUN" -f "$WORK/get-person.sql" "$IDENTITY_DB" 2>&1 |
    awk -F'= ' '/^tps/ {split($2, a, " "); print a[1]}')
  echo "pgbench -M prepared  $PGBENCH runs/s"
  python3 -c "print(f'GetPerson / pgbench -M prepared: {$(echo "$SERVICE" | rate) / $PGBENCH:.2f}')"
fi

# BatchGetPersons: the first page of ListPersons, as `bench call --call batch-get-persons` reads it.
IDS=$("$BIN" identity list --page-size 1000 --json --addr "$ADDR" --token-file "$WORK/data/admin.jwt" 2>/dev/null |
  python3 -c 'import json,sys; print(" ".join(p["name"].split("/")[1] for p in json.load(sys.stdin)))')
statements "$(printf "'%s'," $IDS | sed 's/,$//')" "$(printf "('%s')," $IDS | sed 's/,$//')" >"$WORK/batch-get.sql"
persons() { python3 -c "import sys; print(f'{float(sys.argv[1]) * 1000:,.0f} persons/s')" "$1"; }
echo "BatchGetPersons of 1,000, $BATCH_CONCURRENCY callers"
SERVICE=$("$BIN" bench call --addr "$ADDR" --token-file "$WORK/data/admin.jwt" --duration "$DURATION" \
  --concurrency "$BATCH_CONCURRENCY" --call batch-get-persons)
echo "$SERVICE ($(persons "$(echo "$SERVICE" | rate)"))"
FLOOR=$("$BIN" bench statements --database "$IDENTITY_DB" --sql-file "$WORK/batch-get.sql" \
  --duration "$DURATION" --concurrency "$BATCH_CONCURRENCY")
echo "$FLOOR"
python3 -c "print(f'BatchGetPersons / its statements through sqlx: {$(echo "$SERVICE" | rate) / $(echo "$FLOOR" | rate):.2f}')"
if [ "$BACKEND" != sqlite ] && command -v pgbench >/dev/null; then
  PGBENCH=$(pgbench -n -M prepared -c "$BATCH_CONCURRENCY" -j 2 -T "${DURATION%s}" -f "$WORK/batch-get.sql" "$IDENTITY_DB" 2>&1 |
    awk -F'= ' '/^tps/ {split($2, a, " "); print a[1]}')
  echo "pgbench -M prepared  $PGBENCH runs/s"
  python3 -c "print(f'BatchGetPersons / pgbench -M prepared: {$(echo "$SERVICE" | rate) / $PGBENCH:.2f}')"
fi
