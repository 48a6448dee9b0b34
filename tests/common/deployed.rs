//! The exporter as deployed: in a mount namespace of its own that sees the
//! host the way the DaemonSet's container does (RECIPES.md, "The
//! deployment's view of the host").
//!
//! Inside `unshare -m --propagation private`:
//! - the host `/` rbind-mounted at `DIR/hostroot`, and that top bind (only
//!   it, as in Kubernetes) remounted read-only: `--path.rootfs`;
//! - the host `/proc` and `/sys` rbind-mounted read-only at `DIR/hostproc`
//!   and `DIR/hostsys`: `--path.procfs`, `--path.sysfs` (hostPID: the PIDs
//!   are the host's);
//! - a fresh tmpfs over `/run`: the container's own /run, so a host path
//!   through Debian's absolute `/var/run -> /run` symlink, followed by the
//!   kernel, lands there and not on the host;
//! - then the extra binds the test asks for ([`DeployedView::bind`]), as the
//!   DaemonSet's `hostPath` volumes (the Docker socket at /var/run/docker.sock).
//!
//! `/` is a private mount on these machines, so host mounts made after the
//! namespace exists do not reach it: a test makes the mounts it needs on the
//! host *before* [`DeployedView::start`].
#![allow(dead_code, clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{Exporter, free_port, http_get};

/// How to start the exporter in the deployment's view; see the module docs.
pub struct DeployedView {
    dir: PathBuf,
    binds: Vec<(PathBuf, String)>,
}

impl DeployedView {
    /// The view's mountpoints go under `dir` (a temp dir outside /run).
    pub fn new(dir: &Path) -> DeployedView {
        DeployedView {
            dir: dir.to_path_buf(),
            binds: Vec::new(),
        }
    }

    /// `--path.rootfs` of the exporter started from this view.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("hostroot")
    }

    /// `--path.procfs` of the exporter started from this view.
    pub fn procfs(&self) -> PathBuf {
        self.dir.join("hostproc")
    }

    /// Bind the host's `host` (a file, a socket or a directory) at `inside`
    /// in the container's view, after /run is replaced (so `/run/...` works).
    pub fn bind(mut self, host: &Path, inside: &str) -> DeployedView {
        self.binds.push((host.to_path_buf(), inside.to_string()));
        self
    }

    /// Start the exporter with `args` after the path flags, on a free
    /// loopback port, and wait until it serves. Killed (and its namespace
    /// gone with it) when the returned [`Exporter`] drops.
    pub fn start(&self, args: &[&str]) -> Exporter {
        let unshare = super::require("unshare").expect("unshare (util-linux) is required");
        let root = self.rootfs();
        let proc = self.procfs();
        let sys = self.dir.join("hostsys");
        for d in [&root, &proc, &sys] {
            std::fs::create_dir_all(d).expect("view mountpoint");
        }
        let q = |p: &Path| shell_quote(&p.to_string_lossy());
        let mut script = String::from("set -e\n");
        for (host, at) in [("/", &root), ("/proc", &proc), ("/sys", &sys)] {
            script += &format!(
                "mount --rbind {host} {at}\nmount -o remount,bind,ro {at}\n",
                at = q(at)
            );
        }
        script += "mount -t tmpfs -o size=16m,mode=755 tmpfs /run\n";
        for (host, inside) in &self.binds {
            let inside = shell_quote(inside);
            if host.is_dir() {
                script += &format!("mkdir -p {inside}\n");
            } else {
                script += &format!("mkdir -p \"$(dirname {inside})\"\ntouch {inside}\n");
            }
            script += &format!("mount --bind {} {inside}\n", q(host));
        }
        script += "exec \"$@\"\n";

        let port = free_port();
        let log = std::env::temp_dir().join(format!("sentinel-deployed-{port}.log"));
        let logfile = std::fs::File::create(&log).expect("create log");
        let child = Command::new(unshare)
            .args(["-m", "--propagation", "private", "sh", "-c", &script, "sh"])
            .arg(super::binary())
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!("--path.rootfs={}", root.display()))
            .arg(format!("--path.procfs={}", proc.display()))
            .arg(format!("--path.sysfs={}", sys.display()))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(logfile)
            .spawn()
            .expect("start the exporter under unshare");
        let mut exporter = Exporter { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = exporter.child.try_wait() {
                panic!(
                    "exporter (deployed view) exited with {status}: {}",
                    exporter.logs()
                );
            }
            if http_get(port, "/-/healthy").is_ok() {
                return exporter;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "exporter (deployed view) did not start: {}",
            exporter.logs()
        );
    }
}

/// The exporter's own mount table (its namespace, read from the host): to
/// check that the view's traps are armed.
pub fn own_mounts(exporter: &Exporter) -> Vec<OwnMount> {
    let text = std::fs::read_to_string(format!("/proc/{}/mountinfo", exporter.pid()))
        .expect("the exporter's mountinfo");
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let sep = f.iter().position(|x| *x == "-")?;
            Some(OwnMount {
                mountpoint: f.get(4)?.replace("\\040", " "),
                options: f.get(5)?.to_string(),
                fstype: f.get(sep + 1)?.to_string(),
            })
        })
        .collect()
}

/// One line of [`own_mounts`].
#[derive(Debug, Clone)]
pub struct OwnMount {
    pub mountpoint: String,
    pub options: String,
    pub fstype: String,
}

impl OwnMount {
    pub fn readonly(&self) -> bool {
        self.options.split(',').any(|o| o == "ro")
    }
}

/// A tmpfs mounted on the host (before the view starts); lazily unmounted on drop.
pub struct HostTmpfs {
    pub path: PathBuf,
}

impl HostTmpfs {
    /// Mount a tmpfs at `path` with `options` (e.g. `size=8m` or `ro,size=8m`).
    pub fn mount(path: &Path, options: &str) -> HostTmpfs {
        std::fs::create_dir_all(path).expect("tmpfs mountpoint");
        super::run(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                options,
                "tmpfs",
                &path.to_string_lossy(),
            ],
        );
        HostTmpfs {
            path: path.to_path_buf(),
        }
    }

    /// Its mountpoint as a label value (the host's path).
    pub fn label(&self) -> String {
        self.path.to_string_lossy().to_string()
    }
}

impl Drop for HostTmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .args(["-l", &self.path.to_string_lossy()])
            .status();
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
