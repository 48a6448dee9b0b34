//! Fill-rate estimation, shared by the filesystem and logs collectors: one
//! [`Trend`] per quantity (used bytes, used inodes, a log group's net size).
//!
//! Two estimates, and the rule that picks one.
//!
//! - **Long**: a Theil–Sen slope over the whole trend window, the more
//!   cautious of two: the 45th and 55th percentiles of all pairwise slopes
//!   (the one closer to zero), and their median without the newest three
//!   samples (`SETTLE_SAMPLES`: early on, a
//!   burst still on disk is a large share of few samples). Least squares
//!   would let one sample dominate: a file written and deleted, or a one-off
//!   download that stays, would read as "filling" for the whole window.
//!   Pairwise slopes ignore up to ~29 % outlying samples and a step: at most
//!   just over half of all pairs straddle a step (while it sits in the middle
//!   tenth of the window), so outside the middle tenth of the percentiles the
//!   step is invisible, while a steady fill gives its rate at every
//!   percentile. It is slow on purpose:
//!   after a flat hour an abrupt fill reads "not filling" for ~18 minutes and
//!   under half its rate for ~31 (1 h window).
//! - **Onset**: the newest tenth of the window (6 min at the default 1 h, at
//!   least `SHORT_MIN_SAMPLES` samples), split into an older and a newer half.
//!   A sustained fill shows in both halves; a burst does not. A fill is
//!   confirmed once both halves' Theil–Sen slopes are positive, within a factor
//!   of two of each other (`ONSET_AGREE`), and each half's Mann–Kendall score
//!   (rising pairs minus falling pairs over its standard deviation under "no
//!   trend") is at least `ONSET_Z`. While confirmed, the estimate is the
//!   Theil–Sen slope of the whole short window; it stays confirmed while both
//!   halves still rise (hysteresis, so a noisy fill does not flicker) and the
//!   whole window's slope is at least half the halves' (a fall inside the
//!   window, such as a deletion or a rotation, ends it).
//!
//! The reported slope is the onset estimate while a fill is confirmed, else
//! the long one. Why each burst stays out of the onset path:
//! - a step (download that stays, or a file written and later deleted) lies in
//!   at most one half, or between them: the other half is flat, so the two
//!   halves disagree (a step in the middle of one half gives it a small
//!   positive slope, the flat half gives ~0, beyond the factor of two);
//! - noise with no net growth rarely passes a Mann–Kendall score of 2 in both
//!   halves at once (about 1 in 2,000 samples for independent noise), and then
//!   only until the next sample;
//! - a rotation sawtooth whose teeth are shorter than half the short window
//!   puts a fall in each half; longer teeth are real growth while they rise and
//!   read as such, but only until the fall enters the short window. This is
//!   the one case the onset path makes longer: a 14-minute tooth at 150 kB/s
//!   reads under the 24 h horizon for up to ~24 minutes at a stretch (19
//!   before), still well inside the warning's `for: 1h`.
//!
//! Lag, at the defaults (15 s samples, 1 h window, flat before): any abrupt
//! fill reads within 10 % of its rate 4.5 minutes after it starts, whatever
//! the rate, instead of ~41 minutes (`bench/fill_lag.sh` prints the table).
//! A fill hidden in noise larger than what it adds in three minutes is left
//! to the long estimate. Shrinking is only ever the long estimate: the onset
//! path confirms fills, and a fill that stopped fades out as before.
//!
//! Sample times are monotonic seconds ([`now`], from `Instant`), never the
//! wall clock: a clock step (VM suspend and resume, migration, NTP) would
//! otherwise clear or expire the window, and SentinelFilesystemFillingUp
//! would fire late. The wall clock is for exported timestamps only.

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

