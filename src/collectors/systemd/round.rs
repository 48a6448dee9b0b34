//! One round of the systemd collector: ListUnits, then the property reads
//! the tracked state calls for, folded into that state and built into unit
//! views. Every read is a key (object path, property) in a batch, and every
//! answer is looked up by its key: a value can only land where it was asked
//! for. Planning and folding are pure and tested below with answers made up
//! by key; only [`run`] talks to the bus.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use crate::collector::Collection;

use super::bus::{self, Batch, BusError, Key, Listed, Prop, Property, Replies};
use super::rules::{self, DepTimes, ReadHealth, UnitView};
use super::state::{Held, Outcome, Shared, observe_activation, observe_restarts};
use crate::panics::lock;

/// What a round needs besides the shared state.
#[derive(Debug, Clone)]
pub struct Settings {
    pub window: f64,
    pub threshold: u64,
    /// Property Gets outstanding at once.
    pub in_flight: usize,
}

/// ListUnits by unit name.
type Listing<'a> = HashMap<&'a str, &'a Listed>;

/// Run one round. Fails only when ListUnits fails or the connection (or
/// the manager) goes away; a failed property read is that value's, and the
/// reads still unanswered at `deadline` count as timed out.
pub async fn run(
    conn: &zbus::Connection,
    shared: &Mutex<Shared>,
    settings: &Settings,
    deadline: tokio::time::Instant,
) -> Result<Collection, BusError> {
    let listed = bus::list_units(conn).await?;
    let listing: Listing = listed.iter().map(|l| (l.name.as_str(), l)).collect();
    let (kept, dropped, statics) = {
        let mut shared = lock(shared);
        let (kept, dropped) = rules::select_units(
            listed
                .iter()
                .filter(|l| l.load_state != "not-found")
                .map(|l| l.name.as_str()),
            &shared.include,
            shared.exclude.as_ref(),
            shared.cap,
        );
        let statics = sync_units(&mut shared, &kept, &listing);
        (kept, dropped, statics)
    };
    let replies = bus::read(conn, &statics.batch, settings.in_flight, deadline).await?;
    let plan = {
        let mut shared = lock(shared);
        shared.read_failures.count(replies.failures());
        fold_statics(&mut shared, &statics, &replies);
        plan_round(&shared, &kept, &listing)
    };
    let replies = bus::read(conn, &plan.batch, settings.in_flight, deadline).await?;
    let mut shared = lock(shared);
    shared.read_failures.count(replies.failures());
    let views = fold_round(&mut shared, &kept, &listing, &plan, &replies, settings);
    let health = ReadHealth {
        failures: shared.read_failures.by_reason(),
        stale: shared.stale_values(),
        undecodable_signals: shared.undecodable_signals,
    };
    drop(shared);
    Ok(Collection {
        families: rules::families(true, &views, &health),
        series_dropped: dropped,
    })
}

/// The reload-only reads of a round.
#[derive(Debug, Default)]
pub struct StaticsPlan {
    /// `Shared::reload_gen` when planned: a reload during the reads makes
    /// them stale, and the next round reads again.
    gen_planned: u64,
    /// Units whose reload-only properties are read, with their object paths.
    units: Vec<(String, String)>,
    pub batch: Batch,
}

/// Bring the tracked set in line with ListUnits, and plan the reload-only
/// reads: units never read completely, or not since the latest reload.
pub fn sync_units(shared: &mut Shared, kept: &[&str], listing: &Listing) -> StaticsPlan {
    let keep: HashSet<&str> = kept.iter().copied().collect();
    shared.units.retain(|name, _| keep.contains(name.as_str()));
    for name in kept {
        shared.units.entry((*name).to_string()).or_default();
    }
    let mut plan = StaticsPlan {
        gen_planned: shared.reload_gen,
        ..Default::default()
    };
    for name in kept {
        let (Some(t), Some(l)) = (shared.units.get(*name), listing.get(name)) else {
            continue;
        };
        if t.statics_gen == Some(plan.gen_planned) {
            continue;
        }
        for p in Property::RELOAD_ONLY {
            plan.batch.add(name, &l.path, p);
        }
        plan.units.push(((*name).to_string(), l.path.clone()));
    }
    plan
}

