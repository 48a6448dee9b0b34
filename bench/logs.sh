#!/usr/bin/env bash
# Cost of one logs-collector round with 5,000 files (50 directories x 100
# files, one of them growing): the collector's own round duration and the
# exporter's CPU time per round, on a release build, warm page cache.
#
#   bench/logs.sh                       # 5,000 files, 30 rounds
#   FILES=20000 ROUNDS=20 bench/logs.sh
#
# CPU per round includes the one scrape per second this script makes.
set -euo pipefail

FILES=${FILES:-5000}
ROUNDS=${ROUNDS:-30}
DIRS=50
cd "$(dirname "$0")/.."

cargo build --release --quiet
BIN=target/release/node-sentinel

D=$(mktemp -d /tmp/sentinel-bench-logs.XXXXXX)
PID=""
WRITER=""
cleanup() {
    [ -n "$WRITER" ] && kill "$WRITER" 2>/dev/null || true
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
    rm -rf "$D"
}
trap cleanup EXIT

L=$D/logs
per_dir=$(( (FILES + DIRS - 1) / DIRS ))
n=0
for d in $(seq -w 1 $DIRS); do
    mkdir -p "$L/d$d"
    for f in $(seq -w 1 "$per_dir"); do
        [ "$n" -ge "$FILES" ] && break
        printf 'line\n' > "$L/d$d/f$f.log"
        n=$((n + 1))
    done
done
# One file growing at about 100 KiB/s, so the tracking and top-N paths run too.
( while true; do head -c 10240 /dev/zero >> "$L/d01/f001.log"; sleep 0.1; done ) &
WRITER=$!

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN" --web.listen-address="127.0.0.1:$PORT" --collector.disable-defaults --collector.logs \
    --collector.logs.interval=1s --collector.logs.trend-window=1m \
    --collector.logs.path="bench=$L/**/*.log" 2>"$D/exporter.log" &
PID=$!

scrape() { curl -sf "http://127.0.0.1:$PORT/metrics"; }
value() { awk -v k="$1" 'index($0, k) == 1 { print $NF }'; }

for _ in $(seq 100); do
    got=$(scrape 2>/dev/null | value 'sentinel_log_files{group="bench"}' || true)
    [ "${got%.0}" = "$FILES" ] && break
    sleep 0.2
done
[ "${got%.0}" = "$FILES" ] || { echo "exporter never counted $FILES files (got '$got')"; cat "$D/exporter.log"; exit 1; }

ticks() { awk '{ print $14 + $15 }' "/proc/$PID/stat"; }
HZ=$(getconf CLK_TCK)
t0=$(ticks); start=$(date +%s.%N)
last=""; rounds=0; durations=()
while [ "$rounds" -lt "$ROUNDS" ]; do
    m=$(scrape)
    ts=$(printf '%s\n' "$m" | value 'sentinel_collector_last_success_timestamp_seconds{collector="logs"}')
    if [ "$ts" != "$last" ]; then
        [ -n "$last" ] && { rounds=$((rounds + 1)); durations+=("$(printf '%s\n' "$m" | value 'sentinel_collector_duration_seconds{collector="logs"}')"); }
        last=$ts
    fi
    sleep 0.25
done
t1=$(ticks); end=$(date +%s.%N)
rss=$(awk '/VmHWM/ { print $2 }' "/proc/$PID/status")

printf '%s\n' "${durations[@]}" | sort -g | awk -v files="$FILES" -v rounds="$rounds" \
    -v cpu="$(echo "($t1 - $t0) / $HZ" | bc -l)" -v wall="$(echo "$end - $start" | bc -l)" -v rss="$rss" '
    { d[NR] = $1; sum += $1 }
    END {
        printf "files=%d rounds=%d (interval 1s)\n", files, rounds
        printf "collector duration per round: min %.1f ms, median %.1f ms, max %.1f ms, mean %.1f ms\n",
            d[1] * 1000, d[int((NR + 1) / 2)] * 1000, d[NR] * 1000, sum / NR * 1000
        printf "exporter CPU: %.2f s over %.1f s wall = %.1f ms per round (%.1f%% of one core)\n",
            cpu, wall, cpu / rounds * 1000, cpu / wall * 100
        printf "peak RSS: %.1f MiB\n", rss / 1024
    }'