/// At most this many samples are kept per series in the long window; closer
/// samples are merged (the newest wins), so memory and the O(n²) estimate
/// stay bounded whatever the interval and window.
const MAX_SAMPLES: usize = 180;
/// Fewest samples a slope is computed from.
pub const MIN_SAMPLES: usize = 5;
/// Newest samples a fill must also show without (see the module doc).
const SETTLE_SAMPLES: usize = 3;
/// The short window is this fraction of the trend window: it scales with it,
/// so a shortened window (tests, drills) shortens the onset lag alike.
const SHORT_FRACTION: f64 = 10.0;
/// The short window holds at least this many samples (older ones are kept
/// while it has fewer): eight per half, for the Mann–Kendall score to mean
/// something at long intervals.
const SHORT_MIN_SAMPLES: usize = 16;
/// ... and at most about this many; closer samples are merged.
const SHORT_MAX_SAMPLES: usize = 48;
/// Mann–Kendall score each half must reach to confirm a fill (one-sided
/// p ≈ 0.023 per half under "no trend").
const ONSET_Z: f64 = 2.0;
/// The halves' slopes must be within this factor of each other.
const ONSET_AGREE: f64 = 0.5;

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

/// Append `(t, value)`; if the newest sample is closer than `spacing` to the
/// one before, the new sample replaces it (the newest wins).
fn push_merged(samples: &mut Vec<(f64, f64)>, t: f64, value: f64, spacing: f64) {
    if let [.., (before_t, _), (last_t, _)] = samples[..]
        && last_t - before_t < spacing
    {
        samples.pop();
    }
    samples.push((t, value));
}

/// Samples of one quantity over a sliding window, and its fill-rate estimate
/// (see the module doc).
#[derive(Debug, Clone)]
pub struct Trend {
    window: f64,
    /// The whole window, oldest first; at most MAX_SAMPLES + 1, so removing
    /// from the front is cheap.
    long: Vec<(f64, f64)>,
    /// The newest tenth of the window at full resolution, oldest first.
    short: Vec<(f64, f64)>,
    /// A sustained fill is confirmed in the short window.
    onset: bool,
    /// The estimate as of the newest sample.
    estimate: Option<f64>,
}

impl Trend {
    pub fn new(window: Duration) -> Self {
        Trend {
            window: window.as_secs_f64(),
            long: Vec::new(),
            short: Vec::new(),
            onset: false,
            estimate: None,
        }
    }

    fn short_span(&self) -> f64 {
        self.window / SHORT_FRACTION
    }

    /// Add a sample `value` at monotonic time `t` (seconds, see [`now`]),
    /// forget samples older than the window, and update the estimate.
    pub fn push(&mut self, t: f64, value: f64) {
        if self.long.last().is_some_and(|&(last_t, _)| t < last_t) {
            // Only a caller mixing time bases goes back: start over rather
            // than fit a line through times that do not line up.
            self.reset();
        }
        let window = self.window;
        push_merged(&mut self.long, t, value, window / MAX_SAMPLES as f64);
        let expired = self
            .long
            .iter()
            .take_while(|(first_t, _)| t - first_t > window)
            .count();
        self.long.drain(..expired);

        let span = self.short_span();
        push_merged(&mut self.short, t, value, span / SHORT_MAX_SAMPLES as f64);
        let spare = self.short.len().saturating_sub(SHORT_MIN_SAMPLES);
        let stale = self
            .short
            .iter()
            .enumerate()
            .take_while(|&(i, (first_t, _))| {
                t - first_t > window || (i < spare && t - first_t > span)
            })
            .count();
        self.short.drain(..stale);

        let long = self.long_slope();
        let onset = self.onset_slope();
        self.estimate = long.map(|long| onset.unwrap_or(long));
    }

    /// Forget everything (e.g. the filesystem was remounted or resized).
    pub fn reset(&mut self) {
        self.long.clear();
        self.short.clear();
        self.onset = false;
        self.estimate = None;
    }

    /// The slope in units per second as of the newest sample, once at least
    /// a tenth of the window is covered by at least [`MIN_SAMPLES`] samples.
    pub fn slope(&self) -> Option<f64> {
        self.estimate
    }

