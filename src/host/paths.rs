//! Where the host's procfs, sysfs and root are, as seen from this process, and
//! how a host path becomes one we can open.
//!
//! Two ways to turn a host path into ours, for two kinds of path:
//! - [`Paths::host`] joins the path under `--path.rootfs` and touches nothing.
//!   It is for mountpoints from the host's mount table: those are already
//!   canonical (the kernel prints them resolved), and any lookup on them may
//!   block for as long as a hung FUSE or NFS server does.
//! - [`Paths::resolve`] follows symlinks one by one *inside* the rootfs, as
//!   the host itself would. It is for well-known and user-given paths (the
//!   Docker pidfile, sockets, config files, log-glob bases): on Debian, Ubuntu
//!   and RHEL `/var/run` is the absolute symlink `/run`, and the kernel,
//!   following it from our side of a bind mount, would land in the
//!   *container's* /run.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};

use clap::Args;

/// Symlinks followed in one resolution before giving up, as the kernel's
/// `MAXSYMLINKS`: a loop ends in an error, not a spin.
pub const MAX_SYMLINKS: usize = 40;

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Host paths")]
#[group(skip)]
pub struct Paths {
    /// procfs mountpoint.
    #[arg(long = "path.procfs", value_name = "PATH", default_value = "/proc")]
    pub procfs: PathBuf,
    /// sysfs mountpoint.
    #[arg(long = "path.sysfs", value_name = "PATH", default_value = "/sys")]
    pub sysfs: PathBuf,
    /// Root of the host filesystem (when run in a container with the host mounted).
    #[arg(long = "path.rootfs", value_name = "PATH", default_value = "/")]
    pub rootfs: PathBuf,
}

impl Default for Paths {
    fn default() -> Self {
        Paths {
            procfs: "/proc".into(),
            sysfs: "/sys".into(),
            rootfs: "/".into(),
        }
    }
}

/// Why a host path could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("host path {path} (under {rootfs}): more than {MAX_SYMLINKS} symlinks")]
    TooManySymlinks { path: String, rootfs: PathBuf },
    #[error("host path {path} (under {rootfs}): {at}: {source}")]
    Io {
        path: String,
        rootfs: PathBuf,
        /// The component that failed, as seen from this process.
        at: PathBuf,
        source: std::io::Error,
    },
}

impl ResolveError {
    /// The I/O error kind, if the failure was I/O (`NotFound` for a missing
    /// directory on the way, `PermissionDenied`, `NotADirectory`...).
    pub fn io_kind(&self) -> Option<ErrorKind> {
        match self {
            ResolveError::Io { source, .. } => Some(source.kind()),
            ResolveError::TooManySymlinks { .. } => None,
        }
    }
}

impl Paths {
    /// A host path as seen from this process: `path` joined under
    /// `--path.rootfs`, lexically, without touching the filesystem. Use it
    /// for mountpoints from the mount table (canonical already, and a lookup
    /// on a hung mount blocks); use [`Paths::resolve`] for anything else.
    pub fn host(&self, path: &str) -> PathBuf {
        self.rootfs.join(path.trim_start_matches('/'))
    }

    /// A host path resolved the way the host resolves it, symlink by symlink,
    /// inside `--path.rootfs`: an absolute target starts again at the rootfs,
    /// `..` never climbs above it, at most [`MAX_SYMLINKS`] links are
    /// followed. The final component may be missing (a pidfile or socket not
    /// created yet); a missing directory on the way is an error of kind
    /// `NotFound`. A relative `path` is taken from the host's root.
    ///
    /// Each component gets one `lstat`, so never call this on a path that
    /// may cross a hung mount when blocking matters more than symlinks
    /// (mountpoints from the mount table: see [`Paths::host`]).
    pub fn resolve(&self, path: &str) -> Result<PathBuf, ResolveError> {
        let mut todo: VecDeque<OsString> = VecDeque::new();
        push_front(&mut todo, Path::new(path));
        // The components below the rootfs resolved so far: never a symlink.
        let mut done: Vec<OsString> = Vec::new();
        let mut hops = 0;
        while let Some(name) = todo.pop_front() {
            if name == ".." {
                done.pop();
                continue;
            }
            let here = self.under(&done).join(&name);
            match std::fs::symlink_metadata(&here) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    hops += 1;
                    if hops > MAX_SYMLINKS {
                        return Err(ResolveError::TooManySymlinks {
                            path: path.to_string(),
                            rootfs: self.rootfs.clone(),
                        });
                    }
                    let target =
                        std::fs::read_link(&here).map_err(|e| self.error(path, here, e))?;
                    if target.has_root() {
                        done.clear();
                    }
                    push_front(&mut todo, &target);
                }
                Ok(meta) => {
                    if !meta.is_dir() && !todo.is_empty() {
                        let e = std::io::Error::from(ErrorKind::NotADirectory);
                        return Err(self.error(path, here, e));
                    }
                    done.push(name);
                }
                Err(e) if e.kind() == ErrorKind::NotFound && todo.is_empty() => done.push(name),
                Err(e) => return Err(self.error(path, here, e)),
            }
        }
        Ok(self.under(&done))
    }

    fn under(&self, components: &[OsString]) -> PathBuf {
        let mut p = self.rootfs.clone();
        p.extend(components);
        p
    }

    fn error(&self, path: &str, at: PathBuf, source: std::io::Error) -> ResolveError {
        ResolveError::Io {
            path: path.to_string(),
            rootfs: self.rootfs.clone(),
            at,
            source,
        }
    }
}

