//! Filesystem collector: size, free space, inodes, and how fast each mounted
//! filesystem is filling, with the time until it is full.
//!
//! Reads the host's mount table (see [`crate::host::mounts`]) and calls
//! statvfs on every mount not excluded by
//! `--collector.filesystem.mount-points-exclude` / `fs-types-exclude`. tmpfs is
//! kept on purpose: a full /run takes nodes down too. Network and FUSE
//! filesystems ([`KEPT_FS_TYPES`]) under kubelet pod volumes and Docker
//! volumes ([`KEPT_PATHS`]) are kept even where the mountpoint exclude matches:
//! a hung NFS PV is exactly what must show. Like every mount they count
//! against `--collector.filesystem.max-mounts`, which drops the deepest paths
//! first (and counts them in `sentinel_series_dropped`).
//!
//! Hung mounts (F20, F21, F23, F25). The mountinfo read and every statvfs run
//! offloaded (see [`crate::host::statfs`]), each statvfs keyed by the mount's
//! identity (mount ID and mountpoint). All mounts are stat'ed at once, and the
//! round waits at most `--collector.filesystem.stat-timeout` (and never past
//! its share of the scheduler's budget). A mount that has not answered by then
//! reports `sentinel_filesystem_stat_hung=1` and no other series this round,
//! while every other mount publishes as usual: the round itself does not fail.
//! A mount whose call is still stuck from an earlier round answers "hung" at
//! once, starting no thread. A new mount at the path of a lazily unmounted hung
//! one has a new mount ID: it is stat'ed afresh and starts a fresh history. If
//! the mountinfo read itself hangs or fails, the last table read is used; the
//! round fails only when no table was ever read.
//!
//! Fill rate is the robust slope of used bytes (size − free) over
//! `--collector.filesystem.trend-window` (see [`crate::trend`]): Theil–Sen
//! over the window, or over its newest tenth once a sustained fill is
//! confirmed there, so an abrupt fill reads its rate within ~5 minutes at the
//! defaults while bursts, steps and noise do not. It runs on the monotonic
//! clock (a wall-clock step does not reset it) and is reported once a tenth of
//! the window is covered; until then the rate and time-to-full series are
//! absent. Time until full is avail / rate while filling, +Inf otherwise. A
//! change of size (resize) or of mount identity (remount) restarts the window.
//!
//! Privileges: none beyond reading procfs; root sees mounts other users cannot stat.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use regex::Regex;

use crate::collector::{CollectError, Collection, Collector, ErrorKind, FailureLog};
use crate::host::Paths;
use crate::host::mounts::Mount;
use crate::host::statfs::{MountKey, StatGuard, StatOutcome, Usage};
use crate::metrics::{Family, Labels, flag};
use crate::trend::{self, Trend};
use crate::values::{parse_positive_duration, parse_regex};

/// Pseudo filesystems and container-internal mounts: not where a node runs out of space.
pub const DEFAULT_MOUNT_POINTS_EXCLUDE: &str = r"^/(dev/(pts|mqueue|hugepages)|proc|sys|run/credentials/.+|run/containerd/.+|run/docker/netns/.+|run/netns/.+|var/lib/docker/.+|var/lib/containers/storage/.+|var/lib/kubelet/pods/.+)($|/)";
/// Network and FUSE filesystem types kept under [`KEPT_PATHS`] whatever the
/// mountpoint exclude says: they are the ones that hang.
/// (bindfs and other FUSE daemons run by root mount as plain `fuse`.)
pub const KEPT_FS_TYPES: &str = r"^(nfs4?|cifs|smb3|ceph|glusterfs|fuse|fuse\..+)$";
/// Where pods' and containers' volumes are mounted (kubelet pod volumes, Docker volumes).
pub const KEPT_PATHS: &str = r"^/var/lib/(kubelet/pods/[^/]+/volumes/.+|docker/volumes/.+)";
/// Filesystem types with no space to run out of (tmpfs is deliberately not here).
pub const DEFAULT_FS_TYPES_EXCLUDE: &str = r"^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|efivarfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|ramfs|rpc_pipefs|securityfs|selinuxfs|squashfs|erofs|sysfs|tracefs)$";

