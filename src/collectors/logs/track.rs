//! The pure half: turn successive scans of a group into bytes written,
//! rotations and growth rates. No I/O here; table-tested below.
//!
//! Files are tracked by (device, inode), so a file renamed by logrotate keeps
//! its bytes-written history under its new name (its per-file rate starts
//! over there: the rate of the file now at `syslog` is not carried by
//! `syslog.1`). Per round, the bytes written to a tracked
//! file are its growth; when it shrank (copytruncate, `> file`) they are its
//! new size (what was written since the truncation, a lower bound). The
//! cumulative "bytes written" counter therefore never goes down, and a
//! rotation never reads as shrink-then-grow. That gross rate is only a
//! counter: growth and time until full are the net trend of the group's
//! total size ([`crate::trend`], robust to the step of one rotation), since old
//! generations deleted by a cap (logrotate `rotate N`, journald
//! `SystemMaxUse`, Docker `max-file`) give the space back.
//!
//! A group held at a cap is a sawtooth, and a window-local slope of a
//! sawtooth reads as filling (most pairs of samples lie on one tooth),
//! whatever the window. So the group remembers its high-water mark: once
//! its total fell back below it because bytes left the group (a file
//! vanished, or was truncated with no copy appearing beside it), it is held
//! at that cap and its growth is 0 while its total stays within
//! 1/[`CAP_SLACK`] of that mark. A fall holds only if the high before it
//! was within the high before the previous fall: a capped log and a growing
//! one in the same group fall back too, but their highs keep rising. Growing past it ends the hold (a cap raised,
//! or no cap: one deleted generation then costs only the time to write it
//! again). Each fall resets the mark to the high since the previous fall, so
//! the cap followed is the current one. Until the first fall is seen a
//! capped group reads as filling (it is, up to its cap).
//!
//! Rotations: a growing file renamed within the group, truncated, or
//! replaced at its path by a new file after it vanished (the vanished files
//! are taken first, so a rename out of the glob and the reopen in one round
//! count). Only a file's first rename counts: a generation shifting
//! (`.1` -> `.2`) or deleted later is part of a rotation already counted.
//!
//! Limit: a file not seen before starts as a baseline: whatever it held when
//! first seen is not counted as written. Counting it would turn the copy made
//! by copytruncate, a gzip'ed generation or a file moved in into a spike; the
//! price is up to one interval of writes per new file (the size gauge still
//! shows them).

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use crate::trend::Trend;

/// A per-file rate needs this many samples at most; older ones are merged.
const FILE_SAMPLES: usize = 10;
/// At most this many filesystems per group get their own growth series.
pub const MAX_DEVS: usize = 16;
/// A held group may exceed its high-water mark by this fraction of it (1/64,
/// about 1.6 %) before it counts as growing past its cap: generations are
/// not all cut at the same byte.
const CAP_SLACK: u64 = 64;

/// One regular file as a walk saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// As the host sees it.
    pub path: String,
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
}

#[derive(Debug)]
struct FileState {
    path: String,
    dev: u64,
    size: u64,
    /// Bytes written since first seen.
    written: u64,
    /// Monotonic time of the latest round in which it grew.
    last_grew: f64,
    /// Renamed since first seen: an older generation, whose next renames
    /// (`.1` -> `.2`) and deletion are not rotations of their own.
    renamed: bool,
    /// (t, written) under the current path, spaced at least a tenth of the
    /// window apart.
    samples: VecDeque<(f64, u64)>,
}

/// The net size of a group (or of its files on one filesystem): its trend,
/// and whether it is held at a cap (see the module doc).
#[derive(Debug)]
struct NetSize {
    trend: Trend,
    last: Option<u64>,
    /// Highest total since the latest fall.
    peak: u64,
    /// The same for the cycle before (ended by the latest fall).
    prev_peak: Option<u64>,
    /// While held at a cap: the high-water mark it fell back from.
    cap: Option<u64>,
}

impl NetSize {
    fn new(window: Duration) -> Self {
        NetSize {
            trend: Trend::new(window),
            last: None,
            peak: 0,
            prev_peak: None,
            cap: None,
        }
    }

