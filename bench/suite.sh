# Sourced by the benchmarks that load one `bangfu up` (reads.sh, floors.sh, eligibility.sh,
# claims.sh, months.sh). Needs BACKEND (sqlite or a PostgreSQL server URL), BIN and,
# for start_suite, ROWS; sets WORK (removed on exit, with the server stopped), ADDR and
# `database_url SERVICE` (where `up` keeps that service's data); `start_up` starts the suite
# (on PostgreSQL with autovacuum on, see below), `start_suite` starts it and imports ROWS
# synthetic persons; `confirm_certifications` confirms what the import left pending (as an
# agriculture reviewer of Zaozhuang, where the synthetic persons live), and `settle` waits for
# the feed followers to catch up.

WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"; autovacuum_reset' EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ADDR=http://127.0.0.1:$PORT
# On PostgreSQL every database `up` makes, under a prefix of the benchmark's own.
PREFIX=bench_$(basename "$0" .sh)

database_url() {
  if [ "$BACKEND" = sqlite ]; then
    echo "sqlite://$WORK/data/$1.db?mode=rwc"
  else
    echo "$BACKEND/${PREFIX}_$1"
  fi
}

# A deployment's PostgreSQL runs autovacuum; a test machine's may not (this one's CI settings
# turn it off). Without it nothing refreshes the statistics of tables a bench fills, and plans
# cached while a table was small (a prepared statement's generic plan) are never replaced: the
# timed run then measures scans no deployment makes. A PostgreSQL bench turns it on for its run
# and sets it back after.
AUTOVACUUM_SET=
autovacuum_on() {
  local setting
  setting=$(psql -qtA "$BACKEND/postgres" -c "SELECT setting || ' ' || COALESCE(sourcefile, source) FROM pg_settings WHERE name = 'autovacuum'")
  case "$setting" in
    on\ *) return ;;
    # Someone's ALTER SYSTEM: theirs to change, and a reset here would not restore it.
    *postgresql.auto.conf) echo "autovacuum is off by ALTER SYSTEM; left off, figures will differ from a deployment's" >&2; return ;;
  esac
  psql -qtA "$BACKEND/postgres" -c "ALTER SYSTEM SET autovacuum = on" -c "SELECT pg_reload_conf()" >/dev/null
  AUTOVACUUM_SET=1
  sleep 1
  # A setting on the server's command line outranks ALTER SYSTEM.
  if [ "$(psql -qtA "$BACKEND/postgres" -c 'SHOW autovacuum')" = on ]; then
    echo "autovacuum turned on for this run (as a deployment runs it)"
  else
    echo "autovacuum could not be turned on (set on the server's command line?); figures will differ from a deployment's" >&2
  fi
}
autovacuum_reset() {
  [ -n "$AUTOVACUUM_SET" ] || return 0
  psql -qtA "$BACKEND/postgres" -c "ALTER SYSTEM RESET autovacuum" -c "SELECT pg_reload_conf()" >/dev/null || true
}

# Starts `bangfu up` on BACKEND from no data and waits until it serves; SERVER is its pid.
start_up() {
  local extra=()
  if [ "$BACKEND" != sqlite ]; then
    autovacuum_on
    # A database left by an earlier run holds that run's data keys, and `up` refuses to serve
    # with new ones: each run starts from none.
    for db in identity subsidy welfare_post work_relief jobs exchange reports; do
      PGOPTIONS="--client-min-messages=warning" psql -q "$BACKEND/postgres" \
        -c "DROP DATABASE IF EXISTS ${PREFIX}_$db WITH (FORCE)" >/dev/null
    done
    extra=(--database-url "$BACKEND/postgres" --database-prefix "$PREFIX")
  fi
  BANGFU_LOG=warn "$BIN" up --data "$WORK/data" --listen "127.0.0.1:$PORT" "${extra[@]}" >"$WORK/up.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 300); do "$BIN" health --addr "$ADDR" >/dev/null 2>&1 && break; sleep 0.2; done
}

# Starts the suite and imports ROWS synthetic persons.
start_suite() {
  "$BIN" bench persons-csv --rows "$ROWS" --out "$WORK/persons.csv" >/dev/null
  start_up
  "$BIN" identity import "$WORK/persons.csv" --addr "$ADDR" --token-file "$WORK/data/admin.jwt" \
    --export-date 2026-01-31 --json >/dev/null
}

confirm_certifications() {
  local agri
  agri=$("$BIN" token issue --dept agri --role reviewer --region 3704 --keys "$WORK/data/keys" --subject bench-agri)
  "$BIN" identity confirm --all --page-size 1000 --json --addr "$ADDR" --token "$agri" >/dev/null
}

# Waits until every feed follower has caught up: the confirmations just made are thousands of
# identity changes the followers apply, and a month timed while they run measures them too. A
# follower reports how far behind it is after each batch it applies, so "0 behind" counts only
# once the followers' applied counts have stopped moving as well.
settle() {
  local last= now
  for _ in $(seq 600); do
    now=$("$BIN" server-info --addr "$ADDR" --token-file "$WORK/data/admin.jwt" --json |
      python3 -c 'import json,sys
followers = json.load(sys.stdin).get("followers", [])
print(sum(int(f.get("eventsBehind", 0)) for f in followers), sum(int(f.get("eventsApplied", 0)) for f in followers))')
    case "$now" in
      "0 "*) [ "$now" = "$last" ] && break ;;
    esac
    last=$now
    sleep 2
  done
  [ "$now" = "$last" ] || echo "followers still behind after 20 minutes: $now" >&2
  drained
}

# On PostgreSQL, also waits until subsidy payment's proposal job has matched the changes the
# followers noted (one per certification an import confirms) and every service's audit rows are
# sealed: both are work an import leaves behind, not the month's.
drained() {
  [ "$BACKEND" != sqlite ] || return 0
  local checks unsealed
  for _ in $(seq 300); do
    checks=$(psql -qtA "$(database_url subsidy)" -c "SELECT COUNT(*) FROM proposal_checks")
    unsealed=0
    for db in identity subsidy welfare_post work_relief; do
      unsealed=$((unsealed + $(psql -qtA "$(database_url $db)" \
        -c "SELECT COUNT(*) FROM audit_events e JOIN audit_chain c ON c.singleton = 1 WHERE (e.xid, e.id) > (c.last_xid, c.last_event_id)")))
    done
    # A few rows of the services' own jobs may always be on their way.
    [ "$checks" = 0 ] && [ "$unsealed" -lt 1000 ] && return
    sleep 2
  done
  echo "after 10 minutes still $checks proposal checks and $unsealed unsealed audit rows" >&2
}
