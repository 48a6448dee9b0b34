#!/usr/bin/env bash
# Docker collector benchmark against a real dockerd of its own (temp dir, own socket):
#  1. probe cost: exporter CPU (utime+stime from /proc/PID/stat) per probe cycle
#     while the daemon is healthy, with no scrapes in between;
#  2. scrape latency p50/p99/max while the daemon is hung (SIGSTOP), plus the
#     exporter's CPU per cycle and the most unix sockets it held meanwhile.
#
# Usage (as root): bench/docker.sh
# Env: HEALTHY_SECONDS (default 120), HANG_SECONDS (default 300), INTERVAL (5s),
#      TIMEOUT (30s), THRESHOLD (10s), SCRAPE_EVERY (0.2 s), CONTAINERS (5),
#      BIN (default: target/release/node-sentinel, built from this checkout).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
HEALTHY_SECONDS=${HEALTHY_SECONDS:-120}
HANG_SECONDS=${HANG_SECONDS:-300}
INTERVAL=${INTERVAL:-5s}
TIMEOUT=${TIMEOUT:-30s}
THRESHOLD=${THRESHOLD:-10s}
SCRAPE_EVERY=${SCRAPE_EVERY:-0.2}
CONTAINERS=${CONTAINERS:-5}
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
release_binary

D=$(mktemp -d /tmp/sentinel-bench-docker-XXXXXX)
DOCKERD_PID=
EXPORTER_PID=
cleanup() {
    if [ -n "$EXPORTER_PID" ]; then kill "$EXPORTER_PID" 2>/dev/null || true; fi
    if [ -n "$DOCKERD_PID" ]; then
        kill -CONT "$DOCKERD_PID" 2>/dev/null || true
        kill -TERM "$DOCKERD_PID" 2>/dev/null || true
        for _ in $(seq 1 300); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -rf "$D"
}
trap cleanup EXIT

dk() { docker -H "unix://$D/docker.sock" "$@"; }

/usr/sbin/dockerd --host "unix://$D/docker.sock" --data-root "$D/root" --exec-root "$D/exec" \
    --pidfile "$D/docker.pid" --iptables=false --bridge=none --storage-driver=vfs \
    >"$D/dockerd.log" 2>&1 &
DOCKERD_PID=$!
for _ in $(seq 1 300); do dk version >/dev/null 2>&1 && break; sleep 0.2; done
dk version >/dev/null

mkdir -p "$D/image/bin"
cp /bin/busybox "$D/image/bin/"
for c in sh sleep true; do ln -sf busybox "$D/image/bin/$c"; done
tar -C "$D/image" -c . | dk import - bb:latest >/dev/null
for i in $(seq 1 "$CONTAINERS"); do
    dk run -d --name "c$i" --network none bb:latest sh -c "trap 'exit 0' TERM; while true; do sleep 1; done" >/dev/null
done

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN" --web.listen-address="127.0.0.1:$port" --collector.disable-defaults --collector.docker \
    --collector.docker.host="unix://$D/docker.sock" --collector.docker.interval="$INTERVAL" \
    --collector.docker.timeout="$TIMEOUT" --collector.docker.hang-threshold="$THRESHOLD" \
    --collector.docker.pidfile= 2>"$D/exporter.log" &
EXPORTER_PID=$!
url="http://127.0.0.1:$port/metrics"
for _ in $(seq 1 100); do curl -sf -o /dev/null "$url" && break; sleep 0.1; done

