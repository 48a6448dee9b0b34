//! End-to-end incident drills: exporter → Prometheus → the shipped alert rules
//! → Alertmanager → a webhook receiver inside this test, with the seed
//! outages caused for real.
//!
//! Real components (RECIPES.md): Debian's `/usr/bin/prometheus` and
//! `/usr/bin/prometheus-alertmanager` on loopback (scrape and evaluation every
//! 1s), a private dockerd, a private systemd user manager, a PID namespace
//! whose init never reaps, a small tmpfs, and the node-sentinel binary.
//!
//! The rule file is `alerts/node-sentinel.rules.yml` exactly as shipped,
//! except that in a temporary copy every `for:` (shipped 1m to 1h) and every
//! `keep_firing_for:` (shipped 10m) is shortened to [`common::rules::FOR`] (3s), and
//! every range window (`[2m]` gap bridges, `[5m]`, `[10m]`, `[15m]`, `[1h]`)
//! to [`common::rules::WINDOW`] (20s), so a drill takes seconds instead of hours.
//! Offsets (`offset 5m` in the restart and fast-fill rules) are not cut, so
//! SentinelDockerDaemonRestarting and SentinelFilesystemFillingFast cannot
//! fire here; alerts/tests/ (promtool) covers them at shipped durations. The
//! exporter runs with 1s intervals and 30s trend/loop windows (shipped 1h and
//! 10m) for the same reason. Thresholds are the shipped ones, except the
//! D-state time (a `for:` in all but name), shortened to
//! [`common::rules::D_STATE_SECONDS`] (shipped 120s). The times printed are wiring
//! latencies through the real chain, not the times to page at the shipped
//! defaults (alerts/tests/timeliness.yml asserts those).
//!
//! Drills, one after another in this one test (one Prometheus/Alertmanager
//! pair for all):
//! 0. quiet run: a healthy setup sends no alert at all for
//!    `NODE_SENTINEL_QUIET_SECS` (default 60s; the issue asks for 5 minutes,
//!    shortened for CI time — set 300 to run it in full);
//! 1. the exporter stops answering (SIGSTOP) → SentinelExporterDown; SIGCONT → resolved;
//! 2. Docker hung: SIGSTOP on the real dockerd → SentinelDockerHung; SIGCONT → resolved;
//! 3. the first seed's dependency trap on the systemd manager → SentinelUnitStranded
//!    for the dependent; starting it → resolved;
//! 4. a crash-looping unit with no start limit → SentinelUnitRestartLoop and
//!    SentinelUnitRestartUnbounded; stopping and removing it → resolved; then a
//!    unit that fails once → SentinelUnitFailed; reset-failed → resolved;
//! 5. a runaway log on a 256 MiB tmpfs that is already 60% used →
//!    SentinelLogFileGrowthRunaway, SentinelLogsFillingDisk and
//!    SentinelFilesystemFillingUp before the tmpfs is full; deleting the log → resolved;
//! 6. zombies nobody reaps → SentinelZombiesAccumulating, then, with their
//!    parent killed, SentinelInitNotReaping; init reaping → resolved;
//! 7. a statvfs on a stopped bindfs (FUSE) mount sits in D state →
//!    SentinelProcessesStuckInDState; SIGCONT → resolved.
//!
//! Then every dashboard panel query must return data from this run, and every
//! `sentinel_*` name used by rules and dashboards must be among the names the
//! exporters really served.
//!
//! Each drill needs its collector. A drill whose collector serves no metrics
//! is skipped with a note, unless `NODE_SENTINEL_DRILLS` is set (to anything
//! but empty or 0), in which case it fails. `NODE_SENTINEL_DRILL_ONLY` (a
//! comma-separated list of drill names) runs a subset while developing. Timings (cause → webhook arrival,
//! and for the filling drill, how long before the tmpfs was full) are printed.
#![allow(clippy::disallowed_methods, clippy::unwrap_used)]

mod common;
#[path = "alerts/names.rs"]
mod names;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::prometheus::{
    ALERTMANAGER, Alertmanager, Delivered, EVERY_SECOND, PROMETHEUS, Prometheus, Webhook, urlencode,
};
use common::{Daemon, Exporter, TempDir};
use rustix::process::Signal;

const JOB: &str = "node-sentinel";

// ---------------------------------------------------------------- processes

/// Runs a cleanup action on drop (unmounts, cgroup removal).
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)()
    }
}

fn sh(program: &str, args: &[&str]) -> std::process::Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

