#!/usr/bin/env bash
# Soak: the exporter keeps answering, with flat memory, fds and threads,
# while every source it reads is stuck at once, for a long time.
#
# Everything below runs at once, for real, in a private mount and PID
# namespace (so the hung mounts stall nobody else on the machine):
# - a private dockerd (own socket, data root, exec root; vfs, no iptables,
#   no bridge) and a private containerd with its CRI plugin (own socket,
#   root, state), and a systemd --user manager on a private bus;
# - MOUNTS bindfs FUSE mounts (3);
# - a 32 MiB tmpfs written at 2 MiB/s, emptied and refilled when full;
# - process churn: 40 short-lived processes a second, and a parent that
#   forks 20 children, leaves them zombies for 3 s, reaps them, again;
# - a watched log group where files are created, written, rotated (rename +
#   reopen) and deleted 20 times a second;
# - the kernel log written to (/dev/kmsg, user facility, 2 records a second);
# - over TLS with basic auth (openssl-made certificate, bcrypt hash): a
#   scrape a second, alternating plain and gzip, and a client sending a
#   wrong password every second.
# The exporter runs with every collector on, at 5 s intervals.
#
# Phases (--duration D: warm-up D/6, wedged 2D/3, recovery D/6;
# --phase-seconds P: P each):
#   warm-up   everything answers;
#   wedged    dockerd, containerd, the systemd manager and every bindfs
#             SIGSTOPped; at its end, with everything still hung, the
#             exporter gets SIGTERM (must exit within 5 s) and a second one
#             is started while still wedged;
#   recovery  SIGCONT everything; at its end SIGTERM again (5 s).
# Every SAMPLE s it records VmRSS and Threads (/proc/PID/status), the fd
# count (/proc/PID/fd) and the exporter's own process_* metrics, and prints a
# table per phase.
#
# Fails (exit 1) when:
#   - RSS at the end of the wedged or recovery phase > its start + 8 MiB;
#   - fds at the end of the wedged phase > its start + 16, or at the end of
#     recovery > the end of warm-up + 16;
#   - threads during the wedged phase > warm-up maximum + MOUNTS (one stuck
#     statvfs thread per hung mount, the designed cost) + 4, or at the end of
#     recovery > warm-up maximum + 4 (the stuck threads are gone);
#   - any scrape (right password) not 200 or slower than 2 s, any wrong
#     password not 401 or slower than 2 s (restart step excluded);
#   - "panicked" in an exporter's log;
#   - SIGTERM not ending the exporter within 5 s, wedged or not;
#   - the exporter not reporting, at the end of the wedged phase, docker and
#     CRI hung, systemd down and every FUSE mount's statvfs hung, or at the
#     end of recovery all of them answering again.
#
# Usage (root): bench/soak.sh [--duration SECONDS] [--phase-seconds SECONDS]
# Stop it early with Ctrl-C, or SIGTERM to the inner bench/soak.sh (the
# namespace's PID 1, the child of unshare, which ignores SIGTERM itself): its
# trap undoes everything.
# bench/soak.sh --report DIR prints the table and checks again for a
# directory kept with KEEP=1.
# Env: WRONG_MAX (seconds a wrong password may take; default 2), BIN (default: target/release/node-sentinel, built from this checkout),
#      MOUNTS (3), KEEP=1 keeps the work directory.
set -euo pipefail

ARGS=("$@")
DURATION=1800
PHASE=
REPORT_DIR=
while [ $# -gt 0 ]; do
  case $1 in
    --duration) DURATION=$2; shift 2 ;;
    --duration=*) DURATION=${1#*=}; shift ;;
    --phase-seconds) PHASE=$2; shift 2 ;;
    --phase-seconds=*) PHASE=${1#*=}; shift ;;
    --report) REPORT_DIR=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ $DURATION =~ ^[0-9]+$ ]] && [ "$DURATION" -ge 30 ] || { echo "--duration must be a whole number of seconds >= 30, not '$DURATION'" >&2; exit 2; }
[ -z "$PHASE" ] || [[ $PHASE =~ ^[0-9]+$ && $PHASE -ge 10 ]] || { echo "--phase-seconds must be a whole number >= 10, not '$PHASE'" >&2; exit 2; }
if [ -n "$PHASE" ]; then WARM=$PHASE; WEDGED=$PHASE; RECOVERY=$PHASE
else WARM=$((DURATION / 6)); RECOVERY=$((DURATION / 6)); WEDGED=$((DURATION - WARM - RECOVERY)); fi