#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Collector: filesystem")]
#[group(skip)]
pub struct Args {
    /// How often the filesystem collector samples.
    #[arg(id = "collector.filesystem.interval", long = "collector.filesystem.interval", value_name = "DURATION", default_value = "15s", value_parser = parse_positive_duration)]
    pub interval: Duration,
    /// Window of the fill-rate estimate; a rate is reported once a tenth of it is covered, and a sustained fill is confirmed within its newest tenth.
    #[arg(id = "collector.filesystem.trend-window", long = "collector.filesystem.trend-window", value_name = "DURATION", default_value = "1h", value_parser = parse_positive_duration)]
    pub trend_window: Duration,
    /// Mountpoints to ignore (regex, unanchored). Network and FUSE filesystems (nfs, nfs4, cifs, smb3, ceph, glusterfs, fuse.*) under /var/lib/kubelet/pods/*/volumes/ and /var/lib/docker/volumes/ are kept even where it matches (exclude them by type if need be); they count against max-mounts.
    #[arg(id = "collector.filesystem.mount-points-exclude", long = "collector.filesystem.mount-points-exclude", value_name = "REGEX", default_value = DEFAULT_MOUNT_POINTS_EXCLUDE, value_parser = parse_regex)]
    pub mount_points_exclude: Regex,
    /// Filesystem types to ignore (regex, unanchored).
    #[arg(id = "collector.filesystem.fs-types-exclude", long = "collector.filesystem.fs-types-exclude", value_name = "REGEX", default_value = DEFAULT_FS_TYPES_EXCLUDE, value_parser = parse_regex)]
    pub fs_types_exclude: Regex,
    /// A statvfs unanswered this long marks the mount as hung; every other mount publishes meanwhile. Keep it below the interval for the series of healthy mounts to stay fresh.
    #[arg(id = "collector.filesystem.stat-timeout", long = "collector.filesystem.stat-timeout", value_name = "DURATION", default_value = "5s", value_parser = parse_positive_duration)]
    pub stat_timeout: Duration,
    /// At most this many mounts are reported; the rest are counted in sentinel_series_dropped.
    #[arg(
        id = "collector.filesystem.max-mounts",
        long = "collector.filesystem.max-mounts",
        value_name = "N",
        default_value = "500"
    )]
    pub max_mounts: usize,
}

/// What the latest round saw of one mount, with its fill rates: published
/// for the kubelet collector, so its time until eviction comes from this
/// collector's trend of the same mount, not from a second estimate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MountTrend {
    pub usage: Usage,
    /// Bytes per second, as `sentinel_filesystem_fill_rate_bytes_per_second`.
    pub fill_rate: Option<f64>,
    /// Inodes per second, as `sentinel_filesystem_inodes_fill_rate_per_second`.
    pub inode_rate: Option<f64>,
}

/// The latest round's [`MountTrend`]s by mountpoint (host path).
static PUBLISHED: Mutex<BTreeMap<String, MountTrend>> = Mutex::new(BTreeMap::new());

/// The latest round's view of the mount at `mountpoint`, if it was stat'ed.
pub fn published(mountpoint: &str) -> Option<MountTrend> {
    crate::panics::lock(&PUBLISHED).get(mountpoint).copied()
}

/// Per-mount history for the fill-rate estimates.
struct History {
    size_bytes: u64,
    used_bytes: Trend,
    used_files: Trend,
}

pub struct FilesystemCollector {
    args: Args,
    paths: Paths,
    guard: StatGuard,
    /// Keyed by mount identity: a new mount at the same path starts afresh.
    history: HashMap<MountKey, History>,
    /// The last mount table read, used while a read hangs or fails.
    table: Option<Vec<Mount>>,
    table_failures: FailureLog,
    /// [`KEPT_FS_TYPES`] and [`KEPT_PATHS`] (None only if they failed to
    /// compile, which a unit test rules out).
    kept_types: Option<Regex>,
    kept_paths: Option<Regex>,
}

impl FilesystemCollector {
    pub fn new(args: &Args, paths: &Paths) -> Self {
        FilesystemCollector {
            args: args.clone(),
            paths: paths.clone(),
            guard: StatGuard::new(),
            history: HashMap::new(),
            table: None,
            table_failures: FailureLog::default(),
            kept_types: Regex::new(KEPT_FS_TYPES).ok(),
            kept_paths: Regex::new(KEPT_PATHS).ok(),
        }
    }

