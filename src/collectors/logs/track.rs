//! The pure half: turn successive scans of a group into bytes written,
//! rotations and growth rates. No I/O here; table-tested below.
//!
//! Files are tracked by (device, inode), so a file renamed by logrotate keeps
//! its history under its new name. Per round, the bytes written to a tracked
//! file are its growth; when it shrank (copytruncate, `> file`) they are its
//! new size (what was written since the truncation, a lower bound). The
//! cumulative "bytes written" counter therefore never goes down, and a
//! rotation never reads as shrink-then-grow.
//!
//! Limit: a file not seen before starts as a baseline: whatever it held when
//! first seen is not counted as written. Counting it would turn the copy made
//! by copytruncate, a gzip'ed generation or a file moved in into a spike; the
//! price is up to one interval of writes per new file (the size gauge still
//! shows them).

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use crate::trend::Trend;

/// A per-file rate needs this many samples at most; older ones are merged.
const FILE_SAMPLES: usize = 10;
/// At most this many filesystems per group get their own growth series.
pub const MAX_DEVS: usize = 16;

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
    /// Unix time of the latest round in which it grew.
    last_grew: f64,
    /// (t, written), spaced at least a tenth of the window apart.
    samples: VecDeque<(f64, u64)>,
}

#[derive(Debug)]
struct DevState {
    written: u64,
    trend: Trend,
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
    trend: Trend,
    devs: HashMap<u64, DevState>,
    rotations: u64,
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
            trend: Trend::new(window),
            devs: HashMap::new(),
            rotations: 0,
            last_t: None,
        }
    }

    /// Fold in one complete scan taken at unix time `t`. Returns how many
    /// filesystems were left without their own series (over [`MAX_DEVS`]).
    pub fn update(&mut self, t: f64, observed: Vec<Observed>) -> u64 {
        let first = self.last_t.is_none();
        let live_since = t - self.window;
        let mut previous = std::mem::take(&mut self.files);
        let mut dev_written: HashMap<u64, u64> = HashMap::new();
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
                        obs.size
                    };
                    if obs.path != st.path && st.last_grew >= live_since {
                        // A growing file renamed within the group (syslog -> syslog.1).
                        self.rotations += 1;
                    }
                    if written > 0 {
                        st.last_grew = t;
                    }
                    st.written += written;
                    st.size = obs.size;
                    st.path = obs.path;
                    *dev_written.entry(obs.dev).or_default() += written;
                    st
                }
                None => {
                    if !first && self.vacated.remove(&obs.path).is_some() {
                        // A new file where a growing one vanished: delete (or
                        // rename away) and create.
                        self.rotations += 1;
                    }
                    dev_written.entry(obs.dev).or_default();
                    FileState {
                        path: obs.path,
                        dev: obs.dev,
                        size: obs.size,
                        written: 0,
                        last_grew: f64::NEG_INFINITY,
                        samples: VecDeque::new(),
                    }
                }
            };
            self.files.insert(key, state);
        }
        for (_, gone) in previous {
            if gone.last_grew >= live_since {
                self.vacated.insert(gone.path, t);
            }
        }
        self.vacated.retain(|_, at| *at >= live_since);
        // Bounded like the files: never more entries than files ever tracked.
        if self.vacated.len() > self.files.len().max(64) {
            self.vacated.clear();
        }

        let spacing = self.window / FILE_SAMPLES as f64;
        for st in self.files.values_mut() {
            push_sample(&mut st.samples, t, st.written, spacing, live_since);
        }

        let mut dropped = 0;
        for (dev, written) in dev_written {
            self.written += written;
            if !self.devs.contains_key(&dev) && self.devs.len() >= MAX_DEVS {
                dropped += 1;
                continue;
            }
            let window = Duration::from_secs_f64(self.window);
            let ds = self.devs.entry(dev).or_insert_with(|| DevState {
                written: 0,
                trend: Trend::new(window),
            });
            ds.written += written;
        }
        // Filesystems no file of the group lives on any more.
        let files = &self.files;
        self.devs
            .retain(|dev, _| files.values().any(|f| f.dev == *dev));
        for ds in self.devs.values_mut() {
            ds.trend.push(t, ds.written as f64);
        }
        self.trend.push(t, self.written as f64);
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

    /// Growth of the group over the window (bytes/s), once a tenth of it is covered.
    pub fn growth(&self) -> Option<f64> {
        self.trend.slope()
    }

    /// Growth of the group's files on each filesystem (by st_dev), with a
    /// path of one of its files there (to find the mount when st_dev does not
    /// match the mount table, as on btrfs).
    pub fn growth_by_dev(&self) -> Vec<(u64, String, Option<f64>)> {
        let mut out: Vec<_> = self
            .devs
            .iter()
            .map(|(dev, ds)| {
                let path = self
                    .files
                    .values()
                    .find(|f| f.dev == *dev)
                    .map(|f| f.path.clone())
                    .unwrap_or_default();
                (*dev, path, ds.trend.slope())
            })
            .collect();
        out.sort_by_key(|(dev, ..)| *dev);
        out
    }

    /// The `n` fastest-growing files (rate > 0), fastest first.
    pub fn top_files(&self, n: usize) -> Vec<FileRate> {
        let min_span = self.window / 10.0;
        let mut rates: Vec<FileRate> = self
            .files
            .values()
            .filter_map(|f| {
                let (t0, w0) = *f.samples.front()?;
                let (t1, w1) = *f.samples.back()?;
                let span = t1 - t0;
                (span >= min_span && w1 > w0).then(|| FileRate {
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
}
