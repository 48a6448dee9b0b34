#!/usr/bin/env bash
# Collection time and CPU of the systemd collector for N units (default 1000),
# side by side with Debian's prometheus-node-exporter systemd collector
# (--collector.systemd --collector.systemd.enable-restarts-metrics) on the
# same systemd user manager, in the same run.
#
# Usage (root; builds the release binary of this checkout unless BIN is set):
#   bench/systemd.sh [UNITS] [ROUNDS]
# Needs: systemd (252), dbus, prometheus-node-exporter, curl, cgroup v2.
#
# The manager runs on a private bus with the real system bus's limits (128
# pending replies, 512 match rules per connection). Half the units are
# `sleep infinity` services with Restart=always that Require= a oneshot
# (RemainAfterExit) sibling, so NRestarts is polled and the dependency data is
# real. The two exporters run one after the other, not at once, so neither
# slows the other; CPU includes what the manager and the bus daemon spend
# answering each exporter.
set -euo pipefail

UNITS=${1:-1000}
ROUNDS=${2:-15}
INTERVAL=2
HERE=$(cd "$(dirname "$0")/.." && pwd)
NODE_EXPORTER=${NODE_EXPORTER:-prometheus-node-exporter}

[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
# shellcheck source=bench/lib.sh
. "$HERE/bench/lib.sh"
release_binary
command -v "$NODE_EXPORTER" >/dev/null || { echo "$NODE_EXPORTER not found" >&2; exit 1; }

D=$(mktemp -d /tmp/sentinel-bench-systemd.XXXXXX)
export XDG_RUNTIME_DIR=$D/xdg HOME=$D/home
U=$HOME/.config/systemd/user
mkdir -p -m700 "$XDG_RUNTIME_DIR"; mkdir -p "$U/dbus.service.d" /run/systemd/system
CGROOT=/sys/fs/cgroup/unified; [ -e $CGROOT/cgroup.procs ] || CGROOT=/sys/fs/cgroup
SLICE=$CGROOT/sentinel-bench-$$.slice
mkdir -p "$SLICE/user@0.service"
PIDS=()

cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  echo 1 > "$SLICE/cgroup.kill" 2>/dev/null || true
  for _ in $(seq 50); do grep -q "populated 1" "$SLICE/cgroup.events" 2>/dev/null || break; sleep 0.1; done
  find "$SLICE" -depth -type d -exec rmdir {} + 2>/dev/null || true
  rm -rf "$D"
}
trap cleanup EXIT

cat > "$D/bus.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <include>/usr/share/dbus-1/session.conf</include>
  <limit name="max_replies_per_connection">128</limit>
  <limit name="max_match_rules_per_connection">512</limit>
</busconfig>
EOF
cat > "$U/dbus.service.d/limits.conf" <<EOF
[Service]
ExecStart=
ExecStart=/usr/bin/dbus-daemon --config-file=$D/bus.conf --address=systemd: --nofork --nopidfile --systemd-activation --syslog-only
EOF

half=$((UNITS / 2))
names=()
for i in $(seq -w 1 "$half"); do
  printf '[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n' > "$U/base-$i.service"
  printf '[Unit]\nRequires=base-%s.service\nAfter=base-%s.service\n[Service]\nRestart=always\nExecStart=/bin/sleep infinity\n' "$i" "$i" > "$U/app-$i.service"
  names+=("app-$i.service")
done

bash -c "echo \$\$ > $SLICE/user@0.service/cgroup.procs; exec /lib/systemd/systemd --user" >"$D/manager.log" 2>&1 &
MANAGER=$!; disown $MANAGER
for _ in $(seq 100); do
  s=$(systemctl --user is-system-running 2>/dev/null || true)
  [ "$s" = running ] || [ "$s" = degraded ] && break; sleep 0.2
