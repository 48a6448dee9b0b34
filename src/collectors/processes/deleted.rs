//! Space held by deleted-but-open files: walk `PROCFS/PID/fd`, keep link
//! targets ending in " (deleted)", stat them through the fd link, count each
//! inode once, attribute it to the holder's comm and to the mountpoint of the
//! filesystem that really holds it ([`mounts::backing_mount_for_dev`]).
//!
//! Rules and their limits:
//! - One `readlinkat` per fd, and a `statx` only for deleted targets. Sockets,
//!   pipes, anon inodes and memfds are skipped by their link text; non-regular
//!   files and files still linked elsewhere (`nlink > 0`: closing frees nothing)
//!   are skipped after the stat.
//! - Bytes are *allocated* bytes (`st_blocks * 512`): what closing the file
//!   gives back to `df`. A sparse file counts for what it really occupies.
//! - The stat uses `AT_STATX_DONT_SYNC`, so FUSE and NFS answer from cached
//!   attributes instead of asking a server that may hang.
//! - A file held by several processes counts once, for the first holder seen
//!   (lowest PID: /proc lists PIDs in ascending order).
//! - The walk is costly on big nodes (PITFALLS.md: ≈ 230 ms for 3,465
//!   processes), so a sweep starts at most once per interval and each round
//!   spends at most its budget on it; a sweep that does not fit goes on from
//!   the next PID in the following rounds and is published only when complete.
//!   Processes started behind the cursor meanwhile wait for the next sweep.
//! - Without CAP_SYS_PTRACE (or root) other users' fd tables are unreadable:
//!   those processes are counted as skipped, not an error.
//! - A file in a container's writable layer sits on an overlay: it is put on
//!   the filesystem holding the overlay's `upperdir=`, never on the overlay's
//!   mountpoint (`/var/lib/docker/overlay2/<id>/merged`, a per-container label
//!   that joins no filesystem series). A bind mount of a subtree gives way to
//!   the mount of the whole filesystem the same way.
//! - If the mount table cannot be read, the sweep is still published with
//!   every file under [`UNKNOWN_MOUNT`], and the failure is logged once.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::CStr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::fs::{AtFlags, CWD, Dir, FileType, Mode, OFlags, StatxFlags};
use rustix::io::Errno;

use crate::collector::FailureLog;
use crate::host::Paths;
use crate::host::mounts::{self, Mount};
use crate::host::procfs;

/// Mountpoint label when a file's device is in no mount of the table read
/// (another mount namespace, or the table could not be read).
pub const UNKNOWN_MOUNT: &str = "unknown";

/// A complete sweep, as published.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// (mountpoint, comm) → allocated bytes, every pair > 0.
    pub held: BTreeMap<(String, String), u64>,
    /// Distinct deleted files counted.
    pub files: u64,
    /// Processes whose fd table could not be read for lack of permission.
    pub skipped_permission: u64,
    /// Unix time the sweep completed.
    pub completed_at: f64,
}

/// What one round of the walker returns.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// The latest complete sweep, if any yet.
    pub report: Option<Arc<Report>>,
    /// The latest walk stopped at its budget with processes left to visit.
    pub truncated: bool,
    /// Time this round spent walking (0 when no walk was due).
    pub duration: Duration,
    /// The process list itself could not be read this round.
    pub failed: bool,
    /// A walk ran this round (one is due every interval, or a sweep was in progress).
    pub walked: bool,
}

/// Is this fd link target a deleted file worth a stat?
pub fn is_deleted_file(target: &[u8]) -> bool {
    target.starts_with(b"/")
        && target.ends_with(b" (deleted)")
        // memfd_create files: anonymous memory, on no mounted filesystem.
        && !target.starts_with(b"/memfd:")
}