/// Fold the reload-only answers in. A unit with a failed read keeps its
/// earlier values (see `state.rs`) and is read again next round.
pub fn fold_statics(shared: &mut Shared, plan: &StaticsPlan, replies: &Replies) {
    for (name, path) in &plan.units {
        let Some(t) = shared.units.get_mut(name) else {
            continue;
        };
        let mut complete = true;
        for p in Property::RELOAD_ONLY {
            if p.interface(name).is_none() {
                continue;
            }
            let outcome = Outcome::of(replies, &Key::new(path, p));
            complete &= outcome != Outcome::Failed;
            t.statics.entry(p).or_default().merge(outcome);
        }
        if complete {
            t.statics_gen = Some(plan.gen_planned);
        }
    }
}

/// What the stranded rule reads of one dependency.
#[derive(Debug, Clone)]
struct DepReads {
    enter: Key,
    exit: Key,
    /// RestartUSec from the dependency's own reload-only reads, when tracked.
    known_restart_usec: Option<u64>,
    /// Otherwise read this round (services only).
    restart_usec: Option<Key>,
}

/// A stranded candidate: its name, InactiveEnterTimestamp key, active hard
/// dependencies, and (oneshots) its Result and ExecMainCode keys.
type Candidate = (String, Key, Vec<String>, Option<(Key, Key)>);

/// The per-round reads, each with the key its answer is found by.
#[derive(Debug, Default)]
pub struct Plan {
    pub batch: Batch,
    /// Units whose NRestarts is read.
    nrestarts: Vec<(String, Key)>,
    /// Units whose ActiveEnterTimestamp baseline is (re-)read.
    baselines: Vec<(String, Key)>,
    /// Failed units' Result.
    results: HashMap<String, Key>,
    /// Stranded candidates: InactiveEnterTimestamp, the hard dependencies
    /// that are active now, and for a oneshot that ends by itself its Result
    /// and ExecMainCode (whether it simply finished).
    candidates: Vec<Candidate>,
    deps: BTreeMap<String, DepReads>,
    /// The keys whose answers are kept in `Shared::polled`.
    polled: Vec<Key>,
}

/// Plan the per-round reads: NRestarts of services that restart by
/// themselves (or whose count is unknown), baselines after a reconnect,
/// Result of failed units, and the stranded rule's timestamps.
pub fn plan_round(shared: &Shared, kept: &[&str], listing: &Listing) -> Plan {
    let mut plan = Plan::default();
    for name in kept {
        let (Some(t), Some(l)) = (shared.units.get(*name), listing.get(name)) else {
            continue;
        };
        let statics = t.static_props();
        let ends_by_itself = statics.ends_by_itself();
        // Restart= unknown: it may restart by itself, so read.
        if (t.nrestarts.get().is_none() || statics.restart.as_deref() != Some("no"))
            && let Some(key) = plan.batch.add(name, &l.path, Property::NRestarts)
        {
            plan.nrestarts.push(((*name).to_string(), key));
        }
        if (t.baseline.is_none() || t.rebaseline)
            && let Some(key) =
                plan.batch
                    .add(name, &l.path, Property::ActiveEnterTimestampMonotonic)
        {
            plan.baselines.push(((*name).to_string(), key));
        }
        if l.active_state == "failed"
            && let Some(key) = plan.batch.add(name, &l.path, Property::Result)
        {
            plan.polled.push(key.clone());
            plan.results.insert((*name).to_string(), key);
        }
        let down = matches!(l.active_state.as_str(), "inactive" | "failed");
        if !down || l.job_id != 0 {
            continue;
        }
        let deps: Vec<String> = statics
            .hard_deps
            .into_iter()
            .filter(|d| {
                listing
                    .get(d.as_str())
                    .is_some_and(|dl| dl.active_state == "active")
            })
            .collect();
        if deps.is_empty() {
            continue;
        }
        let Some(key) = plan
            .batch
            .add(name, &l.path, Property::InactiveEnterTimestampMonotonic)
        else {
            continue;
        };
        plan.polled.push(key.clone());
        let ended = if ends_by_itself {
            match (
                plan.batch.add(name, &l.path, Property::Result),
                plan.batch.add(name, &l.path, Property::ExecMainCode),
            ) {
                (Some(r), Some(c)) => {
                    plan.polled.push(r.clone());
                    plan.polled.push(c.clone());
                    Some((r, c))
                }
                _ => None,
            }
        } else {
            None
        };
        for d in &deps {
            if plan.deps.contains_key(d) {
                continue;
            }
            let Some(dl) = listing.get(d.as_str()) else {
                continue;
            };
            let known_restart_usec = shared
                .units
                .get(d)
                .and_then(|t| t.static_props().restart_usec);
            let mut add = |p| {
                let key = plan.batch.add(d, &dl.path, p);
                plan.polled.extend(key.clone());
                key
            };
            let (Some(enter), Some(exit)) = (
                add(Property::ActiveEnterTimestampMonotonic),
                add(Property::ActiveExitTimestampMonotonic),
            ) else {
                continue;
            };
            let restart_usec = if known_restart_usec.is_none() {
                add(Property::RestartUSec)
            } else {
                None
            };
            plan.deps.insert(
                d.clone(),
                DepReads {
                    enter,
                    exit,
                    known_restart_usec,
                    restart_usec,
                },
            );
        }
        plan.candidates.push(((*name).to_string(), key, deps, ended));
    }
    plan.polled.sort();
    plan.polled.dedup();
    plan
}

