//! Kubelet collector: how far the node's filesystems are from the kubelet's
//! eviction thresholds and how soon they reach them, eviction signals a
//! config silently switched off, image-GC headroom, container logs that are
//! not rotated, and whether the kubelet's own healthz answers.
//!
//! **Reads**: the KubeletConfiguration (`--collector.kubelet.config`, else
//! `/var/lib/kubelet/config.yaml`, else `/etc/kubernetes/kubelet/config.json`,
//! with the `.conf` drop-ins of `--collector.kubelet.config-dir`, by default
//! `<config>.d/`), re-read when a file's size or mtime changes (see
//! [`config`] for the kubelet's merge and default rules); the host's mount
//! table and statvfs of nodefs (the filesystem holding
//! `--collector.kubelet.root-dir`) and imagefs (the mount of the CRI
//! runtime's ImageFsInfo mountpoint as the cri collector last saw it, else of
//! the first existing of /var/lib/containerd, /var/lib/docker,
//! /var/lib/containers, else nodefs), both hang-safe through
//! [`crate::host::statfs`]; the live container logs under `podLogsDir`
//! (two `read_dir` levels and one `lstat` per container, offloaded); and one
//! GET of `--collector.kubelet.healthz-url` at a time ([`healthz`]). All host
//! paths are resolved under `--path.rootfs`.
//!
//! **Exports** (METRICS.md, "kubelet"):
//! `sentinel_kubelet_eviction_threshold_bytes{signal,kind}` and
//! `_threshold_inodes{signal,kind}` (percentages resolved against the
//! filesystem's size or inode count, memory.available against MemTotal),
//! `_eviction_headroom_bytes{signal,mountpoint}` / `_headroom_inodes`
//! (available minus the hard threshold, negative while evicting),
//! `_seconds_until_eviction{signal,mountpoint}` (headroom divided by the fill
//! rate the filesystem collector estimates for that mount, from
//! [`filesystem::published`]: one trend per mount, not a second estimator;
//! absent until it has one, so absent when that collector is off or excludes
//! the mount; +Inf while not filling), `_eviction_signal_disabled{signal}`
//! (the four signals the kubelet has defaults for),
//! `_eviction_soft_grace_period_seconds{signal}`,
//! `_image_gc_headroom_bytes{mountpoint}` (available bytes above the usage at
//! imageGCHighThresholdPercent, as the kubelet's image GC computes usage),
//! `_image_gc_high_threshold_percent`, `_healthz_up`,
//! `_healthz_duration_seconds`, `_healthz_in_flight_seconds`,
//! `_healthz_failures_total{reason}`, `_config_info{path}`,
//! `_container_log_max_size_bytes`, and per container (the largest live logs
//! first, capped by `--collector.kubelet.max-pod-logs`)
//! `_container_log_size_bytes{namespace,pod,container}` and
//! `_container_log_oversize{namespace,pod,container}` (1 when the live log is
//! more than twice containerLogMaxSize: the kubelet's rotation is not
//! happening).
//!
//! **Not on a Kubernetes node** (neither a config file nor the root dir, ever
//! since start): no subject series at all, "not installed"; once either has
//! been seen the kubelet is watched as usual. A config that cannot be parsed
//! fails the round with one line naming the file and the key; every other
//! collector goes on.
//!
//! **Privileges**: read access to the config, the root dir and /var/log/pods;
//! none to probe healthz on loopback.

pub mod config;
pub mod healthz;
pub mod podlogs;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::collector::{CollectError, Collection, Collector, ErrorKind, not_installed};
use crate::collectors::{cri, filesystem};
use crate::host::Paths;
use crate::host::mounts::{self, Mount};
use crate::host::offload::{Offload, Outcome};
use crate::host::statfs::{MountKey, StatGuard, StatOutcome, Usage};
use crate::metrics::{Family, flag};
use crate::trend;
use crate::values::parse_positive_duration;

use config::{Fs, Settings, Signal, Source};

/// The kubelet's config files, tried in this order when none is given.
pub const DEFAULT_CONFIGS: [&str; 2] = [
    "/var/lib/kubelet/config.yaml",
    "/etc/kubernetes/kubelet/config.json",
];

/// Where the runtimes keep their images when ImageFsInfo is not known.
pub const RUNTIME_ROOTS: [&str; 3] = ["/var/lib/containerd", "/var/lib/docker", "/var/lib/containers"];

