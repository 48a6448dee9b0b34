//! The exporter as deployed (tests/common/deployed.rs): read-only-ness, free
//! space, the Docker pidfile and deleted files in a container's overlay,
//! seen from a container whose view of the host is a read-only bind mount
//! with its own /run.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod common;

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::deployed::{DeployedView, HostTmpfs, own_mounts};
use common::{Exporter, Metrics, TempDir};
use rustix::process::Signal;

const ONLY_FILESYSTEM: &[&str] = &[
    "--no-collector.docker",
    "--no-collector.systemd",
    "--no-collector.processes",
    "--no-collector.logs",
    "--collector.filesystem.interval=1s",
];

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The trap is armed: the exporter's own view of the host root is read-only,
/// and its /run is a tmpfs of its own.
fn assert_view_armed(exporter: &Exporter, view: &DeployedView) {
    let own = own_mounts(exporter);
    let root = view.rootfs().to_string_lossy().to_string();
    let hostroot = own
        .iter()
        .find(|m| m.mountpoint == root)
        .unwrap_or_else(|| panic!("no {root} in the exporter's namespace: {own:?}"));
    assert!(hostroot.readonly(), "{hostroot:?}");
    let run = own.iter().rev().find(|m| m.mountpoint == "/run").unwrap();
    assert_eq!(run.fstype, "tmpfs", "{run:?}");
}

#[test]
fn readonly_and_free_space_come_from_the_host() {
    if !common::require_root() || common::require("unshare").is_none() {
        return;
    }
    let dir = TempDir::new("deployed-fs");
    // Mounted on the host before the view exists: later ones would not reach it.
    let rw = HostTmpfs::mount(&dir.path().join("rw"), "size=8m");
    let ro = HostTmpfs::mount(&dir.path().join("ro"), "ro,size=8m");
    let view = DeployedView::new(dir.path());
    let exporter = view.start(ONLY_FILESYSTEM);
    assert_view_armed(&exporter, &view);

    let readonly =
        |m: &Metrics, mp: &str| m.get("sentinel_filesystem_readonly", &[("mountpoint", mp)]);
    let (rw_label, ro_label) = (rw.label(), ro.label());
    let m = exporter.wait_for(Duration::from_secs(30), "readonly of /, rw and ro", |m| {
        (readonly(m, "/").is_some()
            && readonly(m, &rw_label).is_some()
            && readonly(m, &ro_label).is_some())
        .then(|| m.clone())
    });
    // Through our read-only bind, statvfs says ST_RDONLY for all three: the
    // host's mount table says only the `ro` tmpfs is read-only.
    assert_eq!(readonly(&m, "/"), Some(0.0), "{}", m.text);
    assert_eq!(readonly(&m, &rw_label), Some(0.0), "{}", m.text);
    assert_eq!(readonly(&m, &ro_label), Some(1.0), "{}", m.text);
    // The view's own mounts are not the host's: none is reported.
    let root = view.rootfs().to_string_lossy().to_string();
    assert!(
        m.find("sentinel_filesystem_readonly", &[])
            .iter()
            .all(|s| !s.labels["mountpoint"].starts_with(&root)),
        "{}",
        m.text
    );

    // A file written on the host moves that tmpfs's free space, seen through the view.
    let avail = |m: &Metrics| {
        m.get(
            "sentinel_filesystem_avail_bytes",
            &[("mountpoint", &rw_label)],
        )
    };
    let before = avail(&m).unwrap();
    let mut f = std::fs::File::create(rw.path.join("fill")).unwrap();
    f.write_all(&vec![1u8; 3 << 20]).unwrap();
    f.sync_all().unwrap();
    let after = exporter.wait_for(Duration::from_secs(30), "avail to drop by 3 MiB", |m| {
        avail(m).filter(|a| before - a >= (3 << 20) as f64)
    });
    assert!(before - after < (4 << 20) as f64, "{before} -> {after}");
    let m = exporter.metrics();
    assert_eq!(
        readonly(&m, &rw_label),
        Some(0.0),
        "a healthy rw mount reads 0"
    );
    drop(exporter);
}

/// What `docker.socket` does: the socket is ours (so SO_PEERCRED names this
/// test process, not dockerd, as it names systemd on docker-ce hosts) and
/// outlives each dockerd it hands to, through `LISTEN_FDS`.
struct ActivatedDockerd {
    dir: PathBuf,
    listener: UnixListener,
    pidfile: PathBuf,
    child: Option<Child>,
}

