//! Runs each collector in the background on its own interval and publishes
//! every round to the store.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::collector::{Collector, FailureLog, unix_now};
use crate::metrics;
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
    use crate::collector::{CollectError, Collection};
    use crate::metrics::Family;
    use crate::store::registry;

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