HERE=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
# Hung FUSE mounts stall every statvfs on the machine: keep them in a mount
# namespace of our own. The exporter reads the host's mount table from
# PROCFS/1/mountinfo, so the soak also gets a PID namespace (this script is
# its PID 1) with its own procfs: the node it watches is ours.
if [ -z "${SOAK_IN_NS:-}" ] && [ -z "$REPORT_DIR" ]; then
  exec env SOAK_IN_NS=1 unshare -m -p --fork --mount-proc --propagation private "$0" "${ARGS[@]}"
fi

MOUNTS=${MOUNTS:-3}
SAMPLE=$(( WARM / 6 < 5 ? (WARM / 6 < 2 ? 2 : WARM / 6) : 5 ))
RSS_SLACK_KIB=8192 FD_SLACK=16 THREAD_SLACK=4 SCRAPE_MAX=2.0 STOP_MAX=5
# A wrong password costs a bcrypt (cost 10): ~1 s in a debug build.
WRONG_MAX=${WRONG_MAX:-$SCRAPE_MAX}
for c in dockerd containerd bindfs fusermount3 openssl curl /lib/systemd/systemd systemctl; do
  command -v "$c" >/dev/null || { echo "missing: $c" >&2; exit 1; }
done
# --- report
report() {
  fail=0
  echo
  printf '%-9s %5s %9s %9s %5s %5s %4s %4s %4s %8s %8s %8s %7s %6s\n' \
    phase samples rss_start rss_end fds0 fds1 thr0 thr1 thrmx p50_ms p99_ms max_ms scrapes bad
  for ph in warm-up wedged recovery; do
    s=$(awk -v p=$ph '$1 == p' "$D/samples")
    [ -n "$s" ] || { echo "$ph: no samples"; fail=1; continue; }
    read -r n r0 r1 f0 f1 t0 t1 tm <<<"$(awk '{ if (NR == 1) { r0 = $3; f0 = $5; t0 = $4 } r1 = $3; f1 = $5; t1 = $4; if ($4 > tm) tm = $4 }
        END { print NR, r0, r1, f0, f1, t0, t1, tm }' <<<"$s")"
    bad=$(awk -v p=$ph -v lim=$SCRAPE_MAX -v wl=$WRONG_MAX '$1 == p && (($2 != "wrong" && ($3 != 200 || $4 > lim)) || ($2 == "wrong" && ($3 != 401 || $4 > wl))) { b++ } END { print b + 0 }' "$D/scrapes")
    read -r p50 p99 mx cnt <<<"$(awk -v p=$ph '$1 == p && $2 != "wrong" { print $4 }' "$D/scrapes" | sort -n |
        awk '{ v[NR] = $1 } END { if (NR == 0) { print "- - - 0"; exit } printf "%.1f %.1f %.1f %d\n", v[int(NR * 0.5 + 0.999)] * 1000, v[int(NR * 0.99 + 0.999)] * 1000, v[NR] * 1000, NR }')"
    printf '%-9s %5d %6d KiB %6d KiB %5d %5d %4d %4d %4d %8s %8s %8s %7d %6d\n' $ph "$n" "$r0" "$r1" "$f0" "$f1" "$t0" "$t1" "$tm" "$p50" "$p99" "$mx" "$cnt" "$bad"
    eval "${ph//-/_}_r0=$r0 ${ph//-/_}_r1=$r1 ${ph//-/_}_f0=$f0 ${ph//-/_}_f1=$f1 ${ph//-/_}_t1=$t1 ${ph//-/_}_tm=$tm ${ph//-/_}_bad=$bad"
  done
  last=$(awk '$1 == "recovery"' "$D/samples" | tail -1)
  [ -z "$last" ] || echo "process_* metrics at the end: resident $(awk '{print $6}' <<<"$last") KiB, open fds $(awk '{print $7}' <<<"$last"), threads $(awk '{print $8}' <<<"$last")"
  wrong=$(awk '$2 == "wrong"' "$D/scrapes" | wc -l)
  echo "wrong-password requests: $wrong (must all be 401)"
  sed 's/^/shutdown: /' "$D/stops"
  echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

  check() { if eval "$1"; then echo "ok   $2"; else echo "FAIL $2"; fail=1; fi; }
  base=${warm_up_tm:-0}
  echo
  check "[ \${wedged_r1:-0} -le \$(( \${wedged_r0:-0} + RSS_SLACK_KIB )) ]" "wedged RSS end ${wedged_r1:-?} <= start ${wedged_r0:-?} + $RSS_SLACK_KIB KiB"
  check "[ \${recovery_r1:-0} -le \$(( \${recovery_r0:-0} + RSS_SLACK_KIB )) ]" "recovery RSS end ${recovery_r1:-?} <= start ${recovery_r0:-?} + $RSS_SLACK_KIB KiB"
  check "[ \${wedged_f1:-0} -le \$(( \${wedged_f0:-0} + FD_SLACK )) ]" "wedged fds end ${wedged_f1:-?} <= start ${wedged_f0:-?} + $FD_SLACK"
  check "[ \${recovery_f1:-0} -le \$(( \${warm_up_f1:-0} + FD_SLACK )) ]" "recovery fds end ${recovery_f1:-?} <= warm-up end ${warm_up_f1:-?} + $FD_SLACK"
  check "[ \${wedged_tm:-0} -le \$(( base + MOUNTS + THREAD_SLACK )) ]" "wedged threads max ${wedged_tm:-?} <= warm-up max $base + $MOUNTS hung mounts + $THREAD_SLACK"
  check "[ \${recovery_t1:-0} -le \$(( base + THREAD_SLACK )) ]" "recovery threads end ${recovery_t1:-?} <= warm-up max $base + $THREAD_SLACK"
  check "[ \${warm_up_bad:-1} = 0 ] && [ \${wedged_bad:-1} = 0 ] && [ \${recovery_bad:-1} = 0 ]" "every scrape 200 within ${SCRAPE_MAX}s, every wrong password 401 within ${WRONG_MAX}s"
  check "grep -qx 'wedged docker_hung=1 cri_hung=1 systemd_up=0 stat_hung=$MOUNTS' \"\$D/seen\"" "wedged seen: $(grep ^wedged "$D/seen" 2>/dev/null)"
  check "grep -qx 'recovery docker_hung=0 cri_hung=0 systemd_up=1 stat_hung=0' \"\$D/seen\"" "recovered seen: $(grep ^recovery "$D/seen" 2>/dev/null)"
  check "! grep -q panicked \"\$D\"/exporter-*.log" "no panic in the exporter's logs"
  check "[ \$(grep -c ' ok ' \"\$D/stops\") = 2 ]" "SIGTERM ends the exporter within ${STOP_MAX}s, wedged and recovered"
  if [ $fail != 0 ]; then
    echo "soak FAILED"
    grep -h -iE 'panicked|error' "$D"/exporter-*.log | tail -20
    awk -v lim=$SCRAPE_MAX -v wl=$WRONG_MAX '$1 != "restart" && $1 != "setup" && $1 != "done" && $1 != "boundary" && (($2 != "wrong" && ($3 != 200 || $4 > lim)) || ($2 == "wrong" && ($3 != 401 || $4 > wl)))' "$D/scrapes" | head -20
    return 1
  fi
  echo "soak passed"
}
if [ -n "$REPORT_DIR" ]; then D=$REPORT_DIR; report; exit; fi

