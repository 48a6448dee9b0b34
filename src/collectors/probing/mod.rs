//! The probe machinery the daemon collectors (docker, cri) share: per-operation
//! single-flight bookkeeping with in-flight age and hang spans across abandoned
//! probes ([`OpState`]), the drop guard that releases a task's claim however it
//! ends ([`Ending`]), and the plain connect plus /proc lookup that tell a
//! listening socket from a dead one and name the process behind it
//! ([`daemon`]). Pure bookkeeping here; the collectors own their calls.

pub mod daemon;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::collector::FailureLog;
use crate::metrics::HistogramValue;
use crate::panics;

/// Latency buckets: a healthy local daemon answers in a few ms; 1 s is the
/// bundled alerts' "slow" bound; 30 s is the default timeout. Ten bounds, not
/// the usual fourteen: each one is a series per operation (F42), and the
/// alerts read only the ms-versus-seconds split.
pub const BUCKETS: [f64; 10] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 1.0, 2.5, 10.0, 30.0];

/// A collector's fixed set of failure reasons.
pub trait FailureReason: Copy {
    /// Position in the collector's `failures` array.
    fn index(self) -> usize;
    /// No answer within the timeout: the only failure that extends a hang.
    fn is_timeout(self) -> bool;
    /// Whether the daemon sent something back, so the latency is worth recording.
    fn answered(self) -> bool;
}

/// The daemon process behind the socket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Identity {
    pub pid: u32,
    /// Start time in clock ticks since boot, as in /proc/PID/stat: exact, unlike the unix time.
    pub start_ticks: u64,
    /// Unix start time (boot time + ticks / ticks per second).
    pub start_unix: f64,
}

/// What the latest plain connect to the daemon's address found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Socket {
    /// Not checked yet.
    Unknown,
    /// Something listens: connected, or the connect is queued behind a full backlog.
    Accepting,
    /// Nothing to connect to (missing, refused, not a socket, no permission).
    Down,
}

/// Per-operation bookkeeping; `R` is the number of failure reasons.
#[derive(Debug, Clone)]
pub struct OpState<const R: usize> {
    /// Start of the outstanding probe, if any (single-flight: at most one).
    pub in_flight: Option<Instant>,
    /// Start of the first probe in the current run of timeouts: a hang longer
    /// than the timeout spans several abandoned probes.
    pub unanswered_since: Option<Instant>,
    pub last_success_unix: Option<f64>,
    /// Whether the latest finished probe succeeded.
    pub last_ok: bool,
    pub failures: [u64; R],
    pub duration: HistogramValue,
    /// Logs a panicking probe of this operation once, and its recovery.
    pub panic_log: FailureLog,
}

impl<const R: usize> Default for OpState<R> {
    fn default() -> Self {
        OpState {
            in_flight: None,
            unanswered_since: None,
            last_success_unix: None,
            last_ok: false,
            failures: [0; R],
            duration: HistogramValue::new(&BUCKETS),
            panic_log: FailureLog::default(),
        }
    }
}

impl<const R: usize> OpState<R> {
    /// Mark a probe as started; false if one is already outstanding (single-flight).
    pub fn begin(&mut self, now: Instant) -> bool {
        if self.in_flight.is_some() {
            return false;
        }
        self.in_flight = Some(now);
        true
    }

    /// Record a finished probe: `elapsed` is the measured request time.
    pub fn finish<E: FailureReason>(
        &mut self,
        result: Result<(), E>,
        elapsed: Duration,
        unix_now: f64,
    ) {
        let started = self.in_flight.take();
        match result {
            Ok(()) => {
                self.unanswered_since = None;
                self.last_ok = true;
                self.last_success_unix = Some(unix_now);
                self.duration.observe(elapsed.as_secs_f64());
            }
            Err(reason) => {
                self.last_ok = false;
                if let Some(n) = self.failures.get_mut(reason.index()) {
                    *n += 1;
                }
                if reason.is_timeout() {
                    self.unanswered_since = self.unanswered_since.or(started);
                } else {
                    self.unanswered_since = None;
                }
                if reason.answered() {
                    self.duration.observe(elapsed.as_secs_f64());
                }
            }
        }
    }

