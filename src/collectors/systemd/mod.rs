//! systemd collector: unit states, restart loops, unbounded restart
//! policies, units stranded by a dependency restart.
//!
//! # What it reads
//! systemd's manager over D-Bus (`--collector.systemd.bus`: `system`, `user`,
//! or an address such as `unix:path=/run/user/0/bus`), with zbus 6:
//! - one `ListUnits` per round (name, load/active state, pending job);
//! - single-property `Get`s, at most [`MAX_IN_FLIGHT`] outstanding (the system
//!   bus allows 128 pending replies per connection), never `GetAll` (~300
//!   properties per service). Every round: `NRestarts` of services that
//!   restart by themselves, `Result` of failed units, and the timestamps the
//!   stranded rule needs for its candidates. `Restart`, `RestartUSec`,
//!   `StartLimitIntervalUSec`, `StartLimitBurst`, `Requires` and `BindsTo`
//!   only change on daemon-reload: read once per unit and again after the
//!   manager's `Reloading` signal;
//! - after `Manager.Subscribe()`, the manager's signals through two match
//!   rules on one connection (PropertiesChanged on the whole
//!   `/org/freedesktop/systemd1/unit` namespace — the system bus allows 512
//!   rules per connection, so never one per unit — and the Manager interface).
//!   A background task applies them as they arrive, so transitions between
//!   rounds are not missed: ActiveEnterTimestamp and NRestarts from
//!   PropertiesChanged, UnitNew (a unit loaded between rounds counts its
//!   first activation), Reloading (reload-only properties are re-read).
//!   UnitRemoved and JobRemoved arrive too, but the next ListUnits is what
//!   removes units and shows pending jobs: a daemon-reload re-announces every
//!   unit, and counters must survive it.
//!
//! Every call has a deadline (zbus has none by default; both Go exporters
//! hang forever here) and every round runs under its own timeout. When the
//! bus goes away the collector reports `sentinel_systemd_up 0` (the round
//! still succeeds) and reconnects with backoff. Scrapes never wait on D-Bus.
//!
//! # Metrics (labels `unit`, plus the noted extra)
//! - `sentinel_systemd_up`: 1 if the manager answered this round; when 0 no
//!   unit series are reported (they would be stale).
//! - `sentinel_systemd_unit_state{state}`: five series, 1 for the current state.
//! - `sentinel_systemd_unit_restarts_total`: systemd's NRestarts (services).
//! - `sentinel_systemd_unit_activations_total`: entries into `active` seen by
//!   the exporter (an advance of ActiveEnterTimestampMonotonic in a signal,
//!   or at the first round after a reconnect, which counts as one), whoever
//!   caused them. Starts at 0 when the unit is first seen.
//! - `sentinel_systemd_unit_restart_loop`: NRestarts increases or activations
//!   within `--collector.systemd.restart-loop-window` reached the threshold.
//! - `sentinel_systemd_unit_restart_unbounded`: Restart= is not `no` and
//!   StartLimitIntervalUSec or StartLimitBurst is 0.
//! - `sentinel_systemd_unit_failed{result}`: 1 while failed, with systemd's
//!   Result; `result=""` and 0 while not failed (Result is only read for
//!   failed units, and one series per unit keeps cardinality flat).
//! - `sentinel_systemd_unit_stranded{dependency}`: see below; one series per
//!   stranding dependency with 1, else `dependency=""` with 0, so every unit
//!   always has a series (per-dependency zeros would multiply series by every
//!   Requires= of every unit: slices, basic.target, sysinit.target...).
//! - `sentinel_systemd_unit_start_limit_hit`: the unit is failed although its
//!   Restart= policy covers how it failed (or Result=start-limit-hit): systemd
//!   gave up restarting it. systemd 252 reports Result=exit-code when an
//!   automatic restart runs into the start limit, so Result alone hides it.
//!   Limits: RestartPreventExitStatus= and a failed stop job look the same.
//!
//! Units: those matching `--collector.systemd.unit-include` and not
//! `-exclude` (both anchored), without load state `not-found`, at most
//! `--collector.systemd.max-units` of them in name order; the series of the
//! rest are counted in `sentinel_series_dropped_total{collector="systemd"}`.
//!
//! # The stranded rule
//! A unit U is stranded by D when all of these hold:
//! 1. U is inactive or failed and no job is queued for it (ListUnits);
//! 2. D is in U's Requires= or BindsTo=, and D is active now;
//! 3. D became active after U went down (D.ActiveEnterTimestamp >
//!    U.InactiveEnterTimestamp);
//! 4. U went down while D was going down: U.InactiveEnterTimestamp lies
//!    between D.ActiveExitTimestamp − 5 s and D.ActiveExitTimestamp +
//!    D.RestartUSec + 5 s. A restart of D (by hand, or by Restart= once
//!    RestartSec has passed) stops U first, then D; if D's start then fails
//!    U's start fails with "dependency" and nothing starts U when D comes back
//!    (the first seed: U shows inactive with Result=success, not even failed).
//!    A plain `systemctl stop U` is not near D's stop, so it does not count.
//!
//! All timestamps are on CLOCK_MONOTONIC, read from systemd, so the rule
//! holds for outages that happened before the exporter started. Limits:
//! U stopped by hand within that window of D's stop counts; a D that went down
//! and up several times since U went down is judged by its latest stop only
//! (U then does not count); dependencies through Requisite=/PartOf= or
//! targets' Wants= are not considered.
//!
//! # Privileges
//! Read access to the system bus (any user may read these properties and
//! Subscribe). No method that changes a unit is ever called.

