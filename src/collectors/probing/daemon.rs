//! Where a daemon is and which process it is: a plain connect (no HTTP)
//! tells "something listens" from "nothing there", and SO_PEERCRED plus
//! /proc/PID/stat name the process, so a restart shows as a new PID or start time.
//!
//! Under socket activation (docker-ce's `docker.socket`) the socket's peer is
//! systemd, so the daemon is found through its pidfile instead. The pidfile's
//! path is a host path, resolved inside `--path.rootfs` as the host resolves
//! it: its default `/var/run/docker.pid` goes through Debian's absolute
//! `/var/run -> /run` symlink, which the kernel would follow into the
//! exporter's own /run in a container.

use std::io::ErrorKind;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::Identity;
use crate::collector::FailureLog;
use crate::host::Paths;
use crate::host::paths::ResolveError;
use crate::host::procfs::{self, ProcError};

/// The daemon's address, parsed once from `--collector.docker.host`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Unix(PathBuf),
    /// `host:port` of a `tcp://` or `http://` address.
    Tcp(String),
    /// A scheme we cannot speak (ssh, npipe, https without TLS support).
    Unsupported(String),
}

impl Target {
    pub fn parse(host: &str) -> Target {
        if let Some(path) = host.strip_prefix("unix://") {
            return Target::Unix(PathBuf::from(path));
        }
        for scheme in ["tcp://", "http://"] {
            if let Some(rest) = host.strip_prefix(scheme) {
                let authority = rest.split('/').next().unwrap_or_default();
                if !authority.is_empty() {
                    return Target::Tcp(authority.to_string());
                }
            }
        }
        Target::Unsupported(host.to_string())
    }
}

/// Why nothing answered the plain connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownKind {
    Missing,
    Refused,
    PermissionDenied,
    Other,
}

impl DownKind {
    /// Fixed kind for the failure log.
    pub fn label(self) -> &'static str {
        match self {
            DownKind::Missing => "socket_missing",
            DownKind::Refused => "connection_refused",
            DownKind::PermissionDenied => "permission_denied",
            DownKind::Other => "connect_failed",
        }
    }
}

/// Result of one plain connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Connected; the peer's PID when the kernel tells it (unix sockets).
    Accepting {
        peer_pid: Option<u32>,
    },
    /// The connect neither succeeded nor failed in time, or the backlog is full:
    /// a listener exists but does not accept (a stopped or wedged daemon).
    Backlogged,
    Down(DownKind),
}

/// How a unix connect error reads: a full backlog (EAGAIN) still means a listener.
pub fn classify_unix_connect(kind: ErrorKind) -> Check {
    match kind {
        ErrorKind::WouldBlock => Check::Backlogged,
        ErrorKind::NotFound => Check::Down(DownKind::Missing),
        ErrorKind::ConnectionRefused => Check::Down(DownKind::Refused),
        ErrorKind::PermissionDenied => Check::Down(DownKind::PermissionDenied),
        _ => Check::Down(DownKind::Other),
    }
}

/// Connect once, without sending anything, under `timeout`.
pub async fn check(target: &Target, timeout: Duration) -> Check {
    match target {
        Target::Unix(path) => {
            match tokio::time::timeout(timeout, tokio::net::UnixStream::connect(path)).await {
                Ok(Ok(stream)) => {
                    let peer_pid = stream
                        .peer_cred()
                        .ok()
                        .and_then(|c| c.pid())
                        .and_then(|p| u32::try_from(p).ok())
                        .filter(|p| *p > 0);
                    Check::Accepting { peer_pid }
                }
                Ok(Err(e)) => classify_unix_connect(e.kind()),
                Err(_) => Check::Backlogged,
            }
        }
        // Over TCP a connect timeout is as likely a dead host as a full backlog: down.
        Target::Tcp(authority) => {
            match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(authority)).await {
                Ok(Ok(_)) => Check::Accepting { peer_pid: None },
                Ok(Err(e)) if e.kind() == ErrorKind::ConnectionRefused => {
                    Check::Down(DownKind::Refused)
                }
                _ => Check::Down(DownKind::Other),
            }
        }
        Target::Unsupported(_) => Check::Down(DownKind::Other),
    }
}

/// Why the daemon process could not be named, other than its absence.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error(transparent)]
    Proc(#[from] ProcError),
    #[error("--collector.docker.pidfile: {0}")]
    Resolve(#[from] ResolveError),
    #[error("--collector.docker.pidfile: cannot read {path}: {source}")]
    Pidfile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("--collector.docker.pidfile: {path} holds no PID: {text:?}")]
    BadPid { path: PathBuf, text: String },
}