/// A sweep in progress.
#[derive(Debug, Default)]
struct Sweep {
    /// The highest PID already walked.
    cursor: i32,
    seen: HashSet<(u64, u64)>,
    /// (st_dev, comm) → bytes.
    held: HashMap<(u64, String), u64>,
    skipped_permission: u64,
}

/// Owns the sweep state; lives on its worker thread.
#[derive(Debug)]
pub struct Walker {
    paths: Paths,
    interval: Duration,
    budget: Duration,
    sweep: Option<Sweep>,
    last_start: Option<Instant>,
    last_truncated: bool,
    published: Option<Arc<Report>>,
    mounts_log: FailureLog,
}

impl Walker {
    pub fn new(paths: Paths, interval: Duration, budget: Duration) -> Self {
        Walker {
            paths,
            interval,
            budget,
            sweep: None,
            last_start: None,
            last_truncated: false,
            published: None,
            mounts_log: FailureLog::default(),
        }
    }

    /// One round: go on with the sweep in progress, or start one if due.
    pub fn round(&mut self) -> Outcome {
        let started = Instant::now();
        let due = self
            .last_start
            .is_none_or(|t| started.duration_since(t) >= self.interval);
        let mut failed = false;
        let walking = self.sweep.is_some() || due;
        if walking {
            let mut sweep = match self.sweep.take() {
                Some(s) => s,
                None => {
                    self.last_start = Some(started);
                    Sweep::default()
                }
            };
            match walk(&self.paths, &mut sweep, started + self.budget) {
                Ok(true) => {
                    self.published = Some(Arc::new(self.report(sweep)));
                    self.last_truncated = false;
                }
                Ok(false) => {
                    self.sweep = Some(sweep);
                    self.last_truncated = true;
                }
                Err(_) => {
                    failed = true;
                    self.last_truncated = true;
                }
            }
        }
        Outcome {
            report: self.published.clone(),
            truncated: self.last_truncated,
            duration: if walking {
                started.elapsed()
            } else {
                Duration::ZERO
            },
            failed,
            walked: walking,
        }
    }

    fn report(&mut self, sweep: Sweep) -> Report {
        let mounts = match mounts::read(&self.paths) {
            Ok(m) => {
                self.mounts_log.ok("processes");
                m
            }
            Err(e) => {
                self.mounts_log.failed(
                    "processes",
                    "fd_walk_mounts",
                    &format!("deleted files are put under mountpoint=\"{UNKNOWN_MOUNT}\": {e}"),
                );
                Vec::new()
            }
        };
        Report {
            held: attribute(&sweep.held, &mounts),
            files: sweep.seen.len() as u64,
            skipped_permission: sweep.skipped_permission,
            completed_at: crate::collector::unix_now(),
        }
    }
}

/// Map devices to mountpoints and sum per (mountpoint, comm). Pure.
pub fn attribute(
    held: &HashMap<(u64, String), u64>,
    mounts: &[Mount],
) -> BTreeMap<(String, String), u64> {
    let mut out = BTreeMap::new();
    for ((dev, comm), bytes) in held {
        if *bytes == 0 {
            continue;
        }
        let mountpoint = mounts::backing_mount_for_dev(mounts, *dev)
            .map(|m| m.mountpoint.clone())
            .unwrap_or_else(|| UNKNOWN_MOUNT.to_string());
        *out.entry((mountpoint, comm.clone())).or_insert(0) += bytes;
    }
    out
}