# shellcheck source=bench/lib.sh
. "$HERE/bench/lib.sh"
release_binary
PY=/usr/bin/python3; [ -x $PY ] || PY=python3

D=$(mktemp -d /tmp/sentinel-soak.XXXXXX)
CGROOT=/sys/fs/cgroup/unified; [ -e $CGROOT/cgroup.procs ] || CGROOT=/sys/fs/cgroup
# Named after the work directory: inside the PID namespace $$ is always 1.
SLICE=$CGROOT/${D##*/}.slice
mkdir -p "$SLICE/user@0.service" "$SLICE/load" /run/systemd/system
LOADPIDS=() STOPPED=() FUSEPIDS=() DOCKERD="" CONTAINERD="" MANAGER="" EXP=""

cleanup() {
  set +e
  # Stopped daemons first: nothing can be killed cleanly or unmounted while stopped.
  for p in "${STOPPED[@]}" "${FUSEPIDS[@]}"; do kill -CONT "$p" 2>/dev/null; done
  for p in "${LOADPIDS[@]}"; do kill "$p" 2>/dev/null; done
  echo 1 > "$SLICE/load/cgroup.kill" 2>/dev/null
  [ -n "$EXP" ] && kill -KILL "$EXP" 2>/dev/null
  for p in $DOCKERD $CONTAINERD; do kill -TERM "$p" 2>/dev/null; done
  for p in $DOCKERD $CONTAINERD; do
    for _ in $(seq 150); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
  done
  # Shims and containers started by either runtime.
  pgrep -f "containerd-shim.*$D" | xargs -r kill -KILL 2>/dev/null
  for m in "$D"/fuse*/mnt; do [ -d "$m" ] && { fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null; }; done
  for p in "${FUSEPIDS[@]}"; do kill "$p" 2>/dev/null; done
  echo 1 > "$SLICE/cgroup.kill" 2>/dev/null
  for _ in $(seq 50); do grep -q "populated 1" "$SLICE/cgroup.events" 2>/dev/null || break; sleep 0.1; done
  grep " $D" /proc/self/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
  find "$SLICE" -depth -type d -exec rmdir {} + 2>/dev/null
  if [ -n "${KEEP:-}" ]; then echo "kept $D"; else rm -rf "$D"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# In the load cgroup, so cleanup ends every process (and zombie parent) it made.
load() { bash -c 'echo $$ > "$0"; exec "$@"' "$SLICE/load/cgroup.procs" "$@" & LOADPIDS+=($!); }
# A sleep that lets the traps run at once.
nap() { sleep "$1" & wait $!; }
phase() { echo "$1" > "$D/phase"; echo "$(date -u +%T) phase: $1" >&2; }
phase setup

# --- private dockerd
/usr/sbin/dockerd --host "unix://$D/docker.sock" --data-root "$D/docker" --exec-root "$D/dexec" \
  --pidfile "$D/docker.pid" --iptables=false --bridge=none --storage-driver=vfs >"$D/dockerd.log" 2>&1 &
DOCKERD=$!

# --- private containerd with CRI
mkdir -p "$D/containerd"
cat > "$D/containerd/config.toml" <<EOF
version = 2
root = "$D/containerd/root"
state = "$D/containerd/state"
[grpc]
  address = "$D/containerd/containerd.sock"
[ttrpc]
  address = "$D/containerd/containerd.sock.ttrpc"
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "sentinel/pause:latest"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
EOF
containerd --config "$D/containerd/config.toml" >"$D/containerd/log" 2>&1 &
CONTAINERD=$!

# --- systemd --user on a private bus, with a few units
UXDG=$D/xdg UHOME=$D/home U=$D/home/.config/systemd/user
mkdir -p -m700 "$UXDG"; mkdir -p "$U"
for i in 1 2 3 4 5; do
  printf '[Unit]\nDescription=soak %s\n[Service]\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=default.target\n' "$i" > "$U/soak-$i.service"
done
XDG_RUNTIME_DIR=$UXDG HOME=$UHOME bash -c "echo \$\$ > $SLICE/user@0.service/cgroup.procs; exec /lib/systemd/systemd --user" >"$D/manager.log" 2>&1 &
MANAGER=$!
usys() { XDG_RUNTIME_DIR=$UXDG HOME=$UHOME DBUS_SESSION_BUS_ADDRESS=unix:path=$UXDG/bus systemctl --user "$@"; }
for _ in $(seq 100); do
  s=$(usys is-system-running 2>/dev/null || true)
  [ "$s" = running ] || [ "$s" = degraded ] && break; sleep 0.2
done
usys enable --now soak-{1,2,3,4,5}.service >/dev/null 2>&1
BUS=unix:path=$UXDG/bus

# --- FUSE mounts
for i in $(seq "$MOUNTS"); do
  mkdir -p "$D/fuse$i/src" "$D/fuse$i/mnt"; echo data > "$D/fuse$i/src/file"
  bindfs -f "$D/fuse$i/src" "$D/fuse$i/mnt" >/dev/null 2>&1 &
  FUSEPIDS+=($!)
done
for i in $(seq "$MOUNTS"); do
  for _ in $(seq 100); do grep -q " $D/fuse$i/mnt " /proc/self/mountinfo && break; sleep 0.1; done
done

for _ in $(seq 300); do docker -H "unix://$D/docker.sock" version >/dev/null 2>&1 && break; sleep 0.2; done
for _ in $(seq 100); do ctr --address "$D/containerd/containerd.sock" version >/dev/null 2>&1 && break; sleep 0.2; done
docker -H "unix://$D/docker.sock" version >/dev/null || { echo "dockerd did not answer" >&2; tail "$D/dockerd.log" >&2; exit 1; }
ctr --address "$D/containerd/containerd.sock" version >/dev/null || { echo "containerd did not answer" >&2; exit 1; }
usys is-active soak-1.service >/dev/null || { echo "systemd --user did not start the units" >&2; exit 1; }

# --- a filling filesystem
mkdir -p "$D/fill"; mount -t tmpfs -o size=32m tmpfs "$D/fill"
load bash -c 'f=$0/data; while true; do head -c 524288 /dev/zero >> "$f" 2>/dev/null || rm -f "$f"; sleep 0.25; done' "$D/fill"

# --- process churn: 40 short-lived processes a second
load bash -c 'while true; do for i in 1 2 3 4 5 6 7 8 9 10; do /bin/true & done; wait; sleep 0.25; done'
# --- zombies: 20 children left unreaped for 3 s, then reaped, again
load $PY -c '
import os, time
while True:
    kids = []
    for _ in range(20):
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        kids.append(pid)
    time.sleep(3)
    for pid in kids:
        os.waitpid(pid, 0)
    time.sleep(1)
'
# --- log churn: create, write, rotate (rename + reopen), delete, 20 times a second
mkdir -p "$D/logs/app"
load $PY -c '
import os, sys, time
d = sys.argv[1]; n = 0
f = open(os.path.join(d, "app.log"), "a")
while True:
    n += 1
    f.write("line %d %s\n" % (n, "x" * 200)); f.flush()
    os.rename(os.path.join(d, "app.log"), os.path.join(d, "app.log.%d" % n))
    f.close(); f = open(os.path.join(d, "app.log"), "a")
    with open(os.path.join(d, "short-%d.log" % n), "w") as g:
        g.write("short-lived\n")
    for old in (os.path.join(d, "app.log.%d" % (n - 5)), os.path.join(d, "short-%d.log" % (n - 3))):
        try: os.unlink(old)
        except FileNotFoundError: pass
    time.sleep(0.05)
' "$D/logs/app"
# --- the kernel log, user facility (1): priority 14 = user.info
load bash -c 'n=0; while true; do n=$((n + 1)); echo "<14>node-sentinel-soak: record $n" > /dev/kmsg; sleep 0.5; done'

# --- TLS + basic auth
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
  -keyout "$D/server.key" -out "$D/server.pem" 2>/dev/null
# bcrypt (cost 10) of "bench-password", as bench/web_config.sh.
printf 'tls_server_config:\n  cert_file: %s\n  key_file: %s\nbasic_auth_users:\n  soak: %s\n' \
  "$D/server.pem" "$D/server.key" '$2b$10$XLMeVxWZVFvkFVPScrOVoO0TOVuLfZ5qrTTdwhH9mncEcQyF4Q1CO' > "$D/web.yml"
PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL=https://127.0.0.1:$PORT/metrics
CURL=(curl -s --max-time 10 --cacert "$D/server.pem")

N_EXP=0
start_exporter() {
  N_EXP=$((N_EXP + 1))
  "$BIN" --web.listen-address=127.0.0.1:$PORT --web.config.file="$D/web.yml" \
    --collector.docker.host="unix://$D/docker.sock" --collector.docker.pidfile="$D/docker.pid" \
    --collector.cri.endpoint="unix://$D/containerd/containerd.sock" \
    --collector.systemd.bus="$BUS" \
    --collector.logs.path="soak=$D/logs/**/*" \
    --collector.docker.interval=5s --collector.cri.interval=5s --collector.filesystem.interval=5s \
    --collector.systemd.interval=5s --collector.processes.interval=5s --collector.logs.interval=5s \
    --collector.kernel.interval=5s --collector.kubelet.interval=5s \
    2>"$D/exporter-$N_EXP.log" &
  EXP=$!; echo "$EXP" > "$D/exporter.pid"
  for _ in $(seq 200); do
    [ "$("${CURL[@]}" -o /dev/null -w '%{http_code}' -u soak:bench-password "$URL")" = 200 ] && return 0
    kill -0 "$EXP" 2>/dev/null || break; sleep 0.1
  done
  echo "exporter did not answer" >&2; cat "$D/exporter-$N_EXP.log" >&2; exit 1
}

# Seconds (3 decimals) until the exporter has exited after SIGTERM, or FAIL.
stop_exporter() {
  local t0 t1 st
  t0=$(date +%s%N); kill -TERM "$EXP"
  while [ -e /proc/"$EXP" ] && [ "$(awk '{print $3}' /proc/"$EXP"/stat 2>/dev/null)" != Z ]; do
    t1=$(date +%s%N); [ $(( (t1 - t0) / 1000000 )) -lt $((STOP_MAX * 1000)) ] || break; sleep 0.05
  done
  t1=$(date +%s%N)
  if [ -e /proc/"$EXP" ] && [ "$(awk '{print $3}' /proc/"$EXP"/stat 2>/dev/null)" != Z ]; then
    echo "$1 FAIL >${STOP_MAX}s" >> "$D/stops"; kill -KILL "$EXP"; wait "$EXP" 2>/dev/null || true
  else
    st=0; wait "$EXP" || st=$?
    awk -v p="$1" -v ms=$(( (t1 - t0) / 1000000 )) -v st=$st 'BEGIN { printf "%s %s %.3fs exit %d\n", p, (ms <= 5000 && st == 0 ? "ok" : "FAIL"), ms / 1000, st }' >> "$D/stops"
  fi
  EXP=""
}

# What the exporter reports about the sources, so a pass means it saw them
# hung (and saw them come back), not that it never looked.
seen() {
  "${CURL[@]}" -u soak:bench-password "$URL" | awk -v p="$1" -v fuse="$D/fuse" '
    /^sentinel_docker_hung / { d = $2 } /^sentinel_cri_hung / { c = $2 } /^sentinel_systemd_up / { s = $2 }
    /^sentinel_filesystem_stat_hung\{/ && index($0, fuse) && $2 == 1 { h++ }
    END { printf "%s docker_hung=%d cri_hung=%d systemd_up=%d stat_hung=%d\n", p, d, c, s, h }' >> "$D/seen"
}

start_exporter

# --- scrapers: one a second alternating plain and gzip, and a wrong password a second.
# A request is counted in a phase only if the phase is the same when it ends:
# one that starts just before the exporter is stopped (restart, done) would
# otherwise count a refused connection against the phase before.
load bash -c '
  D=$1; shift; URL=$1; shift; i=0
  request() {
    local kind=$1 before after r; shift
    before=$(cat "$D/phase")
    r=$("$@" -o /dev/null -w "%{http_code} %{time_total}")
    after=$(cat "$D/phase")
    [ "$before" = "$after" ] || before=boundary
    echo "$before $kind $r" >> "$D/scrapes"
  }
  while true; do
    i=$((i + 1))
    if [ $((i % 2)) = 0 ]; then k=gzip; z=--compressed; else k=plain; z=; fi
    request $k "$@" $z -u soak:bench-password "$URL"
    request wrong "$@" -u soak:wrong-password "$URL"
    sleep 1
  done' _ "$D" "$URL" "${CURL[@]}"

# --- sampler: /proc and the exporter's own process_* metrics.
load bash -c '
  D=$1; shift; URL=$1; shift; S=$1; shift
  while true; do
    p=$(cat "$D/phase"); e=$(cat "$D/exporter.pid")
    if [ -r /proc/$e/status ]; then
      r=$(awk "/^VmRSS/ {r=\$2} /^Threads/ {t=\$2} END {print r, t}" /proc/$e/status)
      f=$(ls /proc/$e/fd 2>/dev/null | wc -l)
      m=$("$@" -u soak:bench-password "$URL" | awk "/^process_resident_memory_bytes /{r=\$2} /^process_open_fds /{f=\$2} /^process_threads /{t=\$2} END {printf \"%d %d %d\", r/1024, f, t}")
      echo "$p $e $r $f $m" >> "$D/samples"
    fi
    sleep "$S"
  done' _ "$D" "$URL" "$SAMPLE" "${CURL[@]}"

echo "soak: warm-up ${WARM}s, wedged ${WEDGED}s, recovery ${RECOVERY}s; $MOUNTS hung mounts; sample every ${SAMPLE}s; $("$BIN" --version 2>&1 | head -1)" >&2
phase warm-up; nap "$WARM"

STOPPED=("$DOCKERD" "$CONTAINERD" "$MANAGER")
kill -STOP "${STOPPED[@]}"
for p in "${FUSEPIDS[@]}"; do kill -STOP "$p"; done
STOPPED+=("${FUSEPIDS[@]}")
# Something on the hung mounts from the outside too, as a node's df would.
for i in $(seq "$MOUNTS"); do load sh -c 'exec stat -f "$0" >/dev/null 2>&1' "$D/fuse$i/mnt"; done
phase wedged; nap "$WEDGED"

seen wedged
phase restart
stop_exporter "shutdown-while-wedged"
start_exporter
nap "$SAMPLE"

kill -CONT "${STOPPED[@]}"; STOPPED=()
phase recovery; nap "$RECOVERY"
seen recovery
phase done
stop_exporter "shutdown-after-recovery"
sleep 0.5

report