mod bus;
mod rules;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use regex::Regex;
use tokio::task::JoinHandle;
use zbus::Connection;

use crate::collector::{CollectError, Collection, Collector, FailureLog};
use crate::values::{parse_anchored_regex, parse_positive_duration};

use bus::{BusChoice, BusError, Failure, Listed, Prop, Signal};
use rules::{DepTimes, EventWindow, StaticProps, UnitView};

/// Property Gets outstanding at once: half the system bus's 128 pending replies.
pub const MAX_IN_FLIGHT: usize = 64;
/// Deadline of every D-Bus call.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest wait between reconnect attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// `system`, `user`/`session`, or a D-Bus address that parses (checked at start-up).
fn parse_bus(s: &str) -> Result<String, String> {
    match s {
        "system" | "user" | "session" => Ok(s.to_string()),
        address => address
            .parse::<zbus::Address>()
            .map(|_| address.to_string())
            .map_err(|e| format!("'{address}' is neither system, user nor a D-Bus address such as unix:path=/run/dbus/system_bus_socket ({e})")),
    }
}

#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Collector: systemd")]
#[group(skip)]
pub struct Args {
    /// How often the systemd collector samples unit state.
    #[arg(id = "collector.systemd.interval", long = "collector.systemd.interval", value_name = "DURATION", default_value = "15s", value_parser = parse_positive_duration)]
    pub interval: Duration,
    /// Bus to reach systemd on: system, user, or a D-Bus address (unix:path=...).
    #[arg(
        id = "collector.systemd.bus",
        long = "collector.systemd.bus",
        value_name = "BUS",
        default_value = "system",
        value_parser = parse_bus
    )]
    pub bus: String,
    /// Units to watch (regex matched against the whole unit name).
    #[arg(id = "collector.systemd.unit-include", long = "collector.systemd.unit-include", value_name = "REGEX", default_value = r".+\.service", value_parser = parse_anchored_regex)]
    pub unit_include: Regex,
    /// Units to ignore (regex matched against the whole unit name).
    #[arg(id = "collector.systemd.unit-exclude", long = "collector.systemd.unit-exclude", value_name = "REGEX", value_parser = parse_anchored_regex)]
    pub unit_exclude: Option<Regex>,
    /// Window over which restarts and activations count towards a restart loop.
    #[arg(id = "collector.systemd.restart-loop-window", long = "collector.systemd.restart-loop-window", value_name = "DURATION", default_value = "10m", value_parser = parse_positive_duration)]
    pub restart_loop_window: Duration,
    /// Restarts or activations within the window that make a restart loop.
    #[arg(id = "collector.systemd.restart-loop-threshold", long = "collector.systemd.restart-loop-threshold", value_name = "N", default_value = "5", value_parser = clap::value_parser!(u32).range(1..))]
    pub restart_loop_threshold: u32,
    /// Most units reported (in name order); the series of the rest are counted as dropped.
    #[arg(id = "collector.systemd.max-units", long = "collector.systemd.max-units", value_name = "N", default_value = "1000", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_units: u32,
}

