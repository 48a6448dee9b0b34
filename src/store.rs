//! The snapshot store: one slot per collector, each holding the latest
//! published round, replaced whole; `/metrics` encodes only these.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use prometheus_client::encoding::DescriptorEncoder;

use crate::metrics::{self, Family};

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
    current: RwLock<Arc<Published>>,
}

impl Slot {
    pub fn new(name: &'static str, interval: Duration) -> Self {
        Slot {
            name,
            interval,
            current: RwLock::new(Arc::new(Published::default())),
        }
    }

    /// The latest published state.
    pub fn current(&self) -> Arc<Published> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub(crate) fn publish(&self, published: Published) {
        let published = Arc::new(published);
        match self.current.write() {
            Ok(mut guard) => *guard = published,
            Err(poisoned) => *poisoned.into_inner() = published,
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
