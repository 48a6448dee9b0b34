#!/usr/bin/env bash
# Filesystem collector cost with many mounts, side by side with Debian's
# prometheus-node-exporter filesystem collector on the same mounts, same run.
#   MOUNTS=100 SCRAPES=300 IDLE=30 bench/filesystem.sh      (as root)
# Reports scrape latency p50/p99 and CPU per collection. node-sentinel samples in
# the background (here every 1s), so its CPU per round is measured with no
# scrapes running; node_exporter collects inside each scrape, so its CPU per
# scrape is measured during the scrape loop.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
MOUNTS=${MOUNTS:-100} SCRAPES=${SCRAPES:-300} IDLE=${IDLE:-30}
cargo build --release -q
D=$(mktemp -d /tmp/bench-fs.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for i in $(seq "$MOUNTS"); do umount "$D/m$i" 2>/dev/null || true; done
  rm -rf "$D"
}
trap cleanup EXIT
for i in $(seq "$MOUNTS"); do mkdir -p "$D/m$i"; mount -t tmpfs -o size=10m tmpfs "$D/m$i"; done
total=$(grep -c . /proc/self/mountinfo)

./target/release/node-sentinel --web.listen-address=127.0.0.1:19801 --collector.disable-defaults \
  --collector.filesystem --collector.filesystem.interval=1s 2>/dev/null & pids+=($!); ns=$!
prometheus-node-exporter --web.listen-address=127.0.0.1:19802 --collector.disable-defaults \
  --collector.filesystem --collector.filesystem.mount-points-exclude='^/(dev|proc|sys)($|/)' 2>/dev/null & pids+=($!); ne=$!
wait_http http://127.0.0.1:19801/metrics; wait_http http://127.0.0.1:19802/metrics
sleep 3

c0=$(cpu_ticks "$ns"); sleep "$IDLE"; c1=$(cpu_ticks "$ns")
ns_round_ms=$(awk -v d=$((c1 - c0)) -v n="$IDLE" 'BEGIN { printf "%.2f", d * 10 / n }')
ns_series=$(curl -s http://127.0.0.1:19801/metrics | grep -c '^sentinel_filesystem_size_bytes')
ns_dur=$(curl -s http://127.0.0.1:19801/metrics | awk -F' ' '/^sentinel_collector_duration_seconds\{collector="filesystem"\}/ { printf "%.2f", $2 * 1000 }')
read -r ns_p50 ns_p99 < <(scrape_latency http://127.0.0.1:19801/metrics "$SCRAPES")

e0=$(cpu_ticks "$ne")
read -r ne_p50 ne_p99 < <(scrape_latency http://127.0.0.1:19802/metrics "$SCRAPES")
e1=$(cpu_ticks "$ne")
ne_round_ms=$(awk -v d=$((e1 - e0)) -v n="$SCRAPES" 'BEGIN { printf "%.2f", d * 10 / n }')
ne_series=$(curl -s http://127.0.0.1:19802/metrics | grep -c '^node_filesystem_size_bytes')

echo "mounts on the machine: $total (of which $MOUNTS test tmpfs)"
printf '%-34s %10s %10s %14s %10s %8s\n' exporter "p50 ms" "p99 ms" "cpu ms/round" "rss KiB" mounts
printf '%-34s %10s %10s %14s %10s %8s\n' "node-sentinel (background, 1s)" "$ns_p50" "$ns_p99" "$ns_round_ms" "$(rss_kib "$ns")" "$ns_series"
printf '%-34s %10s %10s %14s %10s %8s\n' "node_exporter 1.5 (per scrape)" "$ne_p50" "$ne_p99" "$ne_round_ms" "$(rss_kib "$ne")" "$ne_series"
echo "node-sentinel last round wall time: ${ns_dur} ms"
# Offload threads for statvfs: idle ones kept for reuse, none stuck here.
ns_threads=$(grep -lx statvfs /proc/"$ns"/task/*/comm 2>/dev/null | wc -l)
echo "node-sentinel statvfs threads: ${ns_threads}"
