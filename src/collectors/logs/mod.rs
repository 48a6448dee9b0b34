//! Logs collector: which log files are eating the disk, how fast, and when
//! the filesystem under them will be full.
//!
//! **Reads**: for each group of `--collector.logs.path GROUP=GLOB`, the
//! directories the glob names (`read_dir`) and one `lstat` per matched name
//! and per directory a wildcard enters (`stat` for a symlink's target),
//! re-rooted under `--path.rootfs`. Log files are never opened, so a FIFO or
//! device matching the glob cannot block the walk; no tree is summed beyond
//! the glob. Also the host's mount table (`PROCFS/1/mountinfo`, see
//! `host::mounts`), statvfs of the filesystems the files live on, and each
//! Docker container's `config.v2.json` (its name; the daemon's own on-disk
//! state, readable while the daemon hangs; opened only once stat'ed as a
//! regular file).
//!
//! **Exports** (contract in METRICS.md, "logs"):
//! `sentinel_log_size_bytes{group}`, `sentinel_log_growth_bytes_per_second{group}`,
//! `sentinel_log_file_growth_bytes_per_second{group,path[,container]}` (top-N only;
//! `container` from a Docker json log's config.v2.json, or `namespace`, `pod`
//! and `container` from a kubelet pod log's path, see
//! [`podlogs::names`](crate::collectors::kubelet::podlogs::names)),
//! `sentinel_log_rotations_total{group}`,
//! `sentinel_log_seconds_until_filesystem_full{group,mountpoint}`; also
//! `sentinel_log_written_bytes_total{group}` (the counter behind the growth)
//! `sentinel_log_capped{group}` (1 while held at a size cap, see below)
//! and, to see what the walk left out: `sentinel_log_files{group}`,
//! `sentinel_log_files_dropped{group}` (over `--collector.logs.max-files`,
//! also added to `sentinel_series_dropped`),
//! `sentinel_log_skipped_entries{group,reason}` (reasons that occurred), `sentinel_log_walk_timed_out{group}`,
//! `sentinel_log_walk_hung{group}`, `sentinel_log_mount_table_unreadable`.
//!
//! **Privileges**: read and search permission on the log directories (root
//! on a real node: /var/log/journal and /var/lib/docker are root-only).
//!
//! **Rules and their limits**
//! - Groups are independent: a file matched by two groups counts in both (the
//!   default `varlog=/var/log/**/*` includes the journal; do not sum groups).
//!   Globs of the same GROUP given twice are unioned; within a group a file
//!   is counted once by (device, inode), whatever its names.
//! - Bytes written (`sentinel_log_written_bytes_total`, gross) are tracked
//!   per (device, inode), never a size difference: rotation, copytruncate
//!   and deletion never give a negative rate or a spike. Growth and time
//!   until full are the group's *net* growth: the robust trend of its
//!   total size ([`crate::trend`]: Theil–Sen over the window, or over its
//!   newest samples once a sustained growth is confirmed there), so old
//!   generations deleted by a cap count against the writes. A group whose total keeps falling back below its high-water
//!   mark is held at a cap: its growth is 0 and its time until full
//!   +Inf, even when its rotation period is longer than the window. The
//!   net view only sees generations the glob matches: with `*.log`, a
//!   rename to `app.log.1` leaves the group, so the group reads as held
//!   even if nothing is ever deleted (match `*.log*` to see them). See
//!   `track.rs` for the rules and the one blind spot (bytes a new file held
//!   when first seen).
//! - `sentinel_log_rotations_total` counts a growing file being renamed within
//!   the group, truncated, or replaced at its path by a new file after it
//!   vanished (deleted or renamed out of the glob) within the window, the
//!   same round included.
//! - Per-file growth is the written bytes over the trend window under the
//!   file's current path (a renamed file starts over, so `syslog.1` does not
//!   carry syslog's rate); files get a series once a tenth of the window is
//!   covered, like the group rate, and only if they grew between more than
//!   one pair of samples (one jump is a copy caught half done, not a writer).
//! - At most `--collector.logs.max-files` files per group are stat'ed (names
//!   sorted per directory, so the same ones every round); the rest are
//!   counted from readdir alone. Symlinked directories are not followed.
//! - Wildcards do not cross mounts (`find -xdev`): a mountpoint under a
//!   group's tree, say an NFS `/var/log/remote` under `/var/log/**`, is not
//!   entered, not even stat'ed, and counts as skipped (`reason="mountpoint"`).
//!   A glob that starts on a mount (`remote=/var/log/remote/**/*`) walks it.
//!   See `walk.rs`.
//!
//! **Hung mounts** (F24, F25). Every blocking call runs offloaded
//! (`host::offload`): each group's walk (one key per group: at most one walk,
//! and one stuck thread, per group), and through `host::statfs` the mountinfo
//! read and the statvfs calls (keyed by mount identity). The groups are walked concurrently and independently. Each round
//! waits for the walks up to ~half the interval; a walk answering later
//! leaves its result for the next round, so a slow tree is one round late,
//! never lost. A walk stops itself at its deadline (half the scheduler's
//! budget, `sentinel_log_walk_timed_out`); one still running two seconds past
//! it is stuck in a call (a stat on a hung mount under its glob):
//! `sentinel_log_walk_hung{group}` is 1 and the group's other series keep the
//! values of its last complete walk, while every other group updates as
//! usual. The round itself succeeds. When the call returns, the group's next
//! walk starts. The mountinfo read waits a fifth of the interval; while it
//! fails or hangs the last table read is used and
//! `sentinel_log_mount_table_unreadable` is 1 (F17: with no table at all the
//! until-full series are absent and only `st_dev` keeps walks on their mount).

