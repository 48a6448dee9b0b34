//! The I/O half: expand a group's globs with `read_dir` and one `lstat` per
//! matched name. Log files are never opened (a FIFO would block the walk) and
//! no directory tree is summed beyond what the glob names.
//!
//! **Mounts are not crossed.** A directory reached by a wildcard (`*`, `?`,
//! `[..]`, `**`) is entered only if it is on the same mount as the directory
//! it was listed from: not a mountpoint in the mount table (checked before any
//! call touches it, so a hung NFS or FUSE mount under `/var/log` never blocks
//! the `/var/log/**` walk, and a bind mount of the same filesystem is not
//! walked twice) and with the same `st_dev` (for mounts the table does not
//! show, or reached through a symlinked path the table does not name; a bind
//! mount of the same filesystem then goes unnoticed). The parts of a glob
//! spelled out literally may cross: a glob that starts on a mount walks it.
//! What was left out counts as `mountpoint`.
//!
//! The one file opened is a Docker container's `config.v2.json`, and only
//! after `stat` says it is a regular file (a FIFO of that name would block).
//!
//! Each group's walk runs offloaded on its own key (see `mod.rs`), so a call
//! stuck on a hung mount blocks only that group's walk, never the runtime.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::fs::{self, FileType, Metadata};
use std::io::{ErrorKind, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::glob::{Glob, Part, matches};
use super::track::Observed;

/// `**` descends at most this deep: a bound on work, not a practical limit.
const MAX_DEPTH: usize = 32;
/// config.v2.json is a few KiB; anything much bigger is not read.
const MAX_CONFIG_BYTES: u64 = 4 << 20;
/// Open flags for config.v2.json: never wait for a writer, never take a terminal.
const NONBLOCK_NOCTTY: i32 =
    rustix::fs::OFlags::NONBLOCK.bits() as i32 | rustix::fs::OFlags::NOCTTY.bits() as i32;

/// Why a matched name was left out; label values of `sentinel_log_skipped_entries`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Skip {
    /// A symlink whose target does not exist.
    DanglingSymlink,
    /// A FIFO, socket or device (never opened).
    NotRegular,
    /// A directory that could not be listed.
    UnreadableDir,
    /// lstat/stat failed for another reason.
    StatFailed,
    /// A mountpoint (or a directory on another device) reached by a
    /// wildcard: the walk does not cross into other mounts.
    Mountpoint,
}

impl Skip {
    pub const ALL: [Skip; 5] = [
        Skip::DanglingSymlink,
        Skip::NotRegular,
        Skip::UnreadableDir,
        Skip::StatFailed,
        Skip::Mountpoint,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Skip::DanglingSymlink => "dangling_symlink",
            Skip::NotRegular => "not_regular",
            Skip::UnreadableDir => "unreadable_dir",
            Skip::StatFailed => "stat_failed",
            Skip::Mountpoint => "mountpoint",
        }
    }
}

/// What one walk of one group found.
#[derive(Debug, Default)]
pub struct Scan {
    /// Regular files, deduplicated by (dev, inode), at most the cap.
    pub files: Vec<Observed>,
    /// Regular files (or symlinks) matched beyond the cap.
    pub dropped: u64,
    pub skipped: HashMap<Skip, u64>,
    /// The walk stopped at its deadline; `files` is incomplete.
    pub timed_out: bool,
    /// Monotonic time (`trend::now`) at the end of the walk: the files' sizes are as of then.
    pub t: f64,
}

/// Limits of one walk.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_files: usize,
    pub deadline: Instant,
}

/// The mountpoints of the mount table, as paths seen from this process
/// (under `--path.rootfs`): directories a wildcard does not enter.
#[derive(Debug, Default)]
pub struct Mountpoints {
    points: HashSet<PathBuf>,
    /// Directories holding a mountpoint: only their entries are looked up.
    parents: HashSet<PathBuf>,
}

impl Mountpoints {
    pub fn new(points: impl IntoIterator<Item = PathBuf>) -> Self {
        let points: HashSet<PathBuf> = points.into_iter().collect();
        let parents = points
            .iter()
            .filter_map(|p| p.parent().map(Path::to_path_buf))
            .collect();
        Mountpoints { points, parents }
    }

    fn holds_any(&self, dir: &Path) -> bool {
        self.parents.contains(dir)
    }

