//! The exporter as the DaemonSet runs it: the image built from the
//! Dockerfile here (a base of only the libraries the binary links, the
//! binary as the `prebuilt` stage), run in a private dockerd with the
//! namespaces, user, capabilities, read-only root, memory limit and volumes
//! that deploy/kubernetes/base/daemonset.yaml gives its container, translated
//! from the manifest by `PodRun` (tests/common/deployed.rs). The node's /run
//! is the private dockerd's run directory, so the exporter watches that
//! daemon through the socket directory, as on a node.
//!
//! To the manifest's args the test adds only a loopback listen address and
//! 1 s intervals (the drills would take minutes at the defaults).
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::deployed::{FillWriter, HostTmpfs, PodRun, PrivateDockerd, SharedRoot};
use common::{Exporter, Metrics, TempDir};
use rustix::process::Signal;

const MIB: f64 = 1048576.0;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Capabilities by bit (linux/capability.h) of those the manifest adds.
fn cap_bits(names: &[&str]) -> u64 {
    names
        .iter()
        .map(|n| match *n {
            "DAC_READ_SEARCH" => 1u64 << 2,
            "SYS_PTRACE" => 1 << 19,
            "SYSLOG" => 1 << 34,
            other => panic!("capability {other}: add its bit here"),
        })
        .fold(0, |a, b| a | b)
}

fn status_field(pid: &str, field: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("{field} in {status}"))
        .trim()
        .to_string()
}

/// A parent that never waits and its exited children: `sh` starts them and
/// then becomes the parent (`exec`), a copy of sleep named `sentinelzpar`.
struct Zombies {
    child: std::process::Child,
}

impl Zombies {
    fn make(dir: &Path, n: usize) -> Zombies {
        let (kid, parent) = (dir.join("sentinelzkid"), dir.join("sentinelzpar"));
        std::fs::copy("/bin/true", &kid).unwrap();
        std::fs::copy("/bin/sleep", &parent).unwrap();
        let script = format!(
            "for i in $(seq {n}); do '{}' & done; exec '{}' 600",
            kid.display(),
            parent.display()
        );
        let child = Command::new("sh")
            .args(["-c", &script])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        Zombies { child }
    }
}

impl Drop for Zombies {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_daemonset_container_sees_the_node() {
    if !common::require_root()
        || common::require("/usr/sbin/dockerd").is_none()
        || common::require(common::deployed::DOCKER).is_none()
        || common::require("strip").is_none()
        || common::require("findmnt").is_none()
    {
        return;
    }
    let started = Instant::now();
    let dir = TempDir::new("deploy-container");
    let _shared = SharedRoot::make();
    let dockerd = PrivateDockerd::start(dir.path());
    let pod = PodRun::from_daemonset(
        &repo().join("deploy/kubernetes/base/daemonset.yaml"),
        &[("/run", &dockerd.run_dir())],
    );
    // NODE_SENTINEL_IMAGE_BINARY: measure the release binary the same way.
    let binary = std::env::var_os("NODE_SENTINEL_IMAGE_BINARY")
        .map(PathBuf::from)
        .unwrap_or_else(common::binary);
    let size = dockerd.build_image(&binary, &pod.image);
    eprintln!(
        "image {} built in {:?}: {:.1} MB",
        pod.image,
        started.elapsed(),
        size as f64 / 1e6
    );