pub mod glob;
mod track;
mod walk;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::collector::{CollectError, Collection, Collector, FailureLog};
use crate::collectors::kubelet::podlogs;
use crate::host::Paths;
use crate::host::mounts::{self, Mount};
use crate::host::offload::{Offload, Outcome};
use crate::host::statfs::{MountKey, StatGuard, StatOutcome};
use crate::metrics::{Family, Labels, flag};
use crate::trend;
use crate::values::parse_positive_duration;

pub use glob::{GroupGlob, parse_group_glob};
use track::GroupState;
use walk::{Limits, Mountpoints, Scan, Skip};

/// The groups used when no `--collector.logs.path` is given (host paths).
pub const DEFAULT_GROUPS: [&str; 4] = [
    "varlog=/var/log/**/*",
    "journal=/var/log/journal/**/*",
    "docker=/var/lib/docker/containers/*/*-json.log",
    "pods=/var/log/pods/*/*/*.log",
];

/// A walk still running this long past its own deadline is stuck in a call.
const HUNG_AFTER_DEADLINE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Collector: logs")]
#[group(skip)]
pub struct Args {
    /// How often the logs collector stats the matched files.
    #[arg(id = "collector.logs.interval", long = "collector.logs.interval", value_name = "DURATION", default_value = "15s", value_parser = parse_positive_duration)]
    pub interval: Duration,
    /// A log group as GROUP=GLOB, a host path (repeatable; replaces the defaults
    /// varlog=/var/log/**/*, journal=/var/log/journal/**/*,
    /// docker=/var/lib/docker/containers/*/*-json.log,
    /// pods=/var/log/pods/*/*/*.log). `*`, `?`, `[..]` match
    /// within a name, `**` any number of directories.
    #[arg(
        id = "collector.logs.path",
        long = "collector.logs.path",
        value_name = "GROUP=GLOB",
        value_parser = parse_group_glob
    )]
    pub path: Vec<GroupGlob>,
    /// How many fastest-growing files get a per-file series.
    #[arg(
        id = "collector.logs.top-files",
        long = "collector.logs.top-files",
        value_name = "N",
        default_value = "20"
    )]
    pub top_files: usize,
    /// Window of the log growth estimate.
    #[arg(id = "collector.logs.trend-window", long = "collector.logs.trend-window", value_name = "DURATION", default_value = "10m", value_parser = parse_positive_duration)]
    pub trend_window: Duration,
    /// At most this many files per group are tracked; the rest are counted as dropped.
    #[arg(
        id = "collector.logs.max-files",
        long = "collector.logs.max-files",
        value_name = "N",
        default_value = "10000",
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub max_files: u32,
}

/// One group: its name and every glob given for it.
#[derive(Debug, Clone)]
struct GroupSpec {
    name: String,
    globs: Vec<glob::Glob>,
}

