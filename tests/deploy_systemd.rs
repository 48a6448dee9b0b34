//! The systemd unit as shipped (deploy/node-sentinel.service), its sandbox
//! applied by a real systemd manager: a user manager of root's on a cgroup
//! of its own (RECIPES.md), which applies ProtectSystem=strict,
//! ProtectHome=read-only, the capability bounding set, the system-call
//! filter and NoNewPrivileges just as the system manager does. The unit file
//! is installed verbatim; a drop-in changes only what a user manager needs
//! (no `User=`, the test's flags instead of /etc/default/node-sentinel, the
//! binary under test) and turns off any hardening option this manager
//! cannot apply on the test machine (probed first, and named on stderr:
//! ProtectKernelTunables= fails with 226/NAMESPACE on these VMs).
//!
//! In that namespace every mount reads read-only; the exporter must still
//! take the host's flags from /proc/1/mountinfo, see a mount made on the
//! host after the unit started (systemd makes its namespace a slave of the
//! host's, so `/` is made shared for the test, as it is on a systemd host)
//! and measure its fill rate.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::deployed::{FillWriter, HostTmpfs, SharedRoot, mounts_of};
use common::{Metrics, TempDir};

const SYSTEMD: &str = "/lib/systemd/systemd";
const MIB: f64 = 1048576.0;
/// Hardening options a user manager may be unable to apply on a test
/// machine; each is probed and, if it fails there, turned off in the drop-in.
const PROBED: &[&str] = &[
    "ProtectKernelTunables=yes",
    "ProtectClock=yes",
    "ProtectHostname=yes",
];

/// A systemd user manager of root's on its own cgroup; everything in that
/// cgroup is killed on drop.
struct Manager {
    dir: PathBuf,
    slice: PathBuf,
    child: Child,
}

