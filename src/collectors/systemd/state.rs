//! What the systemd collector keeps between rounds: the tracked units (with
//! their counters and event windows), the values read from systemd with how
//! many rounds their reads have failed, and the failure counts. Shared by the
//! round (`round.rs`) and the signal task; every function here is pure.
//!
//! # Failed reads keep the last known value, for a while
//! A property whose read fails (timeout, the bus's limits, an answer that
//! does not decode) keeps its last known value for up to
//! [`MAX_STALE_ROUNDS`] consecutive failed rounds (45 s at the default 15 s
//! interval), so one slow answer neither blanks a unit's series nor flips a
//! finding and resets its alert's `for:`. After that the value is unknown:
//! the series it feeds is left out, or the finding that needs it reads 0,
//! until a read succeeds. An answer "no such unit or property" is not a
//! failure: the value is unknown at once.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use regex::Regex;

use super::bus::{self, Key, Prop, Property, ReadFailure, Reply, Signal};
use super::rules::{self, EventWindow, ExitRing, StaticProps, Stop};

/// Consecutive failed reads a value survives; see the module documentation.
pub const MAX_STALE_ROUNDS: u32 = 3;

/// This round's read of one value.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome<T> {
    Read(T),
    /// The unit or property does not exist.
    Absent,
    Failed,
}

impl Outcome<Prop> {
    /// The outcome of `key` in a batch's answers.
    pub fn of(replies: &bus::Replies, key: &Key) -> Outcome<Prop> {
        match replies.get(key) {
            Reply::Value(v) => Outcome::Read(v.clone()),
            Reply::Absent => Outcome::Absent,
            Reply::Failed(_) => Outcome::Failed,
        }
    }

    /// The typed value; a value of another type counts as a failed read
    /// (decoding already checks the type, so this does not happen).
    pub fn typed<T>(self, f: impl FnOnce(&Prop) -> Option<T>) -> Outcome<T> {
        match self {
            Outcome::Read(p) => f(&p).map_or(Outcome::Failed, Outcome::Read),
            Outcome::Absent => Outcome::Absent,
            Outcome::Failed => Outcome::Failed,
        }
    }
}

/// A value read from systemd, and how many reads of it failed since it was read.
#[derive(Debug, Clone, PartialEq)]
pub struct Held<T> {
    value: Option<T>,
    failed_rounds: u32,
}

impl<T> Default for Held<T> {
    fn default() -> Self {
        Held {
            value: None,
            failed_rounds: 0,
        }
    }
}

impl<T> Held<T> {
    pub fn fresh(value: T) -> Self {
        Held {
            value: Some(value),
            failed_rounds: 0,
        }
    }

    /// Fold this round's read in: a read replaces the value, an absent one
    /// clears it, a failed one keeps it until [`MAX_STALE_ROUNDS`] failures.
    pub fn merge(&mut self, outcome: Outcome<T>) {
        match outcome {
            Outcome::Read(v) => *self = Held::fresh(v),
            Outcome::Absent => *self = Held::default(),
            Outcome::Failed => {
                self.failed_rounds = self.failed_rounds.saturating_add(1);
                if self.failed_rounds > MAX_STALE_ROUNDS {
                    self.value = None;
                }
            }
        }
    }

    /// The value to publish, fresh or held over.
    pub fn get(&self) -> Option<&T> {
        self.value.as_ref()
    }

    /// Whether the published value comes from an earlier round.
    pub fn is_stale(&self) -> bool {
        self.value.is_some() && self.failed_rounds > 0
    }
}

/// What the exporter tracks per watched unit, between rounds.
#[derive(Debug, Default)]
pub struct Tracked {
    /// Latest ActiveEnterTimestampMonotonic seen; None until first read.
    pub baseline: Option<u64>,
    /// Re-read the baseline at the next round (after a reconnect).
    pub rebaseline: bool,
    pub activations: u64,
    /// Activations that count toward the loop ([`rules::activation_is_loop`]).
    pub activation_times: EventWindow,
    /// Result and ExecMainCode as last signalled, for classifying the next stop.
    pub last_result: Option<String>,
    pub last_exec_main_code: Option<i32>,
    pub last_active_state: Option<String>,
    /// How the unit last left active, until its next activation.
    pub stop: Option<Stop>,
    /// Its latest exits from active, for the units it may strand.
    pub exits: ExitRing,
    /// systemd's NRestarts, from reads and signals.
    pub nrestarts: Held<u32>,
    pub restart_times: EventWindow,
    /// Reload-only properties ([`Property::RELOAD_ONLY`]), by property.
    pub statics: BTreeMap<Property, Held<Prop>>,
    /// `Shared::reload_gen` of the last complete read of `statics`.
    pub statics_gen: Option<u64>,
}