/// What one walk of a group hands back: its scan and container names.
#[derive(Debug)]
struct WalkOutput {
    scan: Scan,
    names: HashMap<String, (i128, NameRead)>,
}

/// Where a group's walk leaves its result, whether or not the round that
/// started it still waits: a walk that answers late is used the next round.
#[derive(Debug, Default)]
struct Mailbox {
    /// When the walk now running started.
    running_since: Option<Instant>,
    done: Option<WalkOutput>,
}

/// A container's name as read from its config.v2.json, with that file's mtime.
type NameCache = HashMap<String, (i128, Option<String>)>;

/// One group and everything remembered about it.
struct Group {
    spec: Arc<GroupSpec>,
    state: GroupState,
    /// The latest walk received (also a stopped one), for what it left out.
    last_scan: Option<Scan>,
    names: NameCache,
    mailbox: Arc<Mutex<Mailbox>>,
    /// Its walk has run past its deadline and not returned.
    hung: bool,
    failures: FailureLog,
}

/// The mount table read last, and its mountpoints as seen from here.
struct Table {
    mounts: Vec<Mount>,
    mountpoints: Arc<Mountpoints>,
}

pub struct LogsCollector {
    groups: Vec<Group>,
    paths: Paths,
    top_files: usize,
    max_files: usize,
    interval: Duration,
    /// The groups' walks, keyed by group index.
    walks: Offload<usize>,
    table: Option<Table>,
    table_unreadable: bool,
    table_failures: FailureLog,
    statvfs: StatGuard,
}

impl LogsCollector {
    pub fn new(args: &Args, paths: &Paths) -> Self {
        let given = if args.path.is_empty() {
            DEFAULT_GROUPS
                .iter()
                .filter_map(|g| parse_group_glob(g).ok())
                .collect()
        } else {
            args.path.clone()
        };
        let mut specs: Vec<GroupSpec> = Vec::new();
        for gg in given {
            match specs.iter_mut().find(|s| s.name == gg.group) {
                Some(spec) => spec.globs.push(gg.glob),
                None => specs.push(GroupSpec {
                    name: gg.group,
                    globs: vec![gg.glob],
                }),
            }
        }
        LogsCollector {
            groups: specs
                .into_iter()
                .map(|spec| Group {
                    spec: Arc::new(spec),
                    state: GroupState::new(args.trend_window),
                    last_scan: None,
                    names: HashMap::new(),
                    mailbox: Arc::default(),
                    hung: false,
                    failures: FailureLog::default(),
                })
                .collect(),
            paths: paths.clone(),
            top_files: args.top_files,
            max_files: args.max_files as usize,
            interval: args.interval,
            walks: Offload::new("logs-walk"),
            table: None,
            table_unreadable: false,
            table_failures: FailureLog::default(),
            statvfs: StatGuard::new(),
        }
    }

    /// How long a walk may run before it stops itself: half the scheduler's
    /// budget (max(interval, 10s)), so a big tree gets its time.
    fn walk_deadline(&self) -> Duration {
        self.interval.max(Duration::from_secs(10)) / 2
    }

    /// The mount table, offloaded (F25); on failure the last one read is kept.
    async fn refresh_table(&mut self, timeout: Duration) {
        let error = match self.statvfs.mounts(&self.paths, timeout).await {
            Ok(mounts) => {
                let mountpoints = Mountpoints::new(
                    mounts
                        .iter()
                        // The root is every walk's own mount, never one to skip.
                        .filter(|m| m.mountpoint != "/")
                        .map(|m| self.paths.host(&m.mountpoint)),
                );
                self.table = Some(Table {
                    mounts,
                    mountpoints: Arc::new(mountpoints),
                });
                self.table_unreadable = false;
                self.table_failures.ok("logs");
                return;
            }
            Err(e) => e.to_string(),
        };
        self.table_unreadable = true;
        let detail = if self.table.is_some() {
            format!("{error}; using the last table")
        } else {
            format!("{error}; no mountpoints known, no until-full series")
        };
        self.table_failures.failed("logs", "mountinfo", &detail);
    }

