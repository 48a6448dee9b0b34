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
//!   `StartLimitIntervalUSec`, `StartLimitBurst`, `Requires`, `BindsTo`,
//!   `Type`, `BusName`, `RemainAfterExit` and `TriggeredBy` only change on
//!   daemon-reload: read once per unit and again after the
//!   manager's `Reloading` signal. Reads go in batches keyed by (object
//!   path, property) and answers are looked up by that key (`round.rs`);
//!   each property decodes only as its documented D-Bus type;
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
//! # Failed reads
//! Only a failed ListUnits, a closed connection or a manager that left the
//! bus fail the round (then only `sentinel_systemd_up 0` is reported). A Get
//! that times out, is refused by the bus's limits, or answers something that
//! does not decode fails for that value alone: the value keeps its last
//! known reading for up to 3 consecutive failed rounds
//! (`state::MAX_STALE_ROUNDS`), and is unknown after that, until a read
//! succeeds. A failed reload-only read is retried next round. Gets still
//! unanswered shortly before the round's timeout count as timed out, so a
//! manager that stalls mid-round (a daemon-reload on a big node) costs the
//! values it did not answer, not every unit series. "No such unit or
//! property" is an answer, not a failure: the value is unknown at once.
//!
//! # Metrics (labels `unit`, plus the noted extra)
//! Each series is there only where it can carry something: a finding's
//! always-present 0 only for units that can have that finding, and no
//! series whose value another one already says.
//! - `sentinel_systemd_up`: 1 if the manager answered this round; when 0 no
//!   unit series are reported (they would be stale).
//! - `sentinel_systemd_unit_state{state}`: one series, the current state, 1.
//!   The other four states would always be 0; `unit_state{state="failed"} == 0`
//!   is written `unit_state{state!="failed"}` (the unit is watched and not failed).
//! - `sentinel_systemd_unit_restarts_total`: systemd's NRestarts, for services
//!   whose Restart= is not `no` (or unknown): with `no` it never moves.
//! - `sentinel_systemd_unit_activations_total`: entries into `active` seen by
//!   the exporter (an advance of ActiveEnterTimestampMonotonic in a signal,
//!   or at the first round after a reconnect, which counts as one), whoever
//!   caused them, counted from the exporter's start. Present from the first
//!   activation seen: 0 for every quiet unit would be a fifth of a node's
//!   scrape and say nothing (`increase()` misses that first one).
//! - `sentinel_systemd_unit_restart_loop`: NRestarts increases, or loop
//!   activations, within `--collector.systemd.restart-loop-window` reached the
//!   threshold. Every unit: health checkers restart units that have no
//!   Restart= policy. A loop activation is one that follows a failure or a
//!   stop nobody asked for. Signals used: the Service interface's `Result` and
//!   `ExecMainCode` and the Unit interface's `ActiveState`, taken at the
//!   transition into inactive/failed (systemd sends the type's interface
//!   first): `failed` or a Result other than success is a failure; success
//!   with ExecMainCode=CLD_EXITED is an unrequested exit; success with a
//!   killed main process is the stop `systemctl stop`/`restart` makes. Never
//!   a loop: `user@UID.service` (logins), units with a `TriggeredBy=` (timer,
//!   socket, path activation, even after a failure), and after a clean exit
//!   oneshots and services with a `BusName=` (idle exit, bus activation).
//!   Limits: a daemon that catches SIGTERM and exits 0 makes a requested stop
//!   look unrequested; a stop whose signals were missed (reconnect, first
//!   round) never counts; socket-activated services' crashes count only
//!   through NRestarts.
//! - `sentinel_systemd_unit_restart_unbounded`: Restart= is not `no` and the
//!   start limit can never stop it: StartLimitIntervalUSec=0,
//!   StartLimitBurst=0, or RestartUSec × StartLimitBurst ≥
//!   StartLimitIntervalUSec. A property the manager lacks (older systemd) or
//!   that could not be read is unknown, never 0: the flag stays 0 then. Only
//!   for units whose Restart= is known and not `no`.
//! - `sentinel_systemd_unit_failed{result}`: 1 with systemd's Result, for
//!   failed units only (Result is only read for them; for the others
//!   `unit_state` already says they are not failed).
//! - `sentinel_systemd_unit_stranded{dependency}`: see below; one series per
//!   stranding dependency with 1, else `dependency=""` with 0, only for units
//!   with a Requires=/BindsTo= dependency beyond the ones DefaultDependencies=
//!   adds (its slice, sysinit.target, basic.target: they stop only at
//!   shutdown; a unit stranded by one still gets its 1). Per-dependency zeros
//!   would multiply series by every Requires= of every unit.
//! - `sentinel_systemd_unit_start_limit_hit`: for failed units only: 1 if the
//!   unit is failed although its Restart= policy covers how it failed (or
//!   Result=start-limit-hit): systemd gave up restarting it. systemd 252
//!   reports Result=exit-code when an automatic restart runs into the start
//!   limit, so Result alone hides it. Limits: RestartPreventExitStatus= and a
//!   failed stop job look the same.
//!
//! A unit with no Restart= policy and no hard dependency costs two series
//! (state, restart_loop), three once it has been activated while watched;
//! one with both, five (six).
//!
//! The collector's own (no `unit` label, reported while `up` is 1):
//! - `sentinel_systemd_property_read_failures_total{reason}`: failed Gets
//!   since start, `reason` one of `timeout`, `limits`, `decode`, `other`
//!   (every reason always present).
//! - `sentinel_systemd_property_values_stale`: values published this round
//!   from an earlier round's read, because their latest read failed.
//! - `sentinel_systemd_signals_undecodable_total`: manager signals the
//!   collector uses whose content did not decode.
//!
//! Units: those matching `--collector.systemd.unit-include` and not
//! `-exclude` (both anchored), without load state `not-found`, at most
//! `--collector.systemd.max-units` of them in name order; the rest are
//! counted, 3 series a unit (what every unit has: its properties are never
//! read), in `sentinel_series_dropped{collector="systemd"}`.
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
//!    D's stop is its latest ActiveExitTimestamp or any of the last
//!    [`rules::EXIT_RING`] exits signalled for it: a D that flapped (came up
//!    and died again a few times) before settling still strands U;
//! 5. U is not a oneshot without RemainAfterExit that finished normally
//!    (Result=success, ExecMainCode=CLD_EXITED, read for such candidates
//!    only): it went down because it was done.
//!
//! All timestamps are on CLOCK_MONOTONIC, read from systemd, so the rule
//! holds for outages that happened before the exporter started. Limits:
//! U stopped by hand within that window of D's stop counts; D's earlier exits
//! are known only from signals while D is watched (an unwatched D, or one
//! that flapped before the exporter started, is judged by its latest stop);
//! a D that flapped more than the ring holds loses its first exit;
//! dependencies through Requisite=/PartOf= or targets' Wants= are not
//! considered, nor whether an active target still wants U.
//!
//! # Layout
//! `bus.rs` talks D-Bus, `state.rs` holds what is kept between rounds,
//! `round.rs` is one round (planning and folding pure), `rules.rs` the
//! findings and families; this file connects, reconnects and runs rounds.
//!
//! # Privileges
//! Read access to the system bus (any user may read these properties and
//! Subscribe). No method that changes a unit is ever called.