    fn contains(&self, path: &Path) -> bool {
        self.points.contains(path)
    }
}

/// Walk every glob of a group. `rootfs` re-roots the host paths in the globs;
/// observed paths are reported as the host sees them.
pub fn scan_group(globs: &[Glob], rootfs: &Path, mounts: &Mountpoints, limits: &Limits) -> Scan {
    let mut w = Walker {
        rootfs,
        mounts,
        limits,
        scan: Scan::default(),
        seen: HashSet::new(),
    };
    for glob in globs {
        let base = rootfs.join(glob.base.strip_prefix("/").unwrap_or(&glob.base));
        // The base is spelled out by the glob: whatever mount it is on is walked.
        w.walk(&base, None, &glob.parts, 0);
        if w.scan.timed_out {
            break;
        }
    }
    w.scan.t = crate::trend::now();
    w.scan
}

struct Walker<'a> {
    rootfs: &'a Path,
    mounts: &'a Mountpoints,
    limits: &'a Limits,
    scan: Scan,
    seen: HashSet<(u64, u64)>,
}

struct Entry {
    name: OsString,
    ft: Option<FileType>,
    /// A mountpoint per the mount table: never touched.
    mountpoint: bool,
}

impl Entry {
    fn is_dir(&self) -> bool {
        self.ft.is_some_and(|ft| ft.is_dir())
    }
}