    /// The time one round may wait in all: the scheduler's budget
    /// (max(interval, 10s)) less room to publish. Within it the mountinfo read
    /// and then the statvfs calls each wait at most the stat timeout.
    fn round_budget(&self) -> Duration {
        self.args.interval.max(Duration::from_secs(10)).mul_f64(0.8)
    }

    fn excluded(&self, m: &Mount) -> bool {
        if self.args.fs_types_exclude.is_match(&m.fstype) {
            return true;
        }
        self.args.mount_points_exclude.is_match(&m.mountpoint)
            && !(matches(&self.kept_types, &m.fstype) && matches(&self.kept_paths, &m.mountpoint))
    }

    /// Mounts to watch, after exclusions and the cap; returns them and how many the cap cut.
    pub fn select(&self, all: &[Mount]) -> (Vec<Mount>, u64) {
        let mut kept: Vec<Mount> = all.iter().filter(|m| !self.excluded(m)).cloned().collect();
        // Shortest paths first: when the cap bites, / and /var outlive deep bind mounts.
        kept.sort_by(|a, b| {
            a.mountpoint
                .len()
                .cmp(&b.mountpoint.len())
                .then_with(|| a.mountpoint.cmp(&b.mountpoint))
        });
        let dropped = kept.len().saturating_sub(self.args.max_mounts) as u64;
        kept.truncate(self.args.max_mounts);
        (kept, dropped)
    }
}

/// The families this collector exports, filled mount by mount.
struct Families {
    size: Family,
    avail: Family,
    free: Family,
    files: Family,
    files_free: Family,
    readonly: Family,
    fill_rate: Family,
    until_full: Family,
    inode_rate: Family,
    inode_until_full: Family,
    hung: Family,
    error: Family,
}

impl Families {
    fn new() -> Self {
        Families {
            size: Family::gauge(
                "sentinel_filesystem_size_bytes",
                "Filesystem size in bytes (statvfs).",
            ),
            avail: Family::gauge(
                "sentinel_filesystem_avail_bytes",
                "Bytes available to unprivileged users (statvfs).",
            ),
            free: Family::gauge(
                "sentinel_filesystem_free_bytes",
                "Free bytes, including the root reserve (statvfs).",
            ),
            files: Family::gauge("sentinel_filesystem_files", "Inodes in total (statvfs)."),
            files_free: Family::gauge("sentinel_filesystem_files_free", "Free inodes (statvfs)."),
            readonly: Family::gauge(
                "sentinel_filesystem_readonly",
                "1 if the filesystem is mounted read-only.",
            ),
            fill_rate: Family::gauge(
                "sentinel_filesystem_fill_rate_bytes_per_second",
                "Robust slope of used bytes over the trend window (Theil-Sen; over its newest tenth once a sustained fill is confirmed there); positive means filling. Absent until a tenth of the window is covered.",
            ),
            until_full: Family::gauge(
                "sentinel_filesystem_seconds_until_full",
                "Available bytes divided by the fill rate while filling, +Inf otherwise.",
            ),
            inode_rate: Family::gauge(
                "sentinel_filesystem_inodes_fill_rate_per_second",
                "Robust slope of used inodes over the trend window, as for bytes; positive means filling.",
            ),
            inode_until_full: Family::gauge(
                "sentinel_filesystem_inodes_seconds_until_full",
                "Free inodes divided by the inode fill rate while filling, +Inf otherwise.",
            ),
            hung: Family::gauge(
                "sentinel_filesystem_stat_hung",
                "1 while statvfs on this mount has not returned within the stat timeout (hung NFS/FUSE).",
            ),
            error: Family::gauge(
                "sentinel_filesystem_stat_error",
                "1 if statvfs on this mount failed (e.g. permission denied); its other series are absent.",
            ),
        }
    }

    fn into_vec(self) -> Vec<Family> {
        vec![
            self.size,
            self.avail,
            self.free,
            self.files,
            self.files_free,
            self.readonly,
            self.fill_rate,
            self.until_full,
            self.inode_rate,
            self.inode_until_full,
            self.hung,
            self.error,
        ]
    }

