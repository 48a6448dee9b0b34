//! The mount table, from procfs mountinfo, shared by every collector that maps
//! a path or a device to its filesystem (filesystem, logs, deleted files).
//!
//! The table is the host's: `PROCFS/1/mountinfo` (init's mount namespace, as
//! node_exporter reads it), falling back to `PROCFS/self/mountinfo` only when
//! init's is unreadable. Our own namespace can differ from the host's: in the
//! DaemonSet the host root is a read-only bind mount, and under the systemd
//! unit `ProtectSystem=strict` remounts everything read-only for us alone, so
//! read-only-ness is taken from the host's mount options, never from statvfs.

use std::path::{Path, PathBuf};

use crate::host::Paths;

/// One mounted filesystem.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mount {
    /// The mount's ID (field 1): its identity. A new mount at the same path,
    /// after a lazy unmount of a hung one, has a new ID.
    pub id: u32,
    /// The parent mount's ID (field 2).
    pub parent_id: u32,
    /// The path inside the filesystem that is mounted here (field 4): `/` for
    /// a whole filesystem, a subdirectory for a bind mount of a subtree.
    pub root: String,
    /// Device number (major, minor) as in `st_dev` of files on it.
    pub dev: (u32, u32),
    /// Where it is mounted, as the host sees it.
    pub mountpoint: String,
    pub fstype: String,
    /// The mount source (a device path, `tmpfs`, a server export...).
    pub device: String,
    /// The host mounts it read-only (per-mount or superblock option `ro`).
    pub readonly: bool,
    /// The superblock options (after the fstype and source), e.g. an
    /// overlay's `upperdir=`.
    pub super_options: String,
}

impl Mount {
    /// The `st_dev` value of files on this mount.
    pub fn st_dev(&self) -> u64 {
        rustix::fs::makedev(self.dev.0, self.dev.1)
    }

    /// An overlay's writable layer (`upperdir=` of its superblock options),
    /// as a host path; `None` for other filesystems and read-only overlays.
    pub fn overlay_upperdir(&self) -> Option<String> {
        if self.fstype != "overlay" {
            return None;
        }
        // The kernel escapes `,` `=` and blanks inside option values, so a
        // plain split on `,` cannot cut a path.
        self.super_options
            .split(',')
            .find_map(|o| o.strip_prefix("upperdir="))
            .filter(|d| d.starts_with('/'))
            .map(unescape)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MountsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} line {line}: {why}")]
    Parse {
        path: PathBuf,
        line: usize,
        why: &'static str,
    },
}

/// Read and parse the host's mount table (init's, else our own). When a
/// mountpoint is listed more than once (over-mounts), the last entry wins: it
/// is the one path lookups reach.
pub fn read(paths: &Paths) -> Result<Vec<Mount>, MountsError> {
    let init = paths.procfs.join("1/mountinfo");
    let (path, text) = match read_text(&init) {
        Ok(text) => (init, text),
        // Init's table is there but too large or not text: that is the
        // error, not a reason to report ours instead.
        Err(source) if source.kind() == std::io::ErrorKind::InvalidData => {
            return Err(MountsError::Read { path: init, source });
        }
        Err(_) => {
            let own = paths.procfs.join("self/mountinfo");
            match read_text(&own) {
                Ok(text) => (own, text),
                Err(source) => return Err(MountsError::Read { path: init, source }),
            }
        }
    };
    parse(&text).map_err(|(line, why)| MountsError::Parse { path, line, why })
}

/// The most read of a mountinfo file. A node with 10,000 mounts (many pods,
/// each with its volumes and secrets) lists about 2 MB; a larger file is an
/// error naming it, so a lying procfs costs bounded memory.
pub const MOUNTINFO_MAX: u64 = 8 * 1024 * 1024;

fn read_text(path: &Path) -> std::io::Result<String> {
    let bytes = crate::host::procfs::read_bounded(path, MOUNTINFO_MAX)?;
    String::from_utf8(bytes)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))
}

/// Parse mountinfo text; on error, the 1-based line number and why.
pub fn parse(text: &str) -> Result<Vec<Mount>, (usize, &'static str)> {
    let mut mounts: Vec<Mount> = Vec::new();
    // Index by mountpoint: a linear search per line made a large table
    // quadratic in the size of the table.
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mount = parse_line(line).map_err(|why| (i + 1, why))?;
        match index.get(&mount.mountpoint) {
            Some(&at) => mounts[at] = mount,
            None => {
                index.insert(mount.mountpoint.clone(), mounts.len());
                mounts.push(mount);
            }
        }
    }
    Ok(mounts)
}