mod bus;
mod round;
mod rules;
mod state;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use regex::Regex;
use tokio::task::JoinHandle;
use zbus::Connection;

use crate::collector::{CollectError, Collection, Collector, FailureLog};
use crate::values::{parse_anchored_regex, parse_positive_duration};

use bus::{BusChoice, BusError, Failure};
use crate::panics::lock;
use state::Shared;

/// Property Gets outstanding at once: half the system bus's 128 pending replies.
pub const MAX_IN_FLIGHT: usize = 64;
/// Deadline of every D-Bus call.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);
/// What a round keeps, after its reads' deadline, to fold and publish.
const READ_MARGIN: Duration = Duration::from_millis(500);
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
    settings: round::Settings,
    round_timeout: Duration,
    live: Option<Live>,
    backoff: Backoff,
    shared: Arc<Mutex<Shared>>,
    failures: FailureLog,
    /// Failed property reads: logged when they start and when they stop.
    read_log: FailureLog,
    reads_failed_before: u64,
}

impl SystemdCollector {
    pub fn new(args: &Args) -> Self {
        // The scheduler cancels a round after max(interval, 10 s); a connect
        // attempt and a round must both fit in that.
        let budget = args.interval.max(Duration::from_secs(10));
        let round_timeout = budget
            .saturating_sub(CALL_TIMEOUT + Duration::from_secs(1))
            .max(CALL_TIMEOUT);
        let shared = Shared::new(
            args.unit_include.clone(),
            args.unit_exclude.clone(),
            args.max_units as usize,
            args.restart_loop_threshold as usize,
        );
        SystemdCollector {
            bus: BusChoice::parse(&args.bus),
            settings: round::Settings {
                window: args.restart_loop_window.as_secs_f64(),
                threshold: u64::from(args.restart_loop_threshold),
                in_flight: MAX_IN_FLIGHT,
            },
            round_timeout,
            live: None,
            backoff: Backoff::default(),
            shared: Arc::new(Mutex::new(shared)),
            failures: FailureLog::default(),
            read_log: FailureLog::default(),
            reads_failed_before: 0,
        }
    }

    fn down(&mut self, failure: Failure, detail: &dyn std::fmt::Display) -> Collection {
        self.failures.failed("systemd", failure.kind(), detail);
        Collection::new(rules::families(false, &[], &rules::ReadHealth::default()))
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
        // Property reads stop at the deadline, leaving the round time to
        // publish what it has; the outer timeout is only a backstop.
        let started = tokio::time::Instant::now();
        let deadline = started + self.round_timeout.saturating_sub(READ_MARGIN);
        let round = round::run(&conn, &self.shared, &self.settings, deadline);
        match tokio::time::timeout_at(started + self.round_timeout, round).await {
            Ok(Ok(collection)) => {
                self.failures.ok("systemd");
                let failed = lock(&self.shared).read_failures.total();
                if failed > self.reads_failed_before {
                    let detail = format!(
                        "{} property reads failed this round; their last values are kept for up to {} rounds",
                        failed - self.reads_failed_before,
                        state::MAX_STALE_ROUNDS
                    );
                    self.read_log.failed("systemd", "property_reads", &detail);
                } else {
                    self.read_log.ok("systemd");
                }
                self.reads_failed_before = failed;
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