/// Queue `path`'s components ahead of what is left, `..` kept (it is
/// resolved against the physical path, after the symlinks before it), the
/// root and `.` dropped.
fn push_front(todo: &mut VecDeque<OsString>, path: &Path) {
    let parts: Vec<OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect();
    for part in parts.into_iter().rev() {
        todo.push_front(part);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A fixture host tree in a temp dir, and a sentinel outside it that no
    /// resolution may ever reach.
    struct Tree {
        base: PathBuf,
        paths: Paths,
    }

    impl Tree {
        fn new(tag: &str) -> Tree {
            let base =
                std::env::temp_dir().join(format!("sentinel-resolve-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&base);
            let root = base.join("hostroot");
            for d in ["run/docker", "etc", "var/lib/real", "opt/app/conf"] {
                std::fs::create_dir_all(root.join(d)).unwrap();
            }
            std::fs::write(root.join("run/docker/docker.pid"), "42\n").unwrap();
            std::fs::write(root.join("etc/hosts"), "").unwrap();
            // Outside the rootfs: an escape would find these.
            std::fs::create_dir_all(base.join("run/docker")).unwrap();
            std::fs::write(base.join("run/docker/docker.pid"), "666\n").unwrap();
            // Debian's absolute /var/run, a relative one, chains, loops, escapes.
            symlink("/run", root.join("var/run")).unwrap();
            symlink("../var/lib/real", root.join("var/rel")).unwrap();
            symlink("/var/run", root.join("var/chain")).unwrap();
            symlink("loop-b", root.join("loop-a")).unwrap();
            symlink("loop-a", root.join("loop-b")).unwrap();
            symlink("../../../../../run", root.join("var/lib/escape")).unwrap();
            symlink("/etc/hosts", root.join("opt/app/conf/hosts")).unwrap();
            symlink("/nowhere/at/all", root.join("opt/dangling")).unwrap();
            symlink("/run/docker/new.sock", root.join("opt/pending")).unwrap();
            let paths = Paths {
                rootfs: root,
                ..Paths::default()
            };
            Tree { base, paths }
        }

        fn root(&self, rel: &str) -> PathBuf {
            self.paths.rootfs.join(rel)
        }
    }

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.base);
        }
    }

    #[test]
    fn resolves_inside_the_rootfs() {
        let t = Tree::new("table");
        for (host_path, want) in [
            // Debian's /var/run -> /run, re-rooted: the host's /run, not ours.
            ("/var/run/docker/docker.pid", "run/docker/docker.pid"),
            ("var/run/docker/docker.pid", "run/docker/docker.pid"),
            // A missing final component is fine (not created yet).
            ("/var/run/docker/docker.sock", "run/docker/docker.sock"),
            ("/var/run/not-yet", "run/not-yet"),
            ("/var/rel/x", "var/lib/real/x"),
            ("/var/chain/docker/docker.pid", "run/docker/docker.pid"),
            // `..` never climbs above the rootfs, lexically or through a link.
            ("/../../run/docker/docker.pid", "run/docker/docker.pid"),
            ("/var/lib/escape/docker/docker.pid", "run/docker/docker.pid"),
            ("/var/run/../etc/hosts", "etc/hosts"),
            ("/./etc/./hosts", "etc/hosts"),
            ("/opt/app/conf/hosts", "etc/hosts"),
            ("/", ""),
            ("", ""),
        ] {
            let got = t.paths.resolve(host_path).unwrap();
            assert_eq!(got, t.root(want), "{host_path}");
            assert!(got.starts_with(&t.paths.rootfs), "{host_path}: {got:?}");
        }
        // `host` stays lexical: the kernel would follow /var/run out of the rootfs.
        assert_eq!(t.paths.host("/var/run/x"), t.root("var/run/x"));
    }

    #[test]
    fn errors_name_the_path_and_never_escape() {
        let t = Tree::new("errors");
        let e = t.paths.resolve("/loop-a/x").unwrap_err();
        assert!(matches!(e, ResolveError::TooManySymlinks { .. }), "{e}");
        assert!(e.to_string().contains("/loop-a/x"), "{e}");
        // A missing directory on the way, or through a dangling link.
        let e = t.paths.resolve("/var/run/absent/docker.pid").unwrap_err();
        assert_eq!(e.io_kind(), Some(ErrorKind::NotFound), "{e}");
        let e = t.paths.resolve("/opt/dangling/x").unwrap_err();
        assert_eq!(e.io_kind(), Some(ErrorKind::NotFound), "{e}");
        let e = t.paths.resolve("/opt/dangling").unwrap_err();
        assert_eq!(e.io_kind(), Some(ErrorKind::NotFound), "{e}");
        // A link to a file not created yet resolves to where it will be.
        assert_eq!(
            t.paths.resolve("/opt/pending").unwrap(),
            t.root("run/docker/new.sock")
        );
        // A file used as a directory.
        let e = t.paths.resolve("/etc/hosts/x").unwrap_err();
        assert_eq!(e.io_kind(), Some(ErrorKind::NotADirectory), "{e}");
    }

    #[test]
    fn a_plain_root_resolves_like_the_kernel() {
        let paths = Paths::default();
        // `..` applies after the link before it: /proc/self is /proc/PID.
        assert_eq!(
            paths.resolve("/proc/self/..").unwrap(),
            PathBuf::from("/proc")
        );
        let got = paths.resolve("/proc/self/root/etc").unwrap();
        // /proc/self/root is "/": the same answer the kernel gives.
        assert_eq!(got, PathBuf::from("/etc"));
    }
}
