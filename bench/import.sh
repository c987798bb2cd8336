#!/usr/bin/env bash
# The bulk-import benchmark: ROWS synthetic persons through `bangfu identity import` (the CLI,
# gRPC streaming, encryption and blind index included) into `bangfu up` on SQLite and on
# PostgreSQL, against the floor of the same machine: the rows the import wrote, dumped and
# loaded with `psql \copy` / `sqlite3 .import` into an empty copy of the schema with all its
# indexes. Peak memory (RSS) of the client and the server is reported too.
#
#   bench/import.sh [ROWS] [POSTGRES_ADMIN_URL]
#
# Needs a release build (cargo build --release -p bangfu), psql, sqlite3 and /usr/bin/time.
# Not run in CI (CI imports 1,000 rows as a smoke test).
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-1000000}
PG=${2:-postgres://postgres@127.0.0.1:5432/postgres}
BIN=$PWD/target/release/bangfu
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
# Every table the import fills, but the audit log: one row per chunk of 1,000, and its unsealed
# rows carry NULLs the SQLite shell cannot import.
TABLES="households persons person_regions person_labor_capacity employment_records certifications pending_certifications outbox_events"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
seconds() { date +%s.%N; }

"$BIN" bench persons-csv --rows "$ROWS" --out "$WORK/persons.csv" >/dev/null
echo "rows: $ROWS ($(du -h "$WORK/persons.csv" | cut -f1) CSV)"

# Runs `bangfu up` with the given extra arguments, imports, reports; leaves the server stopped.
import_into() {
  local label=$1; shift
  local port; port=$(free_port)
  "$BIN" up --data "$WORK/$label" --listen "127.0.0.1:$port" "$@" >"$WORK/$label.log" 2>&1 &
  local server=$!
  for _ in $(seq 100); do
    "$BIN" health --addr "http://127.0.0.1:$port" >/dev/null 2>&1 && break
    sleep 0.2
  done
  local start end
  start=$(seconds)
  /usr/bin/time -f '%M' -o "$WORK/$label.client-rss" \
    "$BIN" identity import "$WORK/persons.csv" --addr "http://127.0.0.1:$port" \
    --token-file "$WORK/$label/admin.jwt" --export-date 2026-01-31 --json >"$WORK/$label.summary"
  end=$(seconds)
  local server_rss; server_rss=$(awk '/VmHWM/ {print $2}' "/proc/$server/status")
  kill -TERM "$server"; wait "$server" || true
  IMPORT_SECONDS=$(echo "$end - $start" | bc)
  printf '%-10s import %8.1f s  %9.0f rows/s  client peak RSS %6d MB  server peak RSS %6d MB\n' \
    "$label" "$IMPORT_SECONDS" "$(echo "$ROWS / $IMPORT_SECONDS" | bc -l)" \
    "$(( $(cat "$WORK/$label.client-rss") / 1024 ))" "$(( server_rss / 1024 ))"
  python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print("           outcome:", {k: s[k] for k in ("created","updated","unchanged","rejected")})' "$WORK/$label.summary"
}

# --- SQLite ---------------------------------------------------------------------------------
import_into sqlite
SQLITE_IMPORT=$IMPORT_SECONDS
DB=$WORK/sqlite/identity.db
# The shell's .import cannot write NULL (an empty field is ''), so the two table checks that
# compare optional dates (valid_to, end_date) are left out of the floor's schema.
sqlite3 "$DB" .schema | grep -v -E "sqlite_sequence|sqlite_stat" \
  | python3 -c 'import re,sys; print(re.sub(r",\s*CHECK \([a-z_]+ IS NULL OR [^\n]*\)\n", "\n", sys.stdin.read()))' \
  > "$WORK/schema.sql"
sqlite3 "$WORK/floor.db" < "$WORK/schema.sql"
for t in $TABLES; do
  # BLOB columns go out as hex: the CSV shell cannot carry arbitrary bytes.
  cols=$(sqlite3 "$DB" "SELECT group_concat(CASE WHEN type = 'BLOB' THEN 'hex(' || name || ')' ELSE name END, ', ') FROM pragma_table_info('$t')")
  sqlite3 -csv -noheader "$DB" "SELECT $cols FROM $t" > "$WORK/floor-$t.csv"
done
{
  echo "PRAGMA journal_mode=WAL;"; echo "PRAGMA synchronous=FULL;"; echo "PRAGMA foreign_keys=ON;"; echo ".mode csv"
  for t in $TABLES; do echo ".import $WORK/floor-$t.csv $t"; done
} > "$WORK/floor.sqlite"
start=$(seconds); sqlite3 "$WORK/floor.db" < "$WORK/floor.sqlite" >/dev/null 2>"$WORK/floor.errors"; end=$(seconds)
SQLITE_FLOOR=$(echo "$end - $start" | bc)
for t in $TABLES; do
  if [ "$(sqlite3 "$DB" "SELECT count(*) FROM $t")" != "$(sqlite3 "$WORK/floor.db" "SELECT count(*) FROM $t")" ]; then
    echo "the SQLite floor did not load every row of $t:"; head -3 "$WORK/floor.errors"; exit 1
  fi
done
printf 'sqlite     floor (sqlite3 .import of the same rows) %.1f s  → import / floor = %.2f×\n' \
  "$SQLITE_FLOOR" "$(echo "$SQLITE_IMPORT / $SQLITE_FLOOR" | bc -l)"

# --- PostgreSQL -----------------------------------------------------------------------------
SUFFIX=$$
SERVER=${PG%/*}
# Every database `up` makes, under the benchmark's own prefix. One left by an earlier run holds
# that run's data keys, and `up` refuses to serve with new ones: each run starts from none.
PREFIX=bench_import
for db in identity subsidy welfare_post work_relief jobs exchange reports; do
  PGOPTIONS="--client-min-messages=warning" psql -q "$PG" -c "DROP DATABASE IF EXISTS ${PREFIX}_$db WITH (FORCE)" >/dev/null
done
import_into postgres --database-url "$SERVER/postgres" --database-prefix "$PREFIX"
PG_IMPORT=$IMPORT_SECONDS
SRC="$SERVER/${PREFIX}_identity"
FLOOR="$SERVER/bangfu_floor_$SUFFIX"
psql -q "$PG" -c "CREATE DATABASE bangfu_floor_$SUFFIX" >/dev/null
pg_dump --schema-only "$SRC" | psql -q "$FLOOR" >/dev/null
for t in $TABLES; do psql -q "$SRC" -c "\\copy $t TO '$WORK/$t.copy'"; done
{
  for t in $TABLES; do echo "\\copy $t FROM '$WORK/$t.copy'"; done
} > "$WORK/floor.psql"
start=$(seconds); psql -q "$FLOOR" -f "$WORK/floor.psql" >/dev/null; end=$(seconds)
PG_FLOOR=$(echo "$end - $start" | bc)
printf 'postgres   floor (psql \\copy of the same rows)     %.1f s  → import / floor = %.2f×\n' \
  "$PG_FLOOR" "$(echo "$PG_IMPORT / $PG_FLOOR" | bc -l)"
psql -q "$PG" -c "DROP DATABASE bangfu_floor_$SUFFIX" >/dev/null
echo "rows written per table (PostgreSQL):"
for t in $TABLES; do printf '  %-24s %s\n' "$t" "$(psql -qtA "$SRC" -c "SELECT count(*) FROM $t")"; done