impl Manager {
    fn start(dir: &Path) -> Manager {
        let xdg = dir.join("xdg");
        std::fs::create_dir_all(&xdg).unwrap();
        std::fs::set_permissions(&xdg, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        std::fs::create_dir_all(dir.join("home/.config/systemd/user")).unwrap();
        std::fs::create_dir_all("/run/systemd/system").unwrap();
        let root = if Path::new("/sys/fs/cgroup/unified/cgroup.procs").exists() {
            PathBuf::from("/sys/fs/cgroup/unified")
        } else {
            PathBuf::from("/sys/fs/cgroup")
        };
        let slice = root.join(format!("sentinel-deploy-{}.slice", std::process::id()));
        let cg = slice.join("user@0.service");
        std::fs::create_dir_all(&cg).unwrap();
        let child = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "echo $$ > {}/cgroup.procs && exec {SYSTEMD} --user",
                cg.display()
            ))
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("HOME", dir.join("home"))
            .env("XDG_RUNTIME_DIR", &xdg)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("manager.log")).unwrap())
            .spawn()
            .unwrap();
        let manager = Manager {
            dir: dir.to_path_buf(),
            slice,
            child,
        };
        common::wait_until(Duration::from_secs(30), "the user manager", || {
            let out = manager.systemctl(&["is-system-running"]);
            let state = String::from_utf8_lossy(&out.stdout).trim().to_string();
            matches!(state.as_str(), "running" | "degraded").then_some(())
        });
        manager
    }

    fn units(&self) -> PathBuf {
        self.dir.join("home/.config/systemd/user")
    }

    fn systemctl(&self, args: &[&str]) -> Output {
        self.env(Command::new("systemctl").arg("--user").args(args))
            .output()
            .unwrap()
    }

    fn env<'a>(&self, c: &'a mut Command) -> &'a mut Command {
        c.env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("HOME", self.dir.join("home"))
            .env("XDG_RUNTIME_DIR", self.dir.join("xdg"))
    }

    fn ctl(&self, args: &[&str]) -> String {
        let out = self.systemctl(args);
        assert!(
            out.status.success(),
            "systemctl --user {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Whether a transient unit with `property` runs here.
    fn applies(&self, property: &str) -> bool {
        self.env(Command::new("systemd-run").args([
            "--user",
            "--wait",
            "--quiet",
            "-p",
            property,
            "/bin/true",
        ]))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        let _ = std::fs::write(self.slice.join("cgroup.kill"), "1");
        let _ = self.child.kill();
        let _ = self.child.wait();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let events =
                std::fs::read_to_string(self.slice.join("cgroup.events")).unwrap_or_default();
            if !events.contains("populated 1") {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        remove_cgroup(&self.slice);
    }
}

fn remove_cgroup(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

fn status_field(pid: u32, field: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("{field} in {status}"))
        .trim()
        .to_string()
}

fn open_files_limits(pid: u32) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let f: Vec<&str> = line.split_whitespace().collect();
    (f[3].parse().unwrap(), f[4].parse().unwrap())
}

/// Scrapes of the unit's exporter (it is the manager's child, not ours).
struct Served {
    port: u16,
}

impl Served {
    fn wait_for<T>(
        &self,
        timeout: Duration,
        what: &str,
        mut f: impl FnMut(&Metrics) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        let mut last = String::new();
        while Instant::now() < deadline {
            if let Ok((200, body)) = common::http_get(self.port, "/metrics") {
                let m = Metrics::parse(&body);
                if let Some(v) = f(&m) {
                    return v;
                }
                last = body;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("timed out after {timeout:?} waiting for {what}; last scrape:\n{last}");
    }
}

#[test]
fn the_unit_sandbox_keeps_host_flags_and_fill_rates() {
    if !common::require_root()
        || common::require(SYSTEMD).is_none()
        || common::require("systemctl").is_none()
        || common::require("systemd-run").is_none()
        || common::require("findmnt").is_none()
    {
        return;
    }
    let started = Instant::now();
    let dir = TempDir::new("deploy-systemd");
    let _shared = SharedRoot::make();
    let rw = HostTmpfs::mount(&dir.path().join("rw"), "size=8m");
    let ro = HostTmpfs::mount(&dir.path().join("ro"), "ro,size=8m");
    let manager = Manager::start(dir.path());

    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/node-sentinel.service"),
    )
    .unwrap();
    std::fs::write(manager.units().join("node-sentinel.service"), &unit).unwrap();
    let mut off = Vec::new();
    for property in PROBED {
        if unit.lines().any(|l| l == *property) && !manager.applies(property) {
            eprintln!("this test manager cannot apply {property}: left out");
            off.push(property.replace("=yes", "=no"));
        }
    }
    let port = common::free_port();
    let defaults = dir.path().join("default");
    std::fs::write(
        &defaults,
        format!(
            "NODE_SENTINEL_ARGS=--web.listen-address=127.0.0.1:{port} --collector.disable-defaults --collector.filesystem --collector.filesystem.interval=1s --collector.filesystem.trend-window=20s\n"
        ),
    )
    .unwrap();
    let dropin = manager.units().join("node-sentinel.service.d");
    std::fs::create_dir_all(&dropin).unwrap();
    std::fs::write(
        dropin.join("test.conf"),
        format!(
            "[Service]\nUser=\nEnvironmentFile=\nEnvironmentFile={}\nExecStart=\nExecStart={} $NODE_SENTINEL_ARGS\n{}\n",
            defaults.display(),
            common::binary().display(),
            off.join("\n")
        ),
    )
    .unwrap();
    manager.ctl(&["daemon-reload"]);
    manager.ctl(&["start", "node-sentinel.service"]);
    let served = Served { port };
    let pid: u32 = common::wait_until(Duration::from_secs(30), "the unit's main PID", || {
        let pid: u32 = manager
            .ctl(&["show", "-p", "MainPID", "--value", "node-sentinel.service"])
            .parse()
            .ok()?;
        (pid > 0 && common::http_get(port, "/-/ready").ok()?.0 == 200).then_some(pid)
    });

    // The sandbox is armed: / read-only in the unit's namespace, only the
    // three capabilities, no new privileges, a system-call filter, the fd
    // limit raised (as far as this manager's own hard limit allows).
    let own = mounts_of(pid);
    let root = own.iter().rev().find(|m| m.mountpoint == "/").unwrap();
    assert!(root.readonly(), "{root:?}");
    assert_eq!(status_field(pid, "CapBnd"), "0000000400080004");
    assert_eq!(status_field(pid, "NoNewPrivs"), "1");
    assert_eq!(status_field(pid, "Seccomp"), "2");
    let (soft, hard) = open_files_limits(pid);
    let (_, manager_hard) = open_files_limits(manager.child.id());
    assert_eq!(hard, manager_hard.min(65536), "LimitNOFILE");
    assert_eq!(soft, hard, "the exporter raises its soft limit");

    // A mount made on the host now reaches the unit's namespace.
    let late = HostTmpfs::mount(&dir.path().join("late"), "size=128m");
    let writer = FillWriter::start(late.path.join("fill"), 1 << 20);
    let fill_started = Instant::now();
    let fs = |m: &Metrics, name: &str, mp: &str| m.get(name, &[("mountpoint", mp)]);
    let (rw_mp, ro_mp, late_mp) = (rw.label(), ro.label(), late.label());
    let m = served.wait_for(
        Duration::from_secs(60),
        "/, rw, ro and the late mount",
        |m| {
            (fs(m, "sentinel_filesystem_readonly", "/").is_some()
                && fs(m, "sentinel_filesystem_readonly", &rw_mp).is_some()
                && fs(m, "sentinel_filesystem_readonly", &ro_mp).is_some()
                && fs(m, "sentinel_filesystem_size_bytes", &late_mp).is_some())
            .then(|| m.clone())
        },
    );
    assert_eq!(
        fs(&m, "sentinel_filesystem_readonly", "/"),
        Some(0.0),
        "{}",
        m.text
    );
    assert_eq!(fs(&m, "sentinel_filesystem_readonly", &rw_mp), Some(0.0));
    assert_eq!(fs(&m, "sentinel_filesystem_readonly", &ro_mp), Some(1.0));
    assert_eq!(fs(&m, "sentinel_filesystem_readonly", &late_mp), Some(0.0));
    assert_eq!(
        fs(&m, "sentinel_filesystem_size_bytes", &late_mp),
        Some(128.0 * MIB),
        "statvfs reached the late tmpfs, not the disk under it"
    );

    std::thread::sleep(Duration::from_secs(12).saturating_sub(fill_started.elapsed()));
    let (rate, ttf, avail) = served.wait_for(
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
    // The rw tmpfs nobody writes to does not fill.
    let m = served.wait_for(Duration::from_secs(5), "a scrape", |m| Some(m.clone()));
    assert_eq!(
        fs(&m, "sentinel_filesystem_seconds_until_full", &rw_mp),
        Some(f64::INFINITY)
    );
    drop(writer);
    manager.ctl(&["stop", "node-sentinel.service"]);
    drop(manager);
    eprintln!("total {:?}", started.elapsed());
}