    /// Start (or find still running) every group's walk, concurrently, and
    /// wait for them until `until`.
    async fn walk_all(&self, until: Instant) {
        let mountpoints = self
            .table
            .as_ref()
            .map(|t| t.mountpoints.clone())
            .unwrap_or_default();
        let deadline = self.walk_deadline();
        let timeout = until.saturating_duration_since(Instant::now());
        let walks = self.groups.iter().enumerate().map(|(i, group)| {
            let spec = group.spec.clone();
            let mailbox = group.mailbox.clone();
            let rootfs = self.paths.rootfs.clone();
            let mountpoints = mountpoints.clone();
            let max_files = self.max_files;
            let known: HashMap<String, i128> = group
                .names
                .iter()
                .map(|(id, (m, _))| (id.clone(), *m))
                .collect();
            let walk = move || {
                let started = Instant::now();
                if let Ok(mut m) = mailbox.lock() {
                    m.running_since = Some(started);
                }
                let limits = Limits {
                    max_files,
                    deadline: started + deadline,
                };
                let scan = walk::scan_group(&spec.globs, &rootfs, &mountpoints, &limits);
                let names = if scan.timed_out {
                    HashMap::new()
                } else {
                    read_names(&scan, &rootfs, &known)
                };
                if let Ok(mut m) = mailbox.lock() {
                    m.done = Some(WalkOutput { scan, names });
                    m.running_since = None;
                }
            };
            self.walks.run(i, timeout, walk)
        });
        let outcomes = futures_util::future::join_all(walks).await;
        for (group, outcome) in self.groups.iter().zip(outcomes) {
            if let Outcome::Failed(e) = outcome
                && let Ok(mut m) = group.mailbox.lock()
            {
                // A panicked walk never cleared its start.
                m.running_since = None;
                tracing::warn!(group = group.spec.name, "the walk failed: {e}");
            }
        }
    }
}

/// A container's name as the walk found it.
#[derive(Debug)]
enum NameRead {
    /// config.v2.json has the mtime the cache knows: keep the cached name.
    Unchanged,
    /// Read afresh (None: missing or unreadable).
    Read(Option<String>),
}

/// Names of the containers whose json logs were found; config.v2.json is read
/// again only when its mtime changed (`docker rename`). Containers no longer
/// seen are forgotten by the caller.
fn read_names(
    scan: &Scan,
    rootfs: &Path,
    known: &HashMap<String, i128>,
) -> HashMap<String, (i128, NameRead)> {
    let mut out = HashMap::new();
    for f in &scan.files {
        let Some(id) = walk::container_id(&f.path) else {
            continue;
        };
        if out.contains_key(id) {
            continue;
        }
        let dir = walk::container_dir(rootfs, &f.path);
        let mtime = walk::config_mtime(&dir).unwrap_or(0);
        let read = if known.get(id) == Some(&mtime) {
            NameRead::Unchanged
        } else {
            NameRead::Read(walk::read_container_name(&dir))
        };
        out.insert(id.to_string(), (mtime, read));
    }
    out
}

impl Collector for LogsCollector {
    fn name(&self) -> &'static str {
        "logs"
    }

    async fn collect(&mut self) -> Result<Collection, CollectError> {
        // The round's own share of the interval, split between the three
        // offloaded steps, so that a call stuck on a hung mount delays the
        // healthy groups' series by less than one interval.
        let start = Instant::now();
        let round = self.interval.mul_f64(0.8);
        self.refresh_table(round / 5).await;
        self.walk_all(start + round.mul_f64(0.6)).await;

        let hung_after = self.walk_deadline() + HUNG_AFTER_DEADLINE;
        let mut series_dropped = 0;
        for group in &mut self.groups {
            let (done, running_since) = match group.mailbox.lock() {
                Ok(mut m) => (m.done.take(), m.running_since),
                Err(_) => (None, None),
            };
            group.hung = running_since.is_some_and(|t| t.elapsed() >= hung_after);
            if group.hung {
                group.failures.failed(
                    "logs",
                    "walk_hung",
                    &format!(
                        "the walk of group {} has not returned (a call is stuck, likely on a hung mount under its glob); its series hold the last walk's values",
                        group.spec.name
                    ),
                );
            }
            let Some(mut output) = done else {
                // Still walking: the values of the last walk stand, and what
                // it dropped was counted when it came.
                continue;
            };
            group.failures.ok("logs");
            series_dropped += output.scan.dropped;
            if !output.scan.timed_out {
                // An incomplete scan would read as files vanishing: the state
                // is kept as it was and the timeout reported.
                let files = std::mem::take(&mut output.scan.files);
                series_dropped += group.state.update(output.scan.t, files);
                group.update_names(output.names);
            }
            group.last_scan = Some(output.scan);
        }

        let stat_wait = (start + round).saturating_duration_since(Instant::now());
        let fs = self.filesystems(stat_wait).await;
        let mut collection = Collection::new(self.families(&fs));
        collection.series_dropped = series_dropped;
        Ok(collection)
    }
}