/// What the exporter tracks per watched unit, between rounds.
#[derive(Debug, Default)]
struct Tracked {
    /// Latest ActiveEnterTimestampMonotonic seen; None until first read.
    baseline: Option<u64>,
    /// Re-read the baseline at the next round (after a reconnect).
    rebaseline: bool,
    activations: u64,
    activation_times: EventWindow,
    nrestarts: Option<u32>,
    restart_times: EventWindow,
    statics: Option<StaticProps>,
    /// `Shared::reload_gen` when `statics` were requested.
    statics_gen: u64,
}

/// State shared by the round and the signal task (short critical sections only).
struct Shared {
    units: HashMap<String, Tracked>,
    /// Bumped when a daemon-reload finishes: reload-only properties are stale.
    reload_gen: u64,
    reloading: bool,
    include: Regex,
    exclude: Option<Regex>,
    cap: usize,
    /// Entries kept per event window: the threshold is all a window needs.
    keep: usize,
    epoch: Instant,
}

impl Shared {
    fn now(&self) -> f64 {
        self.epoch.elapsed().as_secs_f64()
    }

    fn apply(&mut self, signal: Signal) {
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
                if iface == bus::UNIT_IFACE
                    && let Some(ts) = changed
                        .get("ActiveEnterTimestampMonotonic")
                        .and_then(Prop::as_u64)
                {
                    observe_activation(t, ts, now, keep);
                }
                if iface == bus::SERVICE_IFACE
                    && let Some(n) = changed.get("NRestarts").and_then(Prop::as_u32)
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
            // Removal is applied from ListUnits: a reload sends UnitRemoved
            // for units that stay, and their counters must survive it.
            Signal::UnitRemoved { .. } | Signal::JobRemoved { .. } | Signal::Other => {}
        }
    }
}

/// A new ActiveEnterTimestamp: count an activation when it advanced past the
/// baseline. After a reconnect several activations may hide behind one
/// advance: that counts as one.
fn observe_activation(t: &mut Tracked, ts: u64, now: f64, keep: usize) {
    match t.baseline {
        Some(b) if ts > b => {
            t.activations += 1;
            t.activation_times.record(now, 1, keep);
        }
        Some(_) => return,
        None => {}
    }
    t.baseline = Some(ts);
}