impl Tracked {
    fn held_static(&self, p: Property) -> Option<&Prop> {
        self.statics.get(&p).and_then(Held::get)
    }

    /// The reload-only properties as the rules take them.
    pub fn static_props(&self) -> StaticProps {
        let strs = |p| {
            self.held_static(p)
                .and_then(Prop::as_strs)
                .unwrap_or_default()
                .iter()
                .cloned()
        };
        let mut hard_deps: Vec<String> = strs(Property::Requires)
            .chain(strs(Property::BindsTo))
            .collect();
        hard_deps.sort();
        hard_deps.dedup();
        StaticProps {
            restart: self
                .held_static(Property::Restart)
                .and_then(Prop::as_str)
                .map(str::to_string),
            restart_usec: self
                .held_static(Property::RestartUSec)
                .and_then(Prop::as_u64),
            start_limit_interval_usec: self
                .held_static(Property::StartLimitIntervalUSec)
                .and_then(Prop::as_u64),
            start_limit_burst: self
                .held_static(Property::StartLimitBurst)
                .and_then(Prop::as_u32),
            hard_deps,
            service_type: self
                .held_static(Property::Type)
                .and_then(Prop::as_str)
                .map(str::to_string),
            bus_name: self
                .held_static(Property::BusName)
                .and_then(Prop::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            remain_after_exit: self
                .held_static(Property::RemainAfterExit)
                .and_then(Prop::as_bool),
            triggered_by: strs(Property::TriggeredBy).collect(),
        }
    }

    /// Values of this unit published from an earlier round.
    pub fn stale_values(&self) -> u64 {
        let statics = self.statics.values().filter(|h| h.is_stale()).count() as u64;
        statics + u64::from(self.nrestarts.is_stale())
    }
}

/// Failed property reads since start, by reason.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ReadFailures {
    counts: [u64; ReadFailure::ALL.len()],
}

impl ReadFailures {
    pub fn count(&mut self, failures: impl IntoIterator<Item = ReadFailure>) {
        for f in failures {
            self.counts[f as usize] += 1;
        }
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Every reason with its count, zeros included.
    pub fn by_reason(&self) -> Vec<(&'static str, u64)> {
        ReadFailure::ALL
            .iter()
            .map(|f| (f.reason(), self.counts[*f as usize]))
            .collect()
    }
}

/// State shared by the round and the signal task (short critical sections only).
pub struct Shared {
    pub units: HashMap<String, Tracked>,
    /// Per-round reads (Result, the stranded rule's timestamps) of the latest
    /// round: only what that round asked for is kept, so a value is never
    /// taken from a read older than the failures it survived.
    pub polled: HashMap<Key, Held<Prop>>,
    /// Bumped when a daemon-reload finishes: reload-only properties are stale.
    pub reload_gen: u64,
    pub reloading: bool,
    pub include: Regex,
    pub exclude: Option<Regex>,
    pub cap: usize,
    /// Entries kept per event window: the threshold is all a window needs.
    pub keep: usize,
    pub epoch: Instant,
    pub read_failures: ReadFailures,
    pub undecodable_signals: u64,
}

impl Shared {
    pub fn new(include: Regex, exclude: Option<Regex>, cap: usize, keep: usize) -> Shared {
        Shared {
            units: HashMap::new(),
            polled: HashMap::new(),
            reload_gen: 0,
            reloading: false,
            include,
            exclude,
            cap,
            keep,
            epoch: Instant::now(),
            read_failures: ReadFailures::default(),
            undecodable_signals: 0,
        }
    }

    pub fn now(&self) -> f64 {
        self.epoch.elapsed().as_secs_f64()
    }

