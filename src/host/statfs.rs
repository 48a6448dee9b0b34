//! statvfs and the mount-table read, for mounts that may hang (NFS, FUSE),
//! without ever stalling the caller: both run on an [`Offload`] pool under a
//! timeout.
//!
//! Each statvfs is keyed by the mount's identity ([`MountKey`]: its mount ID
//! and mountpoint), never by its path alone. So a mount whose statvfs is stuck
//! leaves one stuck thread, ever, and answers "hung" at once each later round;
//! and a healthy mount at the same path after the hung one was lazily
//! unmounted (`umount -l`) is a new subject, stat'ed afresh. The mountinfo read
//! has its own key: it can wait on the mount-namespace lock that a stuck mount
//! or umount holds (F25), and then answers "hung" like a mount would.

use std::path::PathBuf;
use std::time::Duration;

use rustix::fs::StatVfs;

use crate::host::Paths;
use crate::host::mounts::{self, Mount, MountsError};
use crate::host::offload::{Offload, Outcome};

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

/// The identity of one mount: a new mount at the same path has a new ID.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MountKey {
    pub id: u32,
    pub mountpoint: String,
}

impl From<&Mount> for MountKey {
    fn from(m: &Mount) -> Self {
        MountKey {
            id: m.id,
            mountpoint: m.mountpoint.clone(),
        }
    }
}

/// What one guarded call is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Subject {
    /// The mountinfo read.
    Table,
    Mount(MountKey),
}

/// The outcome of one guarded statvfs.
#[derive(Debug)]
pub enum StatOutcome {
    Ok(Usage),
    /// No answer within the timeout, or an earlier call on this mount is still stuck.
    Hung,
    Failed(std::io::Error),
}

/// Why the mount table could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("the mountinfo read did not answer (stuck on the mount table)")]
    Hung,
    #[error(transparent)]
    Mounts(#[from] MountsError),
    #[error("mountinfo read: {0}")]
    Offload(String),
}

/// The hang-safe statvfs and mountinfo calls of one collector.
#[derive(Debug)]
pub struct StatGuard {
    offload: Offload<Subject>,
}

impl Default for StatGuard {
    fn default() -> Self {
        StatGuard {
            offload: Offload::new("statvfs"),
        }
    }
}

impl StatGuard {
    pub fn new() -> Self {
        Self::default()
    }

    /// The host's mount table ([`mounts::read`]), waiting at most `timeout`.
    pub async fn mounts(&self, paths: &Paths, timeout: Duration) -> Result<Vec<Mount>, TableError> {
        let paths = paths.clone();
        match self
            .offload
            .run(Subject::Table, timeout, move || mounts::read(&paths))
            .await
        {
            Outcome::Done(table) => Ok(table?),
            Outcome::TimedOut | Outcome::Busy => Err(TableError::Hung),
            Outcome::Failed(e) => Err(TableError::Offload(e.to_string())),
        }
    }

    /// statvfs each mount at its path (as seen from this process), all at
    /// once, the whole batch answering within `timeout`; outcomes in the order
    /// of `targets`. A mount whose earlier call is still stuck answers at once.
    pub async fn stat_all(
        &self,
        targets: &[(MountKey, PathBuf)],
        timeout: Duration,
    ) -> Vec<StatOutcome> {
        let calls = targets.iter().map(|(key, path)| {
            let path = path.clone();
            let call = self
                .offload
                .run(Subject::Mount(key.clone()), timeout, move || {
                    rustix::fs::statvfs(&path)
                });
            async move {
                match call.await {
                    Outcome::Done(Ok(st)) => StatOutcome::Ok(Usage::from(&st)),
                    Outcome::Done(Err(errno)) => StatOutcome::Failed(errno.into()),
                    Outcome::TimedOut | Outcome::Busy => StatOutcome::Hung,
                    Outcome::Failed(e) => StatOutcome::Failed(std::io::Error::other(e)),
                }
            }
        });
        futures_util::future::join_all(calls).await
    }

    /// Forget mounts that `keep` rejects (gone from the table), unless a call
    /// on them is still stuck: that thread stays counted until it returns.
    pub fn retain(&self, keep: impl Fn(&MountKey) -> bool) {
        self.offload.retain(|s| match s {
            Subject::Table => true,
            Subject::Mount(k) => keep(k),
        });
    }

    /// Calls abandoned and still stuck (one per hung mount, at most).
    pub fn stuck(&self) -> usize {
        self.offload.stuck()
    }

    /// Threads alive in this guard's pool.
    pub fn threads(&self) -> usize {
        self.offload.threads()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn key(id: u32, mountpoint: &str) -> MountKey {
        MountKey {
            id,
            mountpoint: mountpoint.into(),
        }
    }

    #[tokio::test]
    async fn answers_for_a_real_path_and_fails_for_a_missing_one() {
        let guard = StatGuard::new();
        let out = guard
            .stat_all(
                &[
                    (key(1, "/"), PathBuf::from("/")),
                    (key(2, "/nope"), PathBuf::from("/no/such/path/anywhere")),
                ],
                Duration::from_secs(5),
            )
            .await;
        match &out[0] {
            StatOutcome::Ok(usage) => assert!(usage.size_bytes > 0),
            other => panic!("{other:?}"),
        }
        match &out[1] {
            StatOutcome::Failed(e) => assert_eq!(e.kind(), std::io::ErrorKind::NotFound),
            other => panic!("{other:?}"),
        }
        assert_eq!(guard.stuck(), 0);
    }

    #[tokio::test]
    async fn reads_the_mount_table_off_the_runtime() {
        let guard = StatGuard::new();
        let table = guard
            .mounts(&Paths::default(), Duration::from_secs(5))
            .await
            .unwrap();
        assert!(table.iter().any(|m| m.mountpoint == "/"));
        let missing = Paths {
            procfs: "/no/such/procfs".into(),
            ..Paths::default()
        };
        let err = guard
            .mounts(&missing, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("/no/such/procfs"), "{err}");
    }

    #[test]
    fn a_new_mount_at_the_same_path_is_a_new_key() {
        let old = Mount {
            id: 40,
            mountpoint: "/mnt/data".into(),
            ..Mount::default()
        };
        let new = Mount {
            id: 41,
            ..old.clone()
        };
        assert_ne!(MountKey::from(&old), MountKey::from(&new));
        assert_eq!(
            MountKey::from(&old),
            key(40, Path::new("/mnt/data").to_str().unwrap())
        );
    }
}
