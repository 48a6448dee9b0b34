//! The snapshot store: one slot per collector, each holding the latest
//! published round, replaced whole, and that round already encoded in both
//! exposition formats. `/metrics` concatenates these blocks and encodes only
//! the exporter's own few families per scrape ([`Store::exposition`]).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use prometheus_client::encoding::DescriptorEncoder;

use crate::metrics::{self, Encoded, Family, Format};

/// The published state of one collector, replaced whole after every round.
#[derive(Debug, Default)]
pub struct Published {
    pub families: Vec<Family>,
    pub success: bool,
    pub duration: Duration,
    /// Unix time of the latest successful round.
    pub last_success: Option<f64>,
    pub series_dropped_total: u64,
    pub last_error: Option<String>,
}

/// One collector's slot in the store.
#[derive(Debug)]
pub struct Slot {
    pub name: &'static str,
    pub interval: Duration,
    current: RwLock<Snapshot>,
}

/// A published round and its encoding, swapped together so that a scrape
/// never pairs one round's status with another round's series.
#[derive(Debug, Clone, Default)]
struct Snapshot {
    published: Arc<Published>,
    encoded: Arc<Encoded>,
}

impl Slot {
    pub fn new(name: &'static str, interval: Duration) -> Self {
        Slot {
            name,
            interval,
            current: RwLock::new(Snapshot::default()),
        }
    }

    fn snapshot(&self) -> Snapshot {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The latest published state.
    pub fn current(&self) -> Arc<Published> {
        self.snapshot().published
    }

    /// Encodes the round once, here, off the scrape path: scrapes then only
    /// copy these bytes, however many scrapers there are.
    pub(crate) fn publish(&self, published: Published) {
        let snapshot = Snapshot {
            encoded: Arc::new(Encoded::new(&published.families, metrics::HELP_SUFFIX)),
            published: Arc::new(published),
        };
        match self.current.write() {
            Ok(mut guard) => *guard = snapshot,
            Err(poisoned) => *poisoned.into_inner() = snapshot,
        }
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

    /// Encode every snapshot and the exporter's own metrics.
    pub fn encode(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let current: Vec<Arc<Published>> = self.slots.iter().map(|s| s.current()).collect();
        for published in &current {
            metrics::encode_families(encoder, &published.families, metrics::HELP_SUFFIX)?;
        }
        metrics::encode_families(encoder, &self.self_metrics(&current), "")
    }

    /// One scrape's body in `format`: every collector's block as encoded when
    /// it was published, then the exporter's own families and `extra`
    /// (encoded now: they are a few dozen series), then OpenMetrics' `# EOF`.
    pub fn exposition(&self, format: Format, extra: &[Family]) -> bytes::Bytes {
        let snapshots: Vec<Snapshot> = self.slots.iter().map(|s| s.snapshot()).collect();
        let current: Vec<Arc<Published>> = snapshots.iter().map(|s| s.published.clone()).collect();
        let mut own = self.self_metrics(&current);
        own.extend_from_slice(extra);
        let (own, eof) = match format {
            Format::OpenMetrics => (
                metrics::encode_openmetrics(&own, ""),
                metrics::OPENMETRICS_EOF,
            ),
            Format::Text => (metrics::encode_text(&own, ""), ""),
        };
        let blocks = snapshots.iter().map(|s| match format {
            Format::OpenMetrics => &s.encoded.openmetrics,
            Format::Text => &s.encoded.text,
        });
        let size: usize = blocks.clone().map(|b| b.len()).sum::<usize>() + own.len() + eof.len();
        let mut body = bytes::BytesMut::with_capacity(size);
        for block in blocks {
            body.extend_from_slice(block);
        }
        body.extend_from_slice(own.as_bytes());
        body.extend_from_slice(eof.as_bytes());
        body.freeze()
    }

    fn self_metrics(&self, current: &[Arc<Published>]) -> Vec<Family> {
        let mut success = Family::gauge(
            "sentinel_collector_success",
            "1 if the collector's latest round succeeded.",
        );
        let mut duration = Family::gauge(
            "sentinel_collector_duration_seconds",
            "Duration of the collector's latest round.",
        );
        let mut last = Family::gauge(
            "sentinel_collector_last_success_timestamp_seconds",
            "Unix time of the collector's latest successful round.",
        );
        let mut dropped = Family::counter(
            "sentinel_series_dropped",
            "Series left out because a label cap was reached.",
        );
        let mut interval = Family::gauge(
            "sentinel_collector_interval_seconds",
            "How often the collector samples.",
        );
        for (slot, p) in self.slots.iter().zip(current) {
            let label = || vec![("collector", slot.name.to_string())];
            success.push(label(), metrics::flag(p.success));
            duration.push(label(), p.duration.as_secs_f64());
            if let Some(t) = p.last_success {
                last.push(label(), t);
            }
            dropped.push(label(), p.series_dropped_total as f64);
            interval.push(label(), slot.interval.as_secs_f64());
        }
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
        vec![build, dropped, duration, interval, last, success]
    }
}

/// The store as a prometheus-client collector, so the text encoder walks it at scrape time.
#[derive(Debug)]
struct StoreView(Arc<Store>);

impl prometheus_client::collector::Collector for StoreView {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        self.0.encode(&mut encoder)
    }
}

/// A registry whose only content is the store.
pub fn registry(store: Arc<Store>) -> prometheus_client::registry::Registry {
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(Box::new(StoreView(store)));
    registry
}