/// Per group, per filesystem: (mountpoint, avail bytes, growth of the group there).
type GroupFilesystems = Vec<Vec<(String, u64, Option<f64>)>>;

impl Group {
    /// Replace the name cache with the containers seen in this walk.
    fn update_names(&mut self, fresh: HashMap<String, (i128, NameRead)>) {
        let mut next = HashMap::new();
        for (id, (mtime, read)) in fresh {
            let name = match read {
                NameRead::Unchanged => self.names.get(&id).and_then(|(_, n)| n.clone()),
                NameRead::Read(name) => name,
            };
            next.insert(id, (mtime, name));
        }
        self.names = next;
    }
}

impl LogsCollector {
    /// statvfs (offloaded) of each filesystem the groups' files live on.
    async fn filesystems(&mut self, timeout: Duration) -> GroupFilesystems {
        let mounts: &[Mount] = self.table.as_ref().map_or(&[], |t| &t.mounts);
        let mut per_group = Vec::new();
        let mut wanted: Vec<(MountKey, PathBuf)> = Vec::new();
        for group in &self.groups {
            let mut fs = Vec::new();
            for (dev, sample_path, growth) in group.state.growth_by_dev() {
                let mount = mounts::mount_for_dev(mounts, dev)
                    .or_else(|| mounts::mount_for(mounts, Path::new(&sample_path)));
                if let Some(m) = mount {
                    let local = self.paths.host(&m.mountpoint);
                    if !wanted.iter().any(|(_, p)| p == &local) {
                        wanted.push((MountKey::from(m), local.clone()));
                    }
                    fs.push((m.mountpoint.clone(), local, growth));
                }
            }
            per_group.push(fs);
        }
        let outcomes = self.statvfs.stat_all(&wanted, timeout).await;
        let avail: HashMap<&PathBuf, u64> = wanted
            .iter()
            .zip(outcomes)
            .filter_map(|((_, p), o)| match o {
                StatOutcome::Ok(u) => Some((p, u.avail_bytes)),
                StatOutcome::Hung | StatOutcome::Failed(_) => None,
            })
            .collect();
        let result = per_group
            .into_iter()
            .map(|fs| {
                // Two devices on one mountpoint (bind mounts) merge their growth.
                let mut merged: BTreeMap<String, (u64, Option<f64>)> = BTreeMap::new();
                for (mp, local, growth) in fs {
                    let Some(&a) = avail.get(&local) else {
                        continue;
                    };
                    let e = merged.entry(mp).or_insert((a, None));
                    e.1 = match (e.1, growth) {
                        (Some(x), Some(y)) => Some(x + y),
                        (x, y) => x.or(y),
                    };
                }
                merged.into_iter().map(|(mp, (a, g))| (mp, a, g)).collect()
            })
            .collect();
        self.statvfs.retain(|k| wanted.iter().any(|(w, _)| w == k));
        result
    }