    /// How long this operation has gone without an answer at `now` (zero if answered).
    pub fn unanswered_for(&self, now: Instant) -> Duration {
        let since = match (self.unanswered_since, self.in_flight) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => match a.or(b) {
                Some(t) => t,
                None => return Duration::ZERO,
            },
        };
        now.saturating_duration_since(since)
    }

    /// Age of the outstanding probe (zero when none).
    pub fn in_flight_for(&self, now: Instant) -> Duration {
        self.in_flight
            .map(|t| now.saturating_duration_since(t))
            .unwrap_or(Duration::ZERO)
    }
}

/// A background task's claim on the shared state `S` (an operation's
/// in-flight mark, the socket check's flag), released however the task ends:
/// through [`Ending::finish`] normally, or by `abandon` when the task's future
/// is dropped without finishing (it panicked, or was aborted). Without it, a
/// panicking probe would leave `in_flight` set forever: that operation would
/// never be probed again, and its growing age would read as a hang.
pub struct Ending<S, F: FnOnce(&mut S, Option<String>)> {
    shared: Arc<Mutex<S>>,
    /// Called with the panic's text when the task unwound from a panic.
    abandon: Option<F>,
}

impl<S, F: FnOnce(&mut S, Option<String>)> Ending<S, F> {
    pub fn new(shared: Arc<Mutex<S>>, abandon: F) -> Self {
        Ending {
            shared,
            abandon: Some(abandon),
        }
    }

    /// Finish normally. If `f` itself panics, the claim is still released on drop.
    pub fn finish(mut self, f: impl FnOnce(&mut S)) {
        f(&mut panics::lock(&self.shared));
        self.abandon = None;
    }
}

impl<S, F: FnOnce(&mut S, Option<String>)> Drop for Ending<S, F> {
    fn drop(&mut self) {
        if let Some(abandon) = self.abandon.take() {
            let panicked = std::thread::panicking()
                .then(|| panics::take_caught().unwrap_or_else(|| "panicked".into()));
            abandon(&mut panics::lock(&self.shared), panicked);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy)]
    enum R {
        Timeout,
        Refused,
        Garbled,
    }

    impl FailureReason for R {
        fn index(self) -> usize {
            self as usize
        }
        fn is_timeout(self) -> bool {
            matches!(self, R::Timeout)
        }
        fn answered(self) -> bool {
            matches!(self, R::Garbled)
        }
    }

    #[test]
    fn a_hang_spans_abandoned_probes_and_any_answer_ends_it() {
        let t0 = Instant::now();
        let s = |n| t0 + Duration::from_secs(n);
        let mut op = OpState::<3>::default();
        assert!(op.begin(t0));
        assert!(!op.begin(t0), "single-flight");
        op.finish(Err(R::Timeout), Duration::ZERO, 0.0);
        assert!(op.begin(s(6)));
        assert_eq!(op.in_flight_for(s(8)), Duration::from_secs(2));
        assert_eq!(op.unanswered_for(s(11)), Duration::from_secs(11));
        op.finish(Err(R::Refused), Duration::ZERO, 0.0);
        assert_eq!(op.unanswered_for(s(12)), Duration::ZERO);
        op.begin(s(12));
        op.finish(Err(R::Garbled), Duration::from_millis(1), 0.0);
        op.begin(s(13));
        op.finish::<R>(Ok(()), Duration::from_millis(1), 13.0);
        assert_eq!(op.failures, [1, 1, 1]);
        assert_eq!(op.duration.count, 2, "only answered probes have a latency");
        assert!(op.last_ok);
        assert_eq!(op.last_success_unix, Some(13.0));
    }
}