impl IdentityError {
    /// A fixed kind for the failure log.
    pub fn kind(&self) -> &'static str {
        match self {
            IdentityError::Proc(e) if e.kind() == "permission" => "procfs_permission",
            IdentityError::Proc(_) => "procfs",
            IdentityError::Resolve(_) | IdentityError::Pidfile { .. } => "pidfile_unreadable",
            IdentityError::BadPid { .. } => "pidfile_invalid",
        }
    }
}

/// Names the process behind the socket: the SO_PEERCRED peer if it is
/// dockerd, else the PID in the pidfile if that is dockerd. A failure that is
/// not "no such process or file" (a /proc permission error, an unreadable or
/// garbled pidfile) would blind restart detection without a sign, so it is
/// counted and logged (once until it clears), never read as "same daemon".
#[derive(Debug)]
pub struct Identify {
    /// The collector's name, for the failure log.
    source: &'static str,
    /// The `comm` values the daemon may have; any other peer (systemd holding
    /// the socket) is not it.
    comms: &'static [&'static str],
    procfs: PathBuf,
    paths: Paths,
    /// The pidfile as a host path; `None` when disabled.
    pidfile: Option<String>,
    failures: AtomicU64,
    log: Mutex<FailureLog>,
}

impl Identify {
    pub fn new(
        source: &'static str,
        comms: &'static [&'static str],
        paths: &Paths,
        pidfile: Option<String>,
    ) -> Self {
        Identify {
            source,
            comms,
            procfs: paths.procfs.clone(),
            paths: paths.clone(),
            pidfile,
            failures: AtomicU64::new(0),
            log: Mutex::new(FailureLog::default()),
        }
    }

    /// The daemon process behind what `check` found, if anything names it.
    pub fn find(&self, check: Check) -> Option<Identity> {
        let found = match check {
            Check::Accepting { peer_pid } => {
                let peer = match peer_pid {
                    Some(pid) => self.identity(pid),
                    None => Ok(None),
                };
                match peer {
                    Ok(Some(id)) => Ok(Some(id)),
                    // The peer may be systemd holding the socket: ask the pidfile,
                    // and if that fails too, report the first failure.
                    Ok(None) => self.by_pidfile(),
                    Err(e) => match self.by_pidfile() {
                        Ok(Some(id)) => Ok(Some(id)),
                        _ => Err(e),
                    },
                }
            }
            // A listener that does not accept tells no peer: only the pidfile can.
            Check::Backlogged => self.by_pidfile(),
            Check::Down(_) => Ok(None),
        };
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        match found {
            Ok(Some(id)) => {
                log.ok(self.source);
                Some(id)
            }
            Ok(None) => None,
            Err(e) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                log.failed(
                    self.source,
                    e.kind(),
                    &format!("cannot name the daemon process, restarts go unseen: {e}"),
                );
                None
            }
        }
    }

    /// Whether the pidfile names a live daemon process (a sign it is installed).
    pub fn pidfile_names_a_daemon(&self) -> bool {
        matches!(self.by_pidfile(), Ok(Some(_)))
    }

    /// Lookups that failed for a reason other than absence, since start.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// The process with `pid`, if `/proc/PID/comm` is one of the daemon's;
    /// `Ok(None)` if it is another process or gone.
    fn identity(&self, pid: u32) -> Result<Option<Identity>, IdentityError> {
        let Ok(pid) = i32::try_from(pid) else {
            return Ok(None);
        };
        let Some(comm) = unless_gone(procfs::read_comm(&self.procfs, pid))? else {
            return Ok(None);
        };
        if !self.comms.contains(&comm.as_str()) {
            return Ok(None);
        }
        let Some(stat) = unless_gone(procfs::read_stat(&self.procfs, pid))? else {
            return Ok(None);
        };
        let boot = procfs::read_btime(&self.procfs)?;
        Ok(Some(Identity {
            pid: pid.unsigned_abs(),
            start_ticks: stat.starttime,
            start_unix: procfs::start_unix(boot, stat.starttime, procfs::ticks_per_second()),
        }))
    }

    /// The daemon named by the pidfile; `Ok(None)` when there is none (not
    /// configured, not written yet, or stale).
    fn by_pidfile(&self) -> Result<Option<Identity>, IdentityError> {
        let Some(host_path) = &self.pidfile else {
            return Ok(None);
        };
        let path = match self.paths.resolve(host_path) {
            Ok(p) => p,
            Err(e) if e.io_kind() == Some(ErrorKind::NotFound) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(IdentityError::Pidfile { path, source }),
        };
        match parse_pid(&text) {
            Pid::Empty => Ok(None),
            Pid::Bad => Err(IdentityError::BadPid {
                path,
                text: text.chars().take(32).collect(),
            }),
            Pid::Valid(pid) => self.identity(pid),
        }
    }
}

