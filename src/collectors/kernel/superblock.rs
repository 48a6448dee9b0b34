//! Filesystem errors the kernel has recorded in a superblock, read from sysfs
//! (`SYSFS/fs/ext4/<device>/errors_count`, `last_error_time`).
//!
//! This is the kernel's own word on a damaged filesystem that does not need
//! the kernel log: ext4 keeps the count in the superblock until fsck clears
//! it, so it survives the log's ring buffer, a reboot and an unprivileged
//! container that cannot read /dev/kmsg. A filesystem that logged an error and
//! carried on (`errors=continue`) shows here long after the log line is gone.
//!
//! Each ext4 filesystem counts once, under its whole-filesystem mount (root
//! `/`, the shortest mountpoint), labelled like the filesystem collector's
//! series so the two join on `mountpoint` and `device`. sysfs names the
//! filesystem by its block device (`vda`, `sda1`, `dm-0`), found through
//! `SYSFS/dev/block/MAJOR:MINOR`, since the mount table names `/dev/mapper/…`
//! or `/dev/disk/by-…` as often as the kernel's name.

use std::collections::HashSet;
use std::io;
use std::path::Path;

use crate::host::Paths;
use crate::host::mounts::{self, Mount, MountsError};

/// Most filesystems reported; the rest count in `sentinel_series_dropped`.
pub const LIMIT: usize = 64;

/// One ext4 filesystem's recorded errors.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    pub mountpoint: String,
    pub device: String,
    pub fstype: String,
    /// Errors recorded since the last fsck.
    pub errors: u64,
    /// Unix time of the latest recorded error, 0 when none.
    pub last_error_time: u64,
}

/// What one read found.
#[derive(Debug, Default, PartialEq)]
pub struct Superblocks {
    pub filesystems: Vec<Recorded>,
    /// Filesystems past [`LIMIT`].
    pub dropped: u64,
    /// Filesystems whose sysfs files could not be read, with why (the first few).
    pub unreadable: Vec<String>,
}

/// Read the host's mount table and the sysfs error records of its ext4
/// filesystems. Blocking: callers run it off the async runtime.
pub fn read(paths: &Paths) -> Result<Superblocks, MountsError> {
    let table = mounts::read(paths)?;
    Ok(read_for(&table, &paths.sysfs))
}

/// [`read`] for a given mount table.
pub fn read_for(table: &[Mount], sysfs: &Path) -> Superblocks {
    let mut whole: Vec<&Mount> = table
        .iter()
        .filter(|m| m.fstype == "ext4" && m.root == "/")
        .collect();
    whole.sort_by(|a, b| {
        (a.mountpoint.len(), &a.mountpoint).cmp(&(b.mountpoint.len(), &b.mountpoint))
    });
    let mut seen = HashSet::new();
    let mut out = Superblocks::default();
    for m in whole {
        if !seen.insert(m.dev) {
            continue;
        }
        if out.filesystems.len() >= LIMIT {
            out.dropped += 1;
            continue;
        }
        match recorded(m, sysfs) {
            Ok(r) => out.filesystems.push(r),
            Err(e) => {
                if out.unreadable.len() < 3 {
                    out.unreadable.push(format!("{} ({}): {e}", m.mountpoint, m.device));
                }
            }
        }
    }
    out
}

fn recorded(m: &Mount, sysfs: &Path) -> io::Result<Recorded> {
    let link = std::fs::read_link(sysfs.join(format!("dev/block/{}:{}", m.dev.0, m.dev.1)))?;
    let name = link
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| io::Error::other(format!("odd block device link {}", link.display())))?;
    let dir = sysfs.join("fs/ext4").join(name);
    Ok(Recorded {
        mountpoint: m.mountpoint.clone(),
        device: m.device.clone(),
        fstype: m.fstype.clone(),
        errors: number(&dir.join("errors_count"))?,
        last_error_time: number(&dir.join("last_error_time"))?,
    })
}