impl Walker<'_> {
    fn skip(&mut self, why: Skip) {
        *self.scan.skipped.entry(why).or_default() += 1;
    }

    fn expired(&mut self) -> bool {
        if !self.scan.timed_out && Instant::now() >= self.limits.deadline {
            self.scan.timed_out = true;
        }
        self.scan.timed_out
    }

    /// Entries of `dir`, sorted by name so the cap cuts the same files every round.
    /// None if it cannot be listed (a missing directory is not an error).
    fn list(&mut self, dir: &Path) -> Option<Vec<Entry>> {
        let rd = match fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
                return None;
            }
            Err(_) => {
                self.skip(Skip::UnreadableDir);
                return None;
            }
        };
        let has_mounts = self.mounts.holds_any(dir);
        let mut entries = Vec::new();
        for entry in rd {
            match entry {
                Ok(e) => {
                    // file_type() comes from readdir's d_type, but falls back
                    // to an lstat where the filesystem gives none: a lstat of
                    // a hung mount's root would block, so a mountpoint is not asked.
                    let mountpoint = has_mounts && self.mounts.contains(&e.path());
                    entries.push(Entry {
                        ft: if mountpoint { None } else { e.file_type().ok() },
                        name: e.file_name(),
                        mountpoint,
                    })
                }
                Err(_) => {
                    self.skip(Skip::UnreadableDir);
                    break;
                }
            }
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Some(entries)
    }

    /// `dir` is on device `dev` if known; None when the glob spelled it out
    /// (it is looked up only if a wildcard below needs it).
    fn walk(&mut self, dir: &Path, dev: Option<u64>, parts: &[Part], depth: usize) {
        let Some((part, rest)) = parts.split_first() else {
            return;
        };
        if self.expired() {
            return;
        }
        match part {
            Part::Literal(name) => {
                let path = dir.join(name);
                if rest.is_empty() {
                    self.consider(&path, None);
                } else {
                    self.walk(&path, None, rest, depth);
                }
            }
            Part::Pattern(pat) => {
                let Some(entries) = self.list(dir) else {
                    return;
                };
                let mut dev = dev;
                self.match_entries(dir, &mut dev, &entries, pat, rest, depth);
            }
            Part::AnyDirs => {
                let Some(entries) = self.list(dir) else {
                    return;
                };
                let mut dev = dev;
                // Zero directories: the rest of the pattern applies here. A
                // pattern right after `**` reuses this listing.
                match rest.first() {
                    Some(Part::Pattern(pat)) => {
                        self.match_entries(dir, &mut dev, &entries, pat, &rest[1..], depth);
                    }
                    _ => self.walk(dir, dev, rest, depth),
                }
                if depth >= MAX_DEPTH {
                    return;
                }
                for e in &entries {
                    if self.expired() {
                        return;
                    }
                    // Symlinked directories are not followed: no loops.
                    if e.mountpoint || e.is_dir() {
                        let child = dir.join(&e.name);
                        if let Some(child_dev) = self.enter(dir, &mut dev, &child, e) {
                            self.walk(&child, Some(child_dev), parts, depth + 1);
                        }
                    }
                }
            }
        }
    }

    fn match_entries(
        &mut self,
        dir: &Path,
        dev: &mut Option<u64>,
        entries: &[Entry],
        pat: &[u8],
        rest: &[Part],
        depth: usize,
    ) {
        for e in entries {
            if !matches(pat, e.name.as_bytes()) {
                continue;
            }
            let path = dir.join(&e.name);
            if rest.is_empty() {
                // A mountpoint as the last part is a directory (or a file
                // bind mount): nothing to count, and not touched.
                if !e.mountpoint {
                    self.consider(&path, e.ft);
                }
            } else if (e.mountpoint || e.is_dir())
                && let Some(child_dev) = self.enter(dir, dev, &path, e)
            {
                self.walk(&path, Some(child_dev), rest, depth + 1);
            }
            if self.expired() {
                return;
            }
        }
    }

    /// Whether a wildcard may descend from `parent` (on `parent_dev`, looked
    /// up once if not known) into its subdirectory `child`: only on the same
    /// mount. Returns the child's device.
    fn enter(
        &mut self,
        parent: &Path,
        parent_dev: &mut Option<u64>,
        child: &Path,
        entry: &Entry,
    ) -> Option<u64> {
        if entry.mountpoint {
            self.skip(Skip::Mountpoint);
            return None;
        }
        let parent_dev = match *parent_dev {
            Some(dev) => dev,
            None => match fs::metadata(parent) {
                Ok(m) => *parent_dev.insert(m.dev()),
                Err(_) => {
                    self.skip(Skip::StatFailed);
                    return None;
                }
            },
        };
        let meta = match fs::symlink_metadata(child) {
            Ok(m) => m,
            Err(e) if e.kind() == ErrorKind::NotFound => return None,
            Err(_) => {
                self.skip(Skip::StatFailed);
                return None;
            }
        };
        if !meta.is_dir() {
            // Replaced since readdir.
            return None;
        }
        if meta.dev() != parent_dev {
            // A mount the table did not show (unreadable, or mounted since).
            self.skip(Skip::Mountpoint);
            return None;
        }
        Some(parent_dev)
    }

    /// A name that matched the whole glob: keep it if it is a regular file.
    fn consider(&mut self, path: &Path, ft: Option<FileType>) {
        if ft.is_some_and(|ft| ft.is_dir()) {
            return;
        }
        if self.scan.files.len() >= self.limits.max_files {
            // Over the cap: counted from readdir's type alone, never stat'ed.
            if ft.is_none_or(|ft| ft.is_file() || ft.is_symlink()) {
                self.scan.dropped += 1;
            }
            return;
        }
        let meta = match fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == ErrorKind::NotFound => return, // gone since readdir
            Err(_) => return self.skip(Skip::StatFailed),
        };
        let meta = if meta.file_type().is_symlink() {
            // stat follows the link without opening the target.
            match fs::metadata(path) {
                Ok(m) => m,
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    return self.skip(Skip::DanglingSymlink);
                }
                Err(_) => return self.skip(Skip::StatFailed),
            }
        } else {
            meta
        };
        if meta.is_dir() {
            return;
        }
        if !meta.is_file() {
            return self.skip(Skip::NotRegular);
        }
        self.keep(path, &meta);
    }

    fn keep(&mut self, path: &Path, meta: &Metadata) {
        // Hard links and symlinks to a file already counted are one file.
        if !self.seen.insert((meta.dev(), meta.ino())) {
            return;
        }
        self.scan.files.push(Observed {
            path: host_path(self.rootfs, path),
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
        });
    }
}

/// `path` (under `rootfs`) as the host sees it.
pub fn host_path(rootfs: &Path, path: &Path) -> String {
    match path.strip_prefix(rootfs) {
        Ok(rel) => format!("/{}", rel.to_string_lossy()),
        Err(_) => path.to_string_lossy().into_owned(),
    }
}

