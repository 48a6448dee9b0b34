//! statvfs that can never stall the caller, for mounts that may hang (NFS, FUSE).
//!
//! statvfs on a hung mount blocks in the kernel and cannot be cancelled.
//! `timeout(spawn_blocking(..))` would leak a runtime thread per attempt and
//! then hold up shutdown, so each call runs on its own detached thread and
//! reports through a oneshot channel. While a call on a path is outstanding,
//! later requests for that path answer "hung" at once instead of starting
//! another: one stuck thread per hung mount, ever, until the mount recovers.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rustix::fs::{StatVfs, StatVfsMountFlags};

/// What statvfs says about a filesystem, in bytes and inodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub size_bytes: u64,
    pub free_bytes: u64,
    /// Free to unprivileged users (free minus the root reserve).
    pub avail_bytes: u64,
    pub files: u64,
    pub files_free: u64,
    pub readonly: bool,
}

impl Usage {
    /// Bytes in use, as df counts them.
    pub fn used_bytes(&self) -> u64 {
        self.size_bytes.saturating_sub(self.free_bytes)
    }

    pub fn used_files(&self) -> u64 {
        self.files.saturating_sub(self.files_free)
    }
}

impl From<&StatVfs> for Usage {
    fn from(st: &StatVfs) -> Self {
        // f_frsize is the unit of the block counts; some filesystems leave it 0.
        let unit = if st.f_frsize > 0 {
            st.f_frsize
        } else {
            st.f_bsize
        };
        Usage {
            size_bytes: st.f_blocks.saturating_mul(unit),
            free_bytes: st.f_bfree.saturating_mul(unit),
            avail_bytes: st.f_bavail.saturating_mul(unit),
            files: st.f_files,
            files_free: st.f_ffree,
            readonly: st.f_flag.contains(StatVfsMountFlags::RDONLY),
        }
    }
}

/// The outcome of one guarded statvfs.
#[derive(Debug)]
pub enum StatOutcome {
    Ok(Usage),
    /// No answer within the timeout, or an earlier call on this path is still stuck.
    Hung,
    Failed(std::io::Error),
}

/// Remembers which paths have a statvfs still outstanding.
#[derive(Debug, Default)]
pub struct StatGuard {
    in_flight: HashMap<PathBuf, Arc<AtomicBool>>,
}

impl StatGuard {
    pub fn new() -> Self {
        Self::default()
    }

    /// statvfs `path`, waiting at most `timeout`.
    pub async fn stat(&mut self, path: &Path, timeout: Duration) -> StatOutcome {
        let busy = self
            .in_flight
            .entry(path.to_path_buf())
            .or_default()
            .clone();
        stat_guarded(path.to_path_buf(), busy, timeout).await
    }

    /// Start guarded statvfs calls for many paths at once and wait for all of
    /// them; the whole batch takes at most `timeout`.
    pub async fn stat_all(&mut self, paths: &[PathBuf], timeout: Duration) -> Vec<StatOutcome> {
        let calls: Vec<_> = paths
            .iter()
            .map(|p| {
                let busy = self.in_flight.entry(p.clone()).or_default().clone();
                stat_guarded(p.clone(), busy, timeout)
            })
            .collect();
        futures_util::future::join_all(calls).await
    }

    /// Forget paths that are gone, unless a call on them is still stuck.
    pub fn retain(&mut self, keep: impl Fn(&Path) -> bool) {
        self.in_flight
            .retain(|p, busy| keep(p) || busy.load(Ordering::Acquire));
    }

    /// How many paths have a call outstanding right now.
    pub fn stuck(&self) -> usize {
        self.in_flight
            .values()
            .filter(|b| b.load(Ordering::Acquire))
            .count()
    }
}

async fn stat_guarded(path: PathBuf, busy: Arc<AtomicBool>, timeout: Duration) -> StatOutcome {
    if busy
        .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return StatOutcome::Hung;
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    let flag = busy.clone();
    let spawned = std::thread::Builder::new()
        .name("statvfs".into())
        .spawn(move || {
            let result = rustix::fs::statvfs(&path);
            flag.store(false, Ordering::Release);
            let _ = tx.send(result);
        });
    if let Err(e) = spawned {
        busy.store(false, Ordering::Release);
        return StatOutcome::Failed(e);
    }
    match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(Ok(st))) => StatOutcome::Ok(Usage::from(&st)),
        Ok(Ok(Err(errno))) => StatOutcome::Failed(errno.into()),
        Ok(Err(_)) => StatOutcome::Failed(std::io::Error::other(
            "statvfs thread ended without answering",
        )),
        Err(_) => StatOutcome::Hung,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_for_a_real_path_and_fails_for_a_missing_one() {
        let mut guard = StatGuard::new();
        match guard.stat(Path::new("/"), Duration::from_secs(5)).await {
            StatOutcome::Ok(usage) => assert!(usage.size_bytes > 0),
            other => panic!("{other:?}"),
        }
        match guard
            .stat(Path::new("/no/such/path/anywhere"), Duration::from_secs(5))
            .await
        {
            StatOutcome::Failed(e) => assert_eq!(e.kind(), std::io::ErrorKind::NotFound),
            other => panic!("{other:?}"),
        }
        assert_eq!(guard.stuck(), 0);
    }

    #[tokio::test]
    async fn a_busy_path_is_hung_without_a_second_call() {
        let mut guard = StatGuard::new();
        let busy = guard
            .in_flight
            .entry(PathBuf::from("/"))
            .or_default()
            .clone();
        busy.store(true, Ordering::Release);
        assert!(matches!(
            guard.stat(Path::new("/"), Duration::from_secs(5)).await,
            StatOutcome::Hung
        ));
        guard.retain(|_| false);
        assert_eq!(guard.stuck(), 1, "a stuck path is remembered");
    }
}
