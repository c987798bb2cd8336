#!/usr/bin/env bash
# The claim intake benchmark (issue 13's payroll path): a fresh `bangfu up` on PostgreSQL (or
# SQLite), then `bangfu bench claims`: SubmitClaim under load beside GetServerInfo, then CLAIMS
# monthly claims streamed through SubmitClaims over STREAMS streams at once. Peak memory of the
# server is reported too.
#
#   bench/claims.sh [CLAIMS] [STREAMS] [sqlite|POSTGRES_SERVER_URL] [PERSONS]
#
# Needs a release build (cargo build --release -p bangfu) and psql for PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
CLAIMS=${1:-200000}
STREAMS=${2:-4}
BACKEND=${3:-postgres://postgres@127.0.0.1:5432}
PERSONS=${4:-5000}
BIN=${BIN:-$PWD/target/release/bangfu}
source bench/suite.sh

start_up
"$BIN" token issue --keys "$WORK/data/keys" --dept agri --role admin --region '*' >"$WORK/agri.jwt"
"$BIN" bench claims --addr "$ADDR" --token-file "$WORK/agri.jwt" --persons "$PERSONS" \
  --duration 5s --stream-claims "$CLAIMS" --streams "$STREAMS"
echo "server peak RSS $(( $(awk '/VmHWM/ {print $2}' "/proc/$SERVER/status") / 1024 )) MB"