/// The container ID if `host_path` is a Docker json-file log
/// (`.../<id>/<id>-json.log`, id 64 hex digits).
pub fn container_id(host_path: &str) -> Option<&str> {
    let (dir, file) = host_path.rsplit_once('/')?;
    let id = file.strip_suffix("-json.log")?;
    let parent = dir.rsplit('/').next()?;
    (parent == id && id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
}

/// mtime (ns) of a container's config.v2.json, to notice `docker rename`.
pub fn config_mtime(container_dir: &Path) -> Option<i128> {
    let m = fs::metadata(container_dir.join("config.v2.json")).ok()?;
    Some(i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()))
}

/// Read a container's name from its config.v2.json. This is the daemon's own
/// on-disk state, so it works while the daemon hangs.
///
/// Opened only once `stat` says it is a regular file: opening a FIFO blocks
/// until a writer comes, and opening a device can act on it. O_NONBLOCK
/// covers a swap between the stat and the open, and the open file is checked
/// to be the one stat'ed.
pub fn read_container_name(container_dir: &Path) -> Option<String> {
    let path = container_dir.join("config.v2.json");
    let before = fs::metadata(&path).ok()?;
    if !before.is_file() || before.len() > MAX_CONFIG_BYTES {
        return None;
    }
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(NONBLOCK_NOCTTY)
        .open(&path)
        .ok()?;
    let opened = file.metadata().ok()?;
    if !opened.is_file() || (opened.dev(), opened.ino()) != (before.dev(), before.ino()) {
        return None;
    }
    let mut buf = Vec::new();
    file.take(MAX_CONFIG_BYTES).read_to_end(&mut buf).ok()?;
    parse_container_name(&buf)
}

/// The `Name` field of config.v2.json, without Docker's leading `/`.
pub fn parse_container_name(json: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(json).ok()?;
    let name = v.get("Name")?.as_str()?.trim_start_matches('/');
    (!name.is_empty()).then(|| name.to_string())
}