    fn add_usage(&mut self, labels: &Labels, mount: &Mount, usage: &Usage, rates: &MountTrend) {
        self.size.push(labels.clone(), usage.size_bytes as f64);
        self.avail.push(labels.clone(), usage.avail_bytes as f64);
        self.free.push(labels.clone(), usage.free_bytes as f64);
        self.files.push(labels.clone(), usage.files as f64);
        self.files_free
            .push(labels.clone(), usage.files_free as f64);
        self.readonly.push(labels.clone(), flag(mount.readonly));
        if let Some(rate) = rates.fill_rate {
            self.fill_rate.push(labels.clone(), rate);
            self.until_full.push(
                labels.clone(),
                trend::seconds_until_full(usage.avail_bytes as f64, rate),
            );
        }
        // Filesystems without a fixed inode table (btrfs, vfat...) report 0 inodes.
        if usage.files > 0
            && let Some(rate) = rates.inode_rate
        {
            self.inode_rate.push(labels.clone(), rate);
            self.inode_until_full.push(
                labels.clone(),
                trend::seconds_until_full(usage.files_free as f64, rate),
            );
        }
    }
}

impl Collector for FilesystemCollector {
    fn name(&self) -> &'static str {
        "filesystem"
    }

    async fn collect(&mut self) -> Result<Collection, CollectError> {
        let deadline = Instant::now() + self.round_budget();
        let table_wait = self.args.stat_timeout.min(self.round_budget() / 2);
        match self.guard.mounts(&self.paths, table_wait).await {
            Ok(table) => {
                self.table_failures.ok("filesystem");
                self.table = Some(table);
            }
            Err(e) if self.table.is_some() => {
                self.table_failures.failed(
                    "filesystem",
                    "mountinfo",
                    &format!("{e}; using the last table"),
                );
            }
            Err(e) => return Err(CollectError::new(ErrorKind::Read, e.to_string())),
        }
        let (selected, dropped) = self.select(self.table.as_deref().unwrap_or_default());
        let targets: Vec<(MountKey, PathBuf)> = selected
            .iter()
            .map(|m| (MountKey::from(m), self.paths.host(&m.mountpoint)))
            .collect();
        // A hung mountinfo read used part of the budget: the stats get what is left.
        let wait = self
            .args
            .stat_timeout
            .min(deadline.saturating_duration_since(Instant::now()));
        let outcomes = self.guard.stat_all(&targets, wait).await;
        self.guard.retain(|k| targets.iter().any(|(t, _)| t == k));
        let mut collection = self.record(trend::now(), &selected, outcomes);
        collection.series_dropped = dropped;
        Ok(collection)
    }
}

fn matches(re: &Option<Regex>, s: &str) -> bool {
    re.as_ref().is_some_and(|re| re.is_match(s))
}