    fn families(&self, fs: &GroupFilesystems) -> Vec<Family> {
        let mut size = Family::gauge(
            "sentinel_log_size_bytes",
            "Total size of the files matched by the log group.",
        );
        let mut growth = Family::gauge(
            "sentinel_log_growth_bytes_per_second",
            "Net growth of the group's total size per second over the trend window (Theil-Sen; deleted generations count against the writes); 0 while the group is held at a size cap (its total fell back below its high-water mark).",
        );
        let mut file_growth = Family::gauge(
            "sentinel_log_file_growth_bytes_per_second",
            "Bytes written per second over the trend window, for the fastest-growing files only (--collector.logs.top-files); container names Docker json-file logs; namespace, pod and container name kubelet pod logs.",
        );
        let mut rotations = Family::counter(
            "sentinel_log_rotations",
            "Rotations seen: a growing file renamed, truncated, or replaced by a new file.",
        );
        let mut until_full = Family::gauge(
            "sentinel_log_seconds_until_filesystem_full",
            "Available bytes of the filesystem the group's files live on divided by the group's net growth there; +Inf when not growing or held at a size cap.",
        );
        let mut written = Family::counter(
            "sentinel_log_written_bytes",
            "Bytes written to the group's files since the exporter started, gross (rotation-aware; bytes a file held when first seen are not counted; deleted generations are not subtracted).",
        );
        let mut capped = Family::gauge(
            "sentinel_log_capped",
            "1 while the group is held at a size cap: its total fell back below its high-water mark as bytes left it (oldest generations deleted) and has not grown past it since; its net growth is then 0.",
        );
        let mut files = Family::gauge(
            "sentinel_log_files",
            "Regular files tracked in the log group.",
        );
        let mut dropped = Family::gauge(
            "sentinel_log_files_dropped",
            "Files matched by the group beyond --collector.logs.max-files in the latest walk (not stat'ed).",
        );
        let mut skipped = Family::gauge(
            "sentinel_log_skipped_entries",
            "Matched names left out in the latest walk, by reason: dangling_symlink, not_regular (FIFO, socket, device; never opened), unreadable_dir, stat_failed, mountpoint (another mount reached by a wildcard; not entered). Absent for a reason that did not occur.",
        );
        let mut timed_out = Family::gauge(
            "sentinel_log_walk_timed_out",
            "1 if the latest walk of the group stopped at its deadline (the group's values are from the walk before).",
        );
        let mut hung = Family::gauge(
            "sentinel_log_walk_hung",
            "1 while the group's walk runs past its deadline without returning: a call is stuck, likely on a hung mount under its glob. The group's other series hold its last walk's values; other groups are not affected.",
        );
        let mut table = Family::gauge(
            "sentinel_log_mount_table_unreadable",
            "1 if the latest mountinfo read failed or did not answer; the last table read is used (with none, until-full series are absent).",
        );
        table.push(Vec::new(), flag(self.table_unreadable));
        for (i, group) in self.groups.iter().enumerate() {
            let (spec, state) = (&group.spec, &group.state);
            let g = || -> Labels { vec![("group", spec.name.clone())] };
            size.push(g(), state.size() as f64);
            files.push(g(), state.file_count() as f64);
            capped.push(g(), flag(state.held()));
            rotations.push(g(), state.rotations() as f64);
            written.push(g(), state.written() as f64);
            hung.push(g(), flag(group.hung));
            if let Some(rate) = state.growth() {
                growth.push(g(), rate);
            }
            for f in state.top_files(self.top_files) {
                let mut labels = vec![("group", spec.name.clone()), ("path", f.path.clone())];
                if let Some(id) = walk::container_id(&f.path) {
                    let name = group.names.get(id).and_then(|(_, n)| n.clone());
                    labels.push(("container", name.unwrap_or_default()));
                } else if let Some((namespace, pod, container)) = podlogs::names(&f.path) {
                    labels.push(("container", container));
                    labels.push(("namespace", namespace));
                    labels.push(("pod", pod));
                }
                file_growth.push(labels, f.rate);
            }
            for (mountpoint, avail, rate) in fs.get(i).into_iter().flatten() {
                if let Some(rate) = rate {
                    until_full.push(
                        vec![
                            ("group", spec.name.clone()),
                            ("mountpoint", mountpoint.clone()),
                        ],
                        trend::seconds_until_full(*avail as f64, *rate),
                    );
                }
            }
            if let Some(scan) = &group.last_scan {
                dropped.push(g(), scan.dropped as f64);
                timed_out.push(g(), flag(scan.timed_out));
                // Only the reasons that occurred: five zeros a group say nothing.
                for why in Skip::ALL {
                    let n = scan.skipped.get(&why).copied().unwrap_or(0);
                    if n == 0 {
                        continue;
                    }
                    skipped.push(
                        vec![
                            ("group", spec.name.clone()),
                            ("reason", why.label().to_string()),
                        ],
                        n as f64,
                    );
                }
            }
        }
        vec![
            size,
            growth,
            file_growth,
            rotations,
            until_full,
            written,
            capped,
            files,
            dropped,
            skipped,
            timed_out,
            hung,
            table,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        logs: Args,
    }

    #[test]
    fn defaults_and_groups() {
        let cli = Cli::try_parse_from(["x"]).unwrap();
        let c = LogsCollector::new(&cli.logs, &Paths::default());
        let names: Vec<_> = c.groups.iter().map(|g| g.spec.name.as_str()).collect();
        assert_eq!(names, ["varlog", "journal", "docker", "pods"]);
        assert_eq!(c.max_files, 10_000);

        let cli = Cli::try_parse_from([
            "x",
            "--collector.logs.path=app=/srv/a/*.log",
            "--collector.logs.path=app=/srv/b/*.log",
            "--collector.logs.path=web=/srv/w/**",
        ])
        .unwrap();
        let c = LogsCollector::new(&cli.logs, &Paths::default());
        assert_eq!(c.groups.len(), 2);
        assert_eq!(c.groups[0].spec.globs.len(), 2);
    }

    /// The value of `name`'s series with exactly these labels.
    fn value(families: &[Family], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let family = families.iter().find(|f| f.name == name)?;
        family.samples.iter().find_map(|s| {
            let same = s.labels.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.iter().any(|(sk, sv)| sk == k && sv == v));
            match (&s.value, same) {
                (crate::metrics::Value::Number(n), true) => Some(*n),
                _ => None,
            }
        })
    }