/// A process that exited (a stale pidfile, a peer gone since the connect) is no answer, not a failure.
fn unless_gone<T>(read: Result<T, ProcError>) -> Result<Option<T>, ProcError> {
    match read {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_gone() => Ok(None),
        Err(e) => Err(e),
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Pid {
    /// Caught between the daemon's create and write.
    Empty,
    Bad,
    Valid(u32),
}

fn parse_pid(text: &str) -> Pid {
    match text.trim() {
        "" => Pid::Empty,
        t => match t.parse() {
            Ok(pid) if pid > 0 => Pid::Valid(pid),
            _ => Pid::Bad,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(
            Target::parse("unix:///var/run/docker.sock"),
            Target::Unix("/var/run/docker.sock".into())
        );
        assert_eq!(
            Target::parse("tcp://127.0.0.1:2375"),
            Target::Tcp("127.0.0.1:2375".into())
        );
        assert_eq!(
            Target::parse("http://docker:2375/"),
            Target::Tcp("docker:2375".into())
        );
        assert!(matches!(
            Target::parse("ssh://me@host"),
            Target::Unsupported(_)
        ));
        assert!(matches!(Target::parse("tcp://"), Target::Unsupported(_)));
        assert!(matches!(
            Target::parse("/var/run/docker.sock"),
            Target::Unsupported(_)
        ));
    }

    /// A fixture host: a procfs with dockerd (PID 300, started 250 ticks
    /// after boot) behind systemd's socket (PID 1), and a rootfs whose
    /// /var/run is Debian's absolute symlink to /run.
    struct Host {
        base: PathBuf,
        paths: Paths,
    }

    impl Host {
        fn new(tag: &str) -> Host {
            let base = std::env::temp_dir()
                .join(format!("sentinel-identify-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&base);
            let proc = base.join("proc");
            let root = base.join("hostroot");
            std::fs::create_dir_all(root.join("run/docker")).unwrap();
            std::fs::create_dir_all(root.join("var")).unwrap();
            std::os::unix::fs::symlink("/run", root.join("var/run")).unwrap();
            std::fs::write(root.join("run/docker.pid"), "300\n").unwrap();
            std::fs::create_dir_all(&proc).unwrap();
            std::fs::write(proc.join("stat"), "cpu 1 2\nbtime 1700000000\n").unwrap();
            for (pid, comm) in [(1, "systemd"), (300, "dockerd"), (400, "sleep")] {
                let dir = proc.join(pid.to_string());
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(dir.join("comm"), format!("{comm}\n")).unwrap();
                let fields = "1 1 0 -1 0 0 0 0 0 0 0 0 0 0 20 0 1 0 250 0 0";
                std::fs::write(dir.join("stat"), format!("{pid} ({comm}) S {fields}\n")).unwrap();
            }
            let paths = Paths {
                procfs: proc,
                rootfs: root,
                ..Paths::default()
            };
            Host { base, paths }
        }

        fn identify(&self, pidfile: &str) -> Identify {
            Identify::new(
                "docker",
                &["dockerd"],
                &self.paths,
                Some(pidfile.to_string()),
            )
        }
    }

    impl Drop for Host {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.base);
        }
    }

    fn accepting(pid: u32) -> Check {
        Check::Accepting {
            peer_pid: Some(pid),
        }
    }

    #[test]
    fn names_the_daemon_by_its_peer_or_through_the_var_run_symlink() {
        let host = Host::new("found");
        let ticks = procfs::ticks_per_second();
        let want = Identity {
            pid: 300,
            start_ticks: 250,
            start_unix: procfs::start_unix(1_700_000_000, 250, ticks),
        };
        let id = host.identify("/var/run/docker.pid");
        assert_eq!(id.find(accepting(300)), Some(want));
        // Socket activation: the peer is systemd, the pidfile names dockerd.
        assert_eq!(id.find(accepting(1)), Some(want));
        assert_eq!(id.find(Check::Backlogged), Some(want));
        assert_eq!(id.find(Check::Accepting { peer_pid: None }), Some(want));
        assert_eq!(id.find(Check::Down(DownKind::Refused)), None);
        assert_eq!(id.failures(), 0);
    }

    #[test]
    fn absence_is_no_answer_and_no_failure() {
        let host = Host::new("absent");
        for pidfile in ["/var/run/none.pid", "/var/run/nodir/docker.pid"] {
            let id = host.identify(pidfile);
            assert_eq!(id.find(accepting(1)), None, "{pidfile}");
            assert_eq!(id.failures(), 0, "{pidfile}");
        }
        // A stale pidfile: its PID exited, or now runs something else.
        let id = host.identify("/var/run/docker.pid");
        for stale in ["77", "400"] {
            std::fs::write(host.paths.rootfs.join("run/docker.pid"), stale).unwrap();
            assert_eq!(id.find(accepting(1)), None, "{stale}");
        }
        // Being written: empty.
        std::fs::write(host.paths.rootfs.join("run/docker.pid"), "").unwrap();
        assert_eq!(id.find(Check::Backlogged), None);
        assert_eq!(id.failures(), 0);
        // A peer gone since the connect, and no pidfile configured.
        let none = Identify::new("docker", &["dockerd"], &host.paths, None);
        assert_eq!(none.find(accepting(12345)), None);
        assert_eq!(none.find(accepting(1)), None);
        assert_eq!(none.failures(), 0);
    }

    #[test]
    fn unreadable_sources_are_failures_not_no_restarts() {
        let host = Host::new("broken");
        let id = host.identify("/var/run/docker.pid");
        // A garbled pidfile.
        std::fs::write(host.paths.rootfs.join("run/docker.pid"), "dockerd\n").unwrap();
        assert_eq!(id.find(accepting(1)), None);
        assert_eq!(id.failures(), 1);
        // dockerd's stat unreadable or garbled: a failure, even via the peer.
        std::fs::write(host.paths.rootfs.join("run/docker.pid"), "300").unwrap();
        let stat = host.paths.procfs.join("300/stat");
        std::fs::write(&stat, "300 (dockerd").unwrap();
        assert_eq!(id.find(accepting(300)), None);
        assert_eq!(id.failures(), 2);
        std::fs::remove_file(&stat).unwrap();
        std::fs::create_dir(&stat).unwrap();
        assert_eq!(id.find(accepting(1)), None);
        assert_eq!(id.failures(), 3);
        // A symlink loop on the way to the pidfile.
        let looped = host.paths.rootfs.join("run/loop");
        std::os::unix::fs::symlink("/run/loop", &looped).unwrap();
        let id = host.identify("/var/run/loop/docker.pid");
        assert_eq!(id.find(Check::Backlogged), None);
        assert_eq!(id.failures(), 1);
    }

    #[test]
    fn failure_kinds() {
        let proc_err = ProcError::Read {
            path: "/proc/1/stat".into(),
            source: std::io::Error::from(ErrorKind::PermissionDenied),
        };
        assert_eq!(IdentityError::from(proc_err).kind(), "procfs_permission");
        let bad = IdentityError::BadPid {
            path: "/run/docker.pid".into(),
            text: "x".into(),
        };
        assert_eq!(bad.kind(), "pidfile_invalid");
        assert!(bad.to_string().contains("--collector.docker.pidfile"));
    }

    #[test]
    fn pids_and_connect_errors() {
        assert_eq!(parse_pid("4321\n"), Pid::Valid(4321));
        assert_eq!(parse_pid("\n"), Pid::Empty);
        assert_eq!(parse_pid("0"), Pid::Bad);
        assert_eq!(parse_pid("-5"), Pid::Bad);
        assert_eq!(parse_pid("x"), Pid::Bad);
        assert_eq!(
            classify_unix_connect(ErrorKind::WouldBlock),
            Check::Backlogged
        );
        assert_eq!(
            classify_unix_connect(ErrorKind::PermissionDenied),
            Check::Down(DownKind::PermissionDenied)
        );
        assert_eq!(
            classify_unix_connect(ErrorKind::ConnectionRefused),
            Check::Down(DownKind::Refused)
        );
        assert_eq!(
            classify_unix_connect(ErrorKind::NotFound),
            Check::Down(DownKind::Missing)
        );
    }
}
