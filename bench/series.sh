#!/usr/bin/env bash
# What a scrape costs at the acceptance load, node-sentinel (default
# collectors and flags) side by side with Debian's prometheus-node-exporter
# (its defaults plus --collector.systemd --collector.processes), both running
# at once against the same load, in one run:
#   series count, bytes per scrape (plain and gzip), scrape p50/p99 latency,
#   CPU per scrape, resident memory.
#
# The load is built for real:
# - 1,000 extra processes (`sleep`), beside the machine's own;
# - 300 units on a systemd --user manager on a private bus with the system
#   bus's limits (as bench/systemd.sh): 100 Restart=on-failure services, 30
#   of them Require= a oneshot each (30 units), and 170 oneshots with no
#   Restart= and only default dependencies; every one started;
# - 500 log files (50 directories x 10, five of them written to all along);
# - 20 busybox containers on a private dockerd (own socket and data root,
#   vfs), each writing a line a second to its json-file log.
# node-sentinel reads that dockerd, that manager and those logs by flags
# (the paths differ from a node's, nothing else); node_exporter gets the
# manager as its system bus.
#
# Usage (root; builds the release binary of this checkout unless BIN is set):
#   bench/series.sh [SCRAPES]           (default 500)
# Env: RESTART_UNITS (100), DEP_UNITS (30), UNITS (300), PROCS (1000),
#      LOG_FILES (500), CONTAINERS (20), BIN, NODE_EXPORTER,
#      SAVE (a file to keep node-sentinel's last text scrape in).
#
# Latency is curl's time_total over loopback, one scrape at a time: first a new
# connection per scrape, alternating between the exporters (a curl each), then
# one kept-alive connection per exporter (one curl, as Prometheus keeps its
# connection between scrapes that come within the exporter's idle timeout:
# 10 s for node-sentinel). CPU per scrape is the exporter's CPU time (summed
# over its threads from /proc/PID/task/*/schedstat, ns) during the scrapes,
# less, for node-sentinel, what it spends collecting in the background over
# the same time (measured first, with no scrapes); node_exporter collects at
# scrape time, so its whole CPU counts. Both are also shown raw.
set -euo pipefail

SCRAPES=${1:-500}
UNITS=${UNITS:-300}
RESTART_UNITS=${RESTART_UNITS:-100}
DEP_UNITS=${DEP_UNITS:-30}
PROCS=${PROCS:-1000}
LOG_FILES=${LOG_FILES:-500}
CONTAINERS=${CONTAINERS:-20}
HERE=$(cd "$(dirname "$0")/.." && pwd)
NODE_EXPORTER=${NODE_EXPORTER:-prometheus-node-exporter}
# shellcheck source=bench/lib.sh
. "$HERE/bench/lib.sh"

[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
release_binary
command -v "$NODE_EXPORTER" >/dev/null || { echo "$NODE_EXPORTER not found" >&2; exit 1; }
[ $((RESTART_UNITS + DEP_UNITS)) -le "$UNITS" ] && [ "$DEP_UNITS" -le "$RESTART_UNITS" ] ||
  { echo "need DEP_UNITS <= RESTART_UNITS and RESTART_UNITS + DEP_UNITS <= UNITS" >&2; exit 1; }

D=$(mktemp -d /tmp/sentinel-bench-series.XXXXXX)
export XDG_RUNTIME_DIR=$D/xdg HOME=$D/home
U=$HOME/.config/systemd/user
mkdir -p -m700 "$XDG_RUNTIME_DIR"; mkdir -p "$U/dbus.service.d" /run/systemd/system
CGROOT=/sys/fs/cgroup/unified; [ -e $CGROOT/cgroup.procs ] || CGROOT=/sys/fs/cgroup
SLICE=$CGROOT/sentinel-bench-series-$$.slice
mkdir -p "$SLICE/user@0.service" "$SLICE/load"
PIDS=()
DOCKERD=""

cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -n "$DOCKERD" ]; then
    kill -TERM "$DOCKERD" 2>/dev/null || true
    for _ in $(seq 300); do kill -0 "$DOCKERD" 2>/dev/null || break; sleep 0.1; done
  fi
  for c in "$SLICE/load" "$SLICE"; do echo 1 > "$c/cgroup.kill" 2>/dev/null || true; done
  for _ in $(seq 50); do grep -q "populated 1" "$SLICE/cgroup.events" 2>/dev/null || break; sleep 0.1; done
  find "$SLICE" -depth -type d -exec rmdir {} + 2>/dev/null || true
  rm -rf "$D"
}
trap cleanup EXIT

# --- 1,000 processes, in a cgroup of their own so cleanup gets them all.
bash -c "echo \$\$ > $SLICE/load/cgroup.procs; for i in \$(seq $PROCS); do sleep 100000 & done; wait" &
PIDS+=($!)

# --- 500 log files; five keep growing.
L=$D/varlog
for d in $(seq -w 1 50); do
  mkdir -p "$L/d$d"
  for f in $(seq -w 1 $((LOG_FILES / 50))); do printf 'line\n' > "$L/d$d/f$f.log"; done