/// A container's directory under `rootfs` for its json log's host path.
pub fn container_dir(rootfs: &Path, host_log_path: &str) -> PathBuf {
    let dir = Path::new(host_log_path)
        .parent()
        .unwrap_or(Path::new("/"))
        .to_path_buf();
    rootfs.join(dir.strip_prefix("/").unwrap_or(&dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::logs::glob::parse_glob;
    use std::time::Duration;

    /// A scratch directory, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(tag: &str) -> Scratch {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos();
            let dir = std::env::temp_dir().join(format!(
                "sentinel-walk-{tag}-{}-{nanos}",
                std::process::id()
            ));
            fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }

        fn file(&self, rel: &str, bytes: usize) -> PathBuf {
            let p = self.0.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, vec![b'x'; bytes]).unwrap();
            p
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn scan(glob: &str, mounts: &Mountpoints) -> Scan {
        let limits = Limits {
            max_files: 1000,
            deadline: Instant::now() + Duration::from_secs(30),
        };
        scan_group(
            &[parse_glob(glob).unwrap()],
            Path::new("/"),
            mounts,
            &limits,
        )
    }

    fn found(scan: &Scan) -> Vec<String> {
        let mut paths: Vec<String> = scan.files.iter().map(|f| f.path.clone()).collect();
        paths.sort();
        paths
    }

    fn skipped(scan: &Scan, why: Skip) -> u64 {
        scan.skipped.get(&why).copied().unwrap_or(0)
    }

    #[test]
    fn wildcards_do_not_enter_a_mountpoint_but_a_glob_starting_on_it_walks_it() {
        let d = Scratch::new("mounts");
        let a = d.file("a/x.log", 3);
        let m = d.file("m/deep/y.log", 5);
        let top = d.file("top.log", 1);
        // The table says m is a mountpoint: nothing under it is touched.
        let mounts = Mountpoints::new([d.0.join("m")]);
        let base = d.0.to_str().unwrap();

        let s = scan(&format!("{base}/**/*"), &mounts);
        let want = |ps: &[&PathBuf]| -> Vec<String> {
            let mut v: Vec<String> = ps.iter().map(|p| p.to_str().unwrap().to_string()).collect();
            v.sort();
            v
        };
        assert_eq!(found(&s), want(&[&a, &top]));
        assert_eq!(skipped(&s, Skip::Mountpoint), 1, "{:?}", s.skipped);

        let s = scan(&format!("{base}/*/*/*.log"), &mounts);
        assert_eq!(found(&s), Vec::<String>::new());
        assert_eq!(skipped(&s, Skip::Mountpoint), 1);

        // Spelled out, the mount is the glob's own: walked.
        let s = scan(&format!("{base}/m/**/*.log"), &mounts);
        assert_eq!(found(&s), want(&[&m]));
        assert_eq!(skipped(&s, Skip::Mountpoint), 0);

        // The false-positive side: with no mountpoint, everything is found.
        let s = scan(&format!("{base}/**/*"), &Mountpoints::default());
        assert_eq!(found(&s), want(&[&a, &m, &top]));
        assert_eq!(skipped(&s, Skip::Mountpoint), 0);
    }

    #[test]
    fn another_device_is_not_entered_even_when_the_table_misses_it() {
        // /dev/pts is its own filesystem (devpts) wherever it exists.
        let (Ok(dev), Ok(pts)) = (fs::metadata("/dev"), fs::metadata("/dev/pts")) else {
            return;
        };
        if dev.dev() == pts.dev() {
            return;
        }
        let s = scan("/dev/*/ptmx", &Mountpoints::default());
        assert!(skipped(&s, Skip::Mountpoint) >= 1, "{:?}", s.skipped);
        assert_eq!(skipped(&s, Skip::NotRegular), 0, "{:?}", s.skipped);
        // Starting on it: /dev/pts/ptmx is reached (and is not a regular file).
        let s = scan("/dev/pts/*", &Mountpoints::default());
        assert_eq!(skipped(&s, Skip::Mountpoint), 0);
        assert!(skipped(&s, Skip::NotRegular) >= 1, "{:?}", s.skipped);
    }

    #[test]
    fn a_fifo_named_config_v2_json_is_not_opened() {
        let d = Scratch::new("fifo");
        let fifo = d.0.join("fifo/config.v2.json");
        fs::create_dir_all(fifo.parent().unwrap()).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let named = d.0.join("named");
        fs::create_dir_all(&named).unwrap();
        fs::write(named.join("config.v2.json"), br#"{"Name":"/web"}"#).unwrap();

        // On a thread, so a regression fails the test instead of hanging it.
        let (tx, rx) = std::sync::mpsc::channel();
        let dirs = (fifo.parent().unwrap().to_path_buf(), named.clone());
        std::thread::spawn(move || {
            let _ = tx.send((
                read_container_name(&dirs.0),
                config_mtime(&dirs.0).is_some(),
                read_container_name(&dirs.1),
            ));
        });
        let (from_fifo, fifo_mtime, from_file) = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("reading a FIFO config.v2.json blocked");
        assert_eq!(from_fifo, None);
        assert!(fifo_mtime, "its mtime comes from stat alone");
        assert_eq!(from_file.as_deref(), Some("web"));
    }

    #[test]
    fn container_ids_from_paths() {
        let id = "a".repeat(64);
        let p = format!("/var/lib/docker/containers/{id}/{id}-json.log");
        assert_eq!(container_id(&p), Some(id.as_str()));
        let other = "b".repeat(64);
        for bad in [
            format!("/x/{other}/{id}-json.log"),
            format!("/x/{id}/{id}-json.log.1"),
            "/x/abc/abc-json.log".to_string(),
            format!("{id}-json.log"),
        ] {
            assert_eq!(container_id(&bad), None, "{bad}");
        }
    }

    #[test]
    fn container_names_from_config() {
        assert_eq!(
            parse_container_name(br#"{"ID":"x","Name":"/web-1","State":{}}"#),
            Some("web-1".into())
        );
        assert_eq!(parse_container_name(br#"{"Name":""}"#), None);
        assert_eq!(parse_container_name(br#"{"Name":3}"#), None);
        assert_eq!(parse_container_name(b"{truncated"), None);
    }

    #[test]
    fn host_paths_strip_the_rootfs() {
        assert_eq!(
            host_path(Path::new("/"), Path::new("/var/log/syslog")),
            "/var/log/syslog"
        );
        assert_eq!(
            host_path(Path::new("/host"), Path::new("/host/var/log/syslog")),
            "/var/log/syslog"
        );
        assert_eq!(
            container_dir(
                Path::new("/host"),
                "/var/lib/docker/containers/x/x-json.log"
            ),
            PathBuf::from("/host/var/lib/docker/containers/x")
        );
    }
}
