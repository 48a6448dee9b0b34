//! Logs collector: which log files are eating the disk, how fast, and when
//! the filesystem under them will be full.
//!
//! **Reads**: for each group of `--collector.logs.path GROUP=GLOB`, the
//! directories the glob names (`read_dir`) and one `lstat` per matched name
//! (`stat` for a symlink's target), re-rooted under `--path.rootfs`. Files
//! are never opened, so a FIFO or device matching the glob cannot block the
//! walk; no tree is summed beyond the glob. Also `PROCFS/{self,1}/mountinfo`,
//! statvfs of the filesystems the files live on (hang-safe, see `host/statfs.rs`),
//! and each Docker container's `config.v2.json` (its name; the daemon's own
//! on-disk state, readable while the daemon hangs).
//!
//! **Exports** (contract in METRICS.md, "logs"):
//! `sentinel_log_size_bytes{group}`, `sentinel_log_growth_bytes_per_second{group}`,
//! `sentinel_log_file_growth_bytes_per_second{group,path[,container]}` (top-N only),
//! `sentinel_log_rotations_total{group}`,
//! `sentinel_log_seconds_until_filesystem_full{group,mountpoint}`; also
//! `sentinel_log_written_bytes_total{group}` (the counter behind the growth)
//! and, to see what the walk left out: `sentinel_log_files{group}`,
//! `sentinel_log_files_dropped{group}` (over `--collector.logs.max-files`,
//! also added to `sentinel_series_dropped_total`),
//! `sentinel_log_skipped_entries{group,reason}`, `sentinel_log_walk_timed_out{group}`.
//!
//! **Privileges**: read and search permission on the log directories (root
//! on a real node: /var/log/journal and /var/lib/docker are root-only).
//!
//! **Rules and their limits**
//! - Groups are independent: a file matched by two groups counts in both (the
//!   default `varlog=/var/log/**/*` includes the journal; do not sum groups).
//!   Globs of the same GROUP given twice are unioned; within a group a file
//!   is counted once by (device, inode), whatever its names.
//! - Growth is bytes written, tracked per (device, inode), never a size
//!   difference: rotation, copytruncate and deletion never give a negative
//!   rate or a spike. See `track.rs` for the rules and the one blind spot
//!   (bytes a new file held when first seen).
//! - `sentinel_log_rotations_total` counts a growing file being renamed within
//!   the group, truncated, or replaced at its path by a new file after it
//!   vanished (deleted or renamed out of the glob) within the window.
//! - Per-file growth is the written bytes over the trend window; files get a
//!   series once a tenth of the window is covered, like the group rate.
//! - At most `--collector.logs.max-files` files per group are stat'ed (names
//!   sorted per directory, so the same ones every round); the rest are
//!   counted from readdir alone. Symlinked directories are not followed.
//! - The walk runs on its own thread, single-flight: a stat stuck on a hung
//!   mount fails the round ("walk_hung") until it returns, and never piles up.

mod glob;
mod track;
mod walk;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::collector::{CollectError, Collection, Collector};
use crate::host::Paths;
use crate::host::mounts;
use crate::host::statfs::{MountKey, StatGuard, StatOutcome};
use crate::metrics::{Family, Labels};
use crate::trend;
use crate::values::parse_positive_duration;

pub use glob::{GroupGlob, parse_group_glob};
use track::GroupState;
use walk::{Limits, Scan, Skip};

/// The groups used when no `--collector.logs.path` is given (host paths).
pub const DEFAULT_GROUPS: [&str; 3] = [
    "varlog=/var/log/**/*",
    "journal=/var/log/journal/**/*",
    "docker=/var/lib/docker/containers/*/*-json.log",
];