    let port = common::free_port();
    let log = dir.path().join("exporter.log");
    let child = dockerd
        .docker()
        .args(["run", "--rm", "--name", "node-sentinel"])
        .args(&pod.options)
        .arg(&pod.image)
        .args(&pod.args)
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .args([
            "--collector.docker.interval=1s",
            "--collector.filesystem.interval=1s",
            "--collector.filesystem.trend-window=20s",
            "--collector.processes.interval=1s",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut exporter = Exporter { child, port, log };

    // The kubelet's probes, on the manifest's paths.
    let (ready, healthy) = pod.probes.clone();
    common::wait_until(Duration::from_secs(60), "the readiness probe", || {
        if let Ok(Some(status)) = exporter.child.try_wait() {
            panic!("container exited with {status}: {}", exporter.logs());
        }
        (common::http_get(port, &ready).ok()?.0 == 200).then_some(())
    });
    assert_eq!(common::http_get(port, &healthy).unwrap().0, 200);
    eprintln!("ready after {:?}", started.elapsed());

    // It runs as the manifest says: uid 0, only the added capabilities, no
    // new privileges, in the memory limit.
    let id = dockerd
        .docker_ok(&["inspect", "-f", "{{.Id}} {{.State.Pid}}", "node-sentinel"])
        .trim()
        .to_string();
    let (id, pid) = id.split_once(' ').unwrap();
    assert!(status_field(pid, "Uid").starts_with("0\t"));
    let eff = u64::from_str_radix(&status_field(pid, "CapEff"), 16).unwrap();
    assert_eq!(
        eff,
        cap_bits(&["DAC_READ_SEARCH", "SYS_PTRACE", "SYSLOG"]),
        "CapEff"
    );
    assert_eq!(status_field(pid, "NoNewPrivs"), "1");
    let memcg = Path::new("/sys/fs/cgroup/memory/docker").join(id);
    let limit = pod
        .options
        .iter()
        .find_map(|o| o.strip_prefix("--memory="))
        .unwrap();
    if memcg.is_dir() {
        let set = std::fs::read_to_string(memcg.join("memory.limit_in_bytes")).unwrap();
        assert_eq!(set.trim(), limit);
    }

    // Mounts made on the host after the container started: seen through
    // the HostToContainer root (statvfs gives the tmpfs, not the disk
    // under it), read-only flags from the host's table.
    let late = HostTmpfs::mount(&dir.path().join("late"), "size=128m");
    let late_ro = HostTmpfs::mount(&dir.path().join("late-ro"), "ro,size=8m");
    let writer = FillWriter::start(late.path.join("fill"), 1 << 20);
    let fill_started = Instant::now();
    let _zombies = Zombies::make(dir.path(), 3);

    let fs = |m: &Metrics, name: &str, mp: &str| m.get(name, &[("mountpoint", mp)]);
    let (late_mp, ro_mp) = (late.label(), late_ro.label());
    let m = exporter.wait_for(
        Duration::from_secs(60),
        "the late mounts, / and the zombies",
        |m| {
            (fs(m, "sentinel_filesystem_size_bytes", &late_mp).is_some()
                && fs(m, "sentinel_filesystem_readonly", &ro_mp).is_some()
                && fs(m, "sentinel_filesystem_readonly", "/").is_some()
                && m.get(
                    "sentinel_zombie_processes",
                    &[("comm", "sentinelzkid"), ("parent_comm", "sentinelzpar")],
                ) == Some(3.0))
            .then(|| m.clone())
        },
    );
    assert_eq!(
        fs(&m, "sentinel_filesystem_size_bytes", &late_mp),
        Some(128.0 * MIB),
        "{}",
        m.text
    );
    assert_eq!(fs(&m, "sentinel_filesystem_readonly", "/"), Some(0.0));
    assert_eq!(fs(&m, "sentinel_filesystem_readonly", &late_mp), Some(0.0));
    assert_eq!(fs(&m, "sentinel_filesystem_readonly", &ro_mp), Some(1.0));

    // Docker hung: the daemon the exporter watches through /host/run stops
    // answering while its socket still accepts.
    let value = |m: &Metrics, name: &str| m.get(name, &[]);
    exporter.wait_for(Duration::from_secs(60), "docker up", |m| {
        (value(m, "sentinel_docker_up") == Some(1.0)
            && value(m, "sentinel_docker_hung") == Some(0.0))
        .then_some(())
    });
    common::signal(dockerd.pid(), Signal::STOP);
    let hung_at = Instant::now();
    exporter.wait_for(Duration::from_secs(90), "docker hung", |m| {
        (value(m, "sentinel_docker_hung") == Some(1.0)).then_some(())
    });
    eprintln!("docker hung seen after {:?}", hung_at.elapsed());
    common::signal(dockerd.pid(), Signal::CONT);
    exporter.wait_for(Duration::from_secs(90), "docker answering again", |m| {
        (value(m, "sentinel_docker_hung") == Some(0.0)
            && value(m, "sentinel_docker_up") == Some(1.0))
        .then_some(())
    });

    // The fill rate of the late tmpfs, and its time to full, once the
    // window holds the steady writes.
    std::thread::sleep(Duration::from_secs(12).saturating_sub(fill_started.elapsed()));
    let (rate, ttf, avail) = exporter.wait_for(
        Duration::from_secs(60),
        "a fill rate within 15% of 1 MiB/s",
        |m| {
            let rate = fs(
                m,
                "sentinel_filesystem_fill_rate_bytes_per_second",
                &late_mp,
            )?;
            let ttf = fs(m, "sentinel_filesystem_seconds_until_full", &late_mp)?;
            let avail = fs(m, "sentinel_filesystem_avail_bytes", &late_mp)?;
            ((rate - MIB).abs() <= 0.15 * MIB).then_some((rate, ttf, avail))
        },
    );
    let truth = avail / MIB;
    assert!(
        (ttf - truth).abs() <= 0.2 * truth,
        "time to full {ttf} vs {truth} (rate {rate})"
    );
    // A filesystem nobody writes to does not fill.
    let m = exporter.metrics();
    assert_eq!(
        fs(&m, "sentinel_filesystem_seconds_until_full", &ro_mp),
        Some(f64::INFINITY),
        "{}",
        m.text
    );
    drop(writer);

    if memcg.is_dir() {
        let read = |f: &str| -> f64 {
            std::fs::read_to_string(memcg.join(f))
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        };
        let cpu = Path::new("/sys/fs/cgroup/cpuacct/docker")
            .join(id)
            .join("cpuacct.usage");
        let cpu_s = std::fs::read_to_string(cpu)
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1e9;
        eprintln!(
            "container: memory peak {:.1} MiB (limit {limit}), CPU {cpu_s:.2} s over {:?}",
            read("memory.max_usage_in_bytes") / MIB,
            started.elapsed()
        );
    }
    drop(exporter);
    eprintln!("total {:?}", started.elapsed());
}