    /// The long estimate: the more cautious of [`banded_slope`] (a step
    /// straddled by just over half of the pairs reads flat) and the median
    /// without the newest [`SETTLE_SAMPLES`].
    fn long_slope(&self) -> Option<f64> {
        let all = self.long.as_slice();
        let first = all.first()?.0;
        let last = all.last()?.0;
        if last - first < self.window / 10.0 || all.len() < MIN_SAMPLES {
            return None;
        }
        let full = banded_slope(all)?;
        let settled = theil_sen(&all[..all.len() - SETTLE_SAMPLES])?;
        Some(cautious(full, settled))
    }

    /// The onset estimate: the Theil–Sen slope of the short window while a
    /// sustained fill is confirmed there, else None. Updates the confirmation.
    fn onset_slope(&mut self) -> Option<f64> {
        let short = self.short.as_slice();
        if short.len() < SHORT_MIN_SAMPLES {
            self.onset = false;
            return None;
        }
        let (older, newer) = short.split_at(short.len() - short.len() / 2);
        let rising = match (theil_sen(older), theil_sen(newer)) {
            (Some(a), Some(b)) if a > 0.0 && b > 0.0 => Some((a, b)),
            _ => None,
        };
        let whole = theil_sen(short);
        self.onset = rising.zip(whole).is_some_and(|((a, b), whole)| {
            // A fall inside the window (a deletion, a rotation) drags the
            // whole window's slope below its halves': not a clean fill then.
            whole >= ONSET_AGREE * a.min(b)
                && a.min(b) >= ONSET_AGREE * a.max(b)
                && (self.onset
                    || (mann_kendall(older) >= ONSET_Z && mann_kendall(newer) >= ONSET_Z))
        });
        if self.onset { whole } else { None }
    }

    /// Number of samples in the long window.
    pub fn len(&self) -> usize {
        self.long.len()
    }

    pub fn is_empty(&self) -> bool {
        self.long.is_empty()
    }
}

/// Median of all pairwise slopes; the lower median, so a step change that
/// exactly half of the pairs straddle reads as flat, not filling.
pub fn theil_sen(samples: &[(f64, f64)]) -> Option<f64> {
    let mut slopes = pairwise_slopes(samples);
    let mid = slopes.len().checked_sub(1)? / 2;
    let (_, median, _) = slopes.select_nth_unstable_by(mid, f64::total_cmp);
    Some(*median)
}

/// Fraction of pairwise slopes [`banded_slope`] leaves out on each side.
const BAND: f64 = 0.45;

/// The 45th and 55th percentiles of all pairwise slopes, the one closer to
/// zero if both have the same sign, else zero. Symmetric: a step up reads
/// neither as filling nor a step down as shrinking, even while just over
/// half of the pairs straddle it; a steady trend reads its rate.
pub fn banded_slope(samples: &[(f64, f64)]) -> Option<f64> {
    let mut slopes = pairwise_slopes(samples);
    let last = slopes.len().checked_sub(1)?;
    let lo = (last as f64 * BAND) as usize;
    let hi = last - lo;
    let (_, low, above) = slopes.select_nth_unstable_by(lo, f64::total_cmp);
    let low = *low;
    let high = if hi == lo {
        low
    } else {
        // The 55th percentile is the (hi - lo - 1)-th smallest of those above.
        let (_, high, _) = above.select_nth_unstable_by(hi - lo - 1, f64::total_cmp);
        *high
    };
    Some(cautious(low, high))
}

fn pairwise_slopes(samples: &[(f64, f64)]) -> Vec<f64> {
    let mut slopes = Vec::with_capacity(samples.len() * samples.len().saturating_sub(1) / 2);
    for (i, &(ti, yi)) in samples.iter().enumerate() {
        for &(tj, yj) in &samples[i + 1..] {
            let dt = tj - ti;
            if dt > 0.0 {
                slopes.push((yj - yi) / dt);
            }
        }
    }
    slopes
}