done
bash -c "echo \$\$ > $SLICE/load/cgroup.procs; while true; do for d in 01 02 03 04 05; do echo \"\$(date) growing\" >> $L/d\$d/f01.log; done; sleep 0.2; done" &
PIDS+=($!)

# --- systemd --user manager with the units.
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
names=()
for i in $(seq -w 1 "$RESTART_UNITS"); do
  if [ "$((10#$i))" -le "$DEP_UNITS" ]; then
    printf '[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n' > "$U/dep-$i.service"
    printf '[Unit]\nRequires=dep-%s.service\nAfter=dep-%s.service\n' "$i" "$i" > "$U/app-$i.service"
    names+=("dep-$i.service")
  else
    : > "$U/app-$i.service"
  fi
  printf '[Service]\nRestart=on-failure\nExecStart=/bin/sleep infinity\n' >> "$U/app-$i.service"
  names+=("app-$i.service")
done
for i in $(seq -w 1 $((UNITS - RESTART_UNITS - DEP_UNITS))); do
  printf '[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n' > "$U/job-$i.service"
  names+=("job-$i.service")
done
bash -c "echo \$\$ > $SLICE/user@0.service/cgroup.procs; exec /lib/systemd/systemd --user" >"$D/manager.log" 2>&1 &
MANAGER=$!; disown $MANAGER
for _ in $(seq 100); do
  s=$(systemctl --user is-system-running 2>/dev/null || true)
  [ "$s" = running ] || [ "$s" = degraded ] && break; sleep 0.2
done
systemctl --user daemon-reload
printf '%s\n' "${names[@]}" | xargs -n 100 systemctl --user start
BUS=unix:path=$XDG_RUNTIME_DIR/bus

# --- a private dockerd with busybox containers that log.
dk() { docker -H "unix://$D/docker.sock" "$@"; }
/usr/sbin/dockerd --host "unix://$D/docker.sock" --data-root "$D/docker" --exec-root "$D/exec" \
  --pidfile "$D/docker.pid" --iptables=false --bridge=none --storage-driver=vfs >"$D/dockerd.log" 2>&1 &
DOCKERD=$!
for _ in $(seq 300); do dk version >/dev/null 2>&1 && break; sleep 0.2; done
mkdir -p "$D/image/bin"; cp /bin/busybox "$D/image/bin/"
for c in sh sleep echo date; do ln -sf busybox "$D/image/bin/$c"; done
tar -C "$D/image" -c . | dk import - bb:latest >/dev/null
for i in $(seq -w 1 "$CONTAINERS"); do
  dk run -d --name "c$i" --network none bb:latest sh -c "trap 'exit 0' TERM; while true; do echo tick \$(date); sleep 1; done" >/dev/null
done

procs=$(ls /proc | grep -c '^[0-9]')
units=$(systemctl --user list-units --type=service --all --no-legend | wc -l)
echo "load: $procs processes, $units service units ($UNITS generated: $RESTART_UNITS Restart=on-failure, $DEP_UNITS of them with a Requires=), $(find "$L" -type f | wc -l) log files, $(dk ps -q | wc -l) containers, $(awk '$3 !~ /^(proc|sysfs|cgroup2?|devpts|mqueue|securityfs|debugfs|tracefs|pstore|bpf|configfs|fusectl|hugetlbfs|autofs|binfmt_misc|nsfs)$/' /proc/self/mounts | wc -l) real mounts; $(nproc) cores"

# --- the exporters, both running from here on.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SP=$(free_port)
"$BIN" --web.listen-address=127.0.0.1:$SP --collector.systemd.bus="$BUS" \
  --collector.docker.host="unix://$D/docker.sock" --collector.docker.pidfile="$D/docker.pid" \
  --collector.logs.path="varlog=$L/**/*" --collector.logs.path='journal=/var/log/journal/**/*' \
  --collector.logs.path="docker=$D/docker/containers/*/*-json.log" --collector.logs.path='pods=/var/log/pods/*/*/*.log' \
  2>"$D/sentinel.log" &
SENTINEL=$!; PIDS+=($SENTINEL)
NP=$(free_port)
DBUS_SYSTEM_BUS_ADDRESS=$BUS "$NODE_EXPORTER" --web.listen-address=127.0.0.1:$NP \
  --collector.systemd --collector.processes 2>"$D/node_exporter.log" &
NE=$!; PIDS+=($NE)
S_URL=http://127.0.0.1:$SP/metrics
N_URL=http://127.0.0.1:$NP/metrics
wait_http "$S_URL"; wait_http "$N_URL"
# Every collector's first round, and the trend windows' first points (15 s intervals).
for _ in $(seq 120); do
  curl -s "$S_URL" | grep -q '^sentinel_systemd_unit_state{unit="job-' && break; sleep 0.5
done
sleep 35

# CPU time of all threads of a process, in ns.
# (%.0f: mawk's %d stops at 2^31 ns, 2.1 s of CPU.)
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%.0f\n", s}'; }
IDLE=20
s0=$(cpu_ns $SENTINEL); sleep $IDLE; s1=$(cpu_ns $SENTINEL)
idle_ns_per_s=$(( (s1 - s0) / IDLE ))