    pub fn apply(&mut self, signal: Signal) {
        let now = self.now();
        let keep = self.keep;
        match signal {
            Signal::Properties {
                path,
                iface,
                changed,
            } => {
                let Some(name) = rules::unit_name_from_path(&path) else {
                    return;
                };
                let Some(t) = self.units.get_mut(&name) else {
                    return;
                };
                if iface != bus::UNIT_IFACE {
                    if let Some(r) = changed.get(&Property::Result).and_then(Prop::as_str) {
                        t.last_result = Some(r.to_string());
                    }
                    if let Some(c) = changed.get(&Property::ExecMainCode).and_then(Prop::as_i32) {
                        t.last_exec_main_code = Some(c);
                    }
                }
                if iface == bus::UNIT_IFACE {
                    if let Some(exit) = changed
                        .get(&Property::ActiveExitTimestampMonotonic)
                        .and_then(Prop::as_u64)
                    {
                        t.exits.record(exit);
                    }
                    // Only the transition into inactive/failed is a stop: a
                    // start resets ExecMainCode and signals it while the unit
                    // still reads inactive, and reset-failed moves failed to
                    // inactive.
                    if let Some(state) = changed.get(&Property::ActiveState).and_then(Prop::as_str)
                    {
                        if matches!(state, "inactive" | "failed")
                            && !matches!(
                                t.last_active_state.as_deref(),
                                Some("inactive" | "failed")
                            )
                        {
                            t.stop = Some(Stop::classify(
                                state,
                                t.last_result.as_deref(),
                                t.last_exec_main_code,
                            ));
                        }
                        t.last_active_state = Some(state.to_string());
                    }
                    if let Some(ts) = changed
                        .get(&Property::ActiveEnterTimestampMonotonic)
                        .and_then(Prop::as_u64)
                    {
                        let looping = rules::activation_is_loop(&name, &t.static_props(), t.stop);
                        if observe_activation(t, ts, now, keep, looping) {
                            t.stop = None;
                        }
                    }
                }
                if iface == bus::SERVICE_IFACE
                    && let Some(n) = changed.get(&Property::NRestarts).and_then(Prop::as_u32)
                {
                    observe_restarts(t, n, now, keep);
                }
            }
            Signal::UnitNew { name } => {
                // A daemon-reload re-announces every unit: those are not new,
                // and their old activations must not count again.
                let admit = !self.reloading
                    && !self.units.contains_key(&name)
                    && self.units.len() < self.cap
                    && self.include.is_match(&name)
                    && !self.exclude.as_ref().is_some_and(|e| e.is_match(&name));
                if admit {
                    // Loaded just now, so it has never been active: its first
                    // activation (a transient unit, a socket-activated one) counts.
                    self.units.insert(
                        name,
                        Tracked {
                            baseline: Some(0),
                            ..Default::default()
                        },
                    );
                }
            }
            Signal::Reloading(true) => self.reloading = true,
            Signal::Reloading(false) => {
                self.reloading = false;
                self.reload_gen += 1;
            }
            Signal::Undecodable => self.undecodable_signals += 1,
            // Removal is applied from ListUnits: a reload sends UnitRemoved
            // for units that stay, and their counters must survive it.
            Signal::UnitRemoved { .. } | Signal::JobRemoved { .. } | Signal::Other => {}
        }
    }

