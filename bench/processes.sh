#!/usr/bin/env bash
# Cost of one processes scan with 10,000 extra processes, node-sentinel side by
# side with Debian's prometheus-node-exporter (--collector.processes) and
# prometheus-process-exporter, on this machine, in one run. Run as root.
#
#   bench/processes.sh [EXTRA_PROCESSES] [ROUNDS]     (defaults 10000 10)
#
# Each exporter is measured alone (the others stopped), against the same
# processes. Per run: wall time and CPU time (utime+stime of the exporter
# process, from /proc/PID/stat).
# - node-sentinel scans in the background: wall = its own
#   sentinel_processes_scan_duration_seconds (stat pass) and
#   sentinel_deleted_open_files_scan_duration_seconds (fd walk); CPU = CPU used
#   over a window / rounds in it (idle overhead included). Measured twice:
#   stat pass only, and stat pass + a full fd walk every round.
# - node_exporter and process-exporter scan when scraped: wall = the scrape's
#   time, CPU = CPU used by ROUNDS scrapes / ROUNDS (after one warm-up scrape).
set -euo pipefail
cd "$(dirname "$0")/.."

N=${1:-10000}
ROUNDS=${2:-10}
INTERVAL=2
TICK=$(getconf CLK_TCK)
WORK=$(mktemp -d /tmp/bench-processes.XXXXXX)
PIDS=()
GROUP=""

cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -n "$GROUP" ] && kill -KILL -- "-$GROUP" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
wait_http() { for _ in $(seq 100); do curl -fsS -o /dev/null "http://127.0.0.1:$1/metrics" 2>/dev/null && return 0; sleep 0.1; done; echo "no answer on :$1" >&2; return 1; }
metric() { curl -fsS -H 'Accept: text/plain' "http://127.0.0.1:$1/metrics" | awk -v n="$2" '$1 == n && !v {v = $2} END {print v}'; }
stop() { kill "$1"; wait "$1" 2>/dev/null || true; }

echo "building release binary and helper..."
cargo build --release --quiet
SENTINEL=target/release/node-sentinel
cc -O2 -o "$WORK/helper" tests/fixtures/processes/helper.c

"$WORK/helper" spawn bench "$N" > "$WORK/spawn.out" &
GROUP=$!
disown "$GROUP"
for _ in $(seq 600); do grep -q ready "$WORK/spawn.out" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$WORK/spawn.out" || { echo "could not start $N processes" >&2; exit 1; }
all=(/proc/[0-9]*); TOTAL=${#all[@]}
echo "processes on the machine: $TOTAL (of which $N extra), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo

# node-sentinel, background rounds every $INTERVAL s.
bench_sentinel() {
  local label=$1; shift
  local port; port=$(free_port)
  "$SENTINEL" --web.listen-address="127.0.0.1:$port" --collector.disable-defaults \
    --collector.processes --collector.processes.interval=${INTERVAL}s "$@" 2>"$WORK/sentinel.log" &
  local pid=$!; PIDS+=("$pid")
  wait_http "$port"
  sleep $((INTERVAL * 2))
  local c0 t0 scan=0 walk=0 i
  c0=$(cpu_ticks "$pid"); t0=$(metric "$port" 'sentinel_collector_last_success_timestamp_seconds{collector="processes"}')
  for i in $(seq "$ROUNDS"); do
    sleep "$INTERVAL"
    scan=$(awk -v a="$scan" -v b="$(metric "$port" sentinel_processes_scan_duration_seconds)" 'BEGIN{print a+b}')
    walk=$(awk -v a="$walk" -v b="$(metric "$port" sentinel_deleted_open_files_scan_duration_seconds)" 'BEGIN{print a+b}')
  done
  local c1 t1
  c1=$(cpu_ticks "$pid"); t1=$(metric "$port" 'sentinel_collector_last_success_timestamp_seconds{collector="processes"}')
  local truncated; truncated=$(metric "$port" sentinel_deleted_open_files_scan_truncated)
  stop "$pid"
  awk -v l="$label" -v s="$scan" -v w="$walk" -v n="$ROUNDS" -v c="$((c1 - c0))" -v tk="$TICK" \
      -v t0="$t0" -v t1="$t1" -v iv="$INTERVAL" -v tr="${truncated:-n/a}" 'BEGIN{
    r = (t1 - t0) / iv; if (r < 1) r = 1;
    printf "%-44s stat pass %7.1f ms  fd walk %7.1f ms  CPU/run %7.1f ms  (%d runs, walk truncated=%s)\n",
      l, 1000*s/n, 1000*w/n, 1000*c/tk/r, r, tr }'
}

# Exporters that scan at scrape time.
bench_scrape() {
  local label=$1 port=$2 pid=$3
  wait_http "$port"
  curl -fsS -o /dev/null "http://127.0.0.1:$port/metrics"   # warm-up
  local c0 wall=0 i t
  c0=$(cpu_ticks "$pid")
  for i in $(seq "$ROUNDS"); do
    t=$(curl -fsS -o /dev/null -w '%{time_total}' "http://127.0.0.1:$port/metrics")
    wall=$(awk -v a="$wall" -v b="$t" 'BEGIN{print a+b}')
  done
  local c1; c1=$(cpu_ticks "$pid")
  stop "$pid"
  awk -v l="$label" -v w="$wall" -v n="$ROUNDS" -v c="$((c1 - c0))" -v tk="$TICK" 'BEGIN{
    printf "%-44s scrape    %7.1f ms  %18s CPU/run %7.1f ms  (%d scrapes)\n", l, 1000*w/n, "", 1000*c/tk/n, n }'
}

bench_sentinel "node-sentinel (stat pass only)" --collector.processes.deleted-files-budget=0s
bench_sentinel "node-sentinel (stat pass + fd walk every run)" \
  --collector.processes.deleted-files-interval=0s --collector.processes.deleted-files-budget=5s

if command -v prometheus-node-exporter >/dev/null; then
  port=$(free_port)
  prometheus-node-exporter --web.listen-address="127.0.0.1:$port" --collector.disable-defaults \
    --collector.processes 2>"$WORK/node.log" &
  pid=$!; PIDS+=("$pid")
  bench_scrape "prometheus-node-exporter --collector.processes" "$port" "$pid"
else
  echo "prometheus-node-exporter: not installed (apt-get install prometheus-node-exporter)"
fi

if command -v prometheus-process-exporter >/dev/null; then
  # Every process in a group named by its comm: process-exporter's usual catch-all.
  cat > "$WORK/pe.yml" <<'EOF'
process_names:
  - name: "{{.Comm}}"
    cmdline: [".+"]
EOF
  port=$(free_port)
  prometheus-process-exporter -web.listen-address="127.0.0.1:$port" -config.path "$WORK/pe.yml" \
    -gather-smaps=false -threads=false 2>"$WORK/pe.log" >/dev/null &
  pid=$!; PIDS+=("$pid")
  bench_scrape "process-exporter (catch-all, no smaps/threads)" "$port" "$pid"
else
  echo "prometheus-process-exporter: not installed (apt-get install prometheus-process-exporter)"
fi