#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Collector: kubelet")]
#[group(skip)]
pub struct Args {
    /// How often the kubelet collector samples.
    #[arg(id = "collector.kubelet.interval", long = "collector.kubelet.interval", value_name = "DURATION", default_value = "15s", value_parser = parse_positive_duration)]
    pub interval: Duration,
    /// The KubeletConfiguration file (a host path); empty: /var/lib/kubelet/config.yaml, else /etc/kubernetes/kubelet/config.json.
    #[arg(id = "collector.kubelet.config", long = "collector.kubelet.config", value_name = "FILE", default_value = "")]
    pub config: String,
    /// The kubelet's --config-dir (drop-ins ending .conf, applied in name order); empty: the config file's path with .d appended.
    #[arg(id = "collector.kubelet.config-dir", long = "collector.kubelet.config-dir", value_name = "DIR", default_value = "")]
    pub config_dir: String,
    /// The kubelet's --root-dir: the filesystem holding it is nodefs.
    #[arg(id = "collector.kubelet.root-dir", long = "collector.kubelet.root-dir", value_name = "DIR", default_value = "/var/lib/kubelet")]
    pub root_dir: String,
    /// The kubelet's own health endpoint (plain http).
    #[arg(id = "collector.kubelet.healthz-url", long = "collector.kubelet.healthz-url", value_name = "URL", default_value = "http://127.0.0.1:10248/healthz", value_parser = healthz::parse_url)]
    pub healthz_url: healthz::Url,
    /// A healthz probe is abandoned after this long.
    #[arg(id = "collector.kubelet.healthz-timeout", long = "collector.kubelet.healthz-timeout", value_name = "DURATION", default_value = "5s", value_parser = parse_positive_duration)]
    pub healthz_timeout: Duration,
    /// At most this many containers (largest live log first) get per-container log series.
    #[arg(id = "collector.kubelet.max-pod-logs", long = "collector.kubelet.max-pod-logs", value_name = "N", default_value = "200")]
    pub max_pod_logs: usize,
}

/// A statvfs or mount-table read unanswered this long counts as hung.
const STAT_TIMEOUT: Duration = Duration::from_secs(5);

/// One filesystem the kubelet holds thresholds against, as seen this round.
#[derive(Debug, Clone)]
struct Held {
    mountpoint: String,
    usage: Usage,
    /// From the filesystem collector's trend of the same mount.
    fill_rate: Option<f64>,
    inode_rate: Option<f64>,
}

pub struct KubeletCollector {
    args: Args,
    paths: Paths,
    source: Source,
    /// The config file read last (host path), for the log line on a change.
    config_path: Option<String>,
    healthz: healthz::Healthz,
    guard: StatGuard,
    walks: Offload<()>,
    pod_logs: Vec<podlogs::LiveLog>,
    mem_total: Option<f64>,
    /// A config or the root dir has been seen since start.
    seen: bool,
}

impl KubeletCollector {
    pub fn new(args: &Args, paths: &Paths) -> Self {
        let healthz = healthz::Healthz::new(args.healthz_url.clone(), args.healthz_timeout);
        KubeletCollector {
            args: args.clone(),
            paths: paths.clone(),
            source: Source::default(),
            config_path: None,
            healthz,
            guard: StatGuard::new(),
            walks: Offload::new("kubelet-logs"),
            pod_logs: Vec::new(),
            mem_total: None,
            seen: false,
        }
    }

    /// The config file to read (host path and local path), if any exists.
    fn find_config(&self) -> Result<Option<(String, PathBuf)>, String> {
        let given = self.args.config.trim();
        if !given.is_empty() {
            let local = self
                .paths
                .resolve(given)
                .map_err(|e| format!("--collector.kubelet.config={given}: {e}"))?;
            if !local.exists() {
                return Err(format!("--collector.kubelet.config={given}: no such file"));
            }
            return Ok(Some((given.to_string(), local)));
        }
        Ok(DEFAULT_CONFIGS.iter().find_map(|c| {
            let local = self.paths.resolve(c).ok()?;
            local.is_file().then(|| (c.to_string(), local))
        }))
    }

    fn dropin_dir(&self, config_host: &str) -> PathBuf {
        let dir = match self.args.config_dir.trim() {
            "" => format!("{config_host}.d"),
            d => d.to_string(),
        };
        self.paths
            .resolve(&dir)
            .unwrap_or_else(|_| self.paths.host(&dir))
    }