/// Fold the per-round answers into the shared state and build the views.
pub fn fold_round(
    shared: &mut Shared,
    kept: &[&str],
    listing: &Listing,
    plan: &Plan,
    replies: &Replies,
    settings: &Settings,
) -> Vec<UnitView> {
    let now = shared.now();
    let keep = shared.keep;
    for (name, key) in &plan.nrestarts {
        let Some(t) = shared.units.get_mut(name) else {
            continue;
        };
        match Outcome::of(replies, key).typed(Prop::as_u32) {
            Outcome::Read(n) => observe_restarts(t, n, now, keep),
            other => t.nrestarts.merge(other),
        }
    }
    for (name, key) in &plan.baselines {
        // A failed baseline read is retried next round; signals may set it first.
        if let (Some(t), Outcome::Read(ts)) = (
            shared.units.get_mut(name),
            Outcome::of(replies, key).typed(Prop::as_u64),
        ) {
            t.rebaseline = false;
            // Its stop was not seen: it cannot count toward a loop.
            observe_activation(t, ts, now, keep, false);
        }
    }
    let mut previous = std::mem::take(&mut shared.polled);
    for key in &plan.polled {
        let mut held = previous.remove(key).unwrap_or_default();
        held.merge(Outcome::of(replies, key));
        shared.polled.insert(key.clone(), held);
    }
    let polled = |key: &Key| shared.polled.get(key).and_then(Held::get);
    let polled_u64 = |key: &Key| polled(key).and_then(Prop::as_u64);

    let mut dep_times = BTreeMap::new();
    for (d, reads) in &plan.deps {
        let (Some(enter), Some(exit)) = (polled_u64(&reads.enter), polled_u64(&reads.exit)) else {
            continue;
        };
        // Unknown counts as 0: the window only narrows, so an unknown delay
        // never makes a unit stranded.
        let restart_usec = reads
            .known_restart_usec
            .or_else(|| reads.restart_usec.as_ref().and_then(polled_u64))
            .unwrap_or(0);
        dep_times.insert(
            d.clone(),
            DepTimes {
                active: true,
                active_enter_usec: enter,
                active_exit_usec: exit,
                earlier_exits_usec: shared
                    .units
                    .get(d)
                    .map(|t| t.exits.exits())
                    .unwrap_or_default(),
                restart_usec,
            },
        );
    }
    let mut stranded: HashMap<&str, Vec<String>> = HashMap::new();
    for (name, key, deps, ended) in &plan.candidates {
        let finished = ended.as_ref().is_some_and(|(r, c)| {
            let statics = shared
                .units
                .get(name)
                .map(|t| t.static_props())
                .unwrap_or_default();
            rules::finished_normally(
                &statics,
                polled(r).and_then(Prop::as_str),
                polled(c).and_then(Prop::as_i32),
            )
        });
        if finished {
            continue;
        }
        if let Some(t) = polled_u64(key) {
            let by = rules::stranding_deps(t, deps, &dep_times);
            if !by.is_empty() {
                stranded.insert(name, by);
            }
        }
    }

    kept.iter()
        .filter_map(|name| {
            let t = shared.units.get(*name)?;
            let l = listing.get(name)?;
            let result = plan
                .results
                .get(*name)
                .and_then(polled)
                .and_then(Prop::as_str)
                .map(str::to_string);
            let statics = t.static_props();
            Some(UnitView {
                name: (*name).to_string(),
                active_state: l.active_state.clone(),
                restarts: if rules::is_service(name) {
                    t.nrestarts.get().copied()
                } else {
                    None
                },
                activations: t.activations,
                restart_loop: t.restart_times.count_within(now, settings.window)
                    >= settings.threshold
                    || t.activation_times.count_within(now, settings.window) >= settings.threshold,
                restart_policy: statics.restarts(),
                may_restart: statics.restart.as_deref() != Some("no"),
                restart_unbounded: statics.restart_unbounded(),
                has_hard_deps: statics.hard_deps.iter().any(|d| rules::can_strand(d)),
                start_limit_hit: rules::start_limit_hit(
                    &l.active_state,
                    result.as_deref(),
                    statics.restart.as_deref(),
                    l.job_id != 0,
                ),
                result,
                stranded_by: stranded.remove(*name).unwrap_or_default(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::systemd::bus::{ReadFailure, Reply};
    use crate::collectors::systemd::state::MAX_STALE_ROUNDS;
    use regex::Regex;

    fn path(name: &str) -> String {
        let escaped: String = name
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    (b as char).to_string()
                } else {
                    format!("_{b:02x}")
                }
            })
            .collect();
        format!("/org/freedesktop/systemd1/unit/{escaped}")
    }

    fn listed(name: &str, active_state: &str) -> Listed {
        Listed {
            name: name.to_string(),
            load_state: "loaded".into(),
            active_state: active_state.into(),
            path: path(name),
            job_id: 0,
        }
    }

    fn settings() -> Settings {
        Settings {
            window: 600.0,
            threshold: 5,
            in_flight: 64,
        }
    }

    fn shared() -> Shared {
        Shared::new(Regex::new(r"^(?:.+)$").unwrap(), None, 100, 5)
    }

    /// A manager's answers: (unit, property) → reply; anything not listed is absent.
    type Answers = HashMap<(&'static str, Property), Reply>;

    fn answer(batch_units: &[&'static str], answers: &Answers) -> Replies {
        let mut pairs = Vec::new();
        for unit in batch_units {
            for p in [
                Property::NRestarts,
                Property::ActiveEnterTimestampMonotonic,
                Property::ActiveExitTimestampMonotonic,
                Property::InactiveEnterTimestampMonotonic,
                Property::Result,
                Property::ExecMainCode,
            ]
            .into_iter()
            .chain(Property::RELOAD_ONLY)
            {
                let reply = answers.get(&(*unit, p)).cloned().unwrap_or(Reply::Absent);
                pairs.push((Key::new(&path(unit), p), reply));
            }
        }
        Replies::from_pairs(pairs)
    }

    /// One whole round on `listed` with the manager answering `answers`.
    fn round(
        shared: &mut Shared,
        listed: &[Listed],
        units: &[&'static str],
        answers: &Answers,
    ) -> Vec<UnitView> {
        let listing: Listing = listed.iter().map(|l| (l.name.as_str(), l)).collect();
        let mut kept: Vec<&str> = listed.iter().map(|l| l.name.as_str()).collect();
        kept.sort();
        let replies = answer(units, answers);
        let statics = sync_units(shared, &kept, &listing);
        fold_statics(shared, &statics, &replies);
        let plan = plan_round(shared, &kept, &listing);
        fold_round(shared, &kept, &listing, &plan, &replies, &settings())
    }

    fn view<'a>(views: &'a [UnitView], name: &str) -> &'a UnitView {
        views.iter().find(|v| v.name == name).unwrap()
    }

    fn value(p: Prop) -> Reply {
        Reply::Value(p)
    }

    const LIMITS: Reply = Reply::Failed(ReadFailure::Limits);

    /// crashy.service: Restart=always, no start limit, failed; a.socket has no
    /// Service interface.
    fn crashy_answers() -> Answers {
        HashMap::from([
            (
                ("crashy.service", Property::Restart),
                value(Prop::Str("always".into())),
            ),
            (
                ("crashy.service", Property::RestartUSec),
                value(Prop::U64(100_000)),
            ),
            (
                ("crashy.service", Property::StartLimitIntervalUSec),
                value(Prop::U64(0)),
            ),
            (
                ("crashy.service", Property::StartLimitBurst),
                value(Prop::U32(5)),
            ),
            (
                ("crashy.service", Property::Requires),
                value(Prop::Strs(vec![])),
            ),
            (
                ("crashy.service", Property::BindsTo),
                value(Prop::Strs(vec![])),
            ),
            (("crashy.service", Property::NRestarts), value(Prop::U32(7))),
            (
                ("crashy.service", Property::ActiveEnterTimestampMonotonic),
                value(Prop::U64(10)),
            ),
            (
                ("crashy.service", Property::Result),
                value(Prop::Str("exit-code".into())),
            ),
            (
                ("a.socket", Property::StartLimitIntervalUSec),
                value(Prop::U64(10_000_000)),
            ),
            (("a.socket", Property::StartLimitBurst), value(Prop::U32(5))),
        ])
    }

    #[test]
    fn answers_land_by_key_whatever_else_is_asked() {
        let mut s = shared();
        let listed = [
            listed("crashy.service", "failed"),
            listed("a.socket", "active"),
        ];
        let units = ["crashy.service", "a.socket"];
        let views = round(&mut s, &listed, &units, &crashy_answers());
        let c = view(&views, "crashy.service");
        assert_eq!(c.restarts, Some(7));
        assert!(c.restart_unbounded);
        assert_eq!(c.result.as_deref(), Some("exit-code"));
        // Restart=always covers exit-code, so failed means systemd gave up.
        assert!(c.start_limit_hit);
        let a = view(&views, "a.socket");
        assert_eq!(a.restarts, None);
        assert!(!a.restart_unbounded);
        assert_eq!(s.units["crashy.service"].statics_gen, Some(0));
        assert_eq!(s.stale_values(), 0);
    }

    #[test]
    fn a_failed_read_keeps_the_value_for_a_bounded_number_of_rounds() {
        let mut s = shared();
        let listed = [listed("crashy.service", "failed")];
        let units = ["crashy.service"];
        round(&mut s, &listed, &units, &crashy_answers());
        let mut failing = crashy_answers();
        failing.insert(("crashy.service", Property::NRestarts), LIMITS);
        failing.insert(
            ("crashy.service", Property::Result),
            Reply::Failed(ReadFailure::Timeout),
        );
        for i in 1..=MAX_STALE_ROUNDS {
            let views = round(&mut s, &listed, &units, &failing);
            let c = view(&views, "crashy.service");
            assert_eq!(c.restarts, Some(7), "failed round {i}");
            assert_eq!(c.result.as_deref(), Some("exit-code"), "failed round {i}");
            assert!(c.start_limit_hit, "failed round {i}");
            assert_eq!(s.stale_values(), 2, "failed round {i}");
        }
        let views = round(&mut s, &listed, &units, &failing);
        let c = view(&views, "crashy.service");
        assert_eq!(c.restarts, None, "expired");
        assert_eq!(c.result, None, "expired");
        assert!(!c.start_limit_hit);
        assert_eq!(s.stale_values(), 0);
        // The next good read: 3 restarts happened meanwhile, but the count was
        // unknown, so none is put in the window.
        let mut back = crashy_answers();
        back.insert(
            ("crashy.service", Property::NRestarts),
            value(Prop::U32(10)),
        );
        let views = round(&mut s, &listed, &units, &back);
        assert_eq!(view(&views, "crashy.service").restarts, Some(10));
        assert_eq!(
            s.units["crashy.service"]
                .restart_times
                .count_within(s.now(), 600.0),
            0
        );
    }

    #[test]
    fn a_failed_reload_only_read_keeps_the_others_and_is_retried() {
        let mut s = shared();
        let listed = [listed("crashy.service", "active")];
        let units = ["crashy.service"];
        let mut answers = crashy_answers();
        answers.insert(("crashy.service", Property::StartLimitIntervalUSec), LIMITS);
        let views = round(&mut s, &listed, &units, &answers);
        // The interval is unknown, not 0: not unbounded yet.
        assert!(!view(&views, "crashy.service").restart_unbounded);
        let t = &s.units["crashy.service"];
        assert_eq!(t.statics_gen, None, "read again next round");
        assert_eq!(t.static_props().restart.as_deref(), Some("always"));
        let views = round(&mut s, &listed, &units, &crashy_answers());
        assert!(view(&views, "crashy.service").restart_unbounded);
        assert_eq!(s.units["crashy.service"].statics_gen, Some(0));
        // After a reload the re-read fails: the earlier values stay, stale.
        s.reload_gen += 1;
        let mut failing = crashy_answers();
        for p in Property::RELOAD_ONLY {
            failing.insert(("crashy.service", p), LIMITS);
        }
        let views = round(&mut s, &listed, &units, &failing);
        assert!(view(&views, "crashy.service").restart_unbounded);
        assert_eq!(s.stale_values(), 6);
        // A settled unit is not asked again.
        let views = round(&mut s, &listed, &units, &crashy_answers());
        assert!(view(&views, "crashy.service").restart_unbounded);
        let listing: Listing = listed.iter().map(|l| (l.name.as_str(), l)).collect();
        assert!(
            sync_units(&mut s, &["crashy.service"], &listing)
                .batch
                .is_empty()
        );
    }

    const S: u64 = 1_000_000;

    /// The first seed: flanneld died at 813.36 s, its restart stopped dockerd
    /// at 814.42 s, it is active again since 815.70 s.
    fn seed_answers() -> Answers {
        HashMap::from([
            (
                ("dockerd.service", Property::Restart),
                value(Prop::Str("always".into())),
            ),
            (
                ("dockerd.service", Property::Requires),
                value(Prop::Strs(vec!["flanneld.service".into()])),
            ),
            (
                ("dockerd.service", Property::InactiveEnterTimestampMonotonic),
                value(Prop::U64(814_418_216)),
            ),
            (
                ("flanneld.service", Property::Restart),
                value(Prop::Str("always".into())),
            ),
            (
                ("flanneld.service", Property::RestartUSec),
                value(Prop::U64(S)),
            ),
            (
                ("flanneld.service", Property::ActiveEnterTimestampMonotonic),
                value(Prop::U64(815_696_900)),
            ),
            (
                ("flanneld.service", Property::ActiveExitTimestampMonotonic),
                value(Prop::U64(813_362_409)),
            ),
        ])
    }

    #[test]
    fn stranded_through_keyed_reads_and_held_over_a_failed_read() {
        let mut s = shared();
        let listed = [
            listed("dockerd.service", "inactive"),
            listed("flanneld.service", "active"),
        ];
        let units = ["dockerd.service", "flanneld.service"];
        let views = round(&mut s, &listed, &units, &seed_answers());
        assert_eq!(
            view(&views, "dockerd.service").stranded_by,
            vec!["flanneld.service"]
        );
        // The dependency's timestamps time out: the finding holds.
        let mut failing = seed_answers();
        for p in [
            Property::ActiveEnterTimestampMonotonic,
            Property::ActiveExitTimestampMonotonic,
        ] {
            failing.insert(("flanneld.service", p), Reply::Failed(ReadFailure::Timeout));
        }
        let views = round(&mut s, &listed, &units, &failing);
        assert_eq!(
            view(&views, "dockerd.service").stranded_by,
            vec!["flanneld.service"]
        );
        // Absent (the dependency was unloaded): unknown at once, not stranded.
        let mut gone = seed_answers();
        gone.remove(&("flanneld.service", Property::ActiveExitTimestampMonotonic));
        let views = round(&mut s, &listed, &units, &gone);
        assert!(view(&views, "dockerd.service").stranded_by.is_empty());
    }

    #[test]
    fn per_round_values_not_asked_for_are_dropped() {
        let mut s = shared();
        let mut units = vec![listed("crashy.service", "failed")];
        round(&mut s, &units, &["crashy.service"], &crashy_answers());
        assert_eq!(s.polled.len(), 1, "Result of the failed unit");
        // No longer failed: its Result is not kept, so a later failure with a
        // failed read cannot show this old Result.
        units[0].active_state = "active".into();
        round(&mut s, &units, &["crashy.service"], &crashy_answers());
        assert!(s.polled.is_empty());
        units[0].active_state = "failed".into();
        let mut failing = crashy_answers();
        failing.insert(("crashy.service", Property::Result), LIMITS);
        let views = round(&mut s, &units, &["crashy.service"], &failing);
        assert_eq!(view(&views, "crashy.service").result, None);
    }

    #[test]
    fn plan_asks_each_unit_type_only_for_what_it_has() {
        let mut s = shared();
        let listed = [
            listed("a.service", "failed"),
            listed("b.target", "failed"),
            listed("c.socket", "active"),
        ];
        let listing: Listing = listed.iter().map(|l| (l.name.as_str(), l)).collect();
        let kept = ["a.service", "b.target", "c.socket"];
        let statics = sync_units(&mut s, &kept, &listing);
        // Services: 10 reload-only properties; other types: 5 (no Restart,
        // RestartUSec, Type, BusName, RemainAfterExit).
        assert_eq!(statics.batch.len(), 10 + 5 + 5);
        let plan = plan_round(&s, &kept, &listing);
        let names: Vec<&str> = plan.nrestarts.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, vec!["a.service"]);
        assert_eq!(plan.baselines.len(), 3);
        // A target has no Result.
        assert_eq!(plan.results.len(), 1);
        assert_eq!(
            plan.results["a.service"],
            Key::new(&path("a.service"), Property::Result)
        );
    }
}