/// Walk processes after `sweep.cursor` until done (true) or past `deadline`
/// (false). At least one process is walked per call, so a sweep always ends.
fn walk(paths: &Paths, sweep: &mut Sweep, deadline: Instant) -> rustix::io::Result<bool> {
    let proc_dir = rustix::fs::openat(
        CWD,
        &paths.procfs,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut dir = Dir::new(proc_dir)?;
    let mut walked = 0u64;
    let mut link_buf = Vec::with_capacity(256);
    while let Some(entry) = dir.read() {
        let Ok(entry) = entry else { break };
        let Some(pid) = pid_of(entry.file_name()) else {
            continue;
        };
        if pid <= sweep.cursor {
            continue;
        }
        if walked > 0 && Instant::now() >= deadline {
            return Ok(false);
        }
        walk_process(&paths.procfs, pid, sweep, &mut link_buf);
        sweep.cursor = pid;
        walked += 1;
    }
    Ok(true)
}

fn pid_of(name: &CStr) -> Option<i32> {
    std::str::from_utf8(name.to_bytes()).ok()?.parse().ok()
}

fn walk_process(procfs: &std::path::Path, pid: i32, sweep: &mut Sweep, link_buf: &mut Vec<u8>) {
    let fd_path: PathBuf = procfs.join(pid.to_string()).join("fd");
    let fd_dir = match rustix::fs::openat(
        CWD,
        &fd_path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::ACCESS | Errno::PERM) => {
            sweep.skipped_permission += 1;
            return;
        }
        // Gone since readdir: normal.
        Err(_) => return,
    };
    let Ok(mut dir) = Dir::new(fd_dir) else {
        return;
    };
    let mut comm: Option<String> = None;
    while let Some(entry) = dir.read() {
        let Ok(entry) = entry else { break };
        let name = entry.file_name();
        if name.to_bytes().first() == Some(&b'.') {
            continue;
        }
        let Ok(dirfd) = dir.fd() else { break };
        let Ok(target) = rustix::fs::readlinkat(dirfd, name, std::mem::take(link_buf)) else {
            continue;
        };
        let deleted = is_deleted_file(target.as_bytes());
        *link_buf = target.into_bytes();
        if !deleted {
            continue;
        }
        // Follows the fd's magic link to the open file itself.
        let Ok(st) = rustix::fs::statx(
            dirfd,
            name,
            AtFlags::STATX_DONT_SYNC,
            StatxFlags::TYPE | StatxFlags::NLINK | StatxFlags::INO | StatxFlags::BLOCKS,
        ) else {
            continue;
        };
        if FileType::from_raw_mode(st.stx_mode.into()) != FileType::RegularFile || st.stx_nlink > 0
        {
            continue;
        }
        let dev = rustix::fs::makedev(st.stx_dev_major, st.stx_dev_minor);
        if !sweep.seen.insert((dev, st.stx_ino)) {
            continue;
        }
        let comm = comm.get_or_insert_with(|| read_comm(procfs, pid));
        *sweep.held.entry((dev, comm.clone())).or_insert(0) += st.stx_blocks * 512;
    }
}