    /// A host path's local path, if it resolves to an existing directory.
    fn existing_dir(&self, host: &str) -> Option<PathBuf> {
        let local = self.paths.resolve(host).ok()?;
        local.is_dir().then_some(local)
    }

    /// The host path of a local path under the rootfs.
    fn host_of(&self, local: &Path) -> String {
        match local.strip_prefix(&self.paths.rootfs) {
            Ok(rel) => format!("/{}", rel.display()),
            Err(_) => local.display().to_string(),
        }
    }

    /// statvfs of the mounts holding nodefs and imagefs (the same mount twice is stat'ed once).
    async fn filesystems(&self, root_local: &Path) -> (Option<Held>, Option<Held>) {
        let Ok(table) = self.guard.mounts(&self.paths, STAT_TIMEOUT).await else {
            return (None, None);
        };
        let nodefs = mounts::mount_for(&table, Path::new(&self.host_of(root_local))).cloned();
        let image_path = cri::image_filesystems()
            .into_iter()
            .next()
            .or_else(|| {
                RUNTIME_ROOTS
                    .iter()
                    .find_map(|r| self.existing_dir(r).map(|l| self.host_of(&l)))
            });
        let imagefs = image_path
            .and_then(|p| mounts::mount_for(&table, Path::new(&p)).cloned())
            .or_else(|| nodefs.clone());
        let mut targets: Vec<(MountKey, PathBuf)> = Vec::new();
        for m in nodefs.iter().chain(imagefs.iter()) {
            let key = MountKey::from(m);
            if !targets.iter().any(|(k, _)| *k == key) {
                targets.push((key, self.paths.host(&m.mountpoint)));
            }
        }
        let outcomes = self.guard.stat_all(&targets, STAT_TIMEOUT).await;
        self.guard.retain(|k| targets.iter().any(|(t, _)| t == k));
        let held = |m: &Option<Mount>| -> Option<Held> {
            let m = m.as_ref()?;
            let i = targets.iter().position(|(k, _)| *k == MountKey::from(m))?;
            let StatOutcome::Ok(usage) = outcomes.get(i)? else {
                return None;
            };
            let shared = filesystem::published(&m.mountpoint);
            Some(Held {
                mountpoint: m.mountpoint.clone(),
                usage: *usage,
                fill_rate: shared.and_then(|s| s.fill_rate),
                inode_rate: shared.and_then(|s| s.inode_rate),
            })
        };
        (held(&nodefs), held(&imagefs))
    }

    /// The live container logs, walked offloaded; a walk that does not answer
    /// in time leaves last round's list.
    async fn scan_pod_logs(&mut self, dir_host: &str) {
        let Some(local) = self.existing_dir(dir_host) else {
            self.pod_logs.clear();
            return;
        };
        if let Outcome::Done(logs) = self
            .walks
            .run((), STAT_TIMEOUT, move || podlogs::scan(&local))
            .await
        {
            self.pod_logs = logs;
        }
    }

    fn memory_total(&mut self) -> Option<f64> {
        if self.mem_total.is_none() {
            let text = std::fs::read_to_string(self.paths.procfs.join("meminfo")).ok()?;
            self.mem_total = text.lines().find_map(|l| {
                let kb: f64 = l.strip_prefix("MemTotal:")?.trim().trim_end_matches("kB").trim().parse().ok()?;
                Some(kb * 1024.0)
            });
        }
        self.mem_total
    }
}

