//! The snapshot store: one slot per collector, each holding the latest
//! published round, replaced whole, and that round already encoded in both
//! exposition formats, with the slot's rows of the exporter's own families
//! (`sentinel_collector_*`). A scrape only lines these pieces up
//! ([`Store::exposition`]): no copy of the collectors' blocks, no encoding
//! but the headers of the own families it interleaves.
//!
//! It also answers the health checks. Healthy ([`Store::healthy`]): every
//! collector's task is alive and its loop has made progress (started or
//! published a round) within twice its round budget, the budget being its
//! interval but at least 10 s. A round is cut at its budget and the next
//! starts at most an interval later, so a gap that long means the loop is
//! stuck (a blocking call on the runtime's thread) or gone, not slow; the
//! factor 2 leaves room for a loaded node. Ready ([`Store::ready`]): healthy,
//! and every collector has finished its first round, failed or not, so a
//! scrape no longer returns a collector with no data yet.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use crate::metrics::{self, Encoded, Family, Format};
use crate::panics;

/// A round may overrun a short interval a little, never forever.
const MIN_BUDGET: Duration = Duration::from_secs(10);

/// The published state of one collector, replaced whole after every round.
#[derive(Debug, Default)]
pub struct Published {
    pub families: Vec<Family>,
    pub success: bool,
    pub duration: Duration,
    /// Unix time of the latest successful round.
    pub last_success: Option<f64>,
    /// Series the latest round left out because a label cap was reached
    /// (0 for a failed round, which publishes nothing).
    pub series_dropped: u64,
    /// The latest round found no sign of the collector's subject on the node.
    pub not_installed: bool,
    /// Rounds that panicked since start.
    pub panics_total: u64,
    /// Rounds published since start, failed ones included.
    pub rounds: u64,
    pub last_error: Option<String>,
}

/// A collector's state in words, for people (the landing page, `diagnose`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// No round finished yet.
    Starting,
    /// The latest round succeeded.
    Ok,
    /// The latest round failed; `last_error` says why.
    Failing,
    /// The collector's subject is not on the node (no Docker, no CRI runtime).
    NotInstalled,
}

impl Status {
    pub fn word(self) -> &'static str {
        match self {
            Status::Starting => "starting",
            Status::Ok => "ok",
            Status::Failing => "failing",
            Status::NotInstalled => "not installed",
        }
    }
}

impl Published {
    pub fn status(&self) -> Status {
        match (self.rounds, self.success) {
            (0, _) => Status::Starting,
            (_, true) if self.not_installed => Status::NotInstalled,
            (_, true) => Status::Ok,
            (_, false) => Status::Failing,
        }
    }
}

/// One collector's slot in the store.
#[derive(Debug)]
pub struct Slot {
    pub name: &'static str,
    pub interval: Duration,
    current: RwLock<Snapshot>,
    /// When the collector's loop last started or published a round.
    progress: Mutex<Instant>,
    /// Cleared when the collector's task ends, however it ends.
    alive: AtomicBool,
}

/// A published round and its encoding, swapped together so that a scrape
/// never pairs one round's status with another round's series.
#[derive(Debug, Clone)]
struct Snapshot {
    published: Arc<Published>,
    encoded: Arc<Encoded>,
    /// This slot's rows of each of `own_families`, in that order, without
    /// headers (empty where the family has no series for this slot).
    own_rows: Arc<[Encoded]>,
}

impl Snapshot {
    fn new(name: &'static str, interval: Duration, published: Published) -> Self {
        let own_rows = own_families(name, interval, &published)
            .iter()
            .map(|f| lines(&Encoded::new(std::slice::from_ref(f)), false))
            .collect();
        Snapshot {
            encoded: Arc::new(Encoded::new(&published.families)),
            published: Arc::new(published),
            own_rows,
        }
    }
}

impl Slot {
    pub fn new(name: &'static str, interval: Duration) -> Self {
        Slot {
            name,
            interval,
            current: RwLock::new(Snapshot::new(name, interval, Published::default())),
            progress: Mutex::new(Instant::now()),
            alive: AtomicBool::new(true),
        }
    }

