//! The one `Collector` trait and what a round produces. The scheduler
//! (`scheduler.rs`) runs each collector in the background on its own
//! interval and publishes to the snapshot store (`store.rs`) that `/metrics`
//! reads. A scrape never runs a collector: it encodes the latest published
//! snapshots, so it costs the same whether Docker answers, hangs or is gone.

use std::future::Future;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::metrics::Family;

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

/// Unix time now, as a float.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