impl ActivatedDockerd {
    fn new(dir: &Path, pidfile: &Path) -> ActivatedDockerd {
        let listener = UnixListener::bind(dir.join("docker.sock")).unwrap();
        ActivatedDockerd {
            dir: dir.to_path_buf(),
            listener,
            pidfile: pidfile.to_path_buf(),
            child: None,
        }
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("docker.sock")
    }

    /// Start dockerd on our listener and wait until it answers a ping.
    fn start(&mut self) -> u32 {
        let d = |p: &str| self.dir.join(p).to_string_lossy().to_string();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("dockerd.log"))
            .unwrap();
        let fd: OwnedFd = self.listener.try_clone().unwrap().into();
        // The listener comes in as stdin and goes to fd 3; `exec` keeps the
        // PID that LISTEN_PID names.
        let script = "exec 3<&0 0</dev/null; LISTEN_PID=$$ LISTEN_FDS=1 exec \"$@\"";
        let child = Command::new("sh")
            .args(["-c", script, "sh", "/usr/sbin/dockerd", "-H", "fd://"])
            .args(["--data-root", &d("root"), "--exec-root", &d("exec")])
            .args(["--pidfile", &self.pidfile.to_string_lossy()])
            .args(["--iptables=false", "--bridge=none", "--storage-driver=vfs"])
            .stdin(Stdio::from(fd))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let pid = child.id();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !ping(&self.socket()) {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                panic!("dockerd exited with {status}: {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "dockerd did not answer: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        pid
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default()
    }

    /// SIGTERM and wait for the exit; the socket stays.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        common::signal(child.id(), Signal::TERM);
        let deadline = Instant::now() + Duration::from_secs(40);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for ActivatedDockerd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// GET /_ping answered OK (a connection queued before dockerd accepts times out).
fn ping(socket: &Path) -> bool {
    let Ok(mut s) = UnixStream::connect(socket) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.") && answer.contains(" 200 ") && answer.ends_with("OK")
}

/// A directory under the host's /run, removed on drop.
struct HostRunDir(PathBuf);

impl Drop for HostRunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn docker_pidfile_through_the_absolute_var_run_symlink() {
    if !common::require_root()
        || common::require("unshare").is_none()
        || common::require("/usr/sbin/dockerd").is_none()
    {
        return;
    }
    assert_eq!(
        std::fs::read_link("/var/run").ok(),
        Some(PathBuf::from("/run")),
        "this test needs Debian's /var/run -> /run"
    );
    let dir = TempDir::new("deployed-docker");
    let unique = dir
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_string();
    let run_dir = HostRunDir(Path::new("/run").join(&unique));
    std::fs::create_dir_all(&run_dir.0).unwrap();
    let mut dockerd = ActivatedDockerd::new(dir.path(), &run_dir.0.join("docker.pid"));
    let first = dockerd.start();

    // As the DaemonSet: the host socket at the container's /var/run/docker.sock
    // (the default --collector.docker.host), the pidfile given as a host path.
    let view = DeployedView::new(dir.path()).bind(&dockerd.socket(), "/run/docker.sock");
    let pidfile_flag = format!("--collector.docker.pidfile=/var/run/{unique}/docker.pid");
    let exporter = view.start(&[
        "--no-collector.filesystem",
        "--no-collector.systemd",
        "--no-collector.processes",
        "--no-collector.logs",
        "--collector.docker.interval=1s",
        &pidfile_flag,
    ]);
    assert_view_armed(&exporter, &view);

    let start_time = |m: &Metrics| m.get("sentinel_docker_daemon_start_time_seconds", &[]);
    let restarts = |m: &Metrics| m.get("sentinel_docker_daemon_restarts_total", &[]);
    let m = exporter.wait_for(
        Duration::from_secs(60),
        "docker up and its start time",
        |m| {
            (m.get("sentinel_docker_up", &[]) == Some(1.0) && start_time(m).is_some())
                .then(|| m.clone())
        },
    );
    // The socket's peer is this test process, not dockerd: only the pidfile
    // named the daemon.
    assert_ne!(
        std::fs::read_to_string(format!("/proc/{}/comm", std::process::id())).unwrap(),
        "dockerd\n"
    );
    let first_start = start_time(&m).unwrap();
    assert!(
        (first_start - unix_now()).abs() < 300.0,
        "start time {first_start}"
    );
    // A steady daemon is no restart, over several socket checks.
    std::thread::sleep(Duration::from_secs(4));
    let m = exporter.metrics();
    assert_eq!(restarts(&m), Some(0.0), "{}", m.text);
    assert_eq!(start_time(&m), Some(first_start));
    assert_eq!(
        m.get("sentinel_docker_daemon_identity_failures_total", &[]),
        Some(0.0),
        "{}",
        m.text
    );

    dockerd.stop();
    let before = unix_now();
    let second = dockerd.start();
    let after = unix_now();
    assert_ne!(first, second);
    let m = exporter.wait_for(Duration::from_secs(60), "one daemon restart", |m| {
        (restarts(m) == Some(1.0) && start_time(m) != Some(first_start)).then(|| m.clone())
    });
    let second_start = start_time(&m).unwrap();
    // btime is whole seconds: allow a little either side.
    assert!(
        second_start >= before - 2.0 && second_start <= after + 2.0,
        "start time {second_start} not within [{before}, {after}]\n{}",
        m.text
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(restarts(&exporter.metrics()), Some(1.0));
    drop(exporter);
}

/// An overlay on the host, all layers on one tmpfs (as Docker's overlay2 has
/// them on one disk, so files on it carry the overlay's own device number);
/// unmounted on drop, before its tmpfs.
struct HostOverlay {
    merged: PathBuf,
}

impl Drop for HostOverlay {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .args(["-l", &self.merged.to_string_lossy()])
            .status();
    }
}

#[test]
fn a_deleted_file_in_a_container_layer_is_put_on_the_disk_under_it() {
    if !common::require_root() || common::require("unshare").is_none() {
        return;
    }
    let dir = TempDir::new("deployed-overlay");
    let disk = HostTmpfs::mount(&dir.path().join("disk"), "size=32m");
    let plain = HostTmpfs::mount(&dir.path().join("plain"), "size=8m");
    let layer = |d: &str| disk.path.join(d).to_string_lossy().to_string();
    for d in ["lower", "upper", "work"] {
        std::fs::create_dir_all(disk.path.join(d)).unwrap();
    }
    let merged = dir.path().join("merged");
    std::fs::create_dir_all(&merged).unwrap();
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        layer("lower"),
        layer("upper"),
        layer("work")
    );
    common::run(
        "mount",
        &[
            "-t",
            "overlay",
            "overlay",
            "-o",
            &options,
            &merged.to_string_lossy(),
        ],
    );
    let overlay = HostOverlay {
        merged: merged.clone(),
    };

    // Held open by this process, then deleted: 3 MiB in the container's
    // writable layer, 1 MiB on a plain tmpfs beside it.
    let hold = |path: PathBuf, mib: usize| {
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(&vec![7u8; mib << 20]).unwrap();
        f.sync_all().unwrap();
        std::fs::remove_file(&path).unwrap();
        f
    };
    let in_layer = hold(merged.join("app.log"), 3);
    let on_plain = hold(plain.path.join("old.log"), 1);

    let view = DeployedView::new(dir.path());
    let exporter = view.start(&[
        "--no-collector.docker",
        "--no-collector.filesystem",
        "--no-collector.systemd",
        "--no-collector.logs",
        "--collector.processes.interval=1s",
        "--collector.processes.deleted-files-interval=1s",
    ]);
    let held_on = |m: &Metrics, mountpoint: &str| -> f64 {
        m.find(
            "sentinel_deleted_open_files_bytes",
            &[("mountpoint", mountpoint)],
        )
        .iter()
        .map(|s| s.value)
        .sum()
    };
    let (disk_label, plain_label) = (disk.label(), plain.label());
    let m = exporter.wait_for(Duration::from_secs(60), "both deleted files", |m| {
        (held_on(m, &disk_label) >= (3 << 20) as f64
            && held_on(m, &plain_label) >= (1 << 20) as f64)
            .then(|| m.clone())
    });
    let merged_label = merged.to_string_lossy().to_string();
    assert_eq!(held_on(&m, &merged_label), 0.0, "{}", m.text);
    assert!(
        !m.text.contains("merged"),
        "no label names the overlay's mountpoint:\n{}",
        m.text
    );
    // The plain tmpfs keeps its own mountpoint, and nothing else lands on the disk.
    assert!(held_on(&m, &plain_label) < (2 << 20) as f64, "{}", m.text);
    assert!(held_on(&m, &disk_label) < (4 << 20) as f64, "{}", m.text);

    drop(exporter);
    drop(in_layer);
    drop(on_plain);
    drop(overlay);
}