    /// `removed`: bytes left the group this round (not only moved within it).
    fn push(&mut self, t: f64, size: u64, removed: bool) {
        let fell = self.last.is_some_and(|last| size < last);
        if removed && fell && size < self.peak {
            // A cycle ended. A cap holds if this cycle stayed within the
            // high of the one before: a capped log beside a growing one in
            // the same group (the journal under /var/log) falls back too, but
            // its highs keep rising.
            let slack = |p: u64| p.saturating_add(p / CAP_SLACK);
            let within = self.prev_peak.is_none_or(|p| self.peak <= slack(p));
            self.cap = within.then_some(self.peak);
            self.prev_peak = Some(self.peak);
            self.peak = size;
        }
        if let Some(cap) = self.cap
            && size > cap.saturating_add(cap / CAP_SLACK)
        {
            self.cap = None;
        }
        self.peak = self.peak.max(size);
        self.last = Some(size);
        self.trend.push(t, size as f64);
    }

    fn growth(&self) -> Option<f64> {
        // Held at a cap, the total only swings around it: a slope through
        // part of a sawtooth, up or down, is not growth.
        let slope = self.trend.slope()?;
        Some(if self.cap.is_some() { 0.0 } else { slope })
    }

    fn held(&self) -> bool {
        self.cap.is_some()
    }
}

/// Everything remembered about one group between rounds.
#[derive(Debug)]
pub struct GroupState {
    window: f64,
    files: HashMap<(u64, u64), FileState>,
    /// Paths a growing file left by vanishing (deleted, or renamed out of the
    /// glob), with when: a new file there is the next generation.
    vacated: HashMap<String, f64>,
    written: u64,
    net: NetSize,
    devs: HashMap<u64, NetSize>,
    rotations: u64,
    /// A file appeared in the latest round (a copytruncate copy, so a
    /// truncation now moved bytes rather than removing them).
    new_last_round: bool,
    last_t: Option<f64>,
}

/// A file's recent growth, for the top-N.
#[derive(Debug, Clone, PartialEq)]
pub struct FileRate {
    pub path: String,
    pub rate: f64,
}

impl GroupState {
    pub fn new(window: Duration) -> Self {
        GroupState {
            window: window.as_secs_f64(),
            files: HashMap::new(),
            vacated: HashMap::new(),
            written: 0,
            net: NetSize::new(window),
            devs: HashMap::new(),
            rotations: 0,
            new_last_round: false,
            last_t: None,
        }
    }

