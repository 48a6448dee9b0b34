//! Sliding-window slope estimation, shared by the filesystem and logs collectors.
//!
//! The estimator is Theil–Sen (the median of all pairwise slopes), not least
//! squares. Least squares lets one sample dominate: a 50 MiB file written and
//! deleted within the window, or a one-off download that stays, turns into a
//! "filling" trend for the whole window. Theil–Sen ignores up to ~29% outlying
//! samples and a step change (outside the middle tenth of the window fewer than
//! half of all pairs straddle a step), while
//! a steady fill gives its exact rate. The tests below compare the two.
//!
//! Sample times are monotonic seconds ([`now`], from `Instant`), never the
//! wall clock: a clock step (VM suspend and resume, migration, NTP) would
//! otherwise clear or expire the window, and SentinelFilesystemFillingUp
//! (`for: 1h`) would fire an hour late. The wall clock is for exported
//! timestamps only.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Monotonic seconds since the first call in this process: the time base of
/// every [`Trend`].
pub fn now() -> f64 {
    seconds_since_start(Instant::now())
}

/// `at` as monotonic seconds on the same base as [`now`].
pub fn seconds_since_start(at: Instant) -> f64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    at.saturating_duration_since(start).as_secs_f64()
}

/// At most this many samples are kept per series; closer samples are merged
/// (the newest wins), so memory and the O(n²) estimate stay bounded whatever
/// the interval and window.
const MAX_SAMPLES: usize = 180;
/// Fewest samples a slope is computed from.
pub const MIN_SAMPLES: usize = 5;
/// Newest samples a fill must also show without (see [`Trend::slope`]).
const SETTLE_SAMPLES: usize = 3;

/// The estimate closer to zero if both agree on the direction, else zero.
fn cautious(a: f64, b: f64) -> f64 {
    if a.signum() != b.signum() {
        0.0
    } else if a.abs() < b.abs() {
        a
    } else {
        b
    }
}

/// Samples of one quantity over a sliding window.
#[derive(Debug, Clone)]
pub struct Trend {
    window: f64,
    /// Oldest first; at most MAX_SAMPLES + 1, so removing from the front is cheap.
    samples: Vec<(f64, f64)>,
}

impl Trend {
    pub fn new(window: Duration) -> Self {
        Trend {
            window: window.as_secs_f64(),
            samples: Vec::new(),
        }
    }

    /// Add a sample `value` at monotonic time `t` (seconds, see [`now`]) and
    /// forget samples older than the window.
    pub fn push(&mut self, t: f64, value: f64) {
        if let Some(&(last_t, _)) = self.samples.last() {
            if t < last_t {
                // Only a caller mixing time bases goes back: start over rather
                // than fit a line through times that do not line up.
                self.samples.clear();
            } else if let [.., (before_t, _), _] = self.samples[..]
                && last_t - before_t < self.window / MAX_SAMPLES as f64
            {
                // The newest sample is too close to the one before: the new one replaces it.
                self.samples.pop();
            }
        }
        self.samples.push((t, value));
        let expired = self
            .samples
            .iter()
            .take_while(|(first_t, _)| t - first_t > self.window)
            .count();
        self.samples.drain(..expired);
    }

    /// Forget everything (e.g. the filesystem was remounted or resized).
    pub fn reset(&mut self) {
        self.samples.clear();
    }

    /// The slope in units per second, once at least a tenth of the window is
    /// covered by at least [`MIN_SAMPLES`] samples.
    ///
    /// The estimate is the more cautious of the slope over all samples and the
    /// slope without the newest [`SETTLE_SAMPLES`]: early on, when the window
    /// holds few samples, a burst that is still on disk is a large share of
    /// them and would otherwise read as a fill. A real fill shows in both.
    pub fn slope(&self) -> Option<f64> {
        let first = self.samples.first()?.0;
        let last = self.samples.last()?.0;
        if last - first < self.window / 10.0 || self.samples.len() < MIN_SAMPLES {
            return None;
        }
        let all = self.samples.as_slice();
        let full = theil_sen(all)?;
        let settled = theil_sen(&all[..all.len() - SETTLE_SAMPLES])?;
        Some(cautious(full, settled))
    }