impl Collector for KubeletCollector {
    fn name(&self) -> &'static str {
        "kubelet"
    }

    async fn collect(&mut self) -> Result<Collection, CollectError> {
        let config = self
            .find_config()
            .map_err(|m| CollectError::new(ErrorKind::Config, m))?;
        let root = self.existing_dir(&self.args.root_dir);
        // Once seen, the kubelet stays watched: a root dir removed later is
        // a node in trouble, not a node without Kubernetes.
        self.seen |= root.is_some() || config.is_some();
        if !self.seen {
            // Not a Kubernetes node: no series, so no kubelet alert can fire.
            return Ok(not_installed("kubelet"));
        }
        let root_local = root
            .clone()
            .unwrap_or_else(|| self.paths.host(&self.args.root_dir));
        let settings = match &config {
            Some((host, local)) => {
                let dropins = self.dropin_dir(host);
                match self.source.read(local, &dropins) {
                    Ok(s) => {
                        if self.config_path.as_deref() != Some(host) {
                            tracing::info!(source = "kubelet", "reading the kubelet config {host}");
                            self.config_path = Some(host.clone());
                        }
                        s
                    }
                    // The scheduler logs it once, and `/` shows it.
                    Err(e) => return Err(CollectError::new(ErrorKind::Config, e.0)),
                }
            }
            None => Settings::default(),
        };
        let now = Instant::now();
        self.healthz.start(now);
        // The root dir may be missing (a kubelet not started yet, or its
        // directory removed): then nodefs is the filesystem where it would be.
        let stat_root = root.unwrap_or_else(|| {
            root_local
                .ancestors()
                .find(|p| p.is_dir())
                .map(Path::to_path_buf)
                .unwrap_or_else(|| self.paths.rootfs.clone())
        });
        let (nodefs, imagefs) = self.filesystems(&stat_root).await;
        self.scan_pod_logs(&settings.pod_logs_dir.clone()).await;
        let mem_total = self.memory_total();
        let mut families = eviction_families(&settings, nodefs.as_ref(), imagefs.as_ref(), mem_total);
        let (log_families, dropped) = log_families(&settings, &self.pod_logs, self.args.max_pod_logs);
        families.extend(log_families);
        families.extend(self.healthz.families(Instant::now()));
        let mut info = Family::gauge("sentinel_kubelet_config_info", "The kubelet config file read; always 1.");
        if let Some((host, _)) = &config {
            info.push(vec![("path", host.clone())], 1.0);
        }
        families.push(info);
        let mut collection = Collection::new(families);
        collection.series_dropped = dropped;
        Ok(collection)
    }
}

/// The eviction and image-GC families for one round (pure).
fn eviction_families(
    settings: &Settings,
    nodefs: Option<&Held>,
    imagefs: Option<&Held>,
    mem_total: Option<f64>,
) -> Vec<Family> {
    let mut threshold_bytes = Family::gauge(
        "sentinel_kubelet_eviction_threshold_bytes",
        "The kubelet's eviction threshold in bytes by signal and kind (hard, soft); a percentage is resolved against the filesystem's size (memory.available: MemTotal).",
    );
    let mut threshold_inodes = Family::gauge(
        "sentinel_kubelet_eviction_threshold_inodes",
        "The kubelet's eviction threshold in inodes by signal and kind (hard, soft); a percentage is resolved against the filesystem's inode count.",
    );
    let mut headroom_bytes = Family::gauge(
        "sentinel_kubelet_eviction_headroom_bytes",
        "Available bytes minus the hard eviction threshold; negative while the kubelet evicts (DiskPressure).",
    );
    let mut headroom_inodes = Family::gauge(
        "sentinel_kubelet_eviction_headroom_inodes",
        "Free inodes minus the hard eviction threshold; negative while the kubelet evicts.",
    );
    let mut until = Family::gauge(
        "sentinel_kubelet_seconds_until_eviction",
        "Headroom divided by the filesystem's fill rate (the filesystem collector's trend of that mount) while filling, +Inf otherwise; 0 once past the threshold.",
    );
    let mut disabled = Family::gauge(
        "sentinel_kubelet_eviction_signal_disabled",
        "1 if the config leaves a signal the kubelet has a default for without a hard threshold (a partial evictionHard resets the others to 0).",
    );
    let mut grace = Family::gauge(
        "sentinel_kubelet_eviction_soft_grace_period_seconds",
        "evictionSoftGracePeriod by signal: how long a soft threshold must be crossed before the kubelet evicts.",
    );
    let held = |s: Signal| match s.fs() {
        Some(Fs::Node) => nodefs,
        Some(Fs::Image) => imagefs,
        None => None,
    };
    for signal in Signal::ALL {
        let label = || signal.name().to_string();
        if signal.has_default() {
            disabled.push(vec![("signal", label())], flag(!settings.hard.contains_key(&signal)));
        }
        let capacity = match (signal.fs(), held(signal)) {
            (None, _) => mem_total,
            (Some(_), Some(h)) if signal.inodes() => Some(h.usage.files as f64),
            (Some(_), Some(h)) => Some(h.usage.size_bytes as f64),
            (Some(_), None) => None,
        };
        for (kind, map) in [("hard", &settings.hard), ("soft", &settings.soft)] {
            if let (Some(t), Some(cap)) = (map.get(&signal), capacity) {
                let family = if signal.inodes() { &mut threshold_inodes } else { &mut threshold_bytes };
                family.push(vec![("kind", kind.to_string()), ("signal", label())], t.resolve(cap));
            }
        }
        if let Some(g) = settings.soft_grace.get(&signal) {
            grace.push(vec![("signal", label())], *g);
        }
        let (Some(h), Some(t), Some(cap)) = (held(signal), settings.hard.get(&signal), capacity) else {
            continue;
        };
        let labels = vec![("mountpoint", h.mountpoint.clone()), ("signal", label())];
        let (available, rate) = if signal.inodes() {
            (h.usage.files_free as f64, h.inode_rate)
        } else {
            (h.usage.avail_bytes as f64, h.fill_rate)
        };
        // A filesystem without an inode table (btrfs) has no inode signal.
        if signal.inodes() && h.usage.files == 0 {
            continue;
        }
        let headroom = available - t.resolve(cap);
        if signal.inodes() {
            headroom_inodes.push(labels.clone(), headroom);
        } else {
            headroom_bytes.push(labels.clone(), headroom);
        }
        if let Some(rate) = rate {
            until.push(labels, trend::seconds_until_full(headroom, rate));
        }
    }
    let mut gc_headroom = Family::gauge(
        "sentinel_kubelet_image_gc_headroom_bytes",
        "Bytes imagefs can still take before its usage reaches imageGCHighThresholdPercent (the kubelet's image GC then deletes unused images); negative while above it.",
    );
    let mut gc_high = Family::gauge(
        "sentinel_kubelet_image_gc_high_threshold_percent",
        "imageGCHighThresholdPercent: imagefs usage at which the kubelet starts image GC.",
    );
    gc_high.push(vec![], settings.image_gc_high_percent);
    if let Some(h) = imagefs {
        // The kubelet's usage is 100 - available/capacity, so the GC line is
        // where available falls to (100 - high)% of the size.
        let size = h.usage.size_bytes as f64;
        let floor = size * (100.0 - settings.image_gc_high_percent) / 100.0;
        gc_headroom.push(vec![("mountpoint", h.mountpoint.clone())], h.usage.avail_bytes as f64 - floor);
    }
    vec![
        threshold_bytes,
        threshold_inodes,
        headroom_bytes,
        headroom_inodes,
        until,
        disabled,
        grace,
        gc_headroom,
        gc_high,
    ]
}