/// Mann–Kendall score of samples in time order: rising pairs minus falling
/// pairs, over the standard deviation of that count when there is no trend
/// (ties are not corrected for, which only makes it more cautious).
pub fn mann_kendall(samples: &[(f64, f64)]) -> f64 {
    let mut score = 0i64;
    for (i, &(_, yi)) in samples.iter().enumerate() {
        for &(_, yj) in &samples[i + 1..] {
            score += match yj.total_cmp(&yi) {
                std::cmp::Ordering::Greater => 1,
                std::cmp::Ordering::Less => -1,
                std::cmp::Ordering::Equal => 0,
            };
        }
    }
    let n = samples.len() as f64;
    let variance = n * (n - 1.0) * (2.0 * n + 5.0) / 18.0;
    if variance > 0.0 {
        score as f64 / variance.sqrt()
    } else {
        0.0
    }
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
        for i in 0..3_000 {
            let ts = f64::from(i) * 0.05;
            t.push(ts, if ts < 80.0 { ts } else { 80.0 });
            assert!(t.len() <= MAX_SAMPLES + 2);
            assert!(t.short.len() <= SHORT_MAX_SAMPLES + 2);
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

    #[test]
    fn the_band_is_symmetric_and_ignores_steps_anywhere() {
        let fill = series(60, |t| 1e9 + t * MIB);
        assert_eq!(banded_slope(&fill), Some(MIB));
        let drain = series(60, |t| 1e9 - t * MIB);
        assert_eq!(banded_slope(&drain), Some(-MIB));
        for step_at in 1..60 {
            let up = series(60, |t| {
                if t as usize >= step_at {
                    1e9 + 300.0 * MIB
                } else {
                    1e9
                }
            });
            assert_eq!(banded_slope(&up), Some(0.0), "step up at {step_at}");
            let down = series(60, |t| {
                if t as usize >= step_at {
                    1e9 - 300.0 * MIB
                } else {
                    1e9
                }
            });
            assert_eq!(banded_slope(&down), Some(0.0), "step down at {step_at}");
        }
        // A fast sawtooth with no net growth reads flat, not shrinking.
        let saw = series(40, |t| {
            if (t as usize).is_multiple_of(2) {
                64.0
            } else {
                128.0
            }
        });
        assert_eq!(banded_slope(&saw), Some(0.0));
        assert_eq!(banded_slope(&[(0.0, 1.0)]), None);
    }

    #[test]
    fn mann_kendall_scores_order_not_size() {
        let rising = series(12, |t| t);
        let z = mann_kendall(&rising);
        assert!(z > 4.0, "{z}");
        let falling = series(12, |t| -t * 1e9);
        assert!((mann_kendall(&falling) + z).abs() < 1e-9);
        assert_eq!(mann_kendall(&series(12, |_| 5.0)), 0.0);
        assert_eq!(mann_kendall(&[(0.0, 1.0)]), 0.0);
    }

    /// A trend with a 100 s window (short window 10 s, 16 samples at 1 s)
    /// fed `f` at 1 s from t = 0 to `until`; returns it.
    fn fed(until: u32, f: impl Fn(f64) -> f64) -> Trend {
        let mut t = Trend::new(Duration::from_secs(100));
        for i in 0..=until {
            let ts = f64::from(i);
            t.push(ts, f(ts));
        }
        t
    }

    #[test]
    fn a_sustained_fill_is_confirmed_in_the_short_window() {
        // Flat for 100 s, then 1 MiB/s: the long window alone reads 0 for a while.
        let fill = |t: f64| 1e9 + (t - 100.0).max(0.0) * MIB;
        assert_eq!(fed(105, fill).slope(), Some(0.0), "5 s is not sustained");
        let t = fed(116, fill);
        assert!(t.onset);
        assert_eq!(t.slope(), Some(MIB));
        let mut long = t.clone();
        long.onset = false;
        assert!(long.long_slope().is_some_and(|s| s < 0.5 * MIB));
    }

    #[test]
    fn a_step_in_either_half_of_the_short_window_is_not_an_onset() {
        // With jitter, a flat half reads a tiny slope of either sign: the
        // factor-of-two agreement, not the sign, keeps a step out.
        let mut rng = Lcg(1);
        let jitter: Vec<f64> = (0..=200).map(|_| rng.next() * 1000.0).collect();
        for step_at in 150..=200 {
            let mut t = Trend::new(Duration::from_secs(100));
            for i in 0..=200u32 {
                let step = if i >= step_at { 300.0 * MIB } else { 0.0 };
                t.push(f64::from(i), 1e9 + step + jitter[i as usize]);
                assert!(!t.onset, "step at {step_at}, sample {i}");
            }
        }
    }

    #[test]
    fn a_confirmed_fill_stays_confirmed_while_both_halves_rise() {
        // Confirmed on a clean fill, then a wobble that alone would not
        // confirm (its halves' Mann-Kendall scores stay under ONSET_Z) keeps
        // it while both halves still rise and agree.
        let mut t = fed(130, |t| 1e9 + t * MIB);
        assert!(t.onset);
        for i in 131..150u32 {
            let ts = f64::from(i);
            let wobble = if i % 2 == 0 { 10.0 * MIB } else { 0.0 };
            t.push(ts, 1e9 + ts * MIB + wobble);
            assert!(t.onset, "sample {i}");
        }
        let newer = &t.short[t.short.len() - t.short.len() / 2..];
        assert!(mann_kendall(newer) < ONSET_Z);
        // When the fill stops, the newer half goes flat and the onset ends.
        for i in 150..170u32 {
            t.push(f64::from(i), 1e9 + 150.0 * MIB);
        }
        assert!(!t.onset);
        t.reset();
        assert!(!t.onset && t.slope().is_none() && t.short.is_empty());
    }

    #[test]
    fn the_short_window_keeps_enough_samples_at_long_intervals() {
        // 1 h window, one sample a minute: the tenth (6 min) holds 6 samples,
        // so the older ones stay until there are 16.
        let mut t = Trend::new(Duration::from_secs(3600));
        for i in 0..100u32 {
            t.push(f64::from(i) * 60.0, f64::from(i) * MIB);
        }
        assert_eq!(t.short.len(), SHORT_MIN_SAMPLES);
        assert!(t.onset);
    }

    // ---- The onset path: lag of abrupt fills, and bursts that stay quiet. ----

    /// The default collection interval and trend window of the filesystem collector.
    const INTERVAL: f64 = 15.0;
    const HOUR: f64 = 3600.0;
    const MB: f64 = 1e6;
    const GB: f64 = 1e9;

    trait Estimator {
        fn push(&mut self, t: f64, value: f64);
        fn slope(&self) -> Option<f64>;
    }

    impl Estimator for Trend {
        fn push(&mut self, t: f64, value: f64) {
            Trend::push(self, t, value);
        }
        fn slope(&self) -> Option<f64> {
            Trend::slope(self)
        }
    }

    /// The estimator as it was before the onset path and the percentile band:
    /// the more cautious of Theil–Sen over the window with and without the
    /// newest three samples. For the before/after tables.
    struct Before {
        window: f64,
        samples: Vec<(f64, f64)>,
    }

    impl Before {
        fn new(window: f64) -> Self {
            Before {
                window,
                samples: Vec::new(),
            }
        }
    }

    impl Estimator for Before {
        fn push(&mut self, t: f64, value: f64) {
            push_merged(
                &mut self.samples,
                t,
                value,
                self.window / MAX_SAMPLES as f64,
            );
            let window = self.window;
            self.samples.retain(|&(first_t, _)| t - first_t <= window);
        }
        fn slope(&self) -> Option<f64> {
            let s = self.samples.as_slice();
            if s.len() < MIN_SAMPLES || s[s.len() - 1].0 - s[0].0 < self.window / 10.0 {
                return None;
            }
            Some(cautious(
                theil_sen(s)?,
                theil_sen(&s[..s.len() - SETTLE_SAMPLES])?,
            ))
        }
    }

    fn after() -> Trend {
        Trend::new(Duration::from_secs(3600))
    }

    fn before() -> Before {
        Before::new(HOUR)
    }

    /// After two flat hours, a fill at `rate` starts (with uniform noise of
    /// ±`jitter` on every sample); sampled every [`INTERVAL`] for 90 minutes.
    /// Minutes from the onset until, from then on, the rate reads at least
    /// 50 % and 90 % of the truth, and time to full is within ±20 % of it.
    fn onset_lag(est: &mut impl Estimator, rate: f64, jitter: f64) -> [Option<f64>; 3] {
        const SIZE: f64 = 1e15; // never full within the run
        let onset = 2.0 * HOUR;
        let mut rng = Lcg(3);
        let mut last_bad = [Some(0.0); 3];
        let mut t = 0.0;
        while t <= onset + 1.5 * HOUR {
            let used = 1e12 + rate * (t - onset).max(0.0) + (rng.next() - 0.5) * 2.0 * jitter;
            est.push(t, used);
            if t >= onset {
                let since = (t - onset) / 60.0;
                let reported = est.slope().unwrap_or(0.0);
                let avail = SIZE - used;
                let ttf = seconds_until_full(avail, reported);
                let truth = avail / rate;
                let good = [
                    reported >= 0.5 * rate,
                    reported >= 0.9 * rate,
                    (ttf - truth).abs() <= 0.2 * truth,
                ];
                for (bad, good) in last_bad.iter_mut().zip(good) {
                    if !good {
                        *bad = None;
                    } else if bad.is_none() {
                        *bad = Some(since);
                    }
                }
            }
            t += INTERVAL;
        }
        last_bad
    }

    fn within(m: Option<f64>, bound: f64) -> bool {
        m.is_some_and(|m| m <= bound)
    }

    fn minutes(m: Option<f64>) -> String {
        m.map_or("never".into(), |m| format!("{m:.1}"))
    }

    /// The lag table of `bench/fill_lag.sh` (run with --nocapture to see it).
    #[test]
    fn lag_table_of_abrupt_fills() {
        println!(
            "abrupt fill after 2 flat hours, samples every {INTERVAL}s, 1h trend window:\n\
             minutes from onset until (from then on) rate >= 50% | rate >= 90% | time to full within ±20%"
        );
        println!(
            "{:<10} {:>8} {:<24} {:<24}",
            "estimator", "MB/s", "noise-free", "±50 MB noise per sample"
        );
        for rate in [1.0 * MB, 10.0 * MB, 100.0 * MB] {
            for (name, clean, noisy) in [
                (
                    "before",
                    onset_lag(&mut before(), rate, 0.0),
                    onset_lag(&mut before(), rate, 50.0 * MB),
                ),
                (
                    "after",
                    onset_lag(&mut after(), rate, 0.0),
                    onset_lag(&mut after(), rate, 50.0 * MB),
                ),
            ] {
                let row = |l: [Option<f64>; 3]| {
                    format!(
                        "{:>6} {:>6} {:>6}",
                        minutes(l[0]),
                        minutes(l[1]),
                        minutes(l[2])
                    )
                };
                println!(
                    "{name:<10} {:>8} {:<24} {:<24}",
                    rate / MB,
                    row(clean),
                    row(noisy)
                );
                if name == "after" {
                    assert!(within(clean[0], 6.0), "{rate}: 50% at {clean:?}");
                    assert!(within(clean[1], 8.0), "{rate}: 90% at {clean:?}");
                    assert!(within(clean[2], 8.0), "{rate}: ±20% at {clean:?}");
                    if rate >= 10.0 * MB {
                        assert!(within(noisy[2], 10.0), "{rate} noisy: {noisy:?}");
                    }
                } else {
                    // The replica still shows the lag the onset path removes.
                    assert!(!within(clean[0], 20.0), "{rate}: before at {clean:?}");
                }
            }
        }
        // The logs collector's default window: its short window is 16 samples (4 min).
        let logs = Duration::from_secs(600);
        let old = onset_lag(&mut Before::new(600.0), 10.0 * MB, 0.0);
        let new = onset_lag(&mut Trend::new(logs), 10.0 * MB, 0.0);
        println!("10 min trend window (logs), any rate, noise-free:");
        for (name, l) in [("before", old), ("after", new)] {
            let [a, b, c] = l.map(minutes);
            println!("{name:<10} {:>8} {a:>6} {b:>6} {c:>6}", "");
        }
        assert!(within(new[2], 4.0), "logs: {new:?}");
    }

    /// Used bytes at a time.
    type Used = Box<dyn FnMut(f64) -> f64>;

    /// Used bytes of a 60 GB disk with 9 GB (15 %) available, while a burst
    /// that must stay quiet happens at 2 h; sampled for 5 hours.
    fn bursts() -> Vec<(&'static str, Used)> {
        const USED: f64 = 51.0 * GB;
        const AT: f64 = 2.0 * HOUR;
        let mut rng = Lcg(5);
        vec![
            (
                "5 GB written at 100 MB/s, deleted 3 min later",
                Box::new(|t: f64| {
                    let burst = if (AT..AT + 50.0 + 180.0).contains(&t) {
                        ((t - AT) * 100.0 * MB).min(5.0 * GB)
                    } else {
                        0.0
                    };
                    USED + burst
                }),
            ),
            (
                "5 GB download at 50 MB/s that stays",
                Box::new(|t: f64| USED - 5.0 * GB + ((t - AT) * 50.0 * MB).clamp(0.0, 5.0 * GB)),
            ),
            (
                "rotation: 1 MB/s, 600 MB deleted every 10 min",
                Box::new(|t: f64| USED + 1.0 * MB * (t % 600.0)),
            ),
            (
                "rotation: 150 kB/s, 128 MB deleted every 14.2 min",
                Box::new(|t: f64| USED + 150e3 * (t % 853.0)),
            ),
            (
                "rotation: 1 MB/s, 60 MB deleted every minute",
                Box::new(|t: f64| USED + 1.0 * MB * (t % 60.0)),
            ),
            (
                "busy disk: ±1 GB noise, no net growth",
                Box::new(move |_| USED + (rng.next() - 0.5) * 2.0 * GB),
            ),
        ]
    }

    /// Longest stretches, in minutes, during which time to full reads under
    /// the critical (4 h) and warning (24 h) horizons of the shipped rules.
    fn false_fill(est: &mut impl Estimator, used: &mut dyn FnMut(f64) -> f64) -> [f64; 2] {
        const SIZE: f64 = 60.0 * GB;
        let mut longest = [0.0f64; 2];
        let mut current = [0.0f64; 2];
        let mut t = 0.0;
        while t <= 5.0 * HOUR {
            let y = used(t);
            est.push(t, y);
            let ttf = seconds_until_full(SIZE - y, est.slope().unwrap_or(0.0));
            for (i, horizon) in [4.0 * HOUR, 24.0 * HOUR].into_iter().enumerate() {
                current[i] = if ttf < horizon {
                    current[i] + INTERVAL / 60.0
                } else {
                    0.0
                };
                longest[i] = longest[i].max(current[i]);
            }
            t += INTERVAL;
        }
        longest
    }

    /// The burst table of `bench/fill_lag.sh`: none reads as filling for
    /// long against the `for:` of the shipped rules (30 min critical, 1 h
    /// warning).
    #[test]
    fn bursts_stay_quiet() {
        println!(
            "60 GB disk, 9 GB available; longest stretch (minutes) with time to full under 4h | under 24h"
        );
        println!("{:<52} {:>13} {:>13}", "burst", "before", "after");
        let names: Vec<&str> = bursts().iter().map(|(n, _)| *n).collect();
        for (i, name) in names.into_iter().enumerate() {
            let mut f = bursts().swap_remove(i).1;
            let old = false_fill(&mut before(), &mut f);
            let mut f = bursts().swap_remove(i).1;
            let new = false_fill(&mut after(), &mut f);
            println!(
                "{name:<52} {:>6.1} {:>6.1} {:>6.1} {:>6.1}",
                old[0], old[1], new[0], new[1]
            );
            assert!(new[0] <= 10.0 && new[1] <= 30.0, "{name}: {new:?}");
        }
    }
}