    /// Number of samples currently held.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
}

/// Median of all pairwise slopes; the lower median, so a step change that
/// exactly half of the pairs straddle reads as flat, not filling.
pub fn theil_sen(samples: &[(f64, f64)]) -> Option<f64> {
    let mut slopes = Vec::with_capacity(samples.len() * samples.len().saturating_sub(1) / 2);
    for (i, &(ti, yi)) in samples.iter().enumerate() {
        for &(tj, yj) in &samples[i + 1..] {
            let dt = tj - ti;
            if dt > 0.0 {
                slopes.push((yj - yi) / dt);
            }
        }
    }
    if slopes.is_empty() {
        return None;
    }
    let mid = (slopes.len() - 1) / 2;
    let (_, median, _) = slopes.select_nth_unstable_by(mid, f64::total_cmp);
    Some(*median)
}

/// Ordinary least-squares slope; kept for comparison in tests and benchmarks.
pub fn least_squares(samples: &[(f64, f64)]) -> Option<f64> {
    let n = samples.len() as f64;
    if samples.len() < 2 {
        return None;
    }
    let mean_t = samples.iter().map(|s| s.0).sum::<f64>() / n;
    let mean_y = samples.iter().map(|s| s.1).sum::<f64>() / n;
    let (mut num, mut den) = (0.0, 0.0);
    for &(t, y) in samples {
        num += (t - mean_t) * (y - mean_y);
        den += (t - mean_t) * (t - mean_t);
    }
    (den > 0.0).then(|| num / den)
}