    /// How long one round may run before it is cut and reported as overrun.
    pub fn budget(&self) -> Duration {
        self.interval.max(MIN_BUDGET)
    }

    /// Without progress for this long, the collector's loop counts as stuck.
    pub fn stall_limit(&self) -> Duration {
        self.budget() * 2
    }

    fn snapshot(&self) -> Snapshot {
        panics::read(&self.current).clone()
    }

    /// The latest published state.
    pub fn current(&self) -> Arc<Published> {
        self.snapshot().published
    }

    /// Encodes the round once, here, off the scrape path: scrapes then only
    /// send these bytes, however many scrapers there are.
    pub(crate) fn publish(&self, published: Published) {
        let snapshot = Snapshot::new(self.name, self.interval, published);
        *panics::write(&self.current) = snapshot;
        self.progressed();
    }

    /// Record that the collector's loop is making progress.
    pub(crate) fn progressed(&self) {
        *panics::lock(&self.progress) = Instant::now();
    }

    /// Record that the collector's task has ended.
    pub(crate) fn ended(&self) {
        self.alive.store(false, Ordering::Release);
    }

    /// Why this collector is not running normally at `now`, if it is not.
    fn stalled(&self, now: Instant) -> Option<String> {
        if !self.alive.load(Ordering::Acquire) {
            return Some(format!("collector {}: its task has ended", self.name));
        }
        let quiet = now.saturating_duration_since(*panics::lock(&self.progress));
        (quiet > self.stall_limit()).then(|| {
            format!(
                "collector {}: no round started or finished for {:.0}s (limit {:?})",
                self.name,
                quiet.as_secs_f64(),
                self.stall_limit()
            )
        })
    }
}

/// All collectors' slots, in registration order.
#[derive(Debug, Default)]
pub struct Store {
    slots: Vec<Arc<Slot>>,
}

impl Store {
    pub(crate) fn add(&mut self, slot: Arc<Slot>) {
        self.slots.push(slot);
    }

    pub fn slots(&self) -> &[Arc<Slot>] {
        &self.slots
    }

    /// `/-/healthy`: Ok, or the first collector whose loop is gone or stuck
    /// (see the module docs for the bound).
    pub fn healthy(&self) -> Result<&'static str, String> {
        self.healthy_at(Instant::now())
    }

    fn healthy_at(&self, now: Instant) -> Result<&'static str, String> {
        match self.slots.iter().find_map(|s| s.stalled(now)) {
            Some(why) => Err(why + "\n"),
            None => Ok("OK\n"),
        }
    }

    /// `/-/ready`: healthy, and every collector has finished its first round.
    pub fn ready(&self) -> Result<&'static str, String> {
        self.healthy()?;
        let waiting: Vec<&str> = self
            .slots
            .iter()
            .filter(|s| s.current().rounds == 0)
            .map(|s| s.name)
            .collect();
        if waiting.is_empty() {
            Ok("OK\n")
        } else {
            Err(format!(
                "waiting for the first round of: {}\n",
                waiting.join(", ")
            ))
        }
    }

    /// One scrape's body in `format`, as pieces to send in order: every
    /// collector's block as encoded when it was published, the exporter's
    /// own families (`sentinel_build_info`, then `own_families`' rows from
    /// every slot under one header each), `extra` (encoded now: the seven
    /// `process_*` series), and OpenMetrics' `# EOF`.
    pub fn exposition(&self, format: Format, extra: &[Family]) -> Vec<Bytes> {
        let snapshots: Vec<Snapshot> = self.slots.iter().map(|s| s.snapshot()).collect();
        let mut body: Vec<Bytes> = snapshots
            .iter()
            .map(|s| s.encoded.get(format).clone())
            .collect();
        let (build, headers) = own_headers();
        let mut own = bytes::BytesMut::with_capacity(4096);
        own.extend_from_slice(build.get(format));
        for (i, header) in headers.iter().enumerate() {
            let mut rows = snapshots
                .iter()
                .map(|s| s.own_rows[i].get(format))
                .filter(|r| !r.is_empty())
                .peekable();
            if rows.peek().is_none() {
                // As client_golang does: a family with no series is left out.
                continue;
            }
            own.extend_from_slice(header.get(format));
            for r in rows {
                own.extend_from_slice(r);
            }
        }
        body.push(own.freeze());
        body.push(Encoded::new(extra).get(format).clone());
        if format == Format::OpenMetrics {
            body.push(Bytes::from_static(metrics::OPENMETRICS_EOF.as_bytes()));
        }
        body
    }
}

