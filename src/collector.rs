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

/// The self-metric by which a collector whose subject is not on the node
/// (no Docker, no CRI runtime) says so: `sentinel_collector_installed{collector} 0`,
/// and no subject series beside it. Absent means installed.
pub const INSTALLED: &str = "sentinel_collector_installed";

/// A round's families for a subject that is not on the node.
pub fn not_installed(collector: &'static str) -> Collection {
    let mut f = Family::gauge(
        INSTALLED,
        "0 while the collector's subject shows no sign of being on the node (no socket, daemon, unit or state directory); its other series are absent meanwhile.",
    );
    f.push(vec![("collector", collector.to_string())], 0.0);
    Collection::new(vec![f])
}

/// Take the not-installed marker out of a round's families: the store
/// exports it once for all collectors, in one family. True if it was there.
pub fn take_not_installed(families: &mut Vec<Family>) -> bool {
    let before = families.len();
    families.retain(|f| f.name != INSTALLED);
    families.len() != before
}

/// Why a whole round failed. Per-item failures (one hung mount, one
/// unanswered probe) are data in the families, not errors.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CollectError {
    /// What kind of failure: logged once per change of kind, never per round.
    pub kind: ErrorKind,
    pub message: String,
}

impl CollectError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        CollectError {
            kind,
            message: message.into(),
        }
    }
}

/// The fixed set of reasons a whole round fails; the detail is in the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A setting cannot work (seen at the first round, not at start-up).
    Config,
    /// Reading a host source failed (mountinfo, /proc, /proc/stat).
    Read,
    /// A worker thread could not be started, or ended without an answer.
    Thread,
    /// A worker has not returned: the kernel call under it is stuck.
    Stuck,
    /// The round did not finish within its time budget.
    Overrun,
    /// The round panicked: a bug, isolated to this round.
    Panic,
}

impl ErrorKind {
    /// The word in the log line's `kind` field.
    pub fn label(self) -> &'static str {
        match self {
            ErrorKind::Config => "config",
            ErrorKind::Read => "read",
            ErrorKind::Thread => "thread",
            ErrorKind::Stuck => "stuck",
            ErrorKind::Overrun => "overrun",
            ErrorKind::Panic => "panic",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// A source of metrics, sampled in the background.
///
/// `collect` must return within its interval; anything that can hang (a
/// socket, D-Bus, statvfs) runs under the collector's own timeout. If a
/// round overruns even so, the scheduler drops it (cancelling the future)
/// and reports the collector as failed for that round; a round that panics
/// is reported the same way, and the collector is called again next tick,
/// so `collect` must not rely on a previous round having completed.
pub trait Collector: Send + 'static {
    /// The name used in `--collector.NAME` and the `collector` label.
    fn name(&self) -> &'static str;

    /// Sample once.
    fn collect(&mut self) -> impl Future<Output = Result<Collection, CollectError>> + Send;
}

/// Logs a failure once when it starts or changes kind, and once when it ends.
#[derive(Debug, Default, Clone)]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_read_as_words() {
        let e = CollectError::new(ErrorKind::Stuck, "/proc scan: busy");
        assert_eq!(format!("{} {e}", e.kind), "stuck /proc scan: busy");
    }
}
