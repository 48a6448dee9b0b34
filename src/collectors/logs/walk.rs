//! The I/O half: expand a group's globs with `read_dir` and one `lstat` per
//! matched name. Files are never opened (a FIFO would block the walk) and no
//! directory tree is summed beyond what the glob names.
//!
//! Runs on its own thread (see `mod.rs`), so a stat stuck on a hung mount
//! never blocks the runtime.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::fs::{self, FileType, Metadata};
use std::io::{ErrorKind, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::glob::{Glob, Part, matches};
use super::track::Observed;

/// `**` descends at most this deep: a bound on work, not a practical limit.
const MAX_DEPTH: usize = 32;
/// config.v2.json is a few KiB; anything much bigger is not read.
const MAX_CONFIG_BYTES: u64 = 4 << 20;

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
}

impl Skip {
    pub const ALL: [Skip; 4] = [
        Skip::DanglingSymlink,
        Skip::NotRegular,
        Skip::UnreadableDir,
        Skip::StatFailed,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Skip::DanglingSymlink => "dangling_symlink",
            Skip::NotRegular => "not_regular",
            Skip::UnreadableDir => "unreadable_dir",
            Skip::StatFailed => "stat_failed",
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
    /// Unix time at the end of the walk (the files' sizes are as of then).
    pub t: f64,
}

/// Limits shared by every group's walk.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_files: usize,
    pub deadline: Instant,
}

/// Walk every glob of a group. `rootfs` re-roots the host paths in the globs;
/// observed paths are reported as the host sees them.
pub fn scan_group(globs: &[Glob], rootfs: &Path, limits: &Limits) -> Scan {
    let mut w = Walker {
        rootfs,
        limits,
        scan: Scan::default(),
        seen: HashSet::new(),
    };
    for glob in globs {
        let base = rootfs.join(glob.base.strip_prefix("/").unwrap_or(&glob.base));
        w.walk(&base, &glob.parts, 0);
        if w.scan.timed_out {
            break;
        }
    }
    w.scan.t = crate::collector::unix_now();
    w.scan
}

struct Walker<'a> {
    rootfs: &'a Path,
    limits: &'a Limits,
    scan: Scan,
    seen: HashSet<(u64, u64)>,
}

struct Entry {
    name: OsString,
    ft: Option<FileType>,
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
        let mut entries = Vec::new();
        for entry in rd {
            match entry {
                // file_type() comes from readdir's d_type: no extra syscall.
                Ok(e) => entries.push(Entry {
                    ft: e.file_type().ok(),
                    name: e.file_name(),
                }),
                Err(_) => {
                    self.skip(Skip::UnreadableDir);
                    break;
                }
            }
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Some(entries)
    }

    fn walk(&mut self, dir: &Path, parts: &[Part], depth: usize) {
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
                    self.walk(&path, rest, depth);
                }
            }
            Part::Pattern(pat) => {
                let Some(entries) = self.list(dir) else {
                    return;
                };
                self.match_entries(dir, &entries, pat, rest, depth);
            }
            Part::AnyDirs => {
                let Some(entries) = self.list(dir) else {
                    return;
                };
                // Zero directories: the rest of the pattern applies here. A
                // pattern right after `**` reuses this listing.
                match rest.first() {
                    Some(Part::Pattern(pat)) => {
                        self.match_entries(dir, &entries, pat, &rest[1..], depth);
                    }
                    _ => self.walk(dir, rest, depth),
                }
                if depth >= MAX_DEPTH {
                    return;
                }
                for e in &entries {
                    // Symlinked directories are not followed: no loops.
                    if e.ft.is_some_and(|ft| ft.is_dir()) {
                        self.walk(&dir.join(&e.name), parts, depth + 1);
                    }
                }
            }
        }
    }

    fn match_entries(
        &mut self,
        dir: &Path,
        entries: &[Entry],
        pat: &[u8],
        rest: &[Part],
        depth: usize,
    ) {
        for e in entries {
            if !matches(pat, e.name.as_bytes()) {
                continue;
            }
            if rest.is_empty() {
                self.consider(&dir.join(&e.name), e.ft);
            } else if e.ft.is_some_and(|ft| ft.is_dir()) {
                self.walk(&dir.join(&e.name), rest, depth + 1);
            }
            if self.expired() {
                return;
            }
        }
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
pub fn read_container_name(container_dir: &Path) -> Option<String> {
    let file = fs::File::open(container_dir.join("config.v2.json")).ok()?;
    if !file.metadata().ok()?.is_file() {
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