    /// Fold in one complete scan taken at monotonic time `t` (`trend::now`).
    /// Returns how many filesystems were left without their own series (over
    /// [`MAX_DEVS`]).
    pub fn update(&mut self, t: f64, observed: Vec<Observed>) -> u64 {
        let first = self.last_t.is_none();
        let live_since = t - self.window;
        let mut previous = std::mem::take(&mut self.files);
        // Vanished files first: a writer reopening its file at the path a
        // rename or delete freed in this same round is the next generation.
        let present: HashSet<(u64, u64)> = observed.iter().map(|o| (o.dev, o.ino)).collect();
        let mut removed: HashSet<u64> = HashSet::new();
        let vacated = &mut self.vacated;
        previous.retain(|key, gone| {
            if present.contains(key) {
                return true;
            }
            if gone.last_grew >= live_since && !gone.renamed {
                vacated.insert(gone.path.clone(), t);
            }
            removed.insert(gone.dev);
            false
        });
        let mut truncated: HashSet<u64> = HashSet::new();
        let mut new_now = false;
        let mut written_now = 0;
        for obs in observed {
            let key = (obs.dev, obs.ino);
            let state = match previous.remove(&key) {
                Some(mut st) => {
                    let written = if obs.size >= st.size {
                        obs.size - st.size
                    } else {
                        // Truncated in place (copytruncate): what it holds now
                        // was written since.
                        self.rotations += 1;
                        truncated.insert(obs.dev);
                        obs.size
                    };
                    if obs.path != st.path {
                        if st.last_grew >= live_since && !st.renamed {
                            // A growing file renamed within the group (syslog -> syslog.1).
                            self.rotations += 1;
                        }
                        st.renamed = true;
                        // Its rate so far belongs to the old name.
                        st.samples.clear();
                    }
                    if written > 0 {
                        st.last_grew = t;
                    }
                    st.written += written;
                    st.size = obs.size;
                    st.path = obs.path;
                    written_now += written;
                    st
                }
                None => {
                    if !first && self.vacated.remove(&obs.path).is_some() {
                        // A new file where a growing one vanished: delete (or
                        // rename away) and create.
                        self.rotations += 1;
                    }
                    new_now = true;
                    FileState {
                        path: obs.path,
                        dev: obs.dev,
                        size: obs.size,
                        written: 0,
                        last_grew: f64::NEG_INFINITY,
                        renamed: false,
                        samples: VecDeque::new(),
                    }
                }
            };
            self.files.insert(key, state);
        }
        self.written += written_now;
        if !new_now && !self.new_last_round {
            removed.extend(truncated);
        }
        self.new_last_round = new_now && !first;
        self.vacated.retain(|_, at| *at >= live_since);
        // Bounded like the files: never more entries than files ever tracked.
        if self.vacated.len() > self.files.len().max(64) {
            self.vacated.clear();
        }

        let spacing = self.window / FILE_SAMPLES as f64;
        for st in self.files.values_mut() {
            push_sample(&mut st.samples, t, st.written, spacing, live_since);
        }

        let mut dev_size: HashMap<u64, u64> = HashMap::new();
        for f in self.files.values() {
            *dev_size.entry(f.dev).or_default() += f.size;
        }
        // Filesystems no file of the group lives on any more.
        self.devs.retain(|dev, _| dev_size.contains_key(dev));
        let mut dropped = 0;
        let window = Duration::from_secs_f64(self.window);
        for (dev, size) in dev_size {
            if !self.devs.contains_key(&dev) && self.devs.len() >= MAX_DEVS {
                dropped += 1;
                continue;
            }
            self.devs
                .entry(dev)
                .or_insert_with(|| NetSize::new(window))
                .push(t, size, removed.contains(&dev));
        }
        self.net.push(t, self.size(), !removed.is_empty());
        self.last_t = Some(t);
        dropped
    }

    /// Total size of the tracked files.
    pub fn size(&self) -> u64 {
        self.files.values().map(|f| f.size).sum()
    }

    pub fn file_count(&self) -> usize {
        self.files.len()
    }

    /// Cumulative bytes written to the group's files since start.
    pub fn written(&self) -> u64 {
        self.written
    }

    pub fn rotations(&self) -> u64 {
        self.rotations
    }

    /// Net growth of the group's total size over the window (bytes/s), once
    /// a tenth of it is covered; 0 while held at a cap.
    pub fn growth(&self) -> Option<f64> {
        self.net.growth()
    }

    /// Whether the group is held at a size cap (see the module doc).
    pub fn held(&self) -> bool {
        self.net.held()
    }

    /// Net growth of the group's files on each filesystem (by st_dev), with a
    /// path of one of its files there (to find the mount when st_dev does not
    /// match the mount table, as on btrfs).
    pub fn growth_by_dev(&self) -> Vec<(u64, String, Option<f64>)> {
        let mut out: Vec<_> = self
            .devs
            .iter()
            .map(|(dev, net)| {
                let path = self
                    .files
                    .values()
                    .find(|f| f.dev == *dev)
                    .map(|f| f.path.clone())
                    .unwrap_or_default();
                (*dev, path, net.growth())
            })
            .collect();
        out.sort_by_key(|(dev, ..)| *dev);
        out
    }