    fn scratch(tag: &str, files: usize) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "sentinel-logs-{tag}-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..files {
            std::fs::write(dir.join(format!("{i}.log")), b"line\n").unwrap();
        }
        dir
    }

    #[tokio::test]
    async fn a_walk_answering_after_the_round_is_used_the_next_round() {
        // A 1 ms interval leaves the walks 0.5 ms: most answer after their
        // round has stopped waiting, and their result must still arrive.
        let dir = scratch("late", 300);
        let group = format!("late={}/*.log", dir.display());
        let cli = Cli::try_parse_from([
            "x",
            "--collector.logs.interval=1ms",
            &format!("--collector.logs.path={group}"),
        ])
        .unwrap();
        let mut c = LogsCollector::new(&cli.logs, &Paths::default());
        let mut files = None;
        for _ in 0..2000 {
            let round = c.collect().await.unwrap();
            files = value(&round.families, "sentinel_log_files", &[("group", "late")]);
            if files == Some(300.0) {
                assert_eq!(
                    value(
                        &round.families,
                        "sentinel_log_walk_hung",
                        &[("group", "late")]
                    ),
                    Some(0.0)
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(files, Some(300.0));
    }

    #[tokio::test]
    async fn an_unreadable_mount_table_is_reported_and_the_round_succeeds() {
        let dir = scratch("notable", 2);
        let group = format!("app={}/*.log", dir.display());
        let cli = Cli::try_parse_from(["x", &format!("--collector.logs.path={group}")]).unwrap();
        let paths = Paths {
            procfs: dir.join("no-procfs"),
            ..Paths::default()
        };
        let mut c = LogsCollector::new(&cli.logs, &paths);
        let round = c.collect().await.unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            value(&round.families, "sentinel_log_mount_table_unreadable", &[]),
            Some(1.0)
        );
        assert_eq!(
            value(&round.families, "sentinel_log_files", &[("group", "app")]),
            Some(2.0)
        );
        let readable = LogsCollector::new(&cli.logs, &Paths::default())
            .collect()
            .await
            .unwrap();
        assert_eq!(
            value(
                &readable.families,
                "sentinel_log_mount_table_unreadable",
                &[]
            ),
            Some(0.0)
        );
    }

    #[test]
    fn bad_values_name_the_flag() {
        for bad in [
            "--collector.logs.path=noequals",
            "--collector.logs.path=g=relative/*",
            "--collector.logs.max-files=0",
        ] {
            let err = Cli::try_parse_from(["x", bad]).err().unwrap().to_string();
            let flag = bad.split('=').next().unwrap();
            assert!(err.contains(flag), "{bad}: {err}");
        }
    }
}