#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Collector: logs")]
#[group(skip)]
pub struct Args {
    /// How often the logs collector stats the matched files.
    #[arg(id = "collector.logs.interval", long = "collector.logs.interval", value_name = "DURATION", default_value = "15s", value_parser = parse_positive_duration)]
    pub interval: Duration,
    /// A log group as GROUP=GLOB, a host path (repeatable; replaces the defaults
    /// varlog=/var/log/**/*, journal=/var/log/journal/**/*,
    /// docker=/var/lib/docker/containers/*/*-json.log). `*`, `?`, `[..]` match
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

/// What the walk thread hands back: one scan per group, and container names.
#[derive(Debug)]
struct WalkOutput {
    scans: Vec<Scan>,
    names: HashMap<String, (i128, NameRead)>,
}

/// A container's name as read from its config.v2.json, with that file's mtime.
type NameCache = HashMap<String, (i128, Option<String>)>;

pub struct LogsCollector {
    specs: Arc<Vec<GroupSpec>>,
    states: Vec<GroupState>,
    last_scans: Vec<Scan>,
    paths: Paths,
    top_files: usize,
    max_files: usize,
    interval: Duration,
    pending: Option<oneshot::Receiver<WalkOutput>>,
    statvfs: StatGuard,
    names: NameCache,
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
            states: specs
                .iter()
                .map(|_| GroupState::new(args.trend_window))
                .collect(),
            last_scans: Vec::new(),
            specs: Arc::new(specs),
            paths: paths.clone(),
            top_files: args.top_files,
            max_files: args.max_files as usize,
            interval: args.interval,
            pending: None,
            statvfs: StatGuard::new(),
            names: HashMap::new(),
        }
    }

    /// The scheduler's budget for one round, shared out below.
    fn budget(&self) -> Duration {
        self.interval.max(Duration::from_secs(10))
    }

    fn start_walk(&mut self) -> Result<(), CollectError> {
        let (tx, rx) = oneshot::channel();
        let specs = self.specs.clone();
        let rootfs = self.paths.rootfs.clone();
        let known: HashMap<String, i128> = self
            .names
            .iter()
            .map(|(id, (m, _))| (id.clone(), *m))
            .collect();
        let limits = Limits {
            max_files: self.max_files,
            // The walk stops itself well inside the round's budget.
            deadline: Instant::now() + self.budget() / 2,
        };
        // A detached thread, not spawn_blocking: a stat stuck on a hung mount
        // would otherwise hold a runtime thread and block shutdown.
        std::thread::Builder::new()
            .name("logs-walk".into())
            .spawn(move || {
                let scans: Vec<Scan> = specs
                    .iter()
                    .map(|s| walk::scan_group(&s.globs, &rootfs, &limits))
                    .collect();
                let names = read_names(&scans, &rootfs, &known);
                let _ = tx.send(WalkOutput { scans, names });
            })
            .map_err(|e| {
                CollectError::new("spawn", format!("cannot start the walk thread: {e}"))
            })?;
        self.pending = Some(rx);
        Ok(())
    }
}

/// A container's name as the walk thread found it.
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
    scans: &[Scan],
    rootfs: &Path,
    known: &HashMap<String, i128>,
) -> HashMap<String, (i128, NameRead)> {
    let mut out = HashMap::new();
    for f in scans.iter().flat_map(|s| &s.files) {
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
        if self.pending.is_none() {
            self.start_walk()?;
        }
        let budget = self.budget();
        let Some(rx) = self.pending.as_mut() else {
            return Err(CollectError::new("spawn", "no walk in flight"));
        };
        // If this future is dropped (the scheduler's budget), the receiver
        // stays in `pending` and the next round waits for the same walk.
        let mut output = match tokio::time::timeout(budget * 6 / 10, rx).await {
            Ok(Ok(output)) => {
                self.pending = None;
                output
            }
            Ok(Err(_)) => {
                self.pending = None;
                return Err(CollectError::new(
                    "walk_failed",
                    "the file walk ended without a result",
                ));
            }
            Err(_) => {
                return Err(CollectError::new(
                    "walk_hung",
                    "the file walk has not returned (a stat may be stuck on a hung mount)",
                ));
            }
        };
        let mut series_dropped = 0;
        for (state, scan) in self.states.iter_mut().zip(output.scans.iter_mut()) {
            series_dropped += scan.dropped;
            if scan.timed_out {
                // An incomplete scan would read as files vanishing: keep the
                // state as it was and report the timeout.
                continue;
            }
            series_dropped += state.update(scan.t, std::mem::take(&mut scan.files));
        }
        self.update_names(output.names);

        let mounts = mounts::read(&self.paths).unwrap_or_default();
        let fs = self.filesystems(&mounts, budget / 5).await;
        self.last_scans = output.scans;
        let mut collection = Collection::new(self.families(&fs));
        collection.series_dropped = series_dropped;
        Ok(collection)
    }
}

