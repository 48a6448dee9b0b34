//! The one `Collector` trait, the scheduler that runs each collector in the
//! background on its own interval, and the snapshot store `/metrics` reads.
//!
//! A scrape never runs a collector: it encodes the latest published
//! snapshots, so it costs the same whether Docker answers, hangs or is gone.

use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::DescriptorEncoder;
use tokio::task::JoinHandle;

use crate::metrics::{self, Family};

/// What one collection round produces.
#[derive(Debug, Default)]
pub struct Collection {
    pub families: Vec<Family>,
    /// Series this round left out because a label cap was reached.
    pub series_dropped: u64,
}

impl Collection {
    pub fn new(families: Vec<Family>) -> Self {
        Collection {
            families,
            series_dropped: 0,
        }
    }
}

/// Why a whole round failed. Per-item failures (one hung mount, one
/// unanswered probe) are data in the families, not errors.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CollectError {
    /// A short, fixed failure kind: logged once per change, never per round.
    pub kind: &'static str,
    pub message: String,
}

impl CollectError {
    pub fn new(kind: &'static str, message: impl Into<String>) -> Self {
        CollectError {
            kind,
            message: message.into(),
        }
    }
}

/// A source of metrics, sampled in the background.
///
/// `collect` must return within its interval; anything that can hang (a
/// socket, D-Bus, statvfs) runs under the collector's own timeout. If a
/// round overruns even so, the scheduler drops it (cancelling the future)
/// and reports the collector as failed for that round.
pub trait Collector: Send + 'static {
    /// The name used in `--collector.NAME` and the `collector` label.
    fn name(&self) -> &'static str;

    /// Sample once.
    fn collect(&mut self) -> impl Future<Output = Result<Collection, CollectError>> + Send;
}

/// Logs a failure once when it starts or changes kind, and once when it ends.
#[derive(Debug, Default)]
pub struct FailureLog {
    current: Option<&'static str>,
}

impl FailureLog {
    /// Report a failure of `kind`; logged only if it differs from the last one.
    pub fn failed(&mut self, source: &str, kind: &'static str, detail: &dyn std::fmt::Display) {
        if self.current != Some(kind) {
            tracing::warn!(source, kind, "{detail}");
            self.current = Some(kind);
        }
    }

    /// Report success; logs a recovery if a failure was current.
    pub fn ok(&mut self, source: &str) {
        if let Some(kind) = self.current.take() {
            tracing::info!(source, previous = kind, "recovered");
        }
    }
}

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
    /// The latest published state.
    pub fn current(&self) -> Arc<Published> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn publish(&self, published: Published) {
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

/// Unix time now, as a float.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Runs collectors in the background and owns the store they publish to.
#[derive(Default)]
pub struct Scheduler {
    store: Store,
    tasks: Vec<JoinHandle<()>>,
}

impl Scheduler {
    pub fn new() -> Self {
        Self::default()
    }

    /// Start `collector` on `interval`. Rounds of one collector never overlap:
    /// each runs to completion (or its time budget) before the next tick.
    pub fn spawn<C: Collector>(&mut self, mut collector: C, interval: Duration) {
        let slot = Arc::new(Slot {
            name: collector.name(),
            interval,
            current: RwLock::new(Arc::new(Published::default())),
        });
        self.store.slots.push(slot.clone());
        // A round may overrun a short interval a little, never forever.
        let budget = interval.max(Duration::from_secs(10));
        self.tasks.push(tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut failures = FailureLog::default();
            let mut dropped_total = 0u64;
            let mut last_success = None;
            loop {
                ticker.tick().await;
                let started = Instant::now();
                let result = tokio::time::timeout(budget, collector.collect()).await;
                let duration = started.elapsed();
                let published = match result {
                    Ok(Ok(mut collection)) => {
                        failures.ok(slot.name);
                        metrics::sort_families(&mut collection.families);
                        dropped_total += collection.series_dropped;
                        last_success = Some(unix_now());
                        Published {
                            families: collection.families,
                            success: true,
                            duration,
                            last_success,
                            series_dropped_total: dropped_total,
                            last_error: None,
                        }
                    }
                    Ok(Err(e)) => {
                        failures.failed(slot.name, e.kind, &e);
                        failed(duration, last_success, dropped_total, e.to_string())
                    }
                    Err(_) => {
                        let e = format!("round did not finish within {budget:?}");
                        failures.failed(slot.name, "overrun", &e);
                        failed(duration, last_success, dropped_total, e)
                    }
                };
                slot.publish(published);
            }
        }));
    }

    /// The store, shared with the HTTP server. Call after every `spawn`.
    pub fn store(&mut self) -> Arc<Store> {
        Arc::new(std::mem::take(&mut self.store))
    }
}

fn failed(duration: Duration, last_success: Option<f64>, dropped: u64, error: String) -> Published {
    Published {
        families: Vec::new(),
        success: false,
        duration,
        last_success,
        series_dropped_total: dropped,
        last_error: Some(error),
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Counting {
        rounds: u32,
        fail_every_other: bool,
    }

    impl Collector for Counting {
        fn name(&self) -> &'static str {
            "counting"
        }

        async fn collect(&mut self) -> Result<Collection, CollectError> {
            self.rounds += 1;
            if self.fail_every_other && self.rounds.is_multiple_of(2) {
                return Err(CollectError::new("test", "even round"));
            }
            let mut f = Family::gauge("sentinel_test_rounds", "Rounds.");
            f.push(vec![], f64::from(self.rounds));
            Ok(Collection {
                families: vec![f],
                series_dropped: 2,
            })
        }
    }

    fn render(store: &Arc<Store>) -> String {
        let mut out = String::new();
        metrics::encode_registry(&mut out, &registry(store.clone())).unwrap();
        out
    }

    #[tokio::test(start_paused = true)]
    async fn publishes_rounds_and_counts_drops() {
        let mut sched = Scheduler::new();
        sched.spawn(
            Counting {
                rounds: 0,
                fail_every_other: false,
            },
            Duration::from_secs(5),
        );
        let store = sched.store();
        tokio::time::sleep(Duration::from_millis(10_500)).await;
        let text = render(&store);
        assert!(text.contains("sentinel_test_rounds 3"), "{text}");
        assert!(text.contains("sentinel_collector_success{collector=\"counting\"} 1"));
        assert!(text.contains("sentinel_series_dropped_total{collector=\"counting\"} 6"));
        assert!(text.contains("sentinel_build_info{"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_round_publishes_no_stale_values() {
        let mut sched = Scheduler::new();
        sched.spawn(
            Counting {
                rounds: 0,
                fail_every_other: true,
            },
            Duration::from_secs(5),
        );
        let store = sched.store();
        tokio::time::sleep(Duration::from_millis(5_500)).await;
        let text = render(&store);
        assert!(!text.contains("sentinel_test_rounds"), "{text}");
        assert!(text.contains("sentinel_collector_success{collector=\"counting\"} 0"));
        assert!(
            text.contains(
                "sentinel_collector_last_success_timestamp_seconds{collector=\"counting\"}"
            )
        );
    }
}
