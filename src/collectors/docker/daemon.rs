//! Where the daemon is and which process it is: a plain connect (no HTTP)
//! tells "something listens" from "nothing there", and SO_PEERCRED plus
//! /proc/PID/stat name the process, so a restart shows as a new PID or start time.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::state::Identity;

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

/// The daemon process with `pid`, if `/proc/PID/comm` says it is dockerd.
/// Under socket activation the socket's peer is systemd, not dockerd: that is
/// why the comm check exists and why a pidfile is the fallback.
pub fn identity(procfs: &Path, pid: u32) -> Option<Identity> {
    let dir = procfs.join(pid.to_string());
    let comm = std::fs::read_to_string(dir.join("comm")).ok()?;
    if comm.trim_end_matches('\n') != "dockerd" {
        return None;
    }
    let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
    let kernel = std::fs::read_to_string(procfs.join("stat")).ok()?;
    let start_ticks = parse_start_ticks(&stat)?;
    let boot = parse_btime(&kernel)?;
    Some(Identity {
        pid,
        start_ticks,
        start_unix: start_unix(boot, start_ticks, procfs::ticks_per_second()),
    })
}

/// The PID in a pidfile, if it holds one.
pub fn read_pidfile(path: &Path) -> Option<u32> {
    parse_pid(&std::fs::read_to_string(path).ok()?)
}

fn parse_pid(text: &str) -> Option<u32> {
    text.trim().parse().ok().filter(|p| *p > 0)
}

/// Field 22 (starttime) of /proc/PID/stat. The comm field may hold spaces and
/// parentheses, so fields are counted after its last `)`.
pub fn parse_start_ticks(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    // rest starts at field 3 (state); starttime is field 22.
    rest.split_whitespace().nth(22 - 3)?.parse().ok()
}

/// `btime` (boot time, unix seconds) from /proc/stat.
pub fn parse_btime(stat: &str) -> Option<u64> {
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

pub fn start_unix(boot: u64, ticks: u64, ticks_per_second: u64) -> f64 {
    boot as f64 + ticks as f64 / ticks_per_second.max(1) as f64
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

    #[test]
    fn start_ticks_survive_odd_comm() {
        let stat = "1234 (a) b (c)) S 1 1234 1234 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 12 0 987654 123456 789 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
        assert_eq!(parse_start_ticks(stat), Some(987654));
        assert_eq!(parse_start_ticks("1234 (dockerd) S 1 2"), None);
        assert_eq!(parse_start_ticks("garbage"), None);
        assert_eq!(parse_start_ticks(""), None);
    }

    #[test]
    fn btime_and_start_time() {
        let stat = "cpu  1 2 3\nintr 5\nbtime 1700000000\nprocesses 9\n";
        assert_eq!(parse_btime(stat), Some(1_700_000_000));
        assert_eq!(parse_btime("cpu 1\n"), None);
        assert_eq!(start_unix(1_700_000_000, 250, 100), 1_700_000_002.5);
        assert_eq!(start_unix(10, 5, 0), 15.0, "no division by zero");
    }

    #[test]
    fn pids_and_connect_errors() {
        assert_eq!(parse_pid("4321\n"), Some(4321));
        assert_eq!(parse_pid("0"), None);
        assert_eq!(parse_pid("x"), None);
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