impl FilesystemCollector {
    /// Turn one round of statvfs outcomes at monotonic time `now` (seconds,
    /// see [`trend::now`]) into families, updating the fill-rate history.
    /// Pure apart from `self.history`.
    pub fn record(
        &mut self,
        now: f64,
        selected: &[Mount],
        outcomes: Vec<StatOutcome>,
    ) -> Collection {
        let window = self.args.trend_window;
        let mut families = Families::new();
        let mut published = BTreeMap::new();
        for (mount, outcome) in selected.iter().zip(outcomes) {
            let labels: Labels = vec![
                ("device", mount.device.clone()),
                ("fstype", mount.fstype.clone()),
                ("mountpoint", mount.mountpoint.clone()),
            ];
            families
                .hung
                .push(labels.clone(), flag(matches!(outcome, StatOutcome::Hung)));
            families.error.push(
                labels.clone(),
                flag(matches!(outcome, StatOutcome::Failed(_))),
            );
            let StatOutcome::Ok(usage) = outcome else {
                continue;
            };
            let history = self
                .history
                .entry(MountKey::from(mount))
                .or_insert_with(|| History {
                    size_bytes: usage.size_bytes,
                    used_bytes: Trend::new(window),
                    used_files: Trend::new(window),
                });
            if history.size_bytes != usage.size_bytes {
                history.size_bytes = usage.size_bytes;
                history.used_bytes.reset();
                history.used_files.reset();
            }
            history.used_bytes.push(now, usage.used_bytes() as f64);
            history.used_files.push(now, usage.used_files() as f64);
            let trend = MountTrend {
                usage,
                fill_rate: history.used_bytes.slope(),
                inode_rate: history.used_files.slope(),
            };
            families.add_usage(&labels, mount, &usage, &trend);
            published.insert(mount.mountpoint.clone(), trend);
        }
        *crate::panics::lock(&PUBLISHED) = published;
        self.history.retain(|key, _| {
            selected
                .iter()
                .any(|m| m.id == key.id && m.mountpoint == key.mountpoint)
        });
        Collection::new(families.into_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn args(extra: &[&str]) -> Args {
        let mut argv = vec!["x"];
        argv.extend_from_slice(extra);
        Cli::parse_from(argv).args
    }

    fn mount(mountpoint: &str, fstype: &str) -> Mount {
        Mount {
            dev: (0, 1),
            mountpoint: mountpoint.into(),
            fstype: fstype.into(),
            device: "dev".into(),
            ..Mount::default()
        }
    }

    #[test]
    fn fixed_regexes_compile() {
        assert!(Regex::new(KEPT_FS_TYPES).is_ok());
        assert!(Regex::new(KEPT_PATHS).is_ok());
    }

    #[test]
    fn default_exclusions_keep_real_and_tmpfs_mounts() {
        let c = FilesystemCollector::new(&args(&[]), &Paths::default());
        let all = vec![
            mount("/", "ext4"),
            mount("/run", "tmpfs"),
            mount("/dev/shm", "tmpfs"),
            mount("/boot/efi", "vfat"),
            mount("/mnt/fuse", "fuse.bindfs"),
            mount("/proc", "proc"),
            mount("/sys/fs/cgroup", "cgroup2"),
            mount("/dev", "devtmpfs"),
            mount("/dev/pts", "devpts"),
            mount("/var/lib/docker/overlay2/abc/merged", "overlay"),
            mount("/var/lib/kubelet/pods/uid/volumes/x", "tmpfs"),
            mount("/run/docker/netns/abc", "nsfs"),
        ];
        let (kept, dropped) = c.select(&all);
        let names: Vec<&str> = kept.iter().map(|m| m.mountpoint.as_str()).collect();
        assert_eq!(names, ["/", "/run", "/dev/shm", "/boot/efi", "/mnt/fuse"]);
        assert_eq!(dropped, 0);
    }

    #[test]
    fn network_and_fuse_volumes_under_kubelet_and_docker_are_kept() {
        let c = FilesystemCollector::new(&args(&[]), &Paths::default());
        let pv = "/var/lib/kubelet/pods/u1/volumes/kubernetes.io~csi/pv1/mount";
        let all = vec![
            mount(pv, "nfs4"),
            mount(
                "/var/lib/kubelet/pods/u2/volumes/kubernetes.io~nfs/data",
                "nfs",
            ),
            mount(
                "/var/lib/kubelet/pods/u3/volumes/kubernetes.io~csi/s/mount",
                "cifs",
            ),
            mount(
                "/var/lib/kubelet/pods/u4/volumes/kubernetes.io~csi/c/mount",
                "ceph",
            ),
            mount(
                "/var/lib/kubelet/pods/u5/volumes/kubernetes.io~csi/f/mount",
                "fuse.s3fs",
            ),
            mount(
                "/var/lib/kubelet/pods/u6/volumes/kubernetes.io~csi/b/mount",
                "fuse",
            ),
            mount("/var/lib/docker/volumes/shared/_data", "nfs4"),
            mount("/var/lib/docker/volumes/g/_data", "glusterfs"),
            mount("/var/lib/docker/volumes/smb/_data", "smb3"),
            // Local pseudo and container-internal mounts there stay out.
            mount(
                "/var/lib/kubelet/pods/u1/volumes/kubernetes.io~projected/t",
                "tmpfs",
            ),
            mount("/var/lib/kubelet/pods/u1/volume-subpaths/v/c/0", "ext4"),
            mount(
                "/var/lib/kubelet/pods/u1/volumes/kubernetes.io~empty-dir/e",
                "ext4",
            ),
            mount("/var/lib/docker/overlay2/abc/merged", "overlay"),
            mount("/var/lib/docker/volumes/local/_data", "ext4"),
            mount("/var/lib/docker/containers/abc/mounts/shm", "tmpfs"),
            mount(
                "/var/lib/kubelet/pods/u1/volumes/kubernetes.io~csi/x/mount",
                "fusectl",
            ),
            // Outside those paths, a network type under an excluded path stays out.
            mount("/var/lib/containers/storage/x", "nfs4"),
            mount("/run/netns/x", "nfs4"),
        ];
        let (kept, dropped) = c.select(&all);
        let mut names: Vec<&str> = kept.iter().map(|m| m.mountpoint.as_str()).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "/var/lib/docker/volumes/g/_data",
                "/var/lib/docker/volumes/shared/_data",
                "/var/lib/docker/volumes/smb/_data",
                "/var/lib/kubelet/pods/u1/volumes/kubernetes.io~csi/pv1/mount",
                "/var/lib/kubelet/pods/u2/volumes/kubernetes.io~nfs/data",
                "/var/lib/kubelet/pods/u3/volumes/kubernetes.io~csi/s/mount",
                "/var/lib/kubelet/pods/u4/volumes/kubernetes.io~csi/c/mount",
                "/var/lib/kubelet/pods/u5/volumes/kubernetes.io~csi/f/mount",
                "/var/lib/kubelet/pods/u6/volumes/kubernetes.io~csi/b/mount",
            ]
        );
        assert_eq!(dropped, 0);
        // They count against the cap, and go first: / outlives them.
        let c = FilesystemCollector::new(
            &args(&["--collector.filesystem.max-mounts=2"]),
            &Paths::default(),
        );
        let mut all = all;
        all.push(mount("/", "ext4"));
        let (kept, dropped) = c.select(&all);
        assert_eq!(kept[0].mountpoint, "/");
        assert_eq!((kept.len(), dropped), (2, 8));
        // Excluding the type drops them.
        let c = FilesystemCollector::new(
            &args(&["--collector.filesystem.fs-types-exclude=^(nfs4?|fuse\\..+)$"]),
            &Paths::default(),
        );
        let (kept, _) = c.select(&[mount(pv, "nfs4")]);
        assert!(kept.is_empty());
    }