/// The container-log families, capped at `max` containers; and how many the cap cut.
fn log_families(settings: &Settings, logs: &[podlogs::LiveLog], max: usize) -> (Vec<Family>, u64) {
    let mut max_size = Family::gauge(
        "sentinel_kubelet_container_log_max_size_bytes",
        "containerLogMaxSize: the size at which the kubelet rotates a container's log (absent when rotation is off).",
    );
    let mut size = Family::gauge(
        "sentinel_kubelet_container_log_size_bytes",
        "Size of the container's live log under podLogsDir; the largest first, capped by --collector.kubelet.max-pod-logs.",
    );
    let mut oversize = Family::gauge(
        "sentinel_kubelet_container_log_oversize",
        "1 if the container's live log is more than twice containerLogMaxSize: the kubelet's log rotation is not happening.",
    );
    if let Some(limit) = settings.container_log_max_size {
        max_size.push(vec![], limit);
    }
    for log in logs.iter().take(max) {
        let labels = vec![
            ("container", log.container.clone()),
            ("namespace", log.namespace.clone()),
            ("pod", log.pod.clone()),
        ];
        size.push(labels.clone(), log.size as f64);
        if let Some(limit) = settings.container_log_max_size {
            oversize.push(labels, flag(log.size as f64 > limit * podlogs::OVERSIZE_FACTOR));
        }
    }
    let dropped = logs.len().saturating_sub(max) as u64;
    (vec![max_size, size, oversize], dropped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Value, render};

    fn held(mountpoint: &str, size: u64, avail: u64, files: u64, files_free: u64, rate: Option<f64>) -> Held {
        Held {
            mountpoint: mountpoint.into(),
            usage: Usage {
                size_bytes: size,
                free_bytes: avail,
                avail_bytes: avail,
                files,
                files_free,
            },
            fill_rate: rate,
            inode_rate: None,
        }
    }

    fn value(families: &[Family], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let f = families.iter().find(|f| f.name == name)?;
        f.samples.iter().find_map(|s| {
            let same = s.labels.len() == labels.len()
                && labels.iter().all(|(k, v)| s.labels.iter().any(|(sk, sv)| sk == k && sv == v));
            match (&s.value, same) {
                (Value::Number(n), true) => Some(*n),
                _ => None,
            }
        })
    }

    #[test]
    fn defaults_resolved_against_the_filesystems() {
        let node = held("/", 1000, 300, 100, 50, Some(2.0));
        let image = held("/var/lib/containerd", 2000, 200, 0, 0, Some(-1.0));
        let f = eviction_families(&Settings::default(), Some(&node), Some(&image), Some(4096.0));
        let v = |n: &str, l: &[(&str, &str)]| value(&f, n, l);
        assert_eq!(v("sentinel_kubelet_eviction_threshold_bytes", &[("kind", "hard"), ("signal", "nodefs.available")]), Some(100.0));
        assert_eq!(v("sentinel_kubelet_eviction_threshold_bytes", &[("kind", "hard"), ("signal", "imagefs.available")]), Some(300.0));
        assert_eq!(
            v("sentinel_kubelet_eviction_threshold_bytes", &[("kind", "hard"), ("signal", "memory.available")]),
            Some(100.0 * 1024.0 * 1024.0)
        );
        assert_eq!(v("sentinel_kubelet_eviction_threshold_inodes", &[("kind", "hard"), ("signal", "nodefs.inodesFree")]), Some(5.0));
        assert_eq!(v("sentinel_kubelet_eviction_headroom_bytes", &[("mountpoint", "/"), ("signal", "nodefs.available")]), Some(200.0));
        assert_eq!(v("sentinel_kubelet_eviction_headroom_inodes", &[("mountpoint", "/"), ("signal", "nodefs.inodesFree")]), Some(45.0));
        // imagefs is past its threshold: negative headroom, evicting now.
        assert_eq!(
            v("sentinel_kubelet_eviction_headroom_bytes", &[("mountpoint", "/var/lib/containerd"), ("signal", "imagefs.available")]),
            Some(-100.0)
        );
        assert_eq!(v("sentinel_kubelet_seconds_until_eviction", &[("mountpoint", "/"), ("signal", "nodefs.available")]), Some(100.0));
        assert_eq!(
            v("sentinel_kubelet_seconds_until_eviction", &[("mountpoint", "/var/lib/containerd"), ("signal", "imagefs.available")]),
            Some(f64::INFINITY)
        );
        // No inode rate yet: no time until eviction for it. No inode table: no inode signal.
        assert_eq!(v("sentinel_kubelet_seconds_until_eviction", &[("mountpoint", "/"), ("signal", "nodefs.inodesFree")]), None);
        assert!(!render(&f).contains("imagefs.inodesFree"));
        for s in ["memory.available", "nodefs.available", "nodefs.inodesFree", "imagefs.available"] {
            assert_eq!(v("sentinel_kubelet_eviction_signal_disabled", &[("signal", s)]), Some(0.0), "{s}");
        }
        // GC starts at 85% usage: available 200 of 2000 is 90% used, 100 past it.
        assert_eq!(v("sentinel_kubelet_image_gc_headroom_bytes", &[("mountpoint", "/var/lib/containerd")]), Some(-100.0));
    }

    #[test]
    fn a_partial_eviction_hard_shows_the_others_disabled() {
        let s = config::parse_merged(&[(PathBuf::from("/c"), "evictionHard:\n  memory.available: 200Mi\n".into())]).unwrap();
        let node = held("/", 1000, 300, 100, 50, Some(2.0));
        let f = eviction_families(&s, Some(&node), Some(&node), None);
        let v = |n: &str, l: &[(&str, &str)]| value(&f, n, l);
        assert_eq!(v("sentinel_kubelet_eviction_signal_disabled", &[("signal", "memory.available")]), Some(0.0));
        for s in ["nodefs.available", "nodefs.inodesFree", "imagefs.available"] {
            assert_eq!(v("sentinel_kubelet_eviction_signal_disabled", &[("signal", s)]), Some(1.0), "{s}");
        }
        let text = render(&f);
        assert!(!text.contains("sentinel_kubelet_eviction_headroom_bytes{"), "{text}");
        assert!(!text.contains("sentinel_kubelet_seconds_until_eviction{"), "{text}");
        assert!(!text.contains("sentinel_kubelet_eviction_threshold_bytes{"), "no MemTotal, no memory threshold: {text}");
    }

    #[test]
    fn soft_thresholds_and_their_grace() {
        let s = config::parse_merged(&[(
            PathBuf::from("/c"),
            "evictionSoft:\n  nodefs.available: 30%\nevictionSoftGracePeriod:\n  nodefs.available: 2m\n".into(),
        )])
        .unwrap();
        let node = held("/", 1000, 300, 100, 50, None);
        let f = eviction_families(&s, Some(&node), Some(&node), None);
        assert_eq!(value(&f, "sentinel_kubelet_eviction_threshold_bytes", &[("kind", "soft"), ("signal", "nodefs.available")]), Some(300.0));
        assert_eq!(value(&f, "sentinel_kubelet_eviction_soft_grace_period_seconds", &[("signal", "nodefs.available")]), Some(120.0));
    }

    #[test]
    fn oversize_logs_are_flagged_and_capped_largest_first() {
        let s = Settings::default();
        let log = |pod: &str, size: u64| podlogs::LiveLog {
            namespace: "default".into(),
            pod: pod.into(),
            container: "app".into(),
            size,
        };
        let mib = 1024 * 1024;
        let logs = vec![log("big", 25 * mib), log("near", 15 * mib), log("small", 1)];
        let (f, dropped) = log_families(&s, &logs, 2);
        assert_eq!(dropped, 1);
        let v = |pod: &str| value(&f, "sentinel_kubelet_container_log_oversize", &[("container", "app"), ("namespace", "default"), ("pod", pod)]);
        assert_eq!(v("big"), Some(1.0));
        assert_eq!(v("near"), Some(0.0), "within one check's overshoot: not a finding");
        assert_eq!(v("small"), None);
        assert_eq!(value(&f, "sentinel_kubelet_container_log_max_size_bytes", &[]), Some(10.0 * mib as f64));
    }

    #[test]
    fn a_bad_healthz_url_is_a_flag_error() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            args: Args,
        }
        let err = Cli::try_parse_from(["x", "--collector.kubelet.healthz-url=https://127.0.0.1:10250/healthz"])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("--collector.kubelet.healthz-url") && err.contains("http://"), "{err}");
        let cli = Cli::try_parse_from(["x"]).unwrap();
        assert_eq!(cli.args.healthz_url.authority, "127.0.0.1:10248");
        assert_eq!(cli.args.root_dir, "/var/lib/kubelet");
    }

    #[tokio::test]
    async fn not_a_kubernetes_node_exports_nothing() {
        let base = std::env::temp_dir().join(format!("sentinel-kubelet-none-{}", std::process::id()));
        std::fs::create_dir_all(&base).unwrap();
        let paths = Paths { rootfs: base.clone(), ..Paths::default() };
        let args = Args {
            interval: Duration::from_secs(1),
            config: String::new(),
            config_dir: String::new(),
            root_dir: "/var/lib/kubelet".into(),
            healthz_url: healthz::parse_url("http://127.0.0.1:1/healthz").unwrap(),
            healthz_timeout: Duration::from_secs(1),
            max_pod_logs: 10,
        };
        let mut c = KubeletCollector::new(&args, &paths);
        let got = c.collect().await.unwrap();
        assert!(got.families.iter().any(|f| f.name == crate::collector::INSTALLED));
        assert!(got.families.iter().all(|f| !f.name.starts_with("sentinel_kubelet_")));
        // A root dir appearing is a kubelet node: defaults, and the probe runs.
        std::fs::create_dir_all(base.join("var/lib/kubelet")).unwrap();
        let got = c.collect().await.unwrap();
        let text = render(&got.families);
        // Removed again, it stays watched.
        std::fs::remove_dir_all(base.join("var/lib/kubelet")).unwrap();
        let again = render(&c.collect().await.unwrap().families);
        assert!(again.contains("sentinel_kubelet_healthz_up 0"), "{again}");
        std::fs::remove_dir_all(&base).unwrap();
        assert!(text.contains("sentinel_kubelet_eviction_signal_disabled{signal=\"nodefs.available\"} 0"), "{text}");
        assert!(text.contains("sentinel_kubelet_healthz_up 0"), "{text}");
    }
}