fn parse_line(line: &str) -> Result<Mount, &'static str> {
    let fields: Vec<&str> = line.split(' ').collect();
    let sep = fields
        .iter()
        .position(|f| *f == "-")
        .ok_or("no ' - ' separator")?;
    if sep < 6 || fields.len() < sep + 3 {
        return Err("too few fields");
    }
    let id = fields[0].parse().map_err(|_| "bad mount ID")?;
    let parent_id = fields[1].parse().map_err(|_| "bad parent ID")?;
    let (major, minor) = fields[2].split_once(':').ok_or("bad major:minor")?;
    let dev = (
        major.parse().map_err(|_| "bad major")?,
        minor.parse().map_err(|_| "bad minor")?,
    );
    let mount_options = fields[5];
    let super_options = fields.get(sep + 3).copied().unwrap_or("");
    // ext4 on 6.x kernels marks an error remount `emergency_ro` in the
    // superblock options, leaving the mount's own `rw`: writes fail all the same.
    let is_ro = |opts: &str| opts.split(',').any(|o| o == "ro" || o == "emergency_ro");
    Ok(Mount {
        id,
        parent_id,
        root: unescape(fields[3]),
        dev,
        mountpoint: unescape(fields[4]),
        fstype: unescape(fields[sep + 1]),
        device: unescape(fields[sep + 2]),
        readonly: is_ro(mount_options) || is_ro(super_options),
        super_options: super_options.to_string(),
    })
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo` octal.
fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        if bytes[i] == b'\\'
            && let Some(d) = octal
        {
            let v =
                u32::from(d[0] - b'0') * 64 + u32::from(d[1] - b'0') * 8 + u32::from(d[2] - b'0');
            if let Ok(v) = u8::try_from(v) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mount a path lives on: the longest mountpoint that is a prefix of it.
pub fn mount_for<'a>(mounts: &'a [Mount], path: &Path) -> Option<&'a Mount> {
    mounts
        .iter()
        .filter(|m| path.starts_with(&m.mountpoint))
        .max_by_key(|m| m.mountpoint.len())
}

/// The mount that really holds the filesystem with this `st_dev`: of all its
/// mounts, one of the whole filesystem (`root` is `/`) before a bind mount of
/// a subtree (kubelet's subPath mounts, Docker volumes), then the shortest
/// mountpoint. So a file on the root disk is labelled `/`, never
/// `/var/lib/kubelet/pods/<uid>/volume-subpaths/...`.
pub fn mount_for_dev(mounts: &[Mount], st_dev: u64) -> Option<&Mount> {
    mounts
        .iter()
        .filter(|m| m.st_dev() == st_dev)
        .min_by_key(|m| (m.root != "/", m.mountpoint.len()))
}

/// An overlay stacked on an overlay on ... is followed this deep at most
/// (Docker in Docker nests two or three); a cycle ends here too.
const MAX_OVERLAY_DEPTH: usize = 8;

/// The mount of the filesystem whose *space* a file with this `st_dev` uses:
/// [`mount_for_dev`], except that an overlay (a container's root: Docker's
/// `/var/lib/docker/overlay2/<id>/merged`, containerd's `.../rootfs`) maps
/// to the filesystem holding its `upperdir=`, where its written files are. A
/// label derived from a container ID would churn with every container and
/// join no filesystem series. `None` when the device is in no mount, or an
/// overlay has no writable layer on a mount in the table.
pub fn backing_mount_for_dev(mounts: &[Mount], st_dev: u64) -> Option<&Mount> {
    let mut mount = mount_for_dev(mounts, st_dev)?;
    for _ in 0..MAX_OVERLAY_DEPTH {
        if mount.fstype != "overlay" {
            return Some(mount);
        }
        let upper = mount.overlay_upperdir()?;
        let holder = mount_for(mounts, Path::new(&upper))?;
        // The upper dir may sit in a subtree bind mount: name the whole filesystem.
        mount = mount_for_dev(mounts, holder.st_dev()).unwrap_or(holder);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fuzz target's corpus (fuzz/corpus/mountinfo, grown by
    /// `cargo +nightly fuzz run mountinfo`), replayed the way the target runs it.
    #[test]
    fn the_fuzz_corpus_replays_without_a_panic() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/mountinfo");
        let mut replayed = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let data = std::fs::read(entry.unwrap().path()).unwrap();
            if let Ok(text) = std::str::from_utf8(&data) {
                let _ = parse(text);
            }
            replayed += 1;
        }
        assert!(
            replayed >= 3,
            "{replayed} corpus files in {}",
            dir.display()
        );
    }

    const SAMPLE: &str = "\
22 1 252:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
24 22 0:5 / /dev rw,nosuid shared:2 - devtmpfs udev rw,size=10m
25 24 0:22 / /dev/shm rw,nosuid,nodev shared:4 - tmpfs tmpfs rw
26 22 0:23 / /mnt/my\\040disk ro,relatime shared:5 - ext4 /dev/vdb1 rw
27 22 0:50 / /var/lib/docker/overlay2/abc/merged rw,relatime - overlay overlay rw,lowerdir=/x
28 22 0:51 / /mnt/fuse rw,nosuid,nodev,relatime shared:9 - fuse.bindfs bindfs rw,user_id=0
29 25 0:52 / /dev/shm rw,nosuid,nodev shared:6 - tmpfs tmpfs rw,size=1024k
";

    #[test]
    fn parses_fields_escapes_and_readonly() {
        let mounts = parse(SAMPLE).unwrap();
        let disk = mounts
            .iter()
            .find(|m| m.mountpoint == "/mnt/my disk")
            .unwrap();
        assert_eq!(disk.fstype, "ext4");
        assert_eq!(disk.device, "/dev/vdb1");
        assert!(disk.readonly);
        assert_eq!(disk.dev, (0, 23));
        let root = &mounts[0];
        assert_eq!((root.mountpoint.as_str(), root.readonly), ("/", false));
        let fuse = mounts.iter().find(|m| m.mountpoint == "/mnt/fuse").unwrap();
        assert_eq!(fuse.fstype, "fuse.bindfs");
    }

    #[test]
    fn over_mounts_keep_the_last_entry() {
        let mounts = parse(SAMPLE).unwrap();
        let shm: Vec<_> = mounts
            .iter()
            .filter(|m| m.mountpoint == "/dev/shm")
            .collect();
        assert_eq!(shm.len(), 1);
        assert_eq!(shm[0].dev, (0, 52));
    }

    #[test]
    fn an_ext4_error_remount_reads_readonly() {
        let mounts = parse(
            "30 22 7:0 / /mnt/img rw,relatime - ext4 /dev/loop0 rw,emergency_ro,errors=remount-ro\n",
        )
        .unwrap();
        assert!(mounts[0].readonly);
    }

    #[test]
    fn identity_and_root_fields() {
        let mounts = parse(SAMPLE).unwrap();
        let root = &mounts[0];
        assert_eq!((root.id, root.parent_id, root.root.as_str()), (22, 1, "/"));
        let overlay = mounts.iter().find(|m| m.fstype == "overlay").unwrap();
        assert_eq!(overlay.super_options, "rw,lowerdir=/x");
    }

    #[test]
    fn a_device_maps_to_its_whole_filesystem_mount_not_a_subtree_bind() {
        // kubelet's subPath bind mount of the root disk, listed after `/`.
        let table = "\
22 1 252:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
40 22 252:0 /var/lib/kubelet/pods/u/volumes/v/data /var/lib/kubelet/pods/u/volume-subpaths/v/c/0 rw - ext4 /dev/vda rw
41 22 252:0 / /mnt/again rw - ext4 /dev/vda rw
";
        let mounts = parse(table).unwrap();
        let dev = rustix::fs::makedev(252, 0);
        assert_eq!(mount_for_dev(&mounts, dev).unwrap().mountpoint, "/");
        assert!(mount_for_dev(&mounts, rustix::fs::makedev(1, 1)).is_none());
    }

    /// mountinfo as Docker (overlay2 on a separate /var/lib/docker disk),
    /// containerd (on the root disk, its snapshot dir bind-mounted by a pod's
    /// subPath) and Docker in Docker (an overlay whose upper dir is on another
    /// overlay) leave it.
    const CONTAINERS: &str = "\
22 1 252:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 22 253:0 / /var/lib/docker rw,relatime shared:2 - xfs /dev/vdb rw
40 22 0:50 / /var/lib/docker/overlay2/0123abcd/merged rw,relatime - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/AAA:/var/lib/docker/overlay2/l/BBB,upperdir=/var/lib/docker/overlay2/0123abcd/diff,workdir=/var/lib/docker/overlay2/0123abcd/work
41 22 252:0 /var/lib/containerd/snap /var/lib/kubelet/pods/u/volume-subpaths/v/c/0 rw - ext4 /dev/vda rw
42 22 0:51 / /run/containerd/io.containerd.runtime.v2.task/k8s.io/feed/rootfs rw,relatime - overlay overlay rw,lowerdir=/var/lib/containerd/snap/1/fs,upperdir=/var/lib/containerd/snap/2/fs,workdir=/var/lib/containerd/snap/2/work
43 40 0:52 / /var/lib/docker/overlay2/0123abcd/merged/var/lib/docker/overlay2/inner/merged rw - overlay overlay rw,lowerdir=/x,upperdir=/var/lib/docker/overlay2/0123abcd/merged/var/lib/docker/overlay2/inner/diff,workdir=/w
44 22 0:53 / /mnt/lower-only ro - overlay overlay ro,lowerdir=/a:/b
45 22 0:54 / /mnt/my\\040upper rw - overlay overlay rw,lowerdir=/a,upperdir=/mnt/disk\\054x/up\\040per,workdir=/w
46 22 259:1 / /mnt/disk,x rw - ext4 /dev/vdc rw
";

    #[test]
    fn an_overlay_maps_to_the_filesystem_of_its_upper_dir() {
        let mounts = parse(CONTAINERS).unwrap();
        let dev = |major, minor| rustix::fs::makedev(major, minor);
        let on = |d| backing_mount_for_dev(&mounts, d).map(|m| m.mountpoint.as_str());
        // Docker: the container's writes land on the /var/lib/docker disk.
        assert_eq!(on(dev(0, 50)), Some("/var/lib/docker"));
        // containerd: on the root disk, never the subPath bind of the same disk.
        assert_eq!(on(dev(0, 51)), Some("/"));
        // Docker in Docker: through the outer overlay, to the outer disk.
        assert_eq!(on(dev(0, 52)), Some("/var/lib/docker"));
        // No writable layer, or an escaped upper dir path.
        assert_eq!(on(dev(0, 53)), None);
        assert_eq!(on(dev(0, 54)), Some("/mnt/disk,x"));
        // Not an overlay: as mount_for_dev.
        assert_eq!(on(dev(252, 0)), Some("/"));
        assert_eq!(on(dev(253, 0)), Some("/var/lib/docker"));
        assert_eq!(on(dev(9, 9)), None);
        let escaped = mounts.iter().find(|m| m.dev == (0, 54)).unwrap();
        assert_eq!(
            escaped.overlay_upperdir().as_deref(),
            Some("/mnt/disk,x/up per")
        );
        let disk = mounts.iter().find(|m| m.dev == (253, 0)).unwrap();
        assert_eq!(disk.overlay_upperdir(), None);
    }

    #[test]
    fn an_overlay_cycle_ends() {
        // An overlay whose upper dir is on itself (a corrupt or crafted table).
        let mounts = parse(
            "22 1 252:0 / / rw - ext4 /dev/vda rw\n\
             40 22 0:50 / /o rw - overlay overlay rw,upperdir=/o/up,workdir=/o/w\n",
        )
        .unwrap();
        assert_eq!(
            backing_mount_for_dev(&mounts, rustix::fs::makedev(0, 50)),
            None
        );
    }

    #[test]
    fn bad_lines_are_errors_not_panics() {
        for bad in [
            "garbage",
            "1 2 3",
            "22 1 252:0 / / rw - ext4",
            "22 1 x:0 / / rw shared:1 - ext4 /dev/vda rw",
            "22 1 252 / / rw shared:1 - ext4 /dev/vda rw",
            "- - - - - - -",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(unescape("a\\04"), "a\\04");
        assert_eq!(unescape("tail\\"), "tail\\");
        assert_eq!(unescape("x\\134y"), "x\\y");
    }

    #[test]
    fn longest_prefix_wins() {
        let mounts = parse(SAMPLE).unwrap();
        assert_eq!(
            mount_for(&mounts, Path::new("/dev/shm/x"))
                .unwrap()
                .mountpoint,
            "/dev/shm"
        );
        assert_eq!(
            mount_for(&mounts, Path::new("/var/log/syslog"))
                .unwrap()
                .mountpoint,
            "/"
        );
        assert_eq!(
            mount_for(&mounts, Path::new("/devices"))
                .unwrap()
                .mountpoint,
            "/"
        );
    }
}