    #[test]
    fn cap_keeps_the_shortest_mountpoints_and_counts_the_rest() {
        let c = FilesystemCollector::new(
            &args(&["--collector.filesystem.max-mounts=2"]),
            &Paths::default(),
        );
        let (kept, dropped) = c.select(&[
            mount("/a/b/c", "ext4"),
            mount("/", "ext4"),
            mount("/var", "ext4"),
        ]);
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].mountpoint, "/");
        assert_eq!(kept[1].mountpoint, "/var");
        assert_eq!(dropped, 1);
    }

    #[test]
    fn user_excludes_apply() {
        let c = FilesystemCollector::new(
            &args(&[
                "--collector.filesystem.mount-points-exclude=^/data",
                "--collector.filesystem.fs-types-exclude=^xfs$",
            ]),
            &Paths::default(),
        );
        let (kept, _) = c.select(&[
            mount("/data/x", "ext4"),
            mount("/srv", "xfs"),
            mount("/proc", "proc"),
        ]);
        assert_eq!(
            kept.len(),
            1,
            "user flags replace the defaults: /proc is kept"
        );
    }

    #[tokio::test]
    async fn collects_the_root_filesystem() {
        let mut c = FilesystemCollector::new(&args(&[]), &Paths::default());
        let collection = c.collect().await.unwrap();
        let text = crate::metrics::render(&collection.families);
        assert!(
            text.contains("sentinel_filesystem_size_bytes{device="),
            "{text}"
        );
        assert!(text.contains("mountpoint=\"/\"}"), "{text}");
        assert!(text.contains("sentinel_filesystem_stat_hung{"), "{text}");
        assert!(
            !text.contains("sentinel_filesystem_fill_rate"),
            "no rate before a tenth of the window"
        );
    }

    #[test]
    fn a_new_mount_at_the_same_path_starts_a_fresh_history() {
        let mut c = FilesystemCollector::new(
            &args(&["--collector.filesystem.trend-window=100s"]),
            &Paths::default(),
        );
        let usage = |used: u64| Usage {
            size_bytes: 1 << 30,
            free_bytes: (1 << 30) - used,
            avail_bytes: (1 << 30) - used,
            files: 100,
            files_free: 50,
        };
        let old = Mount {
            id: 40,
            ..mount("/mnt/data", "fuse.bindfs")
        };
        let new = Mount {
            id: 41,
            ..mount("/mnt/data", "tmpfs")
        };
        let mut text = String::new();
        for i in 0..20u64 {
            let round = c.record(
                i as f64,
                std::slice::from_ref(&old),
                vec![StatOutcome::Ok(usage(i << 20))],
            );
            text = crate::metrics::render(&round.families);
        }
        assert!(
            text.contains("sentinel_filesystem_fill_rate_bytes_per_second{"),
            "{text}"
        );
        // The old mount hangs, is lazily unmounted, and a new one takes its path.
        c.record(20.0, &[old], vec![StatOutcome::Hung]);
        let round = c.record(21.0, &[new], vec![StatOutcome::Ok(usage(0))]);
        let text = crate::metrics::render(&round.families);
        assert!(text.contains("sentinel_filesystem_stat_hung{device=\"dev\",fstype=\"tmpfs\",mountpoint=\"/mnt/data\"} 0"), "{text}");
        assert!(
            !text.contains("fill_rate_bytes_per_second{"),
            "fresh window: {text}"
        );
        assert_eq!(c.history.len(), 1);
    }

    #[tokio::test]
    async fn an_unreadable_mount_table_falls_back_to_the_last_one() {
        let missing = Paths {
            procfs: "/no/such/procfs".into(),
            ..Paths::default()
        };
        let mut fresh = FilesystemCollector::new(&args(&[]), &missing);
        let err = fresh.collect().await.unwrap_err();
        assert!(err.message.contains("/no/such/procfs"), "{err}");

        let mut c = FilesystemCollector::new(&args(&[]), &Paths::default());
        c.collect().await.unwrap();
        c.paths = missing;
        let text = crate::metrics::render(&c.collect().await.unwrap().families);
        assert!(text.contains("mountpoint=\"/\"}"), "{text}");
    }

    /// The whole output for a fixed mount table and fixed statvfs answers over
    /// time, compared with a golden file. `UPDATE_GOLDEN=1 cargo test` rewrites it;
    /// review the diff.
    #[test]
    fn golden_output() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/filesystem");
        let mountinfo = std::fs::read_to_string(dir.join("mountinfo")).unwrap();
        let mut c = FilesystemCollector::new(
            &args(&["--collector.filesystem.trend-window=100s"]),
            &Paths::default(),
        );
        let (selected, dropped) = c.select(&crate::host::mounts::parse(&mountinfo).unwrap());
        assert_eq!(dropped, 0);
        const GIB: u64 = 1 << 30;
        let usage = |free: u64, files_free: u64, size: u64| Usage {
            size_bytes: size,
            free_bytes: free,
            avail_bytes: free.saturating_sub(GIB / 2),
            files: 1_000_000,
            files_free,
        };
        let mut collection = Collection::default();
        for i in 0..=20u64 {
            let outcomes = selected
                .iter()
                .map(|m| match m.mountpoint.as_str() {
                    // Filling at 10 MiB/s, inodes at 5/s.
                    "/" => StatOutcome::Ok(usage(
                        20 * GIB - i * 10 * 1024 * 1024,
                        900_000 - i * 5,
                        40 * GIB,
                    )),
                    "/dev/shm" => StatOutcome::Ok(usage(GIB, 1000, GIB)),
                    "/mnt/my disk" => StatOutcome::Ok(usage(GIB, 10, 2 * GIB)),
                    "/mnt/nfs" => StatOutcome::Hung,
                    _ => StatOutcome::Failed(std::io::Error::from(
                        std::io::ErrorKind::PermissionDenied,
                    )),
                })
                .collect();
            collection = c.record(1_700_000_000.0 + i as f64, &selected, outcomes);
        }
        crate::metrics::sort_families(&mut collection.families);
        let text = crate::metrics::render(&collection.families);
        let golden = dir.join("golden.txt");
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&golden, &text).unwrap();
        }
        let want = std::fs::read_to_string(&golden).unwrap_or_default();
        assert!(
            text == want,
            "output differs from {}; rerun with UPDATE_GOLDEN=1 and review the diff\n{text}",
            golden.display()
        );
    }
}