done
systemctl --user daemon-reload
printf '%s\n' "${names[@]}" | xargs -n 200 systemctl --user start
services=$(systemctl --user list-units --type=service --all --no-legend | wc -l)
echo "systemd $(systemctl --version | head -1 | awk '{print $2}'), $services service units loaded ($UNITS generated), $(nproc) cores"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# utime+stime of a process, in clock ticks.
ticks() { awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
TCK=$(getconf CLK_TCK)
cpu_ms() { echo "scale=1; ($2 - $1) * 1000 / $TCK / $3" | bc; }
stats() { sort -n | awk '{a[NR]=$1; s+=$1} END {printf "median %.1f ms, p90 %.1f ms, max %.1f ms (n=%d)", a[int((NR+1)/2)]*1000, a[int(NR*0.9+0.5)]*1000, a[NR]*1000, NR}'; }

# --- node-sentinel: background rounds; read each round's duration from its own metric.
PORT=$(free_port)
"$BIN" --web.listen-address=127.0.0.1:$PORT --no-collector.docker --no-collector.filesystem \
  --no-collector.processes --no-collector.logs --collector.systemd.interval=${INTERVAL}s \
  --collector.systemd.bus=unix:path=$XDG_RUNTIME_DIR/bus --collector.systemd.max-units=$((UNITS * 2)) 2>"$D/sentinel.log" &
SENTINEL=$!; PIDS+=($SENTINEL)
metric() { curl -s "127.0.0.1:$PORT/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
for _ in $(seq 100); do [ "$(metric 'sentinel_systemd_up')" = 1.0 ] && break; sleep 0.2; done
# The bus daemon is socket-activated by the first client.
BUSPID=$(systemctl --user show -p MainPID --value dbus.service)
first=$(metric 'sentinel_collector_duration_seconds{collector="systemd"}')
sleep $((INTERVAL * 2))
s0=$(ticks $SENTINEL); m0=$(ticks $MANAGER); b0=$(ticks $BUSPID)
last=""; : > "$D/sentinel.times"; : > "$D/scrape.times"
t_end=$((SECONDS + ROUNDS * INTERVAL))
while [ $SECONDS -lt $t_end ]; do
  v=$(metric 'sentinel_collector_duration_seconds{collector="systemd"}')
  stamp=$(metric 'sentinel_collector_last_success_timestamp_seconds{collector="systemd"}')
  [ "$stamp" != "$last" ] && echo "$v" >> "$D/sentinel.times" && last=$stamp
  curl -s -o /dev/null -w '%{time_total}\n' "127.0.0.1:$PORT/metrics" >> "$D/scrape.times"
  sleep 0.5
done
s1=$(ticks $SENTINEL); m1=$(ticks $MANAGER); b1=$(ticks $BUSPID)
n=$(wc -l < "$D/sentinel.times")
series=$(curl -s "127.0.0.1:$PORT/metrics" | grep -c '^sentinel_systemd_')
units=$(curl -s "127.0.0.1:$PORT/metrics" | grep -c '^sentinel_systemd_unit_activations_total')
dropped=$(metric 'sentinel_series_dropped_total{collector="systemd"}')
read_failures=$(curl -s "127.0.0.1:$PORT/metrics" | awk '$1 ~ /^sentinel_systemd_property_read_failures_total/ {s += $2} END {print s + 0}')
kill $SENTINEL; wait $SENTINEL 2>/dev/null || true

echo
echo "node-sentinel (background rounds every ${INTERVAL}s, $units units, $series series, dropped $dropped, failed property reads $read_failures)"
echo "  first round (reads reload-only properties too): $(echo "$first * 1000" | bc) ms"
echo "  round duration:   $(stats < "$D/sentinel.times")"
echo "  CPU per round:    exporter $(cpu_ms $s0 $s1 $n) ms, systemd $(cpu_ms $m0 $m1 $n) ms, dbus-daemon $(cpu_ms $b0 $b1 $n) ms"
echo "  /metrics scrape:  $(stats < "$D/scrape.times")"

# --- node_exporter: collects at scrape time; the scrape is the collection.
PORT=$(free_port)
DBUS_SYSTEM_BUS_ADDRESS=unix:path=$XDG_RUNTIME_DIR/bus "$NODE_EXPORTER" --web.listen-address=127.0.0.1:$PORT \
  --collector.disable-defaults --collector.systemd --collector.systemd.enable-restarts-metrics \
  --collector.systemd.unit-include='.+\.service' 2>"$D/node_exporter.log" &
NE=$!; PIDS+=($NE)
for _ in $(seq 100); do curl -s -o /dev/null "127.0.0.1:$PORT/metrics" && break; sleep 0.2; done
curl -s -o /dev/null "127.0.0.1:$PORT/metrics"   # warm-up
s0=$(ticks $NE); m0=$(ticks $MANAGER); b0=$(ticks $BUSPID)
: > "$D/ne.times"; : > "$D/ne.collector"
for _ in $(seq "$ROUNDS"); do
  curl -s -o "$D/ne.out" -w '%{time_total}\n' --max-time 120 "127.0.0.1:$PORT/metrics" >> "$D/ne.times"
  awk '$1 == "node_scrape_collector_duration_seconds{collector=\"systemd\"}" {print $2}' "$D/ne.out" >> "$D/ne.collector"
done
s1=$(ticks $NE); m1=$(ticks $MANAGER); b1=$(ticks $BUSPID)
ok=$(awk '$1 == "node_scrape_collector_success{collector=\"systemd\"}" {print $2}' "$D/ne.out")
nunits=$(grep -c '^node_systemd_service_restart_total' "$D/ne.out" || true)
nseries=$(grep -c '^node_systemd_' "$D/ne.out" || true)
kill $NE; wait $NE 2>/dev/null || true

echo
echo "prometheus-node-exporter $("$NODE_EXPORTER" --version 2>&1 | head -1 | awk '{print $3}') (collects per scrape, success=$ok, $nunits units with restarts, $nseries series)"
echo "  collector time:   $(stats < "$D/ne.collector")"
echo "  CPU per scrape:   exporter $(cpu_ms $s0 $s1 "$ROUNDS") ms, systemd $(cpu_ms $m0 $m1 "$ROUNDS") ms, dbus-daemon $(cpu_ms $b0 $b1 "$ROUNDS") ms"
echo "  /metrics scrape:  $(stats < "$D/ne.times")"
