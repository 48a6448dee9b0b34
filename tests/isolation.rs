//! Failure isolation, with panics injected into the real (debug) binary through
//! `NODE_SENTINEL_TEST_PANIC`: a panicking round is one failed round of that
//! collector only, and a panicking Docker probe against a real healthy dockerd
//! is one failed probe, never a hang.
#![allow(clippy::disallowed_methods)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Exporter, Metrics, TempDir};

/// Start the exporter with `NODE_SENTINEL_TEST_PANIC=plan`; wait until it serves.
fn start_with_panics(plan: &str, args: &[&str]) -> Exporter {
    Exporter::start_with_env(&[("NODE_SENTINEL_TEST_PANIC", plan)], args)
}

fn status(e: &Exporter, path: &str) -> u16 {
    common::http_get(e.port, path).map(|(s, _)| s).unwrap_or(0)
}

fn get(m: &Metrics, name: &str, labels: &[(&str, &str)]) -> f64 {
    m.get(name, labels).unwrap_or(f64::NAN)
}

/// The default panic hook's output: with the isolation it must never appear.
fn assert_no_raw_panic_output(e: &Exporter) {
    let logs = e.logs();
    assert!(!logs.contains("thread '"), "raw panic output:\n{logs}");
    assert!(
        !logs.contains("RUST_BACKTRACE"),
        "raw panic output:\n{logs}"
    );
}

#[test]
fn a_panicking_round_fails_once_and_the_collector_runs_on() {
    // 3 s between rounds: each round's result is visible for a while, even on a loaded machine.
    let e = start_with_panics(
        "round.filesystem@2",
        &[
            "--collector.disable-defaults",
            "--collector.filesystem",
            "--collector.filesystem.interval=3s",
            "--collector.processes",
            "--collector.processes.interval=3s",
        ],
    );
    let fs = [("collector", "filesystem")];
    let procs = [("collector", "processes")];

    // Round 1 succeeds; ready once both collectors have finished their first round.
    e.wait_for(Duration::from_secs(20), "the first round", |m| {
        (get(m, "sentinel_collector_success", &fs) == 1.0).then_some(())
    });
    common::wait_until(Duration::from_secs(10), "/-/ready 200", || {
        (status(&e, "/-/ready") == 200).then_some(())
    });

    // Round 2 panics: a failed round, its series gone, counted once.
    let m = e.wait_for(Duration::from_secs(20), "the panicked round", |m| {
        (get(m, "sentinel_collector_panics_total", &fs) == 1.0).then(|| m.clone())
    });
    assert_eq!(
        get(&m, "sentinel_collector_success", &fs),
        0.0,
        "{}",
        m.text
    );
    assert!(
        !m.has("sentinel_filesystem_size_bytes"),
        "stale series: {}",
        m.text
    );
    assert_eq!(status(&e, "/-/healthy"), 200);
    assert_eq!(status(&e, "/-/ready"), 200);
    // The other collector never noticed (the false-positive side).
    assert_eq!(get(&m, "sentinel_collector_panics_total", &procs), 0.0);
    assert_eq!(get(&m, "sentinel_collector_success", &procs), 1.0);

    // Round 3 runs and succeeds again.
    let m = e.wait_for(Duration::from_secs(20), "the round after", |m| {
        (get(m, "sentinel_collector_success", &fs) == 1.0).then(|| m.clone())
    });
    assert!(m.has("sentinel_filesystem_size_bytes"), "{}", m.text);
    assert_eq!(get(&m, "sentinel_collector_panics_total", &fs), 1.0);
    assert_eq!(status(&e, "/-/healthy"), 200);

    let logs = e.logs();
    assert_eq!(
        logs.matches("round panicked at").count(),
        1,
        "logged once:\n{logs}"
    );
    assert!(logs.contains("round.filesystem@2"), "{logs}");
    assert!(logs.contains("recovered"), "{logs}");
    assert_no_raw_panic_output(&e);
}

/// A dockerd of our own in a temp dir (RECIPES.md); stopped on drop.
struct Dockerd {
    dir: PathBuf,
    child: Child,
}