fn must(program: &str, args: &[&str]) -> String {
    let out = sh(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `NODE_SENTINEL_DRILL_ONLY=docker hung,zombies` runs only those drills
/// (and skips the dashboard and name checks, which need the full run).
fn only() -> Option<Vec<String>> {
    std::env::var("NODE_SENTINEL_DRILL_ONLY")
        .ok()
        .filter(|v| !v.is_empty())
        .map(|v| v.split(',').map(|d| d.trim().to_string()).collect())
}

fn selected(drill: &str) -> bool {
    only().is_none_or(|o| o.iter().any(|d| d == drill))
}

fn strict() -> bool {
    std::env::var("NODE_SENTINEL_DRILLS").is_ok_and(|v| !v.is_empty() && v != "0")
}

// --------------------------------------------------------------- helpers

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// An (unanchored) regex that matches every mountpoint except `keep`, for
/// `--collector.filesystem.mount-points-exclude`: other work on this machine
/// fills its own tmpfs mounts, which must not page during the quiet run.
fn exclude_all_but(keep: &str) -> String {
    let chars: Vec<char> = keep.chars().collect();
    let mut alts = Vec::new();
    for i in 0..chars.len() {
        let prefix: String = chars[..i].iter().collect();
        let prefix = regex::escape(&prefix);
        if i > 0 {
            alts.push(prefix.clone());
        }
        alts.push(format!("{prefix}[^\\x{{{:x}}}].*", chars[i] as u32));
    }
    alts.push(format!("{}.+", regex::escape(keep)));
    format!("(?s)^(?:{})$", alts.join("|"))
}

// ------------------------------------------------------------- the setup

struct Timing {
    what: String,
    secs: f64,
}

#[derive(Default)]
struct Report {
    lines: Vec<Timing>,
    skipped: Vec<String>,
}

impl Report {
    /// Wait for an alert at the webhook (see [`Webhook::wait`]) and record how
    /// long it took since `t`, the first argument after `what`.
    #[allow(clippy::too_many_arguments)]
    fn awaited(
        &mut self,
        hook: &Webhook,
        what: &str,
        t: Instant,
        status: &str,
        name: &str,
        labels: &[(&str, &str)],
        timeout: Duration,
    ) -> Delivered {
        let delivered = hook.wait(t, status, name, labels, timeout);
        self.took(what, t, delivered.at);
        delivered
    }

    fn took(&mut self, what: &str, since: Instant, at: Instant) {
        let secs = at.duration_since(since).as_secs_f64();
        eprintln!("DRILL TIMING: {what}: {secs:.1}s");
        self.lines.push(Timing {
            what: what.to_string(),
            secs,
        });
    }

    fn note(&mut self, what: &str, secs: f64) {
        eprintln!("DRILL TIMING: {what}: {secs:.1}s");
        self.lines.push(Timing {
            what: what.to_string(),
            secs,
        });
    }

    /// Whether a drill needing `collector` can run; otherwise note the skip
    /// (or fail under NODE_SENTINEL_DRILLS).
    fn can_run(&mut self, drill: &str, collector: &str, landed: &BTreeSet<String>) -> bool {
        if !selected(drill) {
            return false;
        }
        if landed.contains(collector) {
            eprintln!("DRILL: {drill}");
            return true;
        }
        assert!(
            !strict(),
            "drill {drill:?} needs the {collector} collector, which serves no metrics (NODE_SENTINEL_DRILLS is set)"
        );
        eprintln!("SKIP: drill {drill:?}: the {collector} collector serves no metrics yet");
        self.skipped
            .push(format!("{drill} (no {collector} metrics)"));
        false
    }
}

/// A user-mode systemd manager on its own bus (RECIPES.md).
struct Systemd {
    env: Vec<(String, String)>,
    units: PathBuf,
    bus: String,
    _manager: Daemon,
    _cgroup: OnDrop<Box<dyn FnMut()>>,
}

impl Systemd {
    fn start(dir: &Path) -> Option<Systemd> {
        std::fs::create_dir_all("/run/systemd/system").ok()?;
        let xdg = dir.join("xdg");
        let home = dir.join("home");
        std::fs::create_dir_all(&xdg).unwrap();
        std::fs::create_dir_all(&home).unwrap();
        must("chmod", &["700", xdg.to_str().unwrap()]);
        let units = home.join(".config/systemd/user");
        std::fs::create_dir_all(&units).unwrap();
        let bus = format!("unix:path={}/bus", xdg.display());
        let slice = PathBuf::from(format!(
            "/sys/fs/cgroup/unified/sentinel-drills-{}.slice",
            std::process::id()
        ));
        let cg = slice.join("user@0.service");
        if std::fs::create_dir_all(&cg).is_err() {
            eprintln!("SKIP: cannot create a cgroup v2 directory for systemd");
            return None;
        }
        let env = vec![
            ("XDG_RUNTIME_DIR".to_string(), xdg.display().to_string()),
            ("HOME".to_string(), home.display().to_string()),
            ("DBUS_SESSION_BUS_ADDRESS".to_string(), bus.clone()),
        ];
        let mut cmd = Command::new("bash");
        cmd.arg("-c")
            .arg(format!(
                "echo $$ > {}/cgroup.procs; exec /lib/systemd/systemd --user",
                cg.display()
            ))
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let manager = Daemon::spawn("systemd --user", &mut cmd, &dir.join("systemd.log"));
        let cleanup: Box<dyn FnMut()> = Box::new(move || {
            // Deepest cgroups first; they are empty once the manager is gone.
            let _ = Command::new("find")
                .arg(&slice)
                .args(["-depth", "-type", "d", "-exec", "rmdir", "{}", ";"])
                .output();
        });
        let sd = Systemd {
            env,
            units,
            bus,
            _cgroup: OnDrop(cleanup),
            _manager: manager,
        };
        common::wait_until(Duration::from_secs(30), "systemd --user to run", || {
            let out = sd.ctl_output(&["is-system-running"]);
            let s = String::from_utf8_lossy(&out.stdout);
            (s.contains("running") || s.contains("degraded")).then_some(())
        });
        Some(sd)
    }

    fn ctl_output(&self, args: &[&str]) -> std::process::Output {
        Command::new("systemctl")
            .arg("--user")
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .unwrap()
    }

    fn ctl(&self, args: &[&str]) -> String {
        let out = self.ctl_output(args);
        assert!(
            out.status.success(),
            "systemctl --user {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn write_unit(&self, name: &str, text: &str) {
        std::fs::write(self.units.join(name), text).unwrap();
    }

    fn remove_unit(&self, name: &str) {
        let _ = std::fs::remove_file(self.units.join(name));
    }

    fn wait_active(&self, unit: &str) {
        common::wait_until(Duration::from_secs(20), &format!("{unit} active"), || {
            (self.ctl_output(&["is-active", unit]).stdout == b"active\n").then_some(())
        });
    }
}

/// A PID namespace whose init (comm `drill-init`) never reaps, until SIGUSR1.
struct PidNamespace {
    init_pid: u32,
    procfs: PathBuf,
    _unmount: OnDrop<Box<dyn FnMut()>>,
    _unshare: Daemon,
}

const INIT: &str = r#"
import os, signal, time
open('/proc/self/comm', 'w').write('drill-init')
def reap(*_):
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
signal.signal(signal.SIGUSR1, reap)
while True:
    time.sleep(3600)
"#;

/// Forks `n` children that exit at once and are never waited for; holds a
/// deleted 4 MiB file open on `held`.
const ZOMBIE_MAKER: &str = r#"
import os, sys, time
open('/proc/self/comm', 'w').write('drill-zombiemkr')
f = open(sys.argv[2], 'wb'); f.write(b'x' * (4 << 20)); f.flush(); os.unlink(sys.argv[2])
for _ in range(int(sys.argv[1])):
    if os.fork() == 0:
        os._exit(0)
while True:
    time.sleep(3600)
"#;

/// statvfs on argv[1], with a SIGUSR1 handler so a signal moves the FUSE
/// wait from interruptible to uninterruptible.
const D_STATE: &str = r#"
import os, signal, sys
signal.signal(signal.SIGUSR1, lambda *_: None)
open('/proc/self/comm', 'w').write('drill-dstate')
while True:
    try:
        os.statvfs(sys.argv[1])
        break
    except InterruptedError:
        pass
"#;

impl PidNamespace {
    fn start(dir: &Path) -> PidNamespace {
        let mut cmd = Command::new("unshare");
        cmd.args(["--pid", "--fork", "--kill-child", "python3", "-c", INIT]);
        let unshare = Daemon::spawn("unshare", &mut cmd, &dir.join("init.log"));
        let children = format!("/proc/{}/task/{}/children", unshare.pid(), unshare.pid());
        let init_pid: u32 = common::wait_until(Duration::from_secs(10), "namespace init", || {
            let pid: u32 = std::fs::read_to_string(&children)
                .ok()?
                .split_whitespace()
                .next()?
                .parse()
                .ok()?;
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            (comm.trim() == "drill-init").then_some(pid)
        });
        let procfs = dir.join("nsproc");
        std::fs::create_dir_all(&procfs).unwrap();
        let pid = init_pid.to_string();
        must(
            "nsenter",
            &[
                "-t",
                &pid,
                "-p",
                "mount",
                "-t",
                "proc",
                "proc",
                procfs.to_str().unwrap(),
            ],
        );
        let p = procfs.clone();
        let unmount: Box<dyn FnMut()> = Box::new(move || {
            let _ = sh("umount", &["-l", p.to_str().unwrap()]);
        });
        PidNamespace {
            init_pid,
            procfs,
            _unmount: OnDrop(unmount),
            _unshare: unshare,
        }
    }
}

impl Drop for PidNamespace {
    fn drop(&mut self) {
        // Killing the namespace's init kills everything in it; unshare then exits.
        common::signal(self.init_pid, Signal::KILL);
    }
}

struct Dockerd {
    daemon: Daemon,
    sock: PathBuf,
}

impl Dockerd {
    fn start(dir: &Path) -> Dockerd {
        let d = dir.join("docker");
        std::fs::create_dir_all(&d).unwrap();
        let sock = d.join("docker.sock");
        let mut cmd = Command::new("dockerd");
        cmd.arg("--host")
            .arg(format!("unix://{}", sock.display()))
            .arg("--data-root")
            .arg(d.join("root"))
            .arg("--exec-root")
            .arg(d.join("exec"))
            .arg("--pidfile")
            .arg(d.join("docker.pid"))
            .args(["--iptables=false", "--bridge=none", "--storage-driver=vfs"]);
        let daemon = Daemon::spawn("dockerd", &mut cmd, &dir.join("dockerd.log"));
        let host = format!("unix://{}", sock.display());
        common::wait_until(Duration::from_secs(60), "dockerd to answer", || {
            sh("docker", &["-H", &host, "version"])
                .status
                .success()
                .then_some(())
        });
        Dockerd { daemon, sock }
    }
}

/// Flags that exist in this build (collectors land one by one).
fn known_flags() -> String {
    let out = Command::new(common::binary())
        .arg("--help")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn flags(help: &str, wanted: &[(&str, String)]) -> Vec<String> {
    wanted
        .iter()
        .filter(|(name, _)| {
            let known = help.contains(&format!("--{name} "))
                || help.contains(&format!("--{name}="))
                || help.contains(&format!("--{name}\n"));
            if !known {
                eprintln!("note: this build has no --{name}; not passed");
            }
            known
        })
        .map(|(name, v)| format!("--{name}={v}"))
        .collect()
}

// ------------------------------------------------------------------ drills

#[test]
fn incident_drills() {
    if !common::require_root() {
        return;
    }
    for p in [
        PROMETHEUS,
        ALERTMANAGER,
        "dockerd",
        "docker",
        "python3",
        "systemctl",
        "unshare",
        "nsenter",
    ] {
        if common::require(p).is_none() {
            return;
        }
    }
    let started = Instant::now();
    let tmp = TempDir::new("drills");
    let dir = tmp.path().to_path_buf();
    let mut report = Report::default();

    // A small filesystem, already 60% used like a real node's disk (the
    // filling alerts are gated on free space), holding the drill's logs.
    let fs = dir.join("fs");
    std::fs::create_dir_all(fs.join("logs")).unwrap();
    must(
        "mount",
        &[
            "-t",
            "tmpfs",
            "-o",
            "size=256m",
            "tmpfs",
            fs.to_str().unwrap(),
        ],
    );
    let fs_umount = fs.clone();
    let _fs_guard = OnDrop(move || {
        let _ = sh("umount", &["-l", fs_umount.to_str().unwrap()]);
    });
    std::fs::create_dir_all(fs.join("logs")).unwrap();
    std::fs::write(fs.join("ballast"), vec![0u8; 150 << 20]).unwrap();
    std::fs::write(fs.join("logs/quiet.log"), b"started\n").unwrap();

    let dockerd = Dockerd::start(&dir);
    let Some(systemd) = Systemd::start(&dir) else {
        assert!(!common::ci(), "systemd --user cannot run here");
        return;
    };
    systemd.write_unit(
        "drill-healthy.service",
        "[Service]\nExecStart=/bin/sleep infinity\nRestart=on-failure\n[Install]\nWantedBy=default.target\n",
    );
    systemd.ctl(&["daemon-reload"]);
    systemd.ctl(&["enable", "--now", "drill-healthy.service"]);
    let ns = PidNamespace::start(&dir);

    // Exporters: one for docker/systemd/filesystem/logs, one for processes
    // (pointed at the namespace's procfs: this machine's own /proc has other
    // work's zombies and D-state processes), one spare with no collector
    // (drill 1 stops it).
    let help = known_flags();
    let main_args = flags(
        &help,
        &[
            ("no-collector.processes", String::new()),
            (
                "collector.docker.host",
                format!("unix://{}", dockerd.sock.display()),
            ),
            ("collector.docker.interval", "1s".into()),
            ("collector.docker.hang-threshold", "3s".into()),
            ("collector.systemd.bus", systemd.bus.clone()),
            ("collector.systemd.interval", "1s".into()),
            (
                "collector.systemd.unit-include",
                r"drill-.*\.service".into(),
            ),
            ("collector.systemd.restart-loop-window", "30s".into()),
            ("collector.filesystem.interval", "1s".into()),
            ("collector.filesystem.trend-window", "30s".into()),
            (
                "collector.filesystem.mount-points-exclude",
                exclude_all_but(fs.to_str().unwrap()),
            ),
            ("collector.logs.interval", "1s".into()),
            ("collector.logs.trend-window", "30s".into()),
            (
                "collector.logs.path",
                format!("drill={}/logs/*", fs.display()),
            ),
        ],
    );
    let main_args: Vec<String> = main_args
        .into_iter()
        .map(|a| a.trim_end_matches('=').to_string())
        .collect();
    let main = Exporter::start(&main_args.iter().map(String::as_str).collect::<Vec<_>>());
    let proc_args: Vec<String> = flags(
        &help,
        &[
            ("path.procfs", ns.procfs.display().to_string()),
            ("collector.processes.interval", "1s".into()),
            ("collector.processes.deleted-files-interval", "2s".into()),
        ],
    );
    let mut proc_all: Vec<String> = ["docker", "filesystem", "systemd", "logs"]
        .iter()
        .map(|c| format!("--no-collector.{c}"))
        .collect();
    proc_all.extend(proc_args);
    let procs = Exporter::start(&proc_all.iter().map(String::as_str).collect::<Vec<_>>());
    let spare = Exporter::start(&[
        "--no-collector.docker",
        "--no-collector.filesystem",
        "--no-collector.systemd",
        "--no-collector.processes",
        "--no-collector.logs",
    ]);
    let inst = |e: &Exporter| format!("127.0.0.1:{}", e.port);
    let (main_i, procs_i, spare_i) = (inst(&main), inst(&procs), inst(&spare));

    // Alertmanager → webhook; Prometheus → Alertmanager.
    let hook = Webhook::start();
    let am = Alertmanager::start(&dir, &hook);
    let shipped = std::fs::read_to_string(names::rule_file()).unwrap();
    std::fs::write(dir.join("rules.yml"), common::rules::shortened(&shipped)).unwrap();
    let prom = Prometheus::start(
        &dir,
        &format!(
            "{EVERY_SECOND}rule_files: [{}/rules.yml, {}]\n{}\
             scrape_configs:\n  - job_name: {JOB}\n    static_configs:\n      - targets: ['{main_i}', '{procs_i}', '{spare_i}']\n",
            dir.display(),
            // The fleet dashboard reads the recording rules, as shipped.
            names::recording_file().display(),
            am.alerting(),
        ),
    );
    let run_start = unix_now();

    // Which collectors serve metrics in this build.
    common::wait_until(Duration::from_secs(30), "all three targets up", || {
        (prom.value(&format!("sum(up{{job=\"{JOB}\"}})")) == Some(3.0)).then_some(())
    });
    std::thread::sleep(Duration::from_secs(5));
    let served = || -> BTreeSet<String> {
        prom.api("/api/v1/label/__name__/values")
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    };
    let landed: BTreeSet<String> = served()
        .iter()
        .filter(|n| n.starts_with("sentinel_"))
        .map(|n| names::collector_of(n).to_string())
        .collect();
    eprintln!("collectors serving metrics: {landed:?}");

    // Drill 0: quiet run. Warm up so every trend window has its first rate.
    std::thread::sleep(Duration::from_secs(10));
    let quiet_secs: u64 = std::env::var("NODE_SENTINEL_QUIET_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    eprintln!("DRILL: quiet run, {quiet_secs}s");
    let quiet = Instant::now();
    std::thread::sleep(Duration::from_secs(quiet_secs));
    let noise = hook.since(quiet);
    let pending = prom.query("ALERTS");
    assert!(
        noise.is_empty() && pending.is_empty(),
        "a healthy setup raised alerts during the quiet run:\ndelivered: {noise:#?}\nALERTS: {pending:#?}"
    );

    // Drill 1: the exporter stops answering.
    if selected("exporter down") {
        eprintln!("DRILL: exporter down");
        let t0 = Instant::now();
        common::signal(spare.pid(), Signal::STOP);
        report.awaited(
            &hook,
            "exporter down: SIGSTOP -> SentinelExporterDown at webhook",
            t0,
            "firing",
            "SentinelExporterDown",
            &[
                ("instance", &spare_i),
                ("job", JOB),
                ("severity", "critical"),
            ],
            Duration::from_secs(60),
        );
        let t1 = Instant::now();
        common::signal(spare.pid(), Signal::CONT);
        report.awaited(
            &hook,
            "exporter down: SIGCONT -> resolved at webhook",
            t1,
            "resolved",
            "SentinelExporterDown",
            &[("instance", &spare_i)],
            Duration::from_secs(60),
        );
    }

    // Drill 2: Docker hung.
    if report.can_run("docker hung", "docker", &landed) {
        let pid: u32 = std::fs::read_to_string(dir.join("docker/docker.pid"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(dockerd.daemon.pid());
        let t0 = Instant::now();
        common::signal(pid, Signal::STOP);
        let fired = report.awaited(
            &hook,
            "docker hung: SIGSTOP -> SentinelDockerHung at webhook",
            t0,
            "firing",
            "SentinelDockerHung",
            &[
                ("instance", &main_i),
                ("job", JOB),
                ("severity", "critical"),
            ],
            Duration::from_secs(90),
        );
        eprintln!("  description: {}", fired.annotations["description"]);
        let t1 = Instant::now();
        common::signal(pid, Signal::CONT);
        report.awaited(
            &hook,
            "docker hung: SIGCONT -> resolved at webhook",
            t1,
            "resolved",
            "SentinelDockerHung",
            &[("instance", &main_i)],
            Duration::from_secs(90),
        );
    }

    // Drill 3: the first seed's dependency trap.
    if report.can_run("unit stranded", "systemd", &landed) {
        let flag = dir.join("flanneld.flag");
        systemd.write_unit(
            "drill-flanneld.service",
            &format!(
                "[Unit]\nStartLimitIntervalSec=0\n[Service]\nType=notify\nNotifyAccess=all\nRestart=always\nRestartSec=1\n\
                 ExecStart=/bin/sh -c 'if [ -f {f} ]; then rm -f {f}; exit 1; fi; systemd-notify --ready; exec sleep infinity'\n\
                 [Install]\nWantedBy=default.target\n",
                f = flag.display()
            ),
        );
        systemd.write_unit(
            "drill-dockerd.service",
            "[Unit]\nRequires=drill-flanneld.service\nAfter=drill-flanneld.service\n[Service]\nRestart=always\n\
             ExecStart=/bin/sleep infinity\n[Install]\nWantedBy=default.target\n",
        );
        systemd.ctl(&["daemon-reload"]);
        systemd.ctl(&[
            "enable",
            "--now",
            "drill-flanneld.service",
            "drill-dockerd.service",
        ]);
        systemd.wait_active("drill-flanneld.service");
        systemd.wait_active("drill-dockerd.service");
        std::thread::sleep(Duration::from_secs(3));
        std::fs::write(&flag, b"").unwrap();
        let main_pid = systemd.ctl(&["show", "-p", "MainPID", "--value", "drill-flanneld.service"]);
        let t0 = Instant::now();
        common::signal(main_pid.parse().unwrap(), Signal::KILL);
        let fired = report.awaited(
            &hook,
            "unit stranded: dependency killed -> SentinelUnitStranded at webhook",
            t0,
            "firing",
            "SentinelUnitStranded",
            &[
                ("instance", &main_i),
                ("unit", "drill-dockerd.service"),
                ("dependency", "drill-flanneld.service"),
                ("severity", "critical"),
            ],
            Duration::from_secs(90),
        );
        eprintln!("  description: {}", fired.annotations["description"]);
        let t1 = Instant::now();
        systemd.ctl(&["start", "drill-dockerd.service"]);
        report.awaited(
            &hook,
            "unit stranded: unit started -> resolved at webhook",
            t1,
            "resolved",
            "SentinelUnitStranded",
            &[("unit", "drill-dockerd.service")],
            Duration::from_secs(60),
        );
    }

    // Drill 4: a crash loop with no start limit.
    if report.can_run("restart loop", "systemd", &landed) {
        systemd.write_unit(
            "drill-crashloop.service",
            "[Unit]\nStartLimitIntervalSec=0\n[Service]\nRestart=always\nRestartSec=500ms\n\
             ExecStart=/bin/sh -c 'sleep 1; exit 1'\n",
        );
        systemd.ctl(&["daemon-reload"]);
        let t0 = Instant::now();
        systemd.ctl(&["start", "drill-crashloop.service"]);
        let unit = [
            ("instance", main_i.as_str()),
            ("unit", "drill-crashloop.service"),
        ];
        let fired = report.awaited(
            &hook,
            "restart loop: unit started -> SentinelUnitRestartLoop at webhook",
            t0,
            "firing",
            "SentinelUnitRestartLoop",
            &unit,
            Duration::from_secs(90),
        );
        assert_eq!(fired.labels["severity"], "warning");
        eprintln!("  description: {}", fired.annotations["description"]);
        let info = report.awaited(
            &hook,
            "restart loop: unit started -> SentinelUnitRestartUnbounded (info) at webhook",
            t0,
            "firing",
            "SentinelUnitRestartUnbounded",
            &unit,
            Duration::from_secs(60),
        );
        assert_eq!(info.labels["severity"], "info");
        let t1 = Instant::now();
        systemd.ctl(&["stop", "drill-crashloop.service"]);
        systemd.remove_unit("drill-crashloop.service");
        systemd.ctl(&["daemon-reload"]);
        report.awaited(
            &hook,
            "restart loop: unit stopped and removed -> loop resolved",
            t1,
            "resolved",
            "SentinelUnitRestartLoop",
            &unit,
            Duration::from_secs(90),
        );
        report.awaited(
            &hook,
            "restart loop: unit stopped and removed -> unbounded resolved",
            t1,
            "resolved",
            "SentinelUnitRestartUnbounded",
            &unit,
            Duration::from_secs(90),
        );

        // A unit that fails once and stays failed.
        systemd.write_unit("drill-broken.service", "[Service]\nExecStart=/bin/false\n");
        systemd.ctl(&["daemon-reload"]);
        let t0 = Instant::now();
        let _ = systemd.ctl_output(&["start", "drill-broken.service"]);
        report.awaited(
            &hook,
            "unit failed: start -> SentinelUnitFailed at webhook",
            t0,
            "firing",
            "SentinelUnitFailed",
            &[
                ("instance", &main_i),
                ("unit", "drill-broken.service"),
                ("result", "exit-code"),
                ("severity", "warning"),
            ],
            Duration::from_secs(60),
        );
        let t1 = Instant::now();
        let _ = systemd.ctl_output(&["reset-failed", "drill-broken.service"]);
        systemd.remove_unit("drill-broken.service");
        systemd.ctl(&["daemon-reload"]);
        report.awaited(
            &hook,
            "unit failed: reset-failed -> resolved at webhook",
            t1,
            "resolved",
            "SentinelUnitFailed",
            &[("unit", "drill-broken.service")],
            Duration::from_secs(60),
        );
    }

    // Drill 5: a runaway log fills the small filesystem.
    if report.can_run("runaway log", "logs", &landed)
        || report.can_run("filesystem filling", "filesystem", &landed)
    {
        let log = fs.join("logs/runaway.log");
        let full: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (full_w, stop_w, log_w) = (full.clone(), stop.clone(), log.clone());
        let t0 = Instant::now();
        // 1.5 MiB/s of the same line, like the seed's stack traces, until ENOSPC.
        let writer = std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_w)
                .unwrap();
            let line = b"dockerd[12436]: goroutine 2648 [runnable]: syscall.Syscall6(0x101, 0xffffffffffffff9c)\n";
            let chunk: Vec<u8> = line.iter().copied().cycle().take(150 << 10).collect();
            let start = Instant::now();
            let mut n = 0u64;
            while !stop_w.load(std::sync::atomic::Ordering::Relaxed) {
                if f.write_all(&chunk).is_err() {
                    *full_w.lock().unwrap() = Some(Instant::now());
                    return;
                }
                n += 1;
                let due = start + Duration::from_millis(100 * n);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
        });
        let mut wanted: Vec<(&str, Vec<(&str, String)>)> = Vec::new();
        let fsm = fs.display().to_string();
        if landed.contains("logs") {
            wanted.push((
                "SentinelLogFileGrowthRunaway",
                vec![
                    ("group", "drill".into()),
                    ("path", log.display().to_string()),
                    ("severity", "warning".into()),
                ],
            ));
            wanted.push((
                "SentinelLogsFillingDisk",
                vec![
                    ("group", "drill".into()),
                    ("mountpoint", fsm.clone()),
                    ("severity", "critical".into()),
                ],
            ));
        }
        if landed.contains("filesystem") {
            wanted.push((
                "SentinelFilesystemFillingUp",
                vec![("mountpoint", fsm.clone()), ("severity", "warning".into())],
            ));
            wanted.push((
                "SentinelFilesystemFillingUp",
                vec![("mountpoint", fsm.clone()), ("severity", "critical".into())],
            ));
        }
        let mut arrivals = Vec::new();
        for (name, labels) in &wanted {
            let mut l: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
            l.push(("instance", &main_i));
            // The severity is in the alert itself, so wait first and record after.
            let d = hook.wait(t0, "firing", name, &l, Duration::from_secs(150));
            let sev = d.labels["severity"].clone();
            report.took(
                &format!("runaway log: writer started -> {name} ({sev}) at webhook"),
                t0,
                d.at,
            );
            arrivals.push((format!("{name} ({sev})"), d.at));
        }
        common::wait_until(Duration::from_secs(180), "the tmpfs to fill up", || {
            *full.lock().unwrap()
        });
        let full_at = full.lock().unwrap().unwrap();
        report.took(
            "runaway log: writer started -> tmpfs full (ENOSPC)",
            t0,
            full_at,
        );
        for (what, at) in &arrivals {
            let before = full_at.checked_duration_since(*at);
            assert!(
                before.is_some(),
                "{what} arrived only after the filesystem was full"
            );
            report.note(
                &format!("runaway log: {what} arrived before full by"),
                before.unwrap().as_secs_f64(),
            );
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        writer.join().unwrap();
        let t1 = Instant::now();
        std::fs::remove_file(&log).unwrap();
        for (name, labels) in &wanted {
            let l: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
            report.awaited(
                &hook,
                &format!("runaway log: log deleted -> {name} resolved"),
                t1,
                "resolved",
                name,
                &l,
                Duration::from_secs(120),
            );
        }
    }

    // Drill 6: zombies nobody reaps.
    if report.can_run("zombies", "processes", &landed) {
        let init = ns.init_pid.to_string();
        let t0 = Instant::now();
        let mut maker_cmd = Command::new("nsenter");
        maker_cmd
            .args(["-t", &init, "-p", "python3", "-c", ZOMBIE_MAKER, "12"])
            .arg(fs.join("held"));
        let maker = Daemon::spawn("zombie maker", &mut maker_cmd, &dir.join("maker.log"));
        let fired = report.awaited(
            &hook,
            "zombies: 12 unreaped children -> SentinelZombiesAccumulating at webhook",
            t0,
            "firing",
            "SentinelZombiesAccumulating",
            &[
                ("instance", &procs_i),
                ("parent_comm", "drill-zombiemkr"),
                ("severity", "warning"),
            ],
            Duration::from_secs(90),
        );
        eprintln!("  description: {}", fired.annotations["description"]);
        // Kill the parent (nsenter's child inside the namespace): its zombies
        // go to the namespace's init, which does not reap.
        let kids = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", maker.pid()))
            .unwrap_or_default();
        let t1 = Instant::now();
        for pid in kids
            .split_whitespace()
            .filter_map(|p| p.parse::<u32>().ok())
        {
            common::signal(pid, Signal::KILL);
        }
        report.awaited(
            &hook,
            "zombies: parent killed -> SentinelInitNotReaping at webhook",
            t1,
            "firing",
            "SentinelInitNotReaping",
            &[("instance", &procs_i), ("severity", "warning")],
            Duration::from_secs(90),
        );
        let t2 = Instant::now();
        common::signal(ns.init_pid, Signal::USR1);
        report.awaited(
            &hook,
            "zombies: init reaped -> SentinelInitNotReaping resolved",
            t2,
            "resolved",
            "SentinelInitNotReaping",
            &[("instance", &procs_i)],
            Duration::from_secs(60),
        );
        // The maker's own alert resolved when its zombies passed to init.
        hook.wait(
            t1,
            "resolved",
            "SentinelZombiesAccumulating",
            &[("instance", &procs_i), ("parent_comm", "drill-zombiemkr")],
            Duration::from_secs(60),
        );
        drop(maker);
    }

    // Drill 7: a process stuck in D state on a hung FUSE mount (RECIPES.md).
    let mut d_state_ran = false;
    if report.can_run("D state", "processes", &landed) && common::require("bindfs").is_some() {
        let (src, mnt) = (dir.join("fuse-src"), dir.join("fuse-mnt"));
        std::fs::create_dir_all(&src).unwrap();
        std::fs::create_dir_all(&mnt).unwrap();
        let bindfs = Daemon::spawn(
            "bindfs",
            Command::new("bindfs").arg("-f").arg(&src).arg(&mnt),
            &dir.join("bindfs.log"),
        );
        let mnt_s = mnt.display().to_string();
        common::wait_until(Duration::from_secs(10), "bindfs mount", || {
            std::fs::read_to_string("/proc/self/mountinfo")
                .ok()?
                .contains(&format!(" {mnt_s} "))
                .then_some(())
        });
        let bindfs_pid = bindfs.pid();
        let mnt_u = mnt_s.clone();
        let _unmount = OnDrop(move || {
            common::signal(bindfs_pid, Signal::CONT);
            let _ = sh("fusermount3", &["-u", &mnt_u]);
        });
        let init = ns.init_pid.to_string();
        let t0 = Instant::now();
        common::signal(bindfs_pid, Signal::STOP);
        let stuck = Daemon::spawn(
            "statvfs on the hung mount",
            Command::new("nsenter").args(["-t", &init, "-p", "python3", "-c", D_STATE, &mnt_s]),
            &dir.join("dstate.log"),
        );
        // FUSE waits interruptibly first; once a signal arrives it waits
        // uninterruptibly (D) for the stopped daemon.
        let children = format!("/proc/{0}/task/{0}/children", stuck.pid());
        common::wait_until(Duration::from_secs(20), "a process in D state", || {
            let pid: u32 = std::fs::read_to_string(&children)
                .ok()?
                .split_whitespace()
                .next()?
                .parse()
                .ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // The comm is set after the handler: a signal before it would kill.
            if !stat.contains("(drill-dstate)") {
                return None;
            }
            let state = stat.rsplit_once(") ")?.1.chars().next()?;
            if state == 'D' {
                return Some(());
            }
            common::signal(pid, Signal::USR1);
            std::thread::sleep(Duration::from_millis(200));
            None
        });
        report.awaited(
            &hook,
            "D state: statvfs on a stopped FUSE mount -> SentinelProcessesStuckInDState at webhook",
            t0,
            "firing",
            "SentinelProcessesStuckInDState",
            &[
                ("instance", &procs_i),
                ("comm", "drill-dstate"),
                ("severity", "warning"),
            ],
            Duration::from_secs(60),
        );
        let t1 = Instant::now();
        common::signal(bindfs_pid, Signal::CONT);
        report.awaited(
            &hook,
            "D state: FUSE daemon resumed -> resolved at webhook",
            t1,
            "resolved",
            "SentinelProcessesStuckInDState",
            &[("instance", &procs_i), ("comm", "drill-dstate")],
            Duration::from_secs(60),
        );
        drop(stuck);
        d_state_ran = true;
    }

    if only().is_some() {
        eprintln!("NODE_SENTINEL_DRILL_ONLY is set: dashboard and metric-name checks skipped");
        return;
    }
    // Every dashboard query returns data from this run, for every collector
    // that served metrics.
    let end = unix_now();
    let mut empty = Vec::new();
    for path in names::dashboards() {
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for p in names::panels(&json) {
            for t in p["targets"].as_array().into_iter().flatten() {
                let expr = t["expr"].as_str().unwrap();
                let collectors: BTreeSet<&str> = names::tokens(expr)
                    .iter()
                    .map(|n| names::collector_of(n))
                    .collect();
                if collectors
                    .iter()
                    .any(|c| *c != "self" && !landed.contains(*c))
                {
                    continue;
                }
                let q = expr
                    .replace("$job", JOB)
                    .replace("$instance", ".+")
                    .replace("$__rate_interval", "10s");
                let data = prom.api(&format!(
                    "/api/v1/query_range?query={}&start={run_start}&end={end}&step=2",
                    urlencode(&q)
                ));
                if data["result"].as_array().is_none_or(|r| r.is_empty()) {
                    empty.push(format!("{:?}: {q}", p["title"].as_str().unwrap_or("")));
                }
            }
        }
    }
    // Only the D-state drill makes sentinel_processes_uninterruptible exist
    // (it needs bindfs), and the drills write no pod logs; everything else
    // must have shown up.
    let mut may_be_empty: Vec<&str> = vec!["group=\"pods\""];
    if !d_state_ran {
        may_be_empty.push("sentinel_processes_uninterruptible");
    }
    let (allowed, bad): (Vec<_>, Vec<_>) = empty
        .into_iter()
        .partition(|q| may_be_empty.iter().any(|m| q.contains(m)));
    for q in &allowed {
        eprintln!("note: panel query returned no data (no such event in the drills): {q}");
    }
    assert!(
        bad.is_empty(),
        "dashboard panel queries returned no data: {bad:#?}"
    );

    // Every sentinel_* name in rules and dashboards is among the names the
    // real exporters served.
    let real = names::families(served().iter().map(String::as_str));
    let skip: BTreeSet<&str> = [
        "docker",
        "cri",
        "filesystem",
        "systemd",
        "processes",
        "logs",
        "kernel",
        "kubelet",
    ]
    .into_iter()
    .filter(|c| !landed.contains(*c))
    .collect();
    let mut unknown = names::unknown(&real, &skip);
    unknown.retain(|u| !may_be_empty.iter().any(|m| u.starts_with(m)));
    assert!(
        unknown.is_empty(),
        "used by rules/dashboards but never served: {unknown:#?}"
    );

    eprintln!(
        "DRILL SUMMARY (total {:.0}s):",
        started.elapsed().as_secs_f64()
    );
    for t in &report.lines {
        eprintln!("  {:>6.1}s  {}", t.secs, t.what);
    }
    for s in &report.skipped {
        eprintln!("  skipped: {s}");
    }
}

// ------------------------------------------- kubelet blind to a runtime hang

/// A stand-in for the kubelet's healthz (no kubelet can run on these
/// machines): answers `200 ok` to every request, as a kubelet does while the
/// runtime under it hangs. Detached: it ends with the test process.
fn healthz_stub() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        }
    });
    port
}

/// The seeds' kubernetes#17525: a SIGSTOPped containerd while the kubelet's
/// healthz keeps answering ok. SentinelKubeletBlindToRuntimeHang must reach
/// the webhook through Prometheus and Alertmanager, not fire before the
/// hang, and resolve once the runtime answers again.
#[test]
fn drill_kubelet_blind_to_a_runtime_hang() {
    if !common::require_root() {
        return;
    }
    for p in [PROMETHEUS, ALERTMANAGER, "containerd", "ctr"] {
        if common::require(p).is_none() {
            return;
        }
    }
    let tmp = TempDir::new("drill-kubelet");
    let dir = tmp.path().to_path_buf();
    let ctd = common::cri::Containerd::start(&dir.join("ctd"), None);
    let root_dir = dir.join("kubelet");
    std::fs::create_dir_all(&root_dir).unwrap();
    let healthz = healthz_stub();
    let e = Exporter::start(&[
        "--collector.disable-defaults",
        "--collector.cri",
        &format!("--collector.cri.endpoint={}", ctd.endpoint()),
        "--collector.cri.interval=1s",
        "--collector.cri.hang-threshold=3s",
        "--collector.cri.timeout=5s",
        "--collector.kubelet",
        "--collector.kubelet.interval=1s",
        &format!("--collector.kubelet.root-dir={}", root_dir.display()),
        &format!("--collector.kubelet.healthz-url=http://127.0.0.1:{healthz}/healthz"),
    ]);
    let instance = format!("127.0.0.1:{}", e.port);
    let hook = Webhook::start();
    let am = Alertmanager::start(&dir, &hook);
    let shipped = std::fs::read_to_string(names::rule_file()).unwrap();
    std::fs::write(dir.join("rules.yml"), common::rules::shortened(&shipped)).unwrap();
    let prom = Prometheus::start(
        &dir,
        &format!(
            "{EVERY_SECOND}rule_files: [{}/rules.yml]\n{}\
             scrape_configs:\n  - job_name: {JOB}\n    static_configs:\n      - targets: ['{instance}']\n",
            dir.display(),
            am.alerting(),
        ),
    );
    // Healthy first: the runtime answers and the kubelet stand-in says ok.
    common::wait_until(
        Duration::from_secs(60),
        "healthz up and cri up in Prometheus",
        || {
            let one = |q: &str| prom.value(q) == Some(1.0);
            (one("sentinel_kubelet_healthz_up") && one("sentinel_cri_up")).then_some(())
        },
    );
    let healthy = Instant::now();
    std::thread::sleep(Duration::from_secs(8));
    assert!(
        !hook
            .since(healthy)
            .iter()
            .any(|d| d.name() == "SentinelKubeletBlindToRuntimeHang"),
        "fired before the runtime hung"
    );

    eprintln!("DRILL: containerd SIGSTOPped, the kubelet's healthz keeps answering ok");
    let cause = Instant::now();
    common::signal(ctd.pid(), Signal::STOP);
    let firing = hook.wait(
        cause,
        "firing",
        "SentinelKubeletBlindToRuntimeHang",
        &[
            ("instance", instance.as_str()),
            ("severity", "critical"),
            ("job", JOB),
        ],
        Duration::from_secs(90),
    );
    eprintln!(
        "  cause -> webhook: {:.1}s",
        firing.at.duration_since(cause).as_secs_f64()
    );
    assert!(
        firing.annotations["runbook_url"].ends_with("kubelet.md#sentinelkubeletblindtoruntimehang")
    );
    let resume = Instant::now();
    common::signal(ctd.pid(), Signal::CONT);
    hook.wait(
        resume,
        "resolved",
        "SentinelKubeletBlindToRuntimeHang",
        &[("instance", instance.as_str())],
        Duration::from_secs(90),
    );
    drop(e);
}
