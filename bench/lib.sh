# Helpers shared by the bench scripts (sourced, not run).

# CPU time (user+system) of a process in clock ticks (fields after the
# command name, which may hold spaces).
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }

# Resident memory of a process in KiB.
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# Scrape URL N times; print p50 and p99 latency in milliseconds.
scrape_latency() {
  local url=$1 n=$2
  for _ in $(seq "$n"); do curl -s -o /dev/null -w '%{time_total}\n' "$url"; done |
    sort -n | awk '{ a[NR] = $1 * 1000 } END { printf "%.2f %.2f\n", a[int(NR * 0.5)], a[int(NR * 0.99)] }'
}

# Wait until URL answers.
wait_http() {
  for _ in $(seq 100); do curl -sf -o /dev/null "$1" && return 0; sleep 0.1; done
  echo "no answer from $1" >&2; return 1
}

# Set BIN to this checkout's release binary, built now (cargo rebuilds only
# what changed), unless the caller named one in BIN.
release_binary() {
  if [ -z "${BIN:-}" ]; then
    (cd "$(dirname "${BASH_SOURCE[0]}")/.." && cargo build --release --quiet)
    BIN=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/target/release/node-sentinel
  fi
}