/// The exporter's own families about one collector, one series each at
/// most, in exposition order.
fn own_families(name: &'static str, every: Duration, p: &Published) -> Vec<Family> {
    let label = || vec![("collector", name.to_string())];
    let mut dropped = Family::gauge(
        "sentinel_series_dropped",
        "Series the collector's latest round left out because a label cap was reached.",
    );
    dropped.push(label(), p.series_dropped as f64);
    let mut duration = Family::gauge(
        "sentinel_collector_duration_seconds",
        "Duration of the collector's latest round.",
    );
    duration.push(label(), p.duration.as_secs_f64());
    let mut installed = Family::gauge(
        crate::collector::INSTALLED,
        "0 while the collector's subject shows no sign of being on the node (no socket, daemon, unit or state directory); its other series are absent meanwhile.",
    );
    if p.not_installed {
        installed.push(label(), 0.0);
    }
    let mut interval = Family::gauge(
        "sentinel_collector_interval_seconds",
        "How often the collector samples.",
    );
    interval.push(label(), every.as_secs_f64());
    let mut last = Family::gauge(
        "sentinel_collector_last_success_timestamp_seconds",
        "Unix time of the collector's latest successful round.",
    );
    if let Some(t) = p.last_success {
        last.push(label(), t);
    }
    let mut panics = Family::counter(
        "sentinel_collector_panics",
        "Rounds of the collector that panicked (a bug; each is a failed round, and the collector keeps running).",
    );
    panics.push(label(), p.panics_total as f64);
    let mut success = Family::gauge(
        "sentinel_collector_success",
        "1 if the collector's latest round succeeded.",
    );
    success.push(label(), metrics::flag(p.success));
    vec![
        dropped, duration, installed, interval, last, panics, success,
    ]
}

/// `sentinel_build_info` encoded whole, and the `# HELP`/`# TYPE` lines of
/// each of `own_families`, in both formats: they never change.
fn own_headers() -> &'static (Encoded, Vec<Encoded>) {
    static HEADERS: std::sync::OnceLock<(Encoded, Vec<Encoded>)> = std::sync::OnceLock::new();
    HEADERS.get_or_init(|| {
        let mut build = Family::gauge(
            "sentinel_build_info",
            "Build information of this node-sentinel; always 1.",
        );
        build.push(
            vec![
                ("revision", crate::build_info::REVISION.to_string()),
                ("rustc", crate::build_info::RUSTC.to_string()),
                ("version", crate::build_info::VERSION.to_string()),
            ],
            1.0,
        );
        // Every family with its one series, so that none is left out.
        let full = Published {
            last_success: Some(0.0),
            not_installed: true,
            ..Published::default()
        };
        let headers = own_families("", Duration::ZERO, &full)
            .iter()
            .map(|f| lines(&Encoded::new(std::slice::from_ref(f)), true))
            .collect();
        (Encoded::new(&[build]), headers)
    })
}