fn number(path: &Path) -> io::Result<u64> {
    let text = std::fs::read_to_string(path)?;
    text.trim().parse().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: not a number: {:?}", path.display(), text.trim()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(id: u32, dev: (u32, u32), root: &str, mountpoint: &str, fstype: &str) -> Mount {
        let line = format!(
            "{id} 1 {}:{} {root} {mountpoint} rw - {fstype} /dev/x{} rw\n",
            dev.0, dev.1, dev.1
        );
        mounts::parse(&line).expect("mountinfo line").remove(0)
    }

    /// A fresh directory standing in for sysfs, removed at the end of the test.
    struct FakeSysfs(std::path::PathBuf);

    impl FakeSysfs {
        fn new(tag: &str) -> Self {
            let dir = std::env::temp_dir()
                .join(format!("sentinel-superblock-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            FakeSysfs(dir)
        }

        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for FakeSysfs {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn sysfs_with(dir: &Path, dev: (u32, u32), name: &str, errors: &str, last: &str) {
        let block = dir.join("dev/block");
        std::fs::create_dir_all(&block).unwrap();
        std::os::unix::fs::symlink(
            format!("../../devices/virtual/block/{name}"),
            block.join(format!("{}:{}", dev.0, dev.1)),
        )
        .unwrap();
        let fs = dir.join("fs/ext4").join(name);
        std::fs::create_dir_all(&fs).unwrap();
        std::fs::write(fs.join("errors_count"), errors).unwrap();
        std::fs::write(fs.join("last_error_time"), last).unwrap();
    }

    #[test]
    fn one_record_per_filesystem_under_its_whole_mount() {
        let dir = FakeSysfs::new("whole");
        sysfs_with(dir.path(), (7, 0), "loop0", "3\n", "1796000000\n");
        sysfs_with(dir.path(), (254, 0), "vda", "0\n", "0\n");
        let table = [
            mount(30, (7, 0), "/sub", "/srv/bind", "ext4"),
            mount(31, (7, 0), "/", "/mnt/data/again", "ext4"),
            mount(32, (7, 0), "/", "/mnt/data", "ext4"),
            mount(1, (254, 0), "/", "/", "ext4"),
            mount(33, (0, 40), "/", "/run", "tmpfs"),
        ];
        let got = read_for(&table, dir.path());
        let short: Vec<_> = got
            .filesystems
            .iter()
            .map(|r| (r.mountpoint.as_str(), r.errors, r.last_error_time))
            .collect();
        assert_eq!(short, [("/", 0, 0), ("/mnt/data", 3, 1_796_000_000)]);
        assert_eq!(got.dropped, 0);
        assert!(got.unreadable.is_empty());
    }

    #[test]
    fn unreadable_or_garbled_records_are_named_not_reported_as_zero() {
        let dir = FakeSysfs::new("garbled");
        sysfs_with(dir.path(), (7, 1), "loop1", "lots\n", "0\n");
        let table = [
            mount(40, (7, 1), "/", "/a", "ext4"),
            // No sysfs entry at all (e.g. /sys not mounted in the container).
            mount(41, (7, 2), "/", "/b", "ext4"),
        ];
        let got = read_for(&table, dir.path());
        assert!(got.filesystems.is_empty());
        assert_eq!(got.unreadable.len(), 2, "{:?}", got.unreadable);
        assert!(got.unreadable[0].contains("not a number"), "{:?}", got.unreadable);
        assert!(got.unreadable[1].starts_with("/b (/dev/x2)"), "{:?}", got.unreadable);
    }

    #[test]
    fn past_the_limit_filesystems_are_counted_as_dropped() {
        let dir = FakeSysfs::new("limit");
        let table: Vec<_> = (0..LIMIT as u32 + 2)
            .map(|i| {
                sysfs_with(dir.path(), (7, i), &format!("loop{i}"), "0", "0");
                mount(100 + i, (7, i), "/", &format!("/m/{i:03}"), "ext4")
            })
            .collect();
        let got = read_for(&table, dir.path());
        assert_eq!(got.filesystems.len(), LIMIT);
        assert_eq!(got.dropped, 2);
    }
}