fn observe_restarts(t: &mut Tracked, n: u32, now: f64, keep: usize) {
    let delta = rules::restarts_since(t.nrestarts, n);
    t.restart_times.record(now, delta, keep);
    t.nrestarts = Some(n);
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    match shared.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// A live connection and its signal task (aborted on drop).
struct Live {
    conn: Connection,
    task: JoinHandle<()>,
    lost: Arc<AtomicBool>,
}

impl Drop for Live {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Applies signals as they arrive; marks the connection lost when the streams end.
async fn pump(
    streams: Vec<zbus::MessageStream>,
    shared: Arc<Mutex<Shared>>,
    lost: Arc<AtomicBool>,
) {
    let mut merged = futures_util::stream::select_all(streams);
    while let Some(item) = merged.next().await {
        match item {
            Ok(msg) => {
                let signal = bus::decode_signal(&msg);
                lock(&shared).apply(signal);
            }
            Err(_) => break,
        }
    }
    lost.store(true, Ordering::Release);
}

/// Reconnect pacing: 1 s, doubling up to [`MAX_BACKOFF`].
#[derive(Debug, Default)]
struct Backoff {
    next: Option<Instant>,
    delay: Duration,
    /// Why the latest attempt failed: reported again while waiting, so the
    /// failure log does not flap between "connect" and "waiting".
    last: Option<Failure>,
}

impl Backoff {
    fn ready(&self) -> bool {
        self.next.is_none_or(|n| Instant::now() >= n)
    }

    fn failed(&mut self, why: Failure) {
        self.last = Some(why);
        self.delay = (self.delay * 2).clamp(Duration::from_secs(1), MAX_BACKOFF);
        self.next = Some(Instant::now() + self.delay);
    }

    fn reset(&mut self) {
        *self = Backoff::default();
    }
}

/// The systemd collector; see the module documentation.
pub struct SystemdCollector {
    bus: BusChoice,
    window: f64,
    threshold: u64,
    round_timeout: Duration,
    live: Option<Live>,
    backoff: Backoff,
    shared: Arc<Mutex<Shared>>,
    failures: FailureLog,
}

impl SystemdCollector {
    pub fn new(args: &Args) -> Self {
        // The scheduler cancels a round after max(interval, 10 s); a connect
        // attempt and a round must both fit in that.
        let budget = args.interval.max(Duration::from_secs(10));
        let round_timeout = budget
            .saturating_sub(CALL_TIMEOUT + Duration::from_secs(1))
            .max(CALL_TIMEOUT);
        let shared = Shared {
            units: HashMap::new(),
            reload_gen: 0,
            reloading: false,
            include: args.unit_include.clone(),
            exclude: args.unit_exclude.clone(),
            cap: args.max_units as usize,
            keep: args.restart_loop_threshold as usize,
            epoch: Instant::now(),
        };
        SystemdCollector {
            bus: BusChoice::parse(&args.bus),
            window: args.restart_loop_window.as_secs_f64(),
            threshold: u64::from(args.restart_loop_threshold),
            round_timeout,
            live: None,
            backoff: Backoff::default(),
            shared: Arc::new(Mutex::new(shared)),
            failures: FailureLog::default(),
        }
    }

    fn down(&mut self, failure: Failure, detail: &dyn std::fmt::Display) -> Collection {
        self.failures.failed("systemd", failure.kind(), detail);
        Collection::new(rules::families(false, &[]))
    }

    async fn ensure_connected(&mut self) -> Result<Connection, BusError> {
        if let Some(live) = &self.live {
            if !live.lost.load(Ordering::Acquire) && !live.conn.is_closed() {
                return Ok(live.conn.clone());
            }
            self.live = None;
        }
        if !self.backoff.ready() {
            return Err(BusError {
                failure: self.backoff.last.unwrap_or(Failure::Closed),
                detail: "waiting to reconnect".into(),
            });
        }
        let connected = tokio::time::timeout(CALL_TIMEOUT, bus::connect(&self.bus, CALL_TIMEOUT))
            .await
            .unwrap_or_else(|_| {
                Err(BusError {
                    failure: Failure::Timeout,
                    detail: "connecting to the bus timed out".into(),
                })
            });
        let bus = match connected {
            Ok(bus) => bus,
            Err(e) => {
                self.backoff.failed(e.failure);
                return Err(e);
            }
        };
        self.backoff.reset();
        {
            // Activations while disconnected were not seen: re-read every baseline.
            let mut shared = lock(&self.shared);
            for t in shared.units.values_mut() {
                t.rebaseline = true;
            }
            shared.reloading = false;
        }
        let lost = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(pump(bus.signals, self.shared.clone(), lost.clone()));
        let conn = bus.conn.clone();
        self.live = Some(Live {
            conn: bus.conn,
            task,
            lost,
        });
        Ok(conn)
    }

    async fn round(&self, conn: &Connection) -> Result<Collection, BusError> {
        let listed = bus::list_units(conn).await?;
        let all: HashMap<&str, &Listed> = listed.iter().map(|l| (l.name.as_str(), l)).collect();
        let (kept, dropped) = {
            let shared = lock(&self.shared);
            rules::select_units(
                listed
                    .iter()
                    .filter(|l| l.load_state != "not-found")
                    .map(|l| l.name.as_str()),
                &shared.include,
                shared.exclude.as_ref(),
                shared.cap,
            )
        };

        // Bring the tracked set in line with ListUnits; note what to read.
        let (statics_gen, need_statics) = {
            let mut guard = lock(&self.shared);
            let shared = &mut *guard;
            let keep: HashSet<&str> = kept.iter().copied().collect();
            shared.units.retain(|name, _| keep.contains(name.as_str()));
            for name in &kept {
                shared.units.entry((*name).to_string()).or_default();
            }
            let gen_now = shared.reload_gen;
            let need: Vec<&str> = kept
                .iter()
                .copied()
                .filter(|n| {
                    shared
                        .units
                        .get(*n)
                        .is_some_and(|t| t.statics.is_none() || t.statics_gen != gen_now)
                })
                .collect();
            (gen_now, need)
        };

        // Reload-only properties.
        let mut reqs = Vec::new();
        for name in &need_statics {
            let Some(l) = all.get(name) else { continue };
            if rules::is_service(name) {
                reqs.push((l.path.as_str(), bus::SERVICE_IFACE, "Restart"));
                reqs.push((l.path.as_str(), bus::SERVICE_IFACE, "RestartUSec"));
            }
            for prop in [
                "StartLimitIntervalUSec",
                "StartLimitBurst",
                "Requires",
                "BindsTo",
            ] {
                reqs.push((l.path.as_str(), bus::UNIT_IFACE, prop));
            }
        }
        let mut values = get_many(conn, &reqs).await?.into_iter();
        let mut fetched_statics = Vec::new();
        for name in &need_statics {
            if !all.contains_key(name) {
                continue;
            }
            let mut p = StaticProps::default();
            if rules::is_service(name) {
                p.restart = values.next().flatten().and_then(Prop::into_string);
                p.restart_usec = values
                    .next()
                    .flatten()
                    .and_then(|v| v.as_u64())
                    .unwrap_or(0);
            }
            p.start_limit_interval_usec = values
                .next()
                .flatten()
                .and_then(|v| v.as_u64())
                .unwrap_or(0);
            p.start_limit_burst = values
                .next()
                .flatten()
                .and_then(|v| v.as_u32())
                .unwrap_or(0);
            let requires = values
                .next()
                .flatten()
                .and_then(Prop::into_strings)
                .unwrap_or_default();
            let binds = values
                .next()
                .flatten()
                .and_then(Prop::into_strings)
                .unwrap_or_default();
            p.hard_deps = requires.into_iter().chain(binds).collect();
            p.hard_deps.sort();
            p.hard_deps.dedup();
            fetched_statics.push((*name, p));
        }

        // What this round reads per unit, given the (possibly fresh) statics.
        struct Plan<'a> {
            restarts: Vec<&'a str>,
            baseline: Vec<&'a str>,
            result: Vec<&'a str>,
            stranded: Vec<(&'a str, Vec<String>)>,
            dep_restart_usec: HashMap<String, u64>,
        }
        let plan = {
            let mut guard = lock(&self.shared);
            let shared = &mut *guard;
            for (name, p) in fetched_statics {
                if let Some(t) = shared.units.get_mut(name) {
                    t.statics = Some(p);
                    t.statics_gen = statics_gen;
                }
            }
            let mut plan = Plan {
                restarts: Vec::new(),
                baseline: Vec::new(),
                result: Vec::new(),
                stranded: Vec::new(),
                dep_restart_usec: HashMap::new(),
            };
            for name in &kept {
                let (Some(t), Some(l)) = (shared.units.get(*name), all.get(name)) else {
                    continue;
                };
                let restarts_by_itself = t.statics.as_ref().is_none_or(StaticProps::restarts);
                if rules::is_service(name) && (t.nrestarts.is_none() || restarts_by_itself) {
                    plan.restarts.push(name);
                }
                if t.baseline.is_none() || t.rebaseline {
                    plan.baseline.push(name);
                }
                if l.active_state == "failed" && rules::type_interface(name).is_some() {
                    plan.result.push(name);
                }
                let down = matches!(l.active_state.as_str(), "inactive" | "failed");
                if let Some(p) = &t.statics
                    && down
                    && l.job_id == 0
                {
                    let deps: Vec<String> = p
                        .hard_deps
                        .iter()
                        .filter(|d| {
                            all.get(d.as_str())
                                .is_some_and(|dl| dl.active_state == "active")
                        })
                        .cloned()
                        .collect();
                    if !deps.is_empty() {
                        plan.stranded.push((name, deps));
                    }
                }
            }
            for (_, deps) in &plan.stranded {
                for d in deps {
                    if let Some(p) = shared.units.get(d).and_then(|t| t.statics.as_ref()) {
                        plan.dep_restart_usec.insert(d.clone(), p.restart_usec);
                    }
                }
            }
            plan
        };

        // Per-round reads.
        let deps: Vec<&str> = {
            let mut d: Vec<&str> = plan
                .stranded
                .iter()
                .flat_map(|(_, deps)| deps.iter().map(String::as_str))
                .collect();
            d.sort_unstable();
            d.dedup();
            d
        };
        let path = |name: &str| all.get(name).map(|l| l.path.as_str()).unwrap_or("/");
        let mut reqs = Vec::new();
        for name in &plan.restarts {
            reqs.push((path(name), bus::SERVICE_IFACE, "NRestarts"));
        }
        for name in &plan.baseline {
            reqs.push((path(name), bus::UNIT_IFACE, "ActiveEnterTimestampMonotonic"));
        }
        for name in &plan.result {
            let iface = rules::type_interface(name).unwrap_or(bus::UNIT_IFACE);
            reqs.push((path(name), iface, "Result"));
        }
        for (name, _) in &plan.stranded {
            reqs.push((
                path(name),
                bus::UNIT_IFACE,
                "InactiveEnterTimestampMonotonic",
            ));
        }
        let dep_reads_restart: Vec<bool> = deps
            .iter()
            .map(|d| rules::is_service(d) && !plan.dep_restart_usec.contains_key(*d))
            .collect();
        for (d, read_restart) in deps.iter().zip(&dep_reads_restart) {
            reqs.push((path(d), bus::UNIT_IFACE, "ActiveEnterTimestampMonotonic"));
            reqs.push((path(d), bus::UNIT_IFACE, "ActiveExitTimestampMonotonic"));
            if *read_restart {
                reqs.push((path(d), bus::SERVICE_IFACE, "RestartUSec"));
            }
        }
        let mut values = get_many(conn, &reqs).await?.into_iter();
        let nrestarts: Vec<Option<u32>> = plan
            .restarts
            .iter()
            .map(|_| values.next().flatten().and_then(|v| v.as_u32()))
            .collect();
        let baselines: Vec<Option<u64>> = plan
            .baseline
            .iter()
            .map(|_| values.next().flatten().and_then(|v| v.as_u64()))
            .collect();
        let results: HashMap<&str, String> = plan
            .result
            .iter()
            .filter_map(|n| Some((*n, values.next().flatten().and_then(Prop::into_string)?)))
            .collect();
        let inactive_enter: Vec<Option<u64>> = plan
            .stranded
            .iter()
            .map(|_| values.next().flatten().and_then(|v| v.as_u64()))
            .collect();
        let mut dep_times = BTreeMap::new();
        for (d, read_restart) in deps.iter().zip(&dep_reads_restart) {
            let enter = values.next().flatten().and_then(|v| v.as_u64());
            let exit = values.next().flatten().and_then(|v| v.as_u64());
            let restart_usec = if *read_restart {
                values.next().flatten().and_then(|v| v.as_u64())
            } else {
                plan.dep_restart_usec.get(*d).copied()
            };
            if let (Some(enter), Some(exit)) = (enter, exit) {
                dep_times.insert(
                    (*d).to_string(),
                    DepTimes {
                        active: true,
                        active_enter_usec: enter,
                        active_exit_usec: exit,
                        restart_usec: restart_usec.unwrap_or(0),
                    },
                );
            }
        }
        let mut stranded: HashMap<&str, Vec<String>> = HashMap::new();
        for ((name, deps), t) in plan.stranded.iter().zip(inactive_enter) {
            if let Some(t) = t {
                let by = rules::stranding_deps(t, deps, &dep_times);
                if !by.is_empty() {
                    stranded.insert(name, by);
                }
            }
        }

        // Fold the readings in and build the views.
        let mut guard = lock(&self.shared);
        let shared = &mut *guard;
        let now = shared.now();
        let keep = shared.keep;
        for (name, n) in plan.restarts.iter().zip(nrestarts) {
            if let (Some(t), Some(n)) = (shared.units.get_mut(*name), n) {
                observe_restarts(t, n, now, keep);
            }
        }
        for (name, ts) in plan.baseline.iter().zip(baselines) {
            if let (Some(t), Some(ts)) = (shared.units.get_mut(*name), ts) {
                t.rebaseline = false;
                observe_activation(t, ts, now, keep);
            }
        }
        let views: Vec<UnitView> = kept
            .iter()
            .filter_map(|name| {
                let t = shared.units.get(*name)?;
                let l = all.get(name)?;
                let result = results.get(name).cloned();
                let restart = t.statics.as_ref().and_then(|p| p.restart.as_deref());
                Some(UnitView {
                    name: (*name).to_string(),
                    active_state: l.active_state.clone(),
                    restarts: if rules::is_service(name) {
                        t.nrestarts
                    } else {
                        None
                    },
                    activations: t.activations,
                    restart_loop: t.restart_times.count_within(now, self.window) >= self.threshold
                        || t.activation_times.count_within(now, self.window) >= self.threshold,
                    restart_unbounded: t
                        .statics
                        .as_ref()
                        .is_some_and(StaticProps::restart_unbounded),
                    start_limit_hit: rules::start_limit_hit(
                        &l.active_state,
                        result.as_deref(),
                        restart,
                        l.job_id != 0,
                    ),
                    result,
                    stranded_by: stranded.remove(name).unwrap_or_default(),
                })
            })
            .collect();
        drop(guard);
        Ok(Collection {
            families: rules::families(true, &views),
            series_dropped: dropped,
        })
    }
}

/// Run property Gets with at most [`MAX_IN_FLIGHT`] outstanding; results in
/// request order. A bus-level failure fails the whole batch.
async fn get_many(
    conn: &Connection,
    reqs: &[(&str, &'static str, &'static str)],
) -> Result<Vec<Option<Prop>>, BusError> {
    let mut out: Vec<Option<Prop>> = vec![None; reqs.len()];
    // Built eagerly with owned paths: a lazily mapped closure over borrowed
    // tuples trips the compiler's Send check of the collector's future.
    let calls: Vec<_> = reqs
        .iter()
        .enumerate()
        .map(|(i, (path, iface, prop))| {
            let (conn, path, iface, prop) = (conn.clone(), path.to_string(), *iface, *prop);
            async move { (i, bus::get(&conn, &path, iface, prop).await) }
        })
        .collect();
    let mut replies = futures_util::stream::iter(calls).buffer_unordered(MAX_IN_FLIGHT);
    while let Some((i, reply)) = replies.next().await {
        out[i] = reply?.as_ref().and_then(Prop::from_variant);
    }
    Ok(out)
}

impl Collector for SystemdCollector {
    fn name(&self) -> &'static str {
        "systemd"
    }

    async fn collect(&mut self) -> Result<Collection, CollectError> {
        let conn = match self.ensure_connected().await {
            Ok(conn) => conn,
            Err(e) => return Ok(self.down(e.failure, &e)),
        };
        match tokio::time::timeout(self.round_timeout, self.round(&conn)).await {
            Ok(Ok(collection)) => {
                self.failures.ok("systemd");
                Ok(collection)
            }
            Ok(Err(e)) => {
                // systemd left the bus (or the bus died): its subscription is
                // gone with it, so start over on a fresh connection.
                if e.failure.needs_reconnect() || e.failure == Failure::NoManager {
                    self.live = None;
                    self.backoff.failed(e.failure);
                }
                Ok(self.down(e.failure, &e))
            }
            Err(_) => Ok(self.down(Failure::Timeout, &"round timed out")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> Shared {
        Shared {
            units: HashMap::new(),
            reload_gen: 0,
            reloading: false,
            include: Regex::new(r"^(?:.+\.service)$").unwrap(),
            exclude: None,
            cap: 2,
            keep: 3,
            epoch: Instant::now(),
        }
    }

    fn props(unit: &str, iface: &str, changed: &[(&str, Prop)]) -> Signal {
        Signal::Properties {
            path: format!(
                "/org/freedesktop/systemd1/unit/{}",
                unit.replace('.', "_2e")
            ),
            iface: iface.to_string(),
            changed: changed
                .iter()
                .map(|(k, v)| ((*k).to_string(), v.clone()))
                .collect(),
        }
    }

    fn entered(unit: &str, ts: u64) -> Signal {
        props(
            unit,
            bus::UNIT_IFACE,
            &[("ActiveEnterTimestampMonotonic", Prop::U64(ts))],
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

    #[test]
    fn nrestarts_signals_feed_the_restart_window() {
        let mut s = shared();
        s.units.insert("a.service".into(), Tracked::default());
        for n in [3, 4, 6] {
            s.apply(props(
                "a.service",
                bus::SERVICE_IFACE,
                &[("NRestarts", Prop::U32(n))],
            ));
        }
        let t = &s.units["a.service"];
        assert_eq!(t.nrestarts, Some(6));
        assert_eq!(t.restart_times.count_within(s.now(), 60.0), 3);
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