    /// The `n` fastest-growing files, fastest first. A file is growing when
    /// it grew between at least two pairs of its samples: one jump is a copy
    /// or a move caught half done (copytruncate's `app.log.1` first seen
    /// while it was being written), not a writer; a writer grows in each.
    pub fn top_files(&self, n: usize) -> Vec<FileRate> {
        let min_span = self.window / 10.0;
        let mut rates: Vec<FileRate> = self
            .files
            .values()
            .filter_map(|f| {
                let (t0, w0) = *f.samples.front()?;
                let (t1, w1) = *f.samples.back()?;
                let span = t1 - t0;
                let grew = f
                    .samples
                    .iter()
                    .zip(f.samples.iter().skip(1))
                    .filter(|(a, b)| b.1 > a.1)
                    .count();
                (span >= min_span && grew >= 2).then(|| FileRate {
                    path: f.path.clone(),
                    rate: (w1 - w0) as f64 / span,
                })
            })
            .collect();
        rates.sort_by(|a, b| b.rate.total_cmp(&a.rate).then_with(|| a.path.cmp(&b.path)));
        rates.truncate(n);
        rates
    }
}

/// Keep a few samples of a file's written counter over the window: the newest
/// replaces the previous one while they are closer than `spacing`.
fn push_sample(s: &mut VecDeque<(f64, u64)>, t: f64, written: u64, spacing: f64, since: f64) {
    if s.back().is_some_and(|&(last, _)| t < last) {
        s.clear(); // the clock went back
    }
    if s.len() >= 2 && t - s[s.len() - 2].0 < spacing {
        s.pop_back();
    }
    s.push_back((t, written));
    while s.len() > 2 && s.get(1).is_some_and(|&(t1, _)| t1 <= since) {
        s.pop_front();
    }
    while s.len() > FILE_SAMPLES + 1 {
        s.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(path: &str, ino: u64, size: u64) -> Observed {
        Observed {
            path: path.into(),
            dev: 1,
            ino,
            size,
        }
    }

    fn state() -> GroupState {
        GroupState::new(Duration::from_secs(20))
    }

    /// Feed rounds 1 s apart; each round is a list of (path, inode, size).
    fn feed(g: &mut GroupState, rounds: &[Vec<(&str, u64, u64)>]) {
        for (i, r) in rounds.iter().enumerate() {
            let t = 1000.0 + i as f64;
            g.update(t, r.iter().map(|(p, i, s)| obs(p, *i, *s)).collect());
        }
    }

    #[test]
    fn steady_growth_gives_its_rate() {
        let mut g = state();
        let rounds: Vec<_> = (0..10)
            .map(|i| vec![("/l/app", 1, 100 + i * 1000), ("/l/idle", 2, 50)])
            .collect();
        feed(&mut g, &rounds);
        assert_eq!(g.written(), 9000);
        assert_eq!(g.growth(), Some(1000.0));
        let top = g.top_files(5);
        assert_eq!(
            top,
            vec![FileRate {
                path: "/l/app".into(),
                rate: 1000.0
            }]
        );
        assert_eq!(g.size(), 100 + 9000 + 50);
        assert_eq!(g.rotations(), 0);
    }

    #[test]
    fn rotation_cases_never_go_negative_or_spike() {
        // (name, rounds): a writer at 1000 B/s throughout.
        type Rounds<'a> = Vec<Vec<(&'a str, u64, u64)>>;
        let cases: Vec<(&str, Rounds, u64, u64)> = vec![
            (
                "rename + create",
                vec![
                    vec![("/l/a", 1, 5000)],
                    vec![("/l/a", 1, 6000)],
                    vec![("/l/a", 1, 7000)],
                    vec![("/l/a.1", 1, 7500), ("/l/a", 2, 500)],
                    vec![("/l/a.1", 1, 7500), ("/l/a", 2, 1500)],
                    vec![("/l/a.1", 1, 7500), ("/l/a", 2, 2500)],
                ],
                // 500 bytes in the new file before it was first seen are not counted.
                4500,
                1,
            ),
            (
                "copytruncate",
                vec![
                    vec![("/l/a", 1, 5000)],
                    vec![("/l/a", 1, 6000)],
                    vec![("/l/a", 1, 7000)],
                    vec![("/l/a", 1, 500), ("/l/a.1", 2, 6800)],
                    vec![("/l/a", 1, 1500), ("/l/a.1", 2, 6800)],
                    vec![("/l/a", 1, 2500), ("/l/a.1", 2, 6800)],
                ],
                4500,
                1,
            ),
            (
                "copytruncate, copy seen a round before the truncation",
                vec![
                    vec![("/l/a", 1, 5000)],
                    vec![("/l/a", 1, 6000)],
                    vec![("/l/a", 1, 7000), ("/l/a.1", 2, 6900)],
                    vec![("/l/a", 1, 700)],
                    vec![("/l/a", 1, 1700)],
                ],
                3700,
                1,
            ),
            (
                "delete while growing, writer recreates",
                vec![
                    vec![("/l/a", 1, 5000)],
                    vec![("/l/a", 1, 6000)],
                    vec![],
                    vec![("/l/a", 2, 1000)],
                    vec![("/l/a", 2, 2000)],
                ],
                2000,
                1,
            ),
            (
                "delete, never recreated",
                vec![
                    vec![("/l/a", 1, 5000)],
                    vec![("/l/a", 1, 6000)],
                    vec![],
                    vec![],
                ],
                1000,
                0,
            ),
            (
                "generations shift: only the head counts",
                vec![
                    vec![("/l/a", 1, 5000), ("/l/a.1", 2, 9000)],
                    vec![("/l/a", 1, 6000), ("/l/a.1", 2, 9000)],
                    vec![("/l/a", 3, 0), ("/l/a.1", 1, 6000), ("/l/a.2", 2, 9000)],
                    vec![("/l/a", 3, 1000), ("/l/a.1", 1, 6000), ("/l/a.2", 2, 9000)],
                ],
                2000,
                1,
            ),
        ];
        for (name, rounds, want_written, want_rotations) in cases {
            let mut g = state();
            let mut last_written = 0;
            for (i, r) in rounds.iter().enumerate() {
                let t = 1000.0 + i as f64;
                g.update(t, r.iter().map(|(p, i, s)| obs(p, *i, *s)).collect());
                let step = g.written() - last_written;
                assert!(step <= 2 * 1000, "{name}: round {i} wrote {step}");
                last_written = g.written();
                for f in g.top_files(10) {
                    assert!(f.rate > 0.0 && f.rate <= 2000.0, "{name}: {f:?}");
                }
                if let Some(r) = g.growth() {
                    assert!((0.0..=2000.0).contains(&r), "{name}: growth {r}");
                }
            }
            assert_eq!(g.written(), want_written, "{name}");
            assert_eq!(g.rotations(), want_rotations, "{name}");
        }
    }

    #[test]
    fn the_first_round_is_a_baseline() {
        let mut g = state();
        feed(&mut g, &[vec![("/l/a", 1, 1 << 30)]]);
        assert_eq!(g.written(), 0);
        assert_eq!(g.growth(), None);
        assert!(g.top_files(5).is_empty());
    }

    #[test]
    fn per_file_rate_follows_the_window() {
        let mut g = state();
        // 2000 B/s for 30 s, then idle: after a full window the rate is gone.
        for i in 0..60u64 {
            let size = 2000 * i.min(30);
            g.update(1000.0 + i as f64, vec![obs("/l/a", 1, size)]);
            if i == 25 {
                let top = g.top_files(1);
                assert!((top[0].rate - 2000.0).abs() < 1.0, "{top:?}");
            }
        }
        assert!(g.top_files(1).is_empty());
        assert_eq!(g.growth(), Some(0.0));
    }

    #[test]
    fn a_copy_caught_half_done_is_not_a_writer() {
        let mut g = state();
        // copytruncate: a.1 first seen with part of the copy, complete a
        // round later, then idle; a keeps its 1000 B/s.
        for i in 0..30u64 {
            let mut r = vec![obs("/l/a", 1, 1000 * (i % 10))];
            if i >= 10 {
                r.push(obs("/l/a.1", 2, if i == 10 { 2_000 } else { 10_000 }));
            }
            g.update(1000.0 + i as f64, r);
            for f in g.top_files(10) {
                assert_eq!(f.path, "/l/a", "t={i}: {f:?}");
            }
        }
        // A file that grew once, 30 s ago, is not a writer either; a steady
        // one shows from its third sample.
        let mut g = state();
        for i in 0..3u64 {
            g.update(1000.0 + 2.0 * i as f64, vec![obs("/l/b", 3, 500 * i)]);
            assert_eq!(g.top_files(1).len(), usize::from(i == 2), "t={i}");
        }
    }

    #[test]
    fn top_n_is_ordered_and_capped() {
        let mut g = state();
        for i in 0..5u64 {
            g.update(
                1000.0 + i as f64,
                (1..=30)
                    .map(|k| obs(&format!("/l/{k:02}"), k, k * 10 * i))
                    .collect(),
            );
        }
        let top = g.top_files(3);
        let paths: Vec<_> = top.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["/l/30", "/l/29", "/l/28"]);
    }

    #[test]
    fn growth_is_split_by_filesystem() {
        let mut g = state();
        for i in 0..5u64 {
            g.update(
                1000.0 + i as f64,
                vec![
                    Observed {
                        path: "/a/x".into(),
                        dev: 7,
                        ino: 1,
                        size: 100 * i,
                    },
                    Observed {
                        path: "/b/y".into(),
                        dev: 9,
                        ino: 1,
                        size: 300 * i,
                    },
                ],
            );
        }
        let by_dev = g.growth_by_dev();
        assert_eq!(
            by_dev,
            vec![
                (7, "/a/x".to_string(), Some(100.0)),
                (9, "/b/y".to_string(), Some(300.0))
            ]
        );
        assert_eq!(g.growth(), Some(400.0));
    }

    /// A writer at `rate` B/s that rotates by rename at `max_size` and keeps
    /// `keep` old generations (None: all), like Docker's max-size/max-file
    /// (`keep` = max-file - 1) or logrotate's `size` + `rotate N`.
    struct Rotating {
        rate: u64,
        max_size: u64,
        keep: Option<usize>,
        /// The generations match the group's glob (`a*`), or only the head does.
        gens_in_glob: bool,
        head: (u64, u64),
        gens: VecDeque<(u64, u64)>,
        next_ino: u64,
        rotations: u64,
    }

    impl Rotating {
        fn new(rate: u64, max_size: u64, keep: Option<usize>, gens_in_glob: bool) -> Self {
            Rotating {
                rate,
                max_size,
                keep,
                gens_in_glob,
                head: (1, 0),
                gens: VecDeque::new(),
                next_ino: 2,
                rotations: 0,
            }
        }

        /// One second of writing, and the rotation it may cause: the rename
        /// and the reopen land in the same round.
        fn step(&mut self) {
            self.head.1 += self.rate;
            if self.head.1 >= self.max_size {
                self.gens.push_front(self.head);
                self.head = (self.next_ino, 0);
                self.next_ino += 1;
                self.rotations += 1;
                if let Some(k) = self.keep {
                    self.gens.truncate(k);
                }
            }
        }

        fn observe(&self) -> Vec<Observed> {
            let mut out = vec![obs("/l/a", self.head.0, self.head.1)];
            if self.gens_in_glob {
                for (i, (ino, size)) in self.gens.iter().enumerate() {
                    out.push(obs(&format!("/l/a.{}", i + 1), *ino, *size));
                }
            }
            out
        }
    }

    #[test]
    fn capped_groups_are_not_filling_and_uncapped_ones_are() {
        // 1000 B/s in a 20 s window, mostly rotated every 30 s: the window
        // is shorter than the rotation period.
        // (name, max size, keep, gens in glob, first fall).
        let cases = [
            ("max-file=3, generations matched", 30_000, Some(2), true, Some(90)),
            ("max-file=3, head only (*-json.log)", 30_000, Some(2), false, Some(30)),
            ("max-file=1 style: head only, rename", 30_000, Some(0), true, Some(30)),
            ("max-file=3, every 5 s", 5_000, Some(2), true, Some(15)),
            ("max-file=5, every 5 s, head only", 5_000, Some(4), false, Some(5)),
            ("rotate forever", 30_000, None, true, None),
            ("rotate forever, every 5 s", 5_000, None, true, None),
        ];
        for (name, max_size, keep, in_glob, first_fall) in cases {
            let mut w = Rotating::new(1000, max_size, keep, in_glob);
            let mut g = state();
            for i in 0..300u64 {
                if i > 0 {
                    w.step();
                }
                g.update(1000.0 + i as f64, w.observe());
                let growth = g.growth();
                match first_fall {
                    Some(fall) if i >= fall => {
                        assert!(g.held(), "{name}: t={i}");
                        let r = growth.unwrap_or(0.0);
                        assert!(r <= 0.0, "{name}: t={i} growth {r}");
                    }
                    Some(_) => assert!(!g.held(), "{name}: t={i}"),
                    None if i >= 10 => {
                        let r = growth.unwrap_or(0.0);
                        assert!((r - 1000.0).abs() < 1.0, "{name}: t={i} growth {r}");
                        assert!(!g.held(), "{name}: t={i}");
                    }
                    None => {}
                }
            }
            // Every rotation counted once: renamed within the group, or
            // renamed out of the glob with the new head in the same round.
            assert_eq!(g.rotations(), w.rotations, "{name}");
            assert!(w.rotations >= 9, "{name}");
        }
    }

    #[test]
    fn a_held_group_growing_past_its_cap_is_filling_again() {
        let mut w = Rotating::new(1000, 30_000, Some(2), true);
        let mut g = state();
        for i in 0..200u64 {
            g.update(1000.0 + i as f64, w.observe());
            w.step();
        }
        assert!(g.held());
        // The cap is lifted (max-file raised): nothing is deleted any more.
        w.keep = None;
        let mut filling_at = None;
        for i in 200..300u64 {
            g.update(1000.0 + i as f64, w.observe());
            if filling_at.is_none() && g.growth().is_some_and(|r| r > 500.0) {
                filling_at = Some(i);
            }
            w.step();
        }
        assert!(!g.held());
        // One generation (30 s) to regain the high-water mark, then the window.
        assert!(filling_at.is_some_and(|t| t < 260), "{filling_at:?}");
    }

    #[test]
    fn falls_that_free_nothing_do_not_hold_a_group() {
        type Rounds = Vec<Vec<(String, u64, u64)>>;
        // copytruncate with every copy seen a round before its truncation,
        // nothing ever deleted: the total dips back but the bytes are still there.
        let mut copytruncate: Rounds = Vec::new();
        let mut gens: Vec<(u64, u64)> = Vec::new();
        let mut head = 0u64;
        for i in 0..120u64 {
            head += 1000;
            if i % 30 == 0 && i > 0 {
                head = 1000;
            }
            if i % 30 == 29 {
                gens.insert(0, (10 + i, head));
            }
            let mut r = vec![("/l/a".to_string(), 1, head)];
            for (k, (ino, size)) in gens.iter().enumerate() {
                r.push((format!("/l/a.{}", k + 1), *ino, *size));
            }
            copytruncate.push(r);
        }
        // Docker with max-file=1 truncates in place: those bytes really go.
        let truncating: Rounds = (0..120u64)
            .map(|i| vec![("/l/a".to_string(), 1, 1000 * (i % 30 + 1))])
            .collect();
        // (name, rounds, held at the end)
        let cases = [
            ("copytruncate, copy seen first", copytruncate, false),
            ("truncated in place, no copy", truncating, true),
        ];
        for (name, rounds, want_held) in cases {
            let mut g = state();
            for (i, r) in rounds.into_iter().enumerate() {
                let files = r.into_iter().map(|(p, i, s)| obs(&p, i, s)).collect();
                g.update(1000.0 + i as f64, files);
            }
            assert_eq!(g.held(), want_held, "{name}");
            let r = g.growth().unwrap_or(0.0);
            if want_held {
                assert!(r <= 0.0, "{name}: {r}");
            } else {
                assert!(r > 500.0, "{name}: {r}");
            }
        }
    }

    #[test]
    fn same_round_rotations_are_counted_once() {
        type Rounds<'a> = Vec<Vec<(&'a str, u64, u64)>>;
        // (name, rounds, rotations): the writer reopens in the round it rotates.
        let cases: Vec<(&str, Rounds, u64)> = vec![
            (
                "mv app.log app.log.1 out of *.log, new app.log",
                vec![
                    vec![("/l/app.log", 1, 1000)],
                    vec![("/l/app.log", 1, 2000)],
                    vec![("/l/app.log", 2, 100)],
                    vec![("/l/app.log", 2, 1100)],
                ],
                1,
            ),
            (
                "docker *-json.log -> *-json.log.1",
                vec![
                    vec![("/c/x/x-json.log", 1, 1000)],
                    vec![("/c/x/x-json.log", 1, 2000)],
                    vec![("/c/x/x-json.log", 2, 0)],
                    vec![("/c/x/x-json.log", 2, 1000)],
                ],
                1,
            ),
            (
                "delete and recreate in one round",
                vec![
                    vec![("/l/a", 1, 1000)],
                    vec![("/l/a", 1, 2000)],
                    vec![("/l/a", 2, 10)],
                ],
                1,
            ),
            (
                "an idle file replaced at its path",
                vec![
                    vec![("/l/a", 1, 1000)],
                    vec![("/l/a", 1, 1000)],
                    vec![("/l/a", 2, 10)],
                ],
                0,
            ),
            (
                "a new file at a new path",
                vec![
                    vec![("/l/a", 1, 1000)],
                    vec![("/l/a", 1, 2000)],
                    vec![("/l/a", 1, 3000), ("/l/b", 2, 10)],
                ],
                0,
            ),
            (
                "rename within the group and reopen: one, not two",
                vec![
                    vec![("/l/a", 1, 1000)],
                    vec![("/l/a", 1, 2000)],
                    vec![("/l/a.1", 1, 2000), ("/l/a", 2, 10)],
                ],
                1,
            ),
        ];
        for (name, rounds, want) in cases {
            let mut g = state();
            feed(&mut g, &rounds);
            assert_eq!(g.rotations(), want, "{name}");
        }
    }

    #[test]
    fn a_rotated_idle_file_does_not_carry_the_rate() {
        let mut g = state();
        // 5000 B/s into a for 15 s, then it becomes a.1 (idle) and a new a
        // gets 10 B/s.
        for i in 0..30u64 {
            let r = if i < 15 {
                vec![obs("/l/a", 1, 5000 * i)]
            } else {
                vec![
                    obs("/l/a.1", 1, 5000 * 14),
                    obs("/l/a", 2, 10 * (i - 15)),
                ]
            };
            g.update(1000.0 + i as f64, r);
            for f in g.top_files(10) {
                assert!(
                    f.path == "/l/a" && (i < 15 || f.rate <= 10.0),
                    "t={i}: {f:?}"
                );
            }
        }
        assert_eq!(
            g.top_files(10),
            vec![FileRate {
                path: "/l/a".into(),
                rate: 10.0
            }]
        );
    }

    #[test]
    fn a_capped_log_beside_a_growing_one_is_filling() {
        // The journal held at its cap and syslog growing at 2000 B/s in one
        // group (/var/log/**): the total falls back at each deletion, but
        // its highs rise by what syslog added.
        let mut w = Rotating::new(1000, 30_000, Some(2), true);
        let mut g = state();
        for i in 0..300u64 {
            if i > 0 {
                w.step();
            }
            let mut files = w.observe();
            files.push(obs("/l/syslog", 1000, 2000 * i));
            g.update(1000.0 + i as f64, files);
            if i >= 120 {
                assert!(!g.held(), "t={i}");
                // Net 2000 B/s; a window holding a deletion reads less.
                let r = g.growth().unwrap_or(0.0);
                assert!(r >= 1000.0, "t={i}: growth {r}");
            }
        }
    }
}
