#!/usr/bin/env bash
# The exchange benchmark: a receiving province's `bangfu up` (SQLite, or the PostgreSQL server
# given) with its exchange's partner port configured and ROWS synthetic persons in identity; the
# bench plays the calling partner (its own CA, client certificate and exchange key) and loads
# VerifyPerson signed and logged against the same verification relayed without signing or
# logging, both over mutual TLS, in one run; then verifies 10,000 IDs 1,000 a message.
#
#   bench/exchange.sh [ROWS] [sqlite|POSTGRES_SERVER_URL]
#
# Needs a release build (cargo build --release -p bangfu) and openssl. Not run in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-100000}
BACKEND=${2:-sqlite}
BIN=${BIN:-$PWD/target/release/bangfu}
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MAIN=$(free_port)
PARTNER=$(free_port)

# Each side's CA and a certificate for localhost, for server and client use.
pki() {
  local dir=$1 name=$2
  mkdir -p "$dir"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=$name exchange CA" -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$name exchange" \
    -keyout "$dir/tls.key" -out "$dir/tls.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' > "$dir/ext"
  openssl x509 -req -in "$dir/tls.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial -days 2 \
    -extfile "$dir/ext" -out "$dir/tls.pem" 2>/dev/null
}
pki "$WORK/cq/exchange" chongqing
pki "$WORK/sd/exchange" shandong
"$BIN" keys init --partner chongqing --host localhost --out "$WORK/cq" >/dev/null
"$BIN" keys init --partner shandong --host localhost --out "$WORK/sd" >/dev/null
cp "$WORK/sd/exchange/ca.pem" "$WORK/cq/exchange/shandong-ca.pem"
cp "$WORK/sd/exchange/shandong-exchange.pub.pem" "$WORK/cq/exchange/"
SD_KID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["kid"])' "$WORK/sd/exchange/shandong-exchange.signing.json")
cat > "$WORK/cq/exchange/exchange.json" <<JSON
{
  "self": { "id": "chongqing", "display_name": "重庆（基准测试）", "region_prefix": "50" },
  "signing_key": "chongqing-exchange.signing.json",
  "listen": "127.0.0.1:$PARTNER",
  "tls_cert": "tls.pem",
  "tls_key": "tls.key",
  "partners": [{
    "id": "shandong", "display_name": "山东（基准测试）", "region_prefix": "37",
    "url": "https://localhost:1",
    "ca_file": "shandong-ca.pem",
    "keys": [{ "kid": "$SD_KID", "public_key_file": "shandong-exchange.pub.pem" }],
    "allowed": ["verify_person"]
  }]
}
JSON

EXTRA=()
if [ "$BACKEND" != sqlite ]; then
  EXTRA=(--database-url "$BACKEND/postgres" --database-prefix "bench_exchange")
  for s in identity subsidy welfare_post work_relief jobs exchange; do
    psql -q "$BACKEND/postgres" -c "DROP DATABASE IF EXISTS bench_exchange_$s WITH (FORCE)" >/dev/null
  done
fi
"$BIN" bench persons-csv --rows "$ROWS" --out "$WORK/persons.csv" >/dev/null
BANGFU_LOG=warn BANGFU_EXCHANGE_CONFIG="$WORK/cq/exchange/exchange.json" \
  "$BIN" up --data "$WORK/data" --listen "127.0.0.1:$MAIN" "${EXTRA[@]}" >"$WORK/up.log" 2>&1 &
for _ in $(seq 300); do "$BIN" health --addr "http://127.0.0.1:$MAIN" >/dev/null 2>&1 && break; sleep 0.2; done
"$BIN" identity import "$WORK/persons.csv" --addr "http://127.0.0.1:$MAIN" --token-file "$WORK/data/admin.jwt" \
  --export-date 2026-01-31 --json >/dev/null
# 10,000 IDs from the file (column 证件号码), for the batch run.
python3 - "$WORK/persons.csv" "$WORK/ids.txt" <<'PY'
import csv, sys
with open(sys.argv[1], encoding="utf-8") as f, open(sys.argv[2], "w") as out:
    rows = csv.reader(f)
    next(rows)
    for i, row in zip(range(10000), rows):
        out.write(row[3] + "\n")
PY
FIRST=$(head -1 "$WORK/ids.txt")
echo "backend: $BACKEND, persons: $ROWS"
"$BIN" bench exchange --url "https://localhost:$PARTNER" --receiver chongqing \
  --ca "$WORK/cq/exchange/ca.pem" --cert "$WORK/sd/exchange/tls.pem" --key "$WORK/sd/exchange/tls.key" \
  --signing-key "$WORK/sd/exchange/shandong-exchange.signing.json" \
  --data "$WORK/data" --main "http://127.0.0.1:$MAIN" \
  --relay-cert "$WORK/cq/exchange/tls.pem" --relay-key "$WORK/cq/exchange/tls.key" \
  --relay-client-ca "$WORK/sd/exchange/ca.pem" \
  --citizen-id "$FIRST" --batch-file "$WORK/ids.txt" \
  --seconds "${SECONDS_EACH:-10}" --rounds "${ROUNDS:-2}"