/// Per group, per filesystem: (mountpoint, avail bytes, growth of the group there).
type GroupFilesystems = Vec<Vec<(String, u64, Option<f64>)>>;

impl LogsCollector {
    /// Replace the name cache with the containers seen this round.
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

    /// statvfs (guarded) of each filesystem the groups' files live on.
    async fn filesystems(
        &mut self,
        mounts: &[mounts::Mount],
        timeout: Duration,
    ) -> GroupFilesystems {
        let mut per_group = Vec::new();
        let mut wanted: Vec<(MountKey, PathBuf)> = Vec::new();
        for state in &self.states {
            let mut fs = Vec::new();
            for (dev, sample_path, growth) in state.growth_by_dev() {
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
            "Bytes written to the group's files per second over the trend window; rotation and truncation are not counted as shrink-then-grow.",
        );
        let mut file_growth = Family::gauge(
            "sentinel_log_file_growth_bytes_per_second",
            "Bytes written per second over the trend window, for the fastest-growing files only (--collector.logs.top-files); container names Docker json-file logs.",
        );
        let mut rotations = Family::counter(
            "sentinel_log_rotations",
            "Rotations seen: a growing file renamed, truncated, or replaced by a new file.",
        );
        let mut until_full = Family::gauge(
            "sentinel_log_seconds_until_filesystem_full",
            "Available bytes of the filesystem the group's files live on divided by the group's growth there; +Inf when not growing.",
        );
        let mut written = Family::counter(
            "sentinel_log_written_bytes",
            "Bytes written to the group's files since the exporter started (rotation-aware; bytes a file held when first seen are not counted).",
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
            "Matched names left out in the latest walk, by reason: dangling_symlink, not_regular (FIFO, socket, device; never opened), unreadable_dir, stat_failed.",
        );
        let mut timed_out = Family::gauge(
            "sentinel_log_walk_timed_out",
            "1 if the latest walk of the group stopped at its deadline (the group's values are from the walk before).",
        );
        for (i, spec) in self.specs.iter().enumerate() {
            let state = &self.states[i];
            let g = || -> Labels { vec![("group", spec.name.clone())] };
            size.push(g(), state.size() as f64);
            files.push(g(), state.file_count() as f64);
            rotations.push(g(), state.rotations() as f64);
            written.push(g(), state.written() as f64);
            if let Some(rate) = state.growth() {
                growth.push(g(), rate);
            }
            for f in state.top_files(self.top_files) {
                let mut labels = vec![("group", spec.name.clone()), ("path", f.path.clone())];
                if let Some(id) = walk::container_id(&f.path) {
                    let name = self.names.get(id).and_then(|(_, n)| n.clone());
                    labels.push(("container", name.unwrap_or_default()));
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
            if let Some(scan) = self.last_scans.get(i) {
                dropped.push(g(), scan.dropped as f64);
                timed_out.push(g(), crate::metrics::flag(scan.timed_out));
                for why in Skip::ALL {
                    let n = scan.skipped.get(&why).copied().unwrap_or(0);
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
            files,
            dropped,
            skipped,
            timed_out,
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
        let names: Vec<_> = c.specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["varlog", "journal", "docker"]);
        assert_eq!(c.max_files, 10_000);

        let cli = Cli::try_parse_from([
            "x",
            "--collector.logs.path=app=/srv/a/*.log",
            "--collector.logs.path=app=/srv/b/*.log",
            "--collector.logs.path=web=/srv/w/**",
        ])
        .unwrap();
        let c = LogsCollector::new(&cli.logs, &Paths::default());
        assert_eq!(c.specs.len(), 2);
        assert_eq!(c.specs[0].globs.len(), 2);
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