/// Seconds until `avail` is used up at `rate` per second; +Inf unless filling.
pub fn seconds_until_full(avail: f64, rate: f64) -> f64 {
    if rate > 0.0 && rate.is_finite() {
        (avail.max(0.0)) / rate
    } else {
        f64::INFINITY
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: f64 = 1024.0 * 1024.0;

    /// A tiny deterministic generator, so property tests need no extra crate.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> f64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    fn series(n: usize, f: impl Fn(f64) -> f64) -> Vec<(f64, f64)> {
        (0..n).map(|i| (i as f64, f(i as f64))).collect()
    }

    #[test]
    fn steady_fill_is_exact() {
        let s = series(60, |t| 1e9 + t * MIB);
        assert!((theil_sen(&s).unwrap() - MIB).abs() < 1e-6);
        assert!((least_squares(&s).unwrap() - MIB).abs() < 1e-3);
    }

    #[test]
    fn burst_written_and_deleted_is_not_a_trend() {
        // Idle, then 50 MiB for two samples at the very end of the window.
        let mut s = series(60, |_| 1e9);
        s[57].1 += 50.0 * MIB;
        s[58].1 += 50.0 * MIB;
        assert_eq!(theil_sen(&s), Some(0.0));
        assert!(least_squares(&s).unwrap() > 0.0, "least squares is fooled");
        // ... and at the start and middle of the window.
        for at in [1, 30] {
            let mut s = series(60, |_| 1e9);
            s[at].1 += 50.0 * MIB;
            s[at + 1].1 += 50.0 * MIB;
            assert_eq!(theil_sen(&s), Some(0.0), "burst at {at}");
        }
    }

    #[test]
    fn one_off_step_that_stays_is_not_a_trend() {
        // While the step sits in the middle tenth of the window more than half
        // of the pairs straddle it and a small rate shows; elsewhere it is flat.
        for step_at in [5, 15, 20, 40, 45, 55] {
            let s = series(60, |t| {
                if t as usize >= step_at {
                    1e9 + 300.0 * MIB
                } else {
                    1e9
                }
            });
            assert_eq!(theil_sen(&s), Some(0.0), "step at {step_at}");
        }
    }

    #[test]
    fn deletion_reads_as_shrinking_not_filling() {
        let s = series(60, |t| if t < 50.0 { 1e9 + t * MIB } else { 1e9 });
        assert!(theil_sen(&s).unwrap() > 0.0);
        let s = series(60, |t| if t < 10.0 { 1e9 + t * MIB } else { 1e9 });
        assert_eq!(theil_sen(&s), Some(0.0));
    }

    #[test]
    fn property_noisy_fill_stays_within_ten_percent() {
        let mut rng = Lcg(7);
        for _ in 0..200 {
            let rate = 1.0 + rng.next() * 10.0 * MIB;
            let noise = rate * 2.0;
            let s: Vec<(f64, f64)> = (0..120)
                .map(|i| {
                    let t = i as f64 + rng.next() * 0.2;
                    (t, 5e9 + rate * t + (rng.next() - 0.5) * noise)
                })
                .collect();
            let est = theil_sen(&s).unwrap();
            assert!((est - rate).abs() <= rate * 0.1, "rate {rate} est {est}");
        }
    }

    #[test]
    fn property_flat_with_sparse_outliers_never_fills() {
        let mut rng = Lcg(11);
        for _ in 0..200 {
            let mut s = series(100, |_| 2e9);
            for _ in 0..20 {
                let i = (rng.next() * 100.0) as usize % 100;
                s[i].1 += rng.next() * 1e9;
            }
            assert_eq!(theil_sen(&s), Some(0.0));
        }
    }

    #[test]
    fn reports_nothing_until_a_tenth_of_the_window_and_enough_samples() {
        let mut t = Trend::new(Duration::from_secs(100));
        for i in 0..5 {
            t.push(f64::from(i) * 2.0, f64::from(i) * 2.0);
            assert_eq!(t.slope(), None, "{i}");
        }
        t.push(10.0, 10.0);
        assert_eq!(t.slope(), Some(1.0));
        let mut t = Trend::new(Duration::from_secs(1000));
        for i in 0..50 {
            t.push(f64::from(i), 0.0);
        }
        assert_eq!(t.slope(), None, "50s of a 1000s window is not a tenth");
    }

    #[test]
    fn a_burst_still_on_disk_in_a_young_window_is_not_a_fill() {
        // Five idle samples, then a 50 MiB burst seen by the newest two or three.
        for burst in [1, 2, 3] {
            let mut t = Trend::new(Duration::from_secs(20));
            for i in 0..5 {
                t.push(f64::from(i), 1e9);
            }
            for i in 5..5 + burst {
                t.push(f64::from(i), 1e9 + 50.0 * MIB);
                assert_eq!(t.slope(), Some(0.0), "burst of {burst}, sample {i}");
            }
        }
        // A real fill from the start shows at once.
        let mut t = Trend::new(Duration::from_secs(20));
        for i in 0..6 {
            t.push(f64::from(i), 1e9 + f64::from(i) * MIB);
        }
        assert_eq!(t.slope(), Some(MIB));
    }

    #[test]
    fn window_slides_and_memory_is_bounded() {
        let mut t = Trend::new(Duration::from_secs(60));
        for i in 0..100_000 {
            let ts = i as f64 * 0.01;
            t.push(ts, if ts < 500.0 { ts } else { 500.0 });
            assert!(t.len() <= MAX_SAMPLES + 2);
        }
        assert_eq!(t.slope(), Some(0.0));
    }

    #[test]
    fn clock_going_back_starts_over() {
        let mut t = Trend::new(Duration::from_secs(60));
        for i in 0..30 {
            t.push(1000.0 + i as f64, i as f64);
        }
        t.push(10.0, 0.0);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn the_clock_is_monotonic_seconds() {
        let a = now();
        let later = Instant::now() + Duration::from_secs(90);
        assert!(seconds_since_start(later) - a >= 90.0 - 1e-3);
        assert!(now() >= a);
        // An instant before the base clamps to 0, it never goes negative.
        let before = Instant::now()
            .checked_sub(Duration::from_secs(3600 * 24 * 365))
            .unwrap_or_else(Instant::now);
        assert!(seconds_since_start(before) >= 0.0);
    }

    #[test]
    fn time_to_full() {
        assert_eq!(seconds_until_full(100.0, 10.0), 10.0);
        assert_eq!(seconds_until_full(100.0, 0.0), f64::INFINITY);
        assert_eq!(seconds_until_full(100.0, -1.0), f64::INFINITY);
        assert_eq!(seconds_until_full(-5.0, 1.0), 0.0);
    }
}
