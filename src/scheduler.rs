//! Runs each collector in the background on its own interval and publishes
//! every round to the store.
//!
//! A round is isolated: one that errors, overruns its budget or panics is
//! published as a failed round (`sentinel_collector_success` 0, no stale
//! series, the reason in `last_error`), logged once per change of kind, and
//! the collector runs again on its next tick. Panics are also counted in
//! `sentinel_collector_panics_total`. The loop reports its progress to the
//! store, which `/-/healthy` reads.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::collector::{Collector, ErrorKind, FailureLog, unix_now};
use crate::metrics;
use crate::panics;
use crate::store::{Published, Slot, Store};

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
        let slot = Arc::new(Slot::new(collector.name(), interval));
        self.store.add(slot.clone());
        let budget = slot.budget();
        self.tasks.push(tokio::spawn(async move {
            let _ended = Ended(slot.clone());
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut failures = FailureLog::default();
            let mut totals = Totals::default();
            loop {
                ticker.tick().await;
                slot.progressed();
                let started = Instant::now();
                let round = async {
                    panics::inject_panic("round", slot.name);
                    collector.collect().await
                };
                let result = tokio::time::timeout(budget, panics::catch(round)).await;
                let duration = started.elapsed();
                totals.rounds += 1;
                let published = match result {
                    Ok(Ok(Ok(mut collection))) => {
                        failures.ok(slot.name);
                        let not_installed =
                            crate::collector::take_not_installed(&mut collection.families);
                        metrics::sort_families(&mut collection.families);
                        totals.last_success = Some(unix_now());
                        Published {
                            families: collection.families,
                            success: true,
                            duration,
                            last_success: totals.last_success,
                            series_dropped: collection.series_dropped,
                            not_installed,
                            panics_total: totals.panics,
                            rounds: totals.rounds,
                            last_error: None,
                        }
                    }
                    Ok(Ok(Err(e))) => {
                        failures.failed(slot.name, e.kind.label(), &e);
                        totals.failed(duration, e.to_string())
                    }
                    Ok(Err(panic)) => {
                        totals.panics += 1;
                        let e = format!("round {panic}");
                        failures.failed(slot.name, ErrorKind::Panic.label(), &e);
                        totals.failed(duration, e)
                    }
                    Err(_) => {
                        let e = format!("round did not finish within {budget:?}");
                        failures.failed(slot.name, ErrorKind::Overrun.label(), &e);
                        totals.failed(duration, e)
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

/// What a collector's loop carries from round to round.
#[derive(Default)]
struct Totals {
    rounds: u64,
    panics: u64,
    last_success: Option<f64>,
}

impl Totals {
    fn failed(&self, duration: Duration, error: String) -> Published {
        Published {
            families: Vec::new(),
            success: false,
            duration,
            last_success: self.last_success,
            series_dropped: 0,
            not_installed: false,
            panics_total: self.panics,
            rounds: self.rounds,
            last_error: Some(error),
        }
    }
}

/// Marks the slot's task as ended when the task's future is dropped: aborted,
/// or unwound by a panic outside a round (which `/-/healthy` then reports).
struct Ended(Arc<Slot>);

impl Drop for Ended {
    fn drop(&mut self) {
        self.0.ended();
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
    use crate::collector::{CollectError, Collection};
    use crate::metrics::Family;

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
                return Err(CollectError::new(ErrorKind::Read, "even round"));
            }
            let mut f = Family::gauge("sentinel_test_rounds", "Rounds.");
            f.push(vec![], f64::from(self.rounds));
            Ok(Collection {
                families: vec![f],
                series_dropped: 2,
            })
        }
    }

    /// Panics in the rounds listed; sleeps `first_round` in its first round;
    /// with `hang`, never finishes a round.
    #[derive(Default)]
    struct Faulty {
        rounds: u32,
        panic_in: Vec<u32>,
        first_round: Duration,
        hang: bool,
    }

    impl Collector for Faulty {
        fn name(&self) -> &'static str {
            "faulty"
        }

        async fn collect(&mut self) -> Result<Collection, CollectError> {
            self.rounds += 1;
            if self.rounds == 1 {
                tokio::time::sleep(self.first_round).await;
            }
            if self.hang {
                std::future::pending::<()>().await;
            }
            if self.panic_in.contains(&self.rounds) {
                panic!("round {} went wrong", self.rounds);
            }
            let mut f = Family::gauge("sentinel_test_rounds", "Rounds.");
            f.push(vec![], f64::from(self.rounds));
            Ok(Collection::new(vec![f]))
        }
    }

    fn render(store: &Arc<Store>) -> String {
        let body = store.exposition(metrics::Format::OpenMetrics, &[]);
        String::from_utf8(body.concat()).unwrap()
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
        assert!(text.contains("sentinel_series_dropped{collector=\"counting\"} 2"));
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

    #[tokio::test(start_paused = true)]
    async fn a_panicking_round_is_a_failed_round_and_the_next_one_runs() {
        let mut sched = Scheduler::new();
        sched.spawn(
            Faulty {
                panic_in: vec![2],
                ..Faulty::default()
            },
            Duration::from_secs(5),
        );
        let store = sched.store();
        tokio::time::sleep(Duration::from_millis(5_500)).await;
        let text = render(&store);
        assert!(text.contains("sentinel_collector_success{collector=\"faulty\"} 0"));
        assert!(text.contains("sentinel_collector_panics_total{collector=\"faulty\"} 1"));
        assert!(
            !text.contains("sentinel_test_rounds"),
            "no stale values: {text}"
        );
        let p = store.slots()[0].current();
        let error = p.last_error.as_deref().unwrap_or("");
        assert!(error.starts_with("round panicked"), "{error}");
        assert!(error.contains("round 2 went wrong"), "{error}");
        assert_eq!(p.status(), crate::store::Status::Failing);

        tokio::time::sleep(Duration::from_secs(5)).await;
        let text = render(&store);
        assert!(text.contains("sentinel_test_rounds 3"), "{text}");
        assert!(text.contains("sentinel_collector_success{collector=\"faulty\"} 1"));
        assert!(text.contains("sentinel_collector_panics_total{collector=\"faulty\"} 1"));
        assert!(store.healthy().is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn ready_after_every_first_round_healthy_while_rounds_overrun() {
        let mut sched = Scheduler::new();
        sched.spawn(
            Faulty {
                first_round: Duration::from_secs(3),
                ..Faulty::default()
            },
            Duration::from_secs(5),
        );
        sched.spawn(
            Counting {
                rounds: 0,
                fail_every_other: false,
            },
            Duration::from_secs(15),
        );
        let store = sched.store();
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(store.healthy(), Ok("OK\n"));
        let waiting = store.ready().unwrap_err();
        assert!(waiting.contains("faulty"), "{waiting}");
        assert!(!waiting.contains("counting"), "{waiting}");
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(store.ready(), Ok("OK\n"));
        assert_eq!(
            store.slots()[0].current().status(),
            crate::store::Status::Ok
        );

        // A collector whose rounds never finish is failing, but its loop runs.
        let mut sched = Scheduler::new();
        sched.spawn(
            Faulty {
                hang: true,
                ..Faulty::default()
            },
            Duration::from_secs(5),
        );
        let store = sched.store();
        assert!(store.ready().is_err());
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert_eq!(store.healthy(), Ok("OK\n"));
        assert_eq!(store.ready(), Ok("OK\n"));
        let p = store.slots()[0].current();
        assert!(!p.success);
        assert!(p.rounds >= 300, "{}", p.rounds);
        assert_eq!(
            p.last_error.as_deref(),
            Some("round did not finish within 10s")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_collector_whose_task_ended_is_unhealthy() {
        let mut sched = Scheduler::new();
        sched.spawn(Faulty::default(), Duration::from_secs(5));
        let store = sched.store();
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(store.healthy().is_ok());
        drop(sched);
        tokio::time::sleep(Duration::from_millis(10)).await;
        let why = store.healthy().unwrap_err();
        assert!(
            why.contains("collector faulty: its task has ended"),
            "{why}"
        );
        assert!(store.ready().is_err());
    }
}