tck=$(getconf CLK_TCK)
metric() { curl -s "$url" | awk -v n="$1" '$1 == n {print $2}'; }
ping_count() { metric 'sentinel_docker_probe_duration_seconds_count{operation="ping"}'; }
unix_fds() {
    local n=0 inode
    for fd in /proc/"$EXPORTER_PID"/fd/*; do
        inode=$(readlink "$fd" 2>/dev/null | sed -n 's/^socket:\[\([0-9]*\)\]$/\1/p')
        [ -n "$inode" ] && awk -v i="$inode" 'NR > 1 && $7 == i {f=1} END {exit !f}' /proc/net/unix && n=$((n + 1))
    done
    echo "$n"
}
percentiles() { # file of seconds -> "p50 p99 max n" in ms
    sort -n "$1" | awk '{v[NR]=$1} END {
        p50=v[int(NR*0.50+0.999)]; p99=v[int(NR*0.99+0.999)];
        printf "p50=%.2fms p99=%.2fms max=%.2fms n=%d", p50*1000, p99*1000, v[NR]*1000, NR}'
}

sleep 12 # warm-up: client built, version negotiated, first inspect done
baseline=$(unix_fds)

echo "== healthy daemon, $CONTAINERS containers, interval $INTERVAL, ${HEALTHY_SECONDS}s =="
c0=$(ping_count); t0=$(cpu_ticks "$EXPORTER_PID")
sleep "$HEALTHY_SECONDS"
t1=$(cpu_ticks "$EXPORTER_PID"); c1=$(ping_count)
cycles=$(awk -v a="$c0" -v b="$c1" 'BEGIN {print b - a}')
awk -v t="$((t1 - t0))" -v hz="$tck" -v c="$cycles" -v s="$HEALTHY_SECONDS" 'BEGIN {
    printf "probe cycles: %d (5 probes each)\nexporter CPU: %.0f ms total = %.2f ms per cycle = %.3f%% of one core\n",
        c, t*1000/hz, (c > 0 ? t*1000/hz/c : 0), t/hz/s*100 }'
: >"$D/healthy.txt"
for _ in $(seq 1 200); do curl -s -o /dev/null -w '%{time_total}\n' "$url" >>"$D/healthy.txt"; done
echo "scrape latency (healthy, 200 scrapes): $(percentiles "$D/healthy.txt")"

echo "== hung daemon (SIGSTOP) for ${HANG_SECONDS}s, a scrape every ${SCRAPE_EVERY}s =="
: >"$D/hung.txt"
max_fds=0; hung_seen=0
t0=$(cpu_ticks "$EXPORTER_PID"); start=$(date +%s)
kill -STOP "$DOCKERD_PID"
i=0
while [ $(($(date +%s) - start)) -lt "$HANG_SECONDS" ]; do
    curl -s -o "$D/last.txt" -w '%{time_total}\n' "$url" >>"$D/hung.txt"
    if [ $((i % 25)) -eq 0 ]; then
        f=$(unix_fds); [ "$f" -gt "$max_fds" ] && max_fds=$f
        grep -q '^sentinel_docker_hung 1' "$D/last.txt" && hung_seen=1
    fi
    i=$((i + 1))
    sleep "$SCRAPE_EVERY"
done
t1=$(cpu_ticks "$EXPORTER_PID")
grep -E '^sentinel_docker_(hung|up) |in_flight_seconds\{operation="containers"\}|failures_total\{operation="containers",reason="timeout"\}' "$D/last.txt" | sed 's/^/  last scrape: /'
backlog=$(ss -xlH 2>/dev/null | awk -v p="$D/docker.sock" '$5 == p {print $3}')
kill -CONT "$DOCKERD_PID"
echo "connections queued in the stopped daemon's backlog at the end: ${backlog:-unknown}"
echo "hung reported: $hung_seen; unix sockets held: at most $((max_fds - baseline)) beyond $baseline of the exporter's own"
echo "scrape latency while hung: $(percentiles "$D/hung.txt")"
awk -v t="$((t1 - t0))" -v hz="$tck" -v s="$HANG_SECONDS" 'BEGIN {
    printf "exporter CPU while hung (scrapes included): %.0f ms = %.3f%% of one core\n", t*1000/hz, t/hz/s*100 }'
if grep -q panicked "$D/exporter.log"; then echo "PANIC in exporter log"; exit 1; fi