fn read_comm(root: &std::path::Path, pid: i32) -> String {
    procfs::read_comm(root, pid).unwrap_or_else(|_| super::scan::UNKNOWN_PARENT.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_link_targets_are_deleted_files() {
        for (target, want) in [
            ("/var/log/app.log (deleted)", true),
            ("/tmp/my file (deleted)", true),
            ("/dev/shm/seg (deleted)", true),
            ("/var/log/app.log", false),
            ("/memfd:wayland-shm (deleted)", false),
            ("socket:[12345]", false),
            ("pipe:[42]", false),
            ("anon_inode:[eventfd]", false),
            ("/tmp/x (deleted) ", false),
            ("", false),
        ] {
            assert_eq!(is_deleted_file(target.as_bytes()), want, "{target:?}");
        }
    }

    #[test]
    fn attribution_sums_per_mountpoint_and_comm() {
        let table = mounts::parse(
            "22 1 252:0 / / rw - ext4 /dev/vda rw\n\
             30 22 0:40 / /var/lib/docker rw - xfs /dev/vdb rw\n",
        )
        .unwrap();
        let root = rustix::fs::makedev(252, 0);
        let docker = rustix::fs::makedev(0, 40);
        let held: HashMap<(u64, String), u64> = [
            ((root, "java".to_string()), 100),
            ((docker, "dockerd".to_string()), 7),
            ((rustix::fs::makedev(0, 99), "java".to_string()), 5),
            ((root, "idle".to_string()), 0),
        ]
        .into_iter()
        .collect();
        let got = attribute(&held, &table);
        let want: BTreeMap<(String, String), u64> = [
            (("/".to_string(), "java".to_string()), 100),
            (("/var/lib/docker".to_string(), "dockerd".to_string()), 7),
            ((UNKNOWN_MOUNT.to_string(), "java".to_string()), 5),
        ]
        .into_iter()
        .collect();
        assert_eq!(got, want);
    }

    /// A container's deleted log on its overlay is put on the disk under the
    /// overlay's upper dir; a subPath bind of the root disk gives way to `/`.
    #[test]
    fn attribution_follows_overlays_to_their_upper_dir() {
        let table = mounts::parse(
            "22 1 252:0 / / rw - ext4 /dev/vda rw\n\
             30 22 253:0 / /var/lib/docker rw - xfs /dev/vdb rw\n\
             40 22 0:50 / /var/lib/docker/overlay2/0123abcd/merged rw - overlay overlay \
             rw,lowerdir=/var/lib/docker/overlay2/l/A,upperdir=/var/lib/docker/overlay2/0123abcd/diff,workdir=/var/lib/docker/overlay2/0123abcd/work\n\
             41 22 252:0 /srv/data /var/lib/kubelet/pods/u/volume-subpaths/v/c/0 rw - ext4 /dev/vda rw\n",
        )
        .unwrap();
        let held: HashMap<(u64, String), u64> = [
            ((rustix::fs::makedev(0, 50), "nginx".to_string()), 40),
            ((rustix::fs::makedev(252, 0), "java".to_string()), 9),
        ]
        .into_iter()
        .collect();
        let got = attribute(&held, &table);
        let want: BTreeMap<(String, String), u64> = [
            (("/var/lib/docker".to_string(), "nginx".to_string()), 40),
            (("/".to_string(), "java".to_string()), 9),
        ]
        .into_iter()
        .collect();
        assert_eq!(got, want);
    }

    /// A deleted file held by this test process is found once, with its size.
    #[test]
    fn walks_this_machine_and_finds_a_held_file() {
        use std::io::Write;
        let dir =
            std::env::temp_dir().join(format!("sentinel-deleted-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("held");
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(&vec![7u8; 1 << 20]).unwrap();
        f.sync_all().unwrap();
        let _again = std::fs::File::open(&path).unwrap(); // a second fd, same inode
        std::fs::remove_file(&path).unwrap();
        let mut walker = Walker::new(
            Paths::default(),
            Duration::from_secs(60),
            Duration::from_secs(30),
        );
        let out = walker.round();
        assert!(!out.truncated && !out.failed, "{out:?}");
        let report = out.report.unwrap();
        let comm = read_comm(std::path::Path::new("/proc"), std::process::id() as i32);
        let mine: u64 = report
            .held
            .iter()
            .filter(|((_, c), _)| *c == comm)
            .map(|(_, b)| *b)
            .sum();
        assert!(
            (1 << 20..(1 << 20) + (1 << 16)).contains(&mine),
            "{report:?}"
        );
        // Not due again yet: the same report comes back without a walk.
        let again = walker.round();
        assert_eq!(again.duration, Duration::ZERO);
        assert_eq!(again.report.unwrap().completed_at, report.completed_at);
        drop(f);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_tiny_budget_spreads_one_sweep_over_rounds() {
        let mut walker = Walker::new(Paths::default(), Duration::from_secs(3600), Duration::ZERO);
        let mut rounds = 0;
        loop {
            rounds += 1;
            let out = walker.round();
            if !out.truncated {
                assert!(out.report.is_some());
                break;
            }
            assert!(out.report.is_none());
            assert!(rounds < 1_000_000);
        }
        assert!(rounds > 1, "one process per round with a zero budget");
    }
}