/// An encoded family's `# HELP`/`# TYPE` lines (`headers`), or its other
/// lines, in both formats.
fn lines(e: &Encoded, headers: bool) -> Encoded {
    let pick = |b: &Bytes| -> Bytes {
        b.split_inclusive(|&c| c == b'\n')
            .filter(|line| line.starts_with(b"# ") == headers)
            .flatten()
            .copied()
            .collect::<Vec<u8>>()
            .into()
    };
    Encoded {
        openmetrics: pick(&e.openmetrics),
        text: pick(&e.text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_loop_without_progress_is_unhealthy_after_twice_its_budget() {
        let mut store = Store::default();
        assert_eq!(store.healthy(), Ok("OK\n"), "no collectors: healthy");
        assert_eq!(store.ready(), Ok("OK\n"));
        let fast = Arc::new(Slot::new("fast", Duration::from_secs(5)));
        let slow = Arc::new(Slot::new("slow", Duration::from_secs(60)));
        store.add(fast.clone());
        store.add(slow.clone());
        assert_eq!(fast.stall_limit(), Duration::from_secs(20));
        assert_eq!(slow.stall_limit(), Duration::from_secs(120));
        let t0 = Instant::now();
        assert!(store.healthy_at(t0 + Duration::from_secs(20)).is_ok());
        let why = store.healthy_at(t0 + Duration::from_secs(21)).unwrap_err();
        assert!(
            why.starts_with("collector fast: no round started or finished for 21s"),
            "{why}"
        );
        tokio::time::advance(Duration::from_secs(15)).await;
        fast.progressed();
        assert!(store.healthy_at(t0 + Duration::from_secs(35)).is_ok());
        let why = store.healthy_at(t0 + Duration::from_secs(121)).unwrap_err();
        assert!(why.starts_with("collector fast"), "{why}");
        fast.progressed();
        slow.progressed();
        assert!(store.healthy().is_ok());
        slow.ended();
        assert!(
            store
                .healthy()
                .unwrap_err()
                .contains("slow: its task has ended")
        );
    }

    #[test]
    fn a_scrape_lines_up_the_bytes_the_encoder_would_write() {
        let mut store = Store::default();
        let a = Arc::new(Slot::new("a", Duration::from_secs(5)));
        let b = Arc::new(Slot::new("b", Duration::from_secs(60)));
        store.add(a.clone());
        store.add(b.clone());
        let mut up = Family::gauge("sentinel_a_up", "Up.");
        up.push(vec![], 1.0);
        let pa = Published {
            families: vec![up.clone()],
            success: true,
            last_success: Some(1.5),
            rounds: 1,
            ..Published::default()
        };
        let pb = Published {
            success: true,
            not_installed: true,
            panics_total: 2,
            rounds: 1,
            ..Published::default()
        };
        let (build, _) = own_headers();
        // What one encoder run over every family would write.
        let mut expected = vec![up];
        let mut own = own_families("a", a.interval, &pa);
        for (all, theirs) in own.iter_mut().zip(own_families("b", b.interval, &pb)) {
            all.samples.extend(theirs.samples);
        }
        expected.extend(own);
        let mut extra = Family::gauge("process_threads", "Threads.");
        extra.push(vec![], 3.0);
        a.publish(pa);
        b.publish(pb);
        let text = store
            .exposition(Format::Text, std::slice::from_ref(&extra))
            .concat();
        let om = store
            .exposition(Format::OpenMetrics, std::slice::from_ref(&extra))
            .concat();
        let with_build = |encode: fn(&[Family]) -> String, b: &Bytes| {
            let (collectors, own) = expected.split_at(1);
            let mut out = encode(collectors);
            out.push_str(std::str::from_utf8(b).unwrap());
            out.push_str(&encode(own));
            out.push_str(&encode(std::slice::from_ref(&extra)));
            out
        };
        assert_eq!(
            String::from_utf8(text).unwrap(),
            with_build(metrics::encode_text, &build.text)
        );
        let om = String::from_utf8(om).unwrap();
        assert_eq!(
            om,
            with_build(metrics::encode_openmetrics, &build.openmetrics) + metrics::OPENMETRICS_EOF
        );
        // Families only one slot has a series in carry only that series.
        assert!(om.contains("sentinel_collector_installed{collector=\"b\"} 0"));
        assert!(!om.contains("sentinel_collector_installed{collector=\"a\"}"));
        assert!(
            om.contains("sentinel_collector_last_success_timestamp_seconds{collector=\"a\"} 1.5")
        );
        assert!(!om.contains("sentinel_collector_last_success_timestamp_seconds{collector=\"b\"}"));
    }

    #[test]
    fn status_words() {
        let mut p = Published::default();
        assert_eq!(p.status().word(), "starting");
        p.rounds = 1;
        assert_eq!(p.status().word(), "failing");
        p.success = true;
        assert_eq!(p.status().word(), "ok");
    }
}
