//! statvfs that can never stall the caller, for mounts that may hang (NFS, FUSE).
//!
//! statvfs on a hung mount blocks in the kernel and cannot be cancelled.
//! `timeout(spawn_blocking(..))` would leak a runtime thread per attempt and
//! then hold up shutdown, so calls run on a few plain threads of our own (at
//! most [`WORKERS`] at a time, kept between rounds so a round costs no thread
//! spawns) and report through a oneshot channel under a timeout. A worker that
//! does not answer in time is abandoned to its stuck call and replaced; while a
//! call on a path is outstanding, later requests for that path answer "hung" at
//! once instead of starting another: one stuck thread per hung mount, ever,
//! until the mount recovers (the abandoned worker then exits).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use rustix::fs::StatVfs;
use tokio::sync::{Semaphore, oneshot};

/// What statvfs says about a filesystem, in bytes and inodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub size_bytes: u64,
    pub free_bytes: u64,
    /// Free to unprivileged users (free minus the root reserve).
    pub avail_bytes: u64,
    pub files: u64,
    pub files_free: u64,
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

/// How many statvfs calls run at once.
pub const WORKERS: usize = 8;

type Job = (
    PathBuf,
    Arc<AtomicBool>,
    oneshot::Sender<rustix::io::Result<StatVfs>>,
);

/// An idle worker thread, waiting for jobs on its channel.
#[derive(Debug)]
struct Worker(mpsc::Sender<Job>);

impl Worker {
    fn spawn() -> std::io::Result<Worker> {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("statvfs".into())
            .spawn(move || {
                // Ends when its Sender is dropped: when idle at shutdown, or
                // after an abandoned call finally returns.
                while let Ok((path, busy, reply)) = rx.recv() {
                    let result = rustix::fs::statvfs(&path);
                    busy.store(false, Ordering::Release);
                    let _ = reply.send(result);
                }
            })?;
        Ok(Worker(tx))
    }
}

/// Remembers which paths have a statvfs still outstanding, and keeps idle workers.
#[derive(Debug)]
pub struct StatGuard {
    in_flight: HashMap<PathBuf, Arc<AtomicBool>>,
    idle: Arc<Mutex<Vec<Worker>>>,
    slots: Arc<Semaphore>,
}

impl Default for StatGuard {
    fn default() -> Self {
        StatGuard {
            in_flight: HashMap::new(),
            idle: Arc::new(Mutex::new(Vec::new())),
            slots: Arc::new(Semaphore::new(WORKERS)),
        }
    }
}

impl StatGuard {
    pub fn new() -> Self {
        Self::default()
    }

    /// statvfs `path`, waiting at most `timeout`.
    pub async fn stat(&mut self, path: &Path, timeout: Duration) -> StatOutcome {
        let mut outcomes = self.stat_all(&[path.to_path_buf()], timeout).await;
        outcomes.pop().unwrap_or(StatOutcome::Hung)
    }

    /// statvfs many paths, [`WORKERS`] at a time, each waiting at most
    /// `timeout`; outcomes in the order of `paths`. Paths already known to be
    /// stuck answer at once, so only a mount that newly hangs costs a timeout.
    pub async fn stat_all(&mut self, paths: &[PathBuf], timeout: Duration) -> Vec<StatOutcome> {
        let calls: Vec<_> = paths
            .iter()
            .map(|p| {
                let busy = self.in_flight.entry(p.clone()).or_default().clone();
                stat_guarded(
                    p.clone(),
                    busy,
                    timeout,
                    self.idle.clone(),
                    self.slots.clone(),
                )
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

async fn stat_guarded(
    path: PathBuf,
    busy: Arc<AtomicBool>,
    timeout: Duration,
    idle: Arc<Mutex<Vec<Worker>>>,
    slots: Arc<Semaphore>,
) -> StatOutcome {
    if busy.load(Ordering::Acquire) {
        return StatOutcome::Hung;
    }
    let Ok(_slot) = slots.acquire().await else {
        return StatOutcome::Hung;
    };
    if busy
        .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return StatOutcome::Hung;
    }
    let reused = idle.lock().ok().and_then(|mut v| v.pop());
    let worker = match reused.map(Ok).unwrap_or_else(Worker::spawn) {
        Ok(w) => w,
        Err(e) => {
            busy.store(false, Ordering::Release);
            return StatOutcome::Failed(e);
        }
    };
    let (tx, rx) = oneshot::channel();
    if worker.0.send((path, busy.clone(), tx)).is_err() {
        busy.store(false, Ordering::Release);
        return StatOutcome::Failed(std::io::Error::other("statvfs worker is gone"));
    }
    let outcome = match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(Ok(st))) => StatOutcome::Ok(Usage::from(&st)),
        Ok(Ok(Err(errno))) => StatOutcome::Failed(errno.into()),
        Ok(Err(_)) => {
            return StatOutcome::Failed(std::io::Error::other(
                "statvfs worker ended without answering",
            ));
        }
        // The worker stays with its stuck call; dropping its Sender lets it exit afterwards.
        Err(_) => return StatOutcome::Hung,
    };
    if let Ok(mut v) = idle.lock() {
        v.push(worker);
    }
    outcome
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