    /// Values published from an earlier round, over everything kept.
    pub fn stale_values(&self) -> u64 {
        let polled = self.polled.values().filter(|h| h.is_stale()).count() as u64;
        polled + self.units.values().map(Tracked::stale_values).sum::<u64>()
    }
}

/// A new ActiveEnterTimestamp: count an activation when it advanced past the
/// baseline, and in the loop window when `looping`. After a reconnect several
/// activations may hide behind one advance: that counts as one. Returns
/// whether an activation was counted.
pub fn observe_activation(t: &mut Tracked, ts: u64, now: f64, keep: usize, looping: bool) -> bool {
    let counted = match t.baseline {
        Some(b) if ts > b => {
            t.activations += 1;
            if looping {
                t.activation_times.record(now, 1, keep);
            }
            true
        }
        Some(_) => return false,
        None => false,
    };
    t.baseline = Some(ts);
    counted
}

/// A new NRestarts, read or signalled: restarts since the last known value
/// go into the window (none when it was unknown).
pub fn observe_restarts(t: &mut Tracked, n: u32, now: f64, keep: usize) {
    let delta = rules::restarts_since(t.nrestarts.get().copied(), n);
    t.restart_times.record(now, delta, keep);
    t.nrestarts = Held::fresh(n);
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_the_last_value_for_a_bounded_number_of_failed_rounds() {
        use Outcome::{Absent, Failed, Read};
        // (previous value, failed rounds so far), this round, published, stale.
        type Case = ((Option<u32>, u32), Outcome<u32>, Option<u32>, bool);
        let cases: Vec<Case> = vec![
            ((None, 0), Read(5), Some(5), false),
            ((Some(5), 0), Read(6), Some(6), false),
            ((Some(5), 2), Read(6), Some(6), false),
            ((Some(5), 0), Failed, Some(5), true),
            ((Some(5), MAX_STALE_ROUNDS - 1), Failed, Some(5), true),
            // One failure too many: unknown.
            ((Some(5), MAX_STALE_ROUNDS), Failed, None, false),
            ((None, 0), Failed, None, false),
            ((None, u32::MAX), Failed, None, false),
            // "No such property" is an answer: unknown at once.
            ((Some(5), 0), Absent, None, false),
            ((Some(5), 1), Absent, None, false),
        ];
        for (i, ((value, failed_rounds), outcome, want, stale)) in cases.into_iter().enumerate() {
            let mut h = Held {
                value,
                failed_rounds,
            };
            h.merge(outcome);
            assert_eq!(h.get().copied(), want, "case {i}");
            assert_eq!(h.is_stale(), stale, "case {i}");
        }
    }

    #[test]
    fn a_value_survives_exactly_max_stale_rounds_of_failures_then_a_read_restores_it() {
        let mut h = Held::fresh("exit-code");
        for round in 1..=MAX_STALE_ROUNDS {
            h.merge(Outcome::Failed);
            assert_eq!(h.get(), Some(&"exit-code"), "failed round {round}");
        }
        h.merge(Outcome::Failed);
        assert_eq!(h.get(), None);
        h.merge(Outcome::Read("signal"));
        assert_eq!(h.get(), Some(&"signal"));
        assert!(!h.is_stale());
    }

    #[test]
    fn failures_are_counted_by_reason_with_every_reason_present() {
        let mut f = ReadFailures::default();
        f.count([
            ReadFailure::Limits,
            ReadFailure::Limits,
            ReadFailure::Decode,
        ]);
        assert_eq!(
            f.by_reason(),
            vec![("timeout", 0), ("limits", 2), ("decode", 1), ("other", 0)]
        );
        assert_eq!(f.total(), 3);
    }

    #[test]
    fn static_props_take_only_known_values() {
        let mut t = Tracked::default();
        t.statics
            .insert(Property::Restart, Held::fresh(Prop::Str("always".into())));
        t.statics
            .insert(Property::StartLimitIntervalUSec, Held::fresh(Prop::U64(0)));
        t.statics.insert(
            Property::Requires,
            Held::fresh(Prop::Strs(vec!["b.service".into(), "a.service".into()])),
        );
        t.statics.insert(
            Property::BindsTo,
            Held::fresh(Prop::Strs(vec!["a.service".into()])),
        );
        // A read that failed once: still published, and stale.
        let mut burst = Held::fresh(Prop::U32(5));
        burst.merge(Outcome::Failed);
        t.statics.insert(Property::StartLimitBurst, burst);
        let p = t.static_props();
        assert_eq!(p.restart.as_deref(), Some("always"));
        assert_eq!(p.restart_usec, None);
        assert_eq!(p.start_limit_interval_usec, Some(0));
        assert_eq!(p.start_limit_burst, Some(5));
        assert_eq!(p.hard_deps, vec!["a.service", "b.service"]);
        assert_eq!(t.stale_values(), 1);
    }

    fn shared() -> Shared {
        Shared::new(Regex::new(r"^(?:.+\.service)$").unwrap(), None, 2, 3)
    }

    fn props(unit: &str, iface: &str, changed: &[(Property, Prop)]) -> Signal {
        Signal::Properties {
            path: format!(
                "/org/freedesktop/systemd1/unit/{}",
                unit.replace('.', "_2e")
            ),
            iface: iface.to_string(),
            changed: changed.iter().cloned().collect(),
        }
    }

    fn entered(unit: &str, ts: u64) -> Signal {
        props(
            unit,
            bus::UNIT_IFACE,
            &[(Property::ActiveEnterTimestampMonotonic, Prop::U64(ts))],
        )
    }

    #[test]
    fn activations_count_advances_of_the_enter_timestamp() {
        let mut s = shared();
        s.units.insert("a.service".into(), Tracked::default());
        // The first reading is the baseline, not an activation.
        s.apply(entered("a.service", 100));
        s.apply(entered("a.service", 100));
        assert_eq!(s.units["a.service"].activations, 0);
        s.apply(entered("a.service", 200));
        s.apply(entered("a.service", 150));
        s.apply(entered("a.service", 300));
        assert_eq!(s.units["a.service"].activations, 2);
        // Units not watched are ignored.
        s.apply(entered("b.service", 1));
        assert!(!s.units.contains_key("b.service"));
    }

    fn stopped(unit: &str, result: &str, code: i32, state: &str) -> [Signal; 2] {
        [
            props(
                unit,
                bus::SERVICE_IFACE,
                &[
                    (Property::Result, Prop::Str(result.into())),
                    (Property::ExecMainCode, Prop::I32(code)),
                ],
            ),
            props(
                unit,
                bus::UNIT_IFACE,
                &[(Property::ActiveState, Prop::Str(state.into()))],
            ),
        ]
    }

    #[test]
    fn only_activations_after_a_failure_or_an_unrequested_exit_feed_the_loop() {
        let mut s = shared();
        s.units.insert("a.service".into(), Tracked::default());
        s.apply(entered("a.service", 100));
        let mut ts = 100;
        let mut start_after = |s: &mut Shared, stop: [Signal; 2]| {
            for sig in stop {
                s.apply(sig);
            }
            // A start resets ExecMainCode while the unit still reads inactive.
            for sig in stopped("a.service", "success", 0, "inactive") {
                s.apply(sig);
            }
            ts += 100;
            s.apply(entered("a.service", ts));
            s.apply(props(
                "a.service",
                bus::UNIT_IFACE,
                &[(Property::ActiveState, Prop::Str("active".into()))],
            ));
        };
        start_after(&mut s, stopped("a.service", "signal", 2, "failed"));
        start_after(&mut s, stopped("a.service", "success", 1, "inactive"));
        // systemctl stop, then start: requested.
        start_after(&mut s, stopped("a.service", "success", 2, "inactive"));
        let t = &s.units["a.service"];
        assert_eq!(t.activations, 3);
        assert_eq!(t.activation_times.count_within(s.now(), 60.0), 2);
    }

    #[test]
    fn nrestarts_signals_feed_the_restart_window() {
        let mut s = shared();
        s.units.insert("a.service".into(), Tracked::default());
        for n in [3, 4, 6] {
            s.apply(props(
                "a.service",
                bus::SERVICE_IFACE,
                &[(Property::NRestarts, Prop::U32(n))],
            ));
        }
        let t = &s.units["a.service"];
        assert_eq!(t.nrestarts.get(), Some(&6));
        assert_eq!(t.restart_times.count_within(s.now(), 60.0), 3);
    }

    #[test]
    fn undecodable_signals_are_counted() {
        let mut s = shared();
        s.apply(Signal::Undecodable);
        s.apply(Signal::Other);
        assert_eq!(s.undecodable_signals, 1);
    }

    #[test]
    fn new_units_count_their_first_activation_but_not_during_a_reload() {
        let mut s = shared();
        s.apply(Signal::UnitNew {
            name: "new.service".into(),
        });
        s.apply(entered("new.service", 500));
        assert_eq!(s.units["new.service"].activations, 1);
        // Outside the include regex, or past the cap: not admitted.
        s.apply(Signal::UnitNew {
            name: "x.socket".into(),
        });
        assert!(!s.units.contains_key("x.socket"));
        s.apply(Signal::Reloading(true));
        s.apply(Signal::UnitNew {
            name: "old.service".into(),
        });
        assert!(!s.units.contains_key("old.service"));
        s.apply(Signal::Reloading(false));
        assert_eq!(s.reload_gen, 1);
        s.apply(Signal::UnitNew {
            name: "third.service".into(),
        });
        s.apply(Signal::UnitNew {
            name: "fourth.service".into(),
        });
        assert_eq!(s.units.len(), 2, "cap");
        // A re-announced unit keeps its counters.
        s.apply(Signal::UnitRemoved {
            name: "new.service".into(),
        });
        assert_eq!(s.units["new.service"].activations, 1);
    }
}
