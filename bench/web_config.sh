#!/usr/bin/env bash
# Scrape latency of /metrics with --web.config.file: plain HTTP (text 0.0.4,
# OpenMetrics, gzip, and while 1,100 silent connections from another address
# hold partial requests), basic auth (bcrypt cost 10, the first request pays
# bcrypt, later ones hit the cache; wrong passwords alone and while 4 clients
# flood wrong passwords), and TLS + basic auth (a new connection, so a full
# handshake, per scrape).
# Usage: bench/web_config.sh [N]   (default 200 scrapes per case; needs curl)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-200}
cargo build --release -q
bin=target/release/node-sentinel
dir=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
cp tests/fixtures/web_config/test-only-* "$dir"/
# bcrypt (cost 10) of "bench-password".
hash='$2b$10$XLMeVxWZVFvkFVPScrOVoO0TOVuLfZ5qrTTdwhH9mncEcQyF4Q1CO'
printf '' > "$dir/none.yml"
printf 'basic_auth_users:\n  bench: %s\n' "$hash" > "$dir/auth.yml"
printf 'tls_server_config:\n  cert_file: test-only-server.pem\n  key_file: test-only-server.key\nbasic_auth_users:\n  bench: %s\n' "$hash" > "$dir/tls.yml"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

start() {
  "$bin" --web.listen-address=127.0.0.1:$port --web.config.file="$dir/$1.yml" 2>"$dir/log" &
  pid=$!
  for _ in $(seq 100); do grep -q listening "$dir/log" && return; sleep 0.05; done
  echo "exporter did not start"; cat "$dir/log"; exit 1
}
stop() { kill "$pid"; wait "$pid" || true; pid=; }
report() { # label, then times in seconds on stdin
  sort -n | awk -v label="$1" '{ t[NR] = $1 * 1000 } END {
    p50 = int(NR * 0.5) + 1; if (p50 > NR) p50 = NR
    p99 = int(NR * 0.99) + 1; if (p99 > NR) p99 = NR
    printf "%-36s p50 %7.2f ms  p99 %7.2f ms  (n=%d)\n", label, t[p50], t[p99], NR }'
}
scrape() { curl -sS -o /dev/null -w '%{time_total}\n' --fail "$@"; }

start none
url="http://127.0.0.1:$port/metrics"
sleep 2
om='Accept: application/openmetrics-text; version=1.0.0'
for _ in $(seq "$n"); do scrape "$url"; done | report "plain HTTP, text 0.0.4"
for _ in $(seq "$n"); do scrape -H "$om" "$url"; done | report "plain HTTP, OpenMetrics"
for _ in $(seq "$n"); do scrape -H "$om" --compressed "$url"; done | report "plain HTTP, OpenMetrics, gzip"
printf 'body bytes: text %s, OpenMetrics %s, gzip %s\n' \
  "$(curl -s "$url" | wc -c)" "$(curl -s -H "$om" "$url" | wc -c)" \
  "$(curl -s -H "$om" -H 'Accept-Encoding: gzip' "$url" | wc -c)"
# 1,100 connections from 127.0.0.2 that send half a request and go silent.
python3 - "$port" <<'PY' &
import socket, sys, time
held = []
for _ in range(1100):
    try:
        s = socket.socket(); s.bind(("127.0.0.2", 0)); s.connect(("127.0.0.1", int(sys.argv[1])))
        s.send(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: "); held.append(s)
    except OSError:
        pass
time.sleep(8)
PY
flood=$!
sleep 2
for _ in $(seq "$n"); do scrape "$url"; done | report "plain HTTP, 1,100 silent connections"
wait "$flood" || true
stop
start auth
scrape -u bench:bench-password "http://127.0.0.1:$port/metrics" | report "basic auth, first (bcrypt)"
for _ in $(seq "$n"); do scrape -u bench:bench-password "http://127.0.0.1:$port/metrics"; done | report "basic auth, cached"
for _ in $(seq 20); do curl -s -o /dev/null -w '%{time_total}\n' -u bench:wrong "http://127.0.0.1:$port/metrics"; done | report "basic auth, wrong password (bcrypt)"
floods=()
for i in 1 2 3 4; do
  ( end=$((SECONDS + 8)); while [ $SECONDS -lt $end ]; do
      curl -s -o /dev/null --interface 127.0.0.$((i + 1)) -u "bench:wrong$i" "http://127.0.0.1:$port/metrics"; done ) &
  floods+=($!)
done
sleep 1
for _ in $(seq "$n"); do scrape -u bench:bench-password "http://127.0.0.1:$port/metrics"; done | report "basic auth, cached, under flood"
wait "${floods[@]}" || true
stop
start tls
for _ in $(seq "$n"); do scrape --cacert "$dir/test-only-ca.pem" -u bench:bench-password "https://127.0.0.1:$port/metrics"; done | report "TLS + basic auth, new connection"
stop