impl Dockerd {
    fn start(dir: &Path) -> Dockerd {
        let log = std::fs::File::create(dir.join("dockerd.log")).expect("dockerd log");
        let d = |p: &str| dir.join(p).to_string_lossy().to_string();
        let child = Command::new("/usr/sbin/dockerd")
            .args(["--host", &format!("unix://{}", d("docker.sock"))])
            .args(["--data-root", &d("root"), "--exec-root", &d("exec")])
            .args(["--pidfile", &d("docker.pid")])
            .args(["--iptables=false", "--bridge=none", "--storage-driver=vfs"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start dockerd");
        let mut dockerd = Dockerd {
            dir: dir.to_path_buf(),
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let answered = Command::new("docker")
                .args(["-H", &dockerd.host(), "version"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if answered {
                return dockerd;
            }
            if let Ok(Some(status)) = dockerd.child.try_wait() {
                panic!("dockerd exited with {status}: {}", dockerd.log());
            }
            assert!(Instant::now() < deadline, "dockerd: {}", dockerd.log());
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default()
    }

    fn host(&self) -> String {
        format!("unix://{}", self.dir.join("docker.sock").display())
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        common::signal(self.child.id(), rustix::process::Signal::TERM);
        let deadline = Instant::now() + Duration::from_secs(40);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_panicking_docker_probe_is_one_failed_probe_not_a_hang() {
    if common::require("/usr/sbin/dockerd").is_none()
        || common::require("docker").is_none()
        || !common::require_root()
    {
        return;
    }
    let dir = TempDir::new("isolation-docker");
    let dockerd = Dockerd::start(dir.path());
    let host = format!("--collector.docker.host={}", dockerd.host());
    // The first info probe panics after its answer came; threshold 3 s, so a
    // stuck in-flight mark would read as hung within a few rounds.
    let e = start_with_panics(
        "docker.info@1",
        &[
            "--collector.disable-defaults",
            "--collector.docker",
            &host,
            "--collector.docker.interval=1s",
            "--collector.docker.hang-threshold=3s",
            "--collector.docker.timeout=6s",
            "--collector.docker.pidfile=",
        ],
    );
    let info = [("operation", "info")];
    let failed = |m: &Metrics, op: &str, reason: &str| {
        get(
            m,
            "sentinel_docker_probe_failures_total",
            &[("operation", op), ("reason", reason)],
        )
    };
    e.wait_for(Duration::from_secs(20), "the panicked info probe", |m| {
        (failed(m, "info", "io") == 1.0).then_some(())
    });
    // Probed again, and answered: the storage driver comes from /info.
    e.wait_for(Duration::from_secs(20), "info answered", |m| {
        let answered = m
            .get("sentinel_docker_last_success_timestamp_seconds", &info)
            .is_some();
        let vfs = !m
            .find("sentinel_docker_info", &[("storage_driver", "vfs")])
            .is_empty();
        (answered && vfs).then_some(())
    });
    // Well past the hang threshold: never hung, the daemon up, nothing else failed.
    let until = Instant::now() + Duration::from_secs(8);
    while Instant::now() < until {
        let m = e.metrics();
        assert_eq!(get(&m, "sentinel_docker_hung", &[]), 0.0, "{}", m.text);
        assert_eq!(get(&m, "sentinel_docker_up", &[]), 1.0, "{}", m.text);
        assert!(
            get(&m, "sentinel_docker_probe_in_flight_seconds", &info) < 3.0,
            "{}",
            m.text
        );
        for op in ["ping", "version", "info", "containers", "inspect"] {
            for reason in ["timeout", "connect", "http_status", "io", "decode"] {
                let want = if (op, reason) == ("info", "io") {
                    1.0
                } else {
                    0.0
                };
                assert_eq!(failed(&m, op, reason), want, "{op} {reason}: {}", m.text);
            }
        }
        assert_eq!(
            get(&m, "sentinel_collector_success", &[("collector", "docker")]),
            1.0
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(status(&e, "/-/healthy"), 200);
    let logs = e.logs();
    assert_eq!(
        logs.matches("the info probe panicked at").count(),
        1,
        "logged once:\n{logs}"
    );
    assert!(!logs.contains("daemon hung"), "{logs}");
    assert_no_raw_panic_output(&e);
}