: > "$D/s.times"; : > "$D/n.times"
s_cpu=0; n_cpu=0; s_wall=0
for _ in $(seq "$SCRAPES"); do
  a=$(cpu_ns $SENTINEL); t0=$(date +%s%N)
  curl -s -o /dev/null -w '%{time_total}\n' "$S_URL" >> "$D/s.times"
  t1=$(date +%s%N); b=$(cpu_ns $SENTINEL)
  s_cpu=$((s_cpu + b - a)); s_wall=$((s_wall + t1 - t0))
  a=$(cpu_ns $NE)
  curl -s -o /dev/null -w '%{time_total}\n' --max-time 60 "$N_URL" >> "$D/n.times"
  b=$(cpu_ns $NE); n_cpu=$((n_cpu + b - a))
done

# The same again over one kept-alive connection per exporter.
keepalive() { # url times-file -> exporter CPU ns over the scrapes
  local args=() i
  for i in $(seq "$SCRAPES"); do args+=(-o /dev/null "$1"); done
  curl -s --max-time 600 -w '%{time_total}\n' "${args[@]}" > "$2"
}
a=$(cpu_ns $SENTINEL); t0=$(date +%s%N)
keepalive "$S_URL" "$D/s.ka.times"
t1=$(date +%s%N); b=$(cpu_ns $SENTINEL)
s_ka_cpu=$((b - a)); s_ka_wall=$((t1 - t0))
a=$(cpu_ns $NE); keepalive "$N_URL" "$D/n.ka.times"; b=$(cpu_ns $NE); n_ka_cpu=$((b - a))

pct() { sort -n "$1" | awk '{v[NR]=$1} END {printf "p50 %.3f ms, p99 %.3f ms, max %.3f ms", v[int(NR*0.50+0.999)]*1000, v[int(NR*0.99+0.999)]*1000, v[NR]*1000}'; }
size() { curl -s -o /dev/null -w '%{size_download}' "$@"; }
report() { # name url pid cpu_ns_total background_ns times-prefix keepalive_cpu_ns keepalive_background_ns
  local body; body=$(curl -s "$2")
  local series; series=$(grep -vc '^#' <<<"$body")
  local plain; plain=$(size "$2")
  local om; om=$(size -H 'Accept: application/openmetrics-text;version=1.0.0' "$2")
  local gz; gz=$(size -H 'Accept-Encoding: gzip' "$2")
  echo "$1"
  echo "  series:            $series"
  echo "  bytes per scrape:  $plain plain (text 0.0.4), $om OpenMetrics, $gz gzip"
  echo "  scrape latency, new connection each:  $(pct "$D/$6.times") ($SCRAPES scrapes)"
  echo "  scrape latency, one kept-alive:       $(pct "$D/$6.ka.times") ($SCRAPES scrapes)"
  awk -v c="$4" -v bg="$5" -v kc="$7" -v kbg="$8" -v n="$SCRAPES" 'BEGIN {
      printf "  CPU per scrape, new connection each:  %.3f ms (%.3f ms raw, background collection %.3f ms of it)\n", (c - bg) / n / 1e6, c / n / 1e6, bg / n / 1e6
      printf "  CPU per scrape, one kept-alive:       %.3f ms (%.3f ms raw)\n", (kc - kbg) / n / 1e6, kc / n / 1e6 }'
  echo "  RSS:               $(rss_kib "$3") KiB ($(awk '/^RssAnon/ {a=$2} /^RssFile/ {f=$2} /^VmHWM/ {h=$2} END {printf "anonymous %d, file-backed (the binary'"'"'s pages) %d, peak %d", a, f, h}' /proc/"$3"/status) KiB)"
}
echo
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine delays scrapes too)"
[ -z "${SAVE:-}" ] || curl -s "$S_URL" > "$SAVE"
report "node-sentinel $("$BIN" --version 2>&1 | head -1)" "$S_URL" $SENTINEL $s_cpu $(( idle_ns_per_s * s_wall / 1000000000 )) s \
  $s_ka_cpu $(( idle_ns_per_s * s_ka_wall / 1000000000 ))
curl -s "$S_URL" | grep -v '^#' | sed 's/[{ ].*//; s/_bucket$//; s/_count$//; s/_sum$//' | sed 's/^\(sentinel_[a-z]*\)_.*/\1/' | sort | uniq -c | sort -rn | awk '{printf "    %5d %s\n", $1, $2}'
echo
report "prometheus-node-exporter $("$NODE_EXPORTER" --version 2>&1 | head -1 | awk '{print $3}')" "$N_URL" $NE $n_cpu 0 n $n_ka_cpu 0
ok=$(curl -s "$N_URL" | awk '$1 ~ /^node_scrape_collector_success\{collector="(systemd|processes)"\}/ {printf "%s=%s ", $1, $2}')
echo "  $ok"
if grep -q panicked "$D/sentinel.log"; then echo "PANIC in node-sentinel's log"; exit 1; fi
