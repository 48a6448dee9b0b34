//! The pure part of the systemd collector: unit model, findings and their
//! rules, restart-loop bookkeeping, and metric families. No D-Bus here, so
//! every rule is table-tested below.

use std::collections::{BTreeMap, VecDeque};

use crate::metrics::{self, Family, Labels};

/// Series every unit has (state, restart_loop): used to count what a cap
/// cut. The series that depend on a unit's properties or history (restarts,
/// unbounded, stranded, activations) are not counted, since a cut unit is
/// never read.
pub fn series_per_unit(_name: &str) -> u64 {
    2
}

/// Whether the unit is a service (has the Service interface: NRestarts, Restart, Result).
pub fn is_service(name: &str) -> bool {
    name.ends_with(".service")
}

/// The contract state a systemd ActiveState counts as. `reloading` and
/// `refreshing` are running units; `maintenance` (newer systemd, units being
/// cleaned) is not running. Unknown states map to none.
pub fn contract_state(active_state: &str) -> Option<&'static str> {
    match active_state {
        "active" | "reloading" | "refreshing" => Some("active"),
        "activating" => Some("activating"),
        "deactivating" => Some("deactivating"),
        "inactive" | "maintenance" => Some("inactive"),
        "failed" => Some("failed"),
        _ => None,
    }
}

/// The D-Bus interface carrying a unit type's own properties (`Result`, ...).
/// Types without a Result (target, device, slice) give None.
pub fn type_interface(name: &str) -> Option<&'static str> {
    let suffix = name.rsplit_once('.').map(|(_, s)| s)?;
    Some(match suffix {
        "service" => "org.freedesktop.systemd1.Service",
        "socket" => "org.freedesktop.systemd1.Socket",
        "mount" => "org.freedesktop.systemd1.Mount",
        "automount" => "org.freedesktop.systemd1.Automount",
        "swap" => "org.freedesktop.systemd1.Swap",
        "timer" => "org.freedesktop.systemd1.Timer",
        "path" => "org.freedesktop.systemd1.Path",
        "scope" => "org.freedesktop.systemd1.Scope",
        _ => return None,
    })
}

/// Decode the unit name from a unit object path
/// (`/org/freedesktop/systemd1/unit/foo_2dbar_2eservice` → `foo-bar.service`).
/// systemd escapes every byte outside `[A-Za-z0-9]` as `_XX`.
pub fn unit_name_from_path(path: &str) -> Option<String> {
    let escaped = path.strip_prefix("/org/freedesktop/systemd1/unit/")?;
    if escaped.is_empty() || escaped.contains('/') {
        return None;
    }
    let bytes = escaped.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'_' {
            let hex = escaped.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Properties that only change on daemon-reload: read when a unit is first
/// seen and again after the manager's `Reloading` signal, not every round.
/// None is unknown (not read yet, not readable, or a systemd without it),
/// never taken for 0.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StaticProps {
    /// Restart= (services only).
    pub restart: Option<String>,
    /// RestartUSec: the delay before an automatic restart.
    pub restart_usec: Option<u64>,
    pub start_limit_interval_usec: Option<u64>,
    pub start_limit_burst: Option<u32>,
    /// Requires= and BindsTo= together (those known): the dependencies whose
    /// stop or restart stops this unit.
    pub hard_deps: Vec<String>,
    /// Type= (services only): `oneshot` units end by themselves.
    pub service_type: Option<String>,
    /// BusName= (services only): bus-activated services may exit when idle.
    pub bus_name: Option<String>,
    pub remain_after_exit: Option<bool>,
    /// TriggeredBy=: the timers, sockets and paths that start this unit.
    pub triggered_by: Vec<String>,
}

impl StaticProps {
    /// Whether systemd restarts this unit by itself under some exit condition.
    pub fn restarts(&self) -> bool {
        matches!(&self.restart, Some(r) if r != "no")
    }

    /// `restart_unbounded`: Restart= is not `no` and the start limit can never
    /// stop it: no interval, no burst, or restarts spaced so far apart
    /// (RestartUSec × StartLimitBurst ≥ StartLimitIntervalUSec) that the
    /// burst never fits into the interval. An unknown property is not a 0:
    /// with one unknown the arithmetic cannot be done and the flag stays 0.
    pub fn restart_unbounded(&self) -> bool {
        if !self.restarts() {
            return false;
        }
        if self.start_limit_interval_usec == Some(0) || self.start_limit_burst == Some(0) {
            return true;
        }
        match (
            self.restart_usec,
            self.start_limit_burst,
            self.start_limit_interval_usec,
        ) {
            (Some(delay), Some(burst), Some(interval)) => {
                delay.saturating_mul(u64::from(burst)) >= interval
            }
            _ => false,
        }
    }

    /// A oneshot that is done once its command ended: nothing keeps it active.
    pub fn ends_by_itself(&self) -> bool {
        self.service_type.as_deref() == Some("oneshot") && self.remain_after_exit == Some(false)
    }
}

/// `ExecMainCode` for a main process that exited by itself (CLD_EXITED in
/// waitid(2)), as opposed to killed (CLD_KILLED, CLD_DUMPED).
pub const CLD_EXITED: i32 = 1;

/// How a unit last left active, as the signals told it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Ended `failed`, or with a Result other than success.
    Failure,
    /// Result=success and the main process exited by itself: a daemon that
    /// quit without being asked to.
    ExitedByItself,
    /// Result=success and the main process was killed: the stop a `systemctl
    /// stop`/`restart` makes.
    Requested,
}

impl Stop {
    /// Classify a unit entering `inactive` or `failed`, from the Result and
    /// ExecMainCode last signalled (systemd sends the type's interface before
    /// the Unit interface in one dispatch, so they are current). Unknown
    /// values never make a failure.
    pub fn classify(active_state: &str, result: Option<&str>, exec_main_code: Option<i32>) -> Stop {
        if active_state == "failed" || result.is_some_and(|r| r != "success") {
            Stop::Failure
        } else if exec_main_code == Some(CLD_EXITED) {
            Stop::ExitedByItself
        } else {
            Stop::Requested
        }
    }
}

/// Login sessions: systemd-logind starts `user@UID.service` at the first
/// login and stops it after the last logout, so an SSH check once a minute
/// activates it once a minute.
pub fn is_login_session(name: &str) -> bool {
    name.strip_prefix("user@")
        .and_then(|rest| rest.strip_suffix(".service"))
        .is_some_and(|uid| !uid.is_empty() && uid.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether an activation counts toward `restart_loop`: it follows a failure,
/// or a daemon exiting by itself, and is not normal life. Excluded: login
/// sessions, units something triggers (TriggeredBy= a timer, socket or path),
/// and after a clean exit also oneshots and bus-activated services (BusName=),
/// which exit when done or idle and are started again on demand. An
/// activation whose previous stop was not seen (`stop` None) does not count.
pub fn activation_is_loop(name: &str, props: &StaticProps, stop: Option<Stop>) -> bool {
    if is_login_session(name) || !props.triggered_by.is_empty() {
        return false;
    }
    match stop {
        Some(Stop::Failure) => true,
        Some(Stop::ExitedByItself) => {
            props.service_type.as_deref() != Some("oneshot") && props.bus_name.is_none()
        }
        Some(Stop::Requested) | None => false,
    }
}

/// Whether a `Restart=` policy restarts a unit that stopped with `result`
/// (systemd.service(5), table "Exit causes and the effect of the Restart= settings").
pub fn policy_restarts_on(restart: &str, result: &str) -> bool {
    let unclean_signal = matches!(result, "signal" | "core-dump");
    match restart {
        "always" => true,
        "on-success" => result == "success",
        "on-failure" => result != "success",
        "on-abnormal" => unclean_signal || matches!(result, "timeout" | "watchdog"),
        "on-abort" => unclean_signal,
        "on-watchdog" => result == "watchdog",
        _ => false,
    }
}

/// `start_limit_hit`: the unit is failed and systemd will not restart it
/// although its Restart= policy covers the way it failed — which in practice
/// means the start limit stopped the restarts. systemd 252 leaves
/// `Result=exit-code` there instead of `start-limit-hit`, so the Result alone
/// cannot tell. Limits: RestartPreventExitStatus= and a stop job that itself
/// failed also end here.
pub fn start_limit_hit(
    active_state: &str,
    result: Option<&str>,
    restart: Option<&str>,
    job_pending: bool,
) -> bool {
    if active_state != "failed" || job_pending {
        return false;
    }
    match (result, restart) {
        (Some("start-limit-hit"), _) => true,
        (Some(result), Some(restart)) => policy_restarts_on(restart, result),
        _ => false,
    }
}

/// What the stranded rule needs of one dependency, timestamps on CLOCK_MONOTONIC in µs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DepTimes {
    pub active: bool,
    pub active_enter_usec: u64,
    pub active_exit_usec: u64,
    /// Earlier exits from active, most recent last (0 = none): a dependency
    /// that flapped before settling stranded its dependents at its first exit.
    pub earlier_exits_usec: [u64; EXIT_RING],
    /// The dependency's RestartUSec (0 for non-services): its automatic restart,
    /// which is what stops the dependents, comes that long after it died.
    pub restart_usec: u64,
}

/// How far apart "the dependency went down" and "the unit went down" may be
/// and still count as one event. Stopping the unit (ordered before the
/// dependency's stop by After=) can take a moment on a busy machine.
pub const STRANDED_TOLERANCE_USEC: u64 = 5_000_000;

/// The stranded rule, for a unit that is inactive or failed with no job
/// pending, and one of its Requires=/BindsTo= dependencies:
/// - the dependency is active again, and became so after the unit went down;
/// - the unit went down while the dependency was going down: no earlier than
///   the dependency left `active` (minus the tolerance) and no later than its
///   automatic restart (RestartUSec after leaving active, plus the tolerance).
///   A dependency that never left active (ActiveExitTimestamp 0) strands nothing.
///
/// Every exit in the dependency's ring is tried, not only the latest.
pub fn stranded_by(unit_inactive_enter_usec: u64, dep: &DepTimes) -> bool {
    let t = unit_inactive_enter_usec;
    if !dep.active || t == 0 || dep.active_enter_usec <= t {
        return false;
    }
    let near = |exit: u64| {
        let earliest = exit.saturating_sub(STRANDED_TOLERANCE_USEC);
        let latest = exit
            .saturating_add(dep.restart_usec)
            .saturating_add(STRANDED_TOLERANCE_USEC);
        exit != 0 && (earliest..=latest).contains(&t)
    };
    near(dep.active_exit_usec) || dep.earlier_exits_usec.iter().any(|e| near(*e))
}

/// Exits kept per unit for the stranded rule: enough for a dependency that
/// flapped a few times before it settled.
pub const EXIT_RING: usize = 8;

/// The latest [`EXIT_RING`] distinct ActiveExitTimestamps of one unit.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ExitRing {
    exits: [u64; EXIT_RING],
}

impl ExitRing {
    pub fn record(&mut self, exit_usec: u64) {
        if exit_usec == 0 || self.exits.contains(&exit_usec) {
            return;
        }
        self.exits.rotate_left(1);
        self.exits[EXIT_RING - 1] = exit_usec;
    }

    pub fn exits(&self) -> [u64; EXIT_RING] {
        self.exits
    }
}

/// A oneshot without RemainAfterExit whose command ran to a clean end: it
/// went down because it was done, not because a dependency stopped it.
pub fn finished_normally(props: &StaticProps, result: Option<&str>, exec_main_code: Option<i32>) -> bool {
    props.ends_by_itself() && result == Some("success") && exec_main_code == Some(CLD_EXITED)
}

/// The most recent events of one kind (activations, restarts) with their
/// times, enough to tell whether `threshold` of them fall within the window.
/// Each entry counts at least one event, so keeping the latest `threshold`
/// entries is exact and bounds memory.
#[derive(Debug, Clone, Default)]
pub struct EventWindow {
    events: VecDeque<(f64, u64)>,
}

impl EventWindow {
    /// Record `count` events at time `t` (seconds on the collector's clock).
    pub fn record(&mut self, t: f64, count: u64, keep: usize) {
        if count == 0 {
            return;
        }
        self.events.push_back((t, count));
        while self.events.len() > keep.max(1) {
            self.events.pop_front();
        }
    }

    /// Events within `window` seconds before `now`.
    pub fn count_within(&self, now: f64, window: f64) -> u64 {
        self.events
            .iter()
            .filter(|(t, _)| now - t <= window)
            .map(|(_, n)| n)
            .sum()
    }
}

/// Restarts since the previous NRestarts reading: systemd resets NRestarts
/// on a manual restart, so a drop means "reset, then `now` restarts".
pub fn restarts_since(previous: Option<u32>, now: u32) -> u64 {
    match previous {
        None => 0,
        Some(p) if now >= p => u64::from(now - p),
        Some(_) => u64::from(now),
    }
}

/// Everything the metrics of one unit are made of, after a round.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UnitView {
    pub name: String,
    pub active_state: String,
    /// NRestarts (services only).
    pub restarts: Option<u32>,
    pub activations: u64,
    pub restart_loop: bool,
    /// Restart= is known and not `no`: systemd restarts it by itself, so
    /// NRestarts can move and `restart_unbounded` can hold. Unknown is false
    /// (an unknown property is never reported as 0).
    pub restart_policy: bool,
    /// Restart= is unknown or not `no`: NRestarts can move.
    pub may_restart: bool,
    pub restart_unbounded: bool,
    /// The unit has a Requires=/BindsTo= dependency that [`can_strand`] it.
    pub has_hard_deps: bool,
    /// Result, read only while the unit is failed.
    pub result: Option<String>,
    /// Dependencies that strand this unit, sorted.
    pub stranded_by: Vec<String>,
    pub start_limit_hit: bool,
}

/// How the collector's property reads went, for its own metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadHealth {
    /// Failed reads since start, by `reason` (every reason, zeros included).
    pub failures: Vec<(&'static str, u64)>,
    /// Values published from an earlier round because this round's read failed.
    pub stale: u64,
    /// Signals we use that did not decode, since start.
    pub undecodable_signals: u64,
}

/// Metric families for the watched units and the manager's reachability.
/// With the manager unreachable only `up` is reported: unit data would be stale.
pub fn families(up: bool, units: &[UnitView], health: &ReadHealth) -> Vec<Family> {
    let mut fam_up = Family::gauge(
        "sentinel_systemd_up",
        "1 if the systemd manager answers on the bus.",
    );
    fam_up.push(vec![], metrics::flag(up));
    if !up {
        return vec![fam_up];
    }
    let mut state = Family::gauge(
        "sentinel_systemd_unit_state",
        "Unit state: one series per unit, for its current state (active, activating, deactivating, inactive, failed), always 1.",
    );
    let mut restarts = Family::counter(
        "sentinel_systemd_unit_restarts",
        "systemd's NRestarts: automatic restarts by Restart= (reset by a manual restart); services whose Restart= is not no.",
    );
    let mut activations = Family::counter(
        "sentinel_systemd_unit_activations",
        "Times the unit was seen entering active, whoever started it (from D-Bus signals).",
    );
    let mut restart_loop = Family::gauge(
        "sentinel_systemd_unit_restart_loop",
        "1 if the unit keeps coming back after dying: automatic restarts, or activations after a failure or an unrequested exit (not timer, socket, bus or login activations), within the restart-loop window reached the threshold.",
    );
    let mut unbounded = Family::gauge(
        "sentinel_systemd_unit_restart_unbounded",
        "1 if Restart= is not no and the start limit can never stop it (StartLimitIntervalUSec=0, StartLimitBurst=0, or RestartUSec x StartLimitBurst >= StartLimitIntervalUSec): systemd restarts it forever (units with a Restart= policy only; 0 while a limit property is unknown).",
    );
    let mut stranded = Family::gauge(
        "sentinel_systemd_unit_stranded",
        "1 if a Requires=/BindsTo= dependency's stop or restart stopped the unit, the dependency is active again and nothing will start the unit (units with such a dependency only; dependency=\"\" and 0 when not stranded).",
    );
    let mut failed = Family::gauge(
        "sentinel_systemd_unit_failed",
        "1 with systemd's Result, for failed units only.",
    );
    let mut limit = Family::gauge(
        "sentinel_systemd_unit_start_limit_hit",
        "1 if the unit is failed although its Restart= policy covers how it failed: systemd gave up restarting it (start limit); failed units only.",
    );
    let mut read_failures = Family::counter(
        "sentinel_systemd_property_read_failures",
        "Unit property reads that failed (timeout, limits, decode, other); the round went on without them.",
    );
    for (reason, n) in &health.failures {
        read_failures.push(vec![("reason", (*reason).to_string())], *n as f64);
    }
    let mut stale = Family::gauge(
        "sentinel_systemd_property_values_stale",
        "Unit property values published from an earlier round because this round's read failed.",
    );
    stale.push(vec![], health.stale as f64);
    let mut undecodable = Family::counter(
        "sentinel_systemd_signals_undecodable",
        "Manager signals the collector uses whose content did not decode.",
    );
    undecodable.push(vec![], health.undecodable_signals as f64);
    for u in units {
        let unit = || -> Labels { vec![("unit", u.name.clone())] };
        // Only the current state: the other four would always be 0.
        if let Some(current) = contract_state(&u.active_state) {
            let mut l = unit();
            l.push(("state", current.to_string()));
            state.push(l, 1.0);
        }
        if let Some(n) = u.restarts.filter(|_| u.may_restart) {
            restarts.push(unit(), f64::from(n));
        }
        // From the first activation seen: on a node of hundreds of units a
        // series of 0 for each would be a fifth of the scrape and say nothing.
        if u.activations > 0 {
            activations.push(unit(), u.activations as f64);
        }
        restart_loop.push(unit(), metrics::flag(u.restart_loop));
        if u.restart_policy {
            unbounded.push(unit(), metrics::flag(u.restart_unbounded));
        }
        if u.stranded_by.is_empty() && u.has_hard_deps {
            let mut l = unit();
            l.push(("dependency", String::new()));
            stranded.push(l, 0.0);
        }
        for dep in &u.stranded_by {
            let mut l = unit();
            l.push(("dependency", dep.clone()));
            stranded.push(l, 1.0);
        }
        // Both can only be 1 while failed; while not failed their 0 would
        // repeat what unit_state says.
        if u.active_state == "failed" {
            let mut l = unit();
            l.push(("result", u.result.clone().unwrap_or_default()));
            failed.push(l, 1.0);
            limit.push(unit(), metrics::flag(u.start_limit_hit));
        }
    }
    vec![
        fam_up,
        state,
        restarts,
        activations,
        restart_loop,
        unbounded,
        stranded,
        failed,
        limit,
        read_failures,
        stale,
        undecodable,
    ]
}

/// Apply the include/exclude filters and the unit cap to listed names:
/// returns the kept names (sorted, so the same units survive the cap every
/// round) and the number of series the cap cut.
pub fn select_units<'a>(
    names: impl IntoIterator<Item = &'a str>,
    include: &regex::Regex,
    exclude: Option<&regex::Regex>,
    cap: usize,
) -> (Vec<&'a str>, u64) {
    let mut kept: Vec<&str> = names
        .into_iter()
        .filter(|n| include.is_match(n) && !exclude.is_some_and(|e| e.is_match(n)))
        .collect();
    kept.sort_unstable();
    kept.dedup();
    let dropped = kept.iter().skip(cap).map(|n| series_per_unit(n)).sum();
    kept.truncate(cap);
    (kept, dropped)
}

/// Whether a Requires=/BindsTo= dependency makes a unit one that can be
/// stranded, for its always-present `stranded` 0. DefaultDependencies= gives
/// every service Requires= on its slice, sysinit.target and basic.target,
/// which leave `active` only at shutdown or an isolate: counting them would
/// give every unit the series. The rule itself still looks at every hard
/// dependency, so a unit stranded by one of these is reported all the same.
pub fn can_strand(dep: &str) -> bool {
    !(dep.ends_with(".slice") || matches!(dep, "sysinit.target" | "basic.target"))
}

/// Group a unit's stranding dependencies: `deps` maps dependency name to its
/// times; returns the sorted names that strand a unit down since `inactive_enter_usec`.
pub fn stranding_deps(
    inactive_enter_usec: u64,
    hard_deps: &[String],
    deps: &BTreeMap<String, DepTimes>,
) -> Vec<String> {
    let mut out: Vec<String> = hard_deps
        .iter()
        .filter(|d| {
            deps.get(d.as_str())
                .is_some_and(|t| stranded_by(inactive_enter_usec, t))
        })
        .cloned()
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_names_from_paths() {
        let cases = [
            (
                "/org/freedesktop/systemd1/unit/dockerd_2eservice",
                Some("dockerd.service"),
            ),
            (
                "/org/freedesktop/systemd1/unit/foo_2dbar_40x_2eservice",
                Some("foo-bar@x.service"),
            ),
            (
                "/org/freedesktop/systemd1/unit/_2d_2emount",
                Some("-.mount"),
            ),
            ("/org/freedesktop/systemd1/unit/bad_2", None),
            ("/org/freedesktop/systemd1/unit/bad_zz", None),
            ("/org/freedesktop/systemd1/unit/", None),
            ("/org/freedesktop/systemd1/job/12", None),
            ("/org/freedesktop/systemd1/unit/a/b", None),
        ];
        for (path, want) in cases {
            assert_eq!(unit_name_from_path(path).as_deref(), want, "{path}");
        }
    }

    #[test]
    fn contract_states() {
        assert_eq!(contract_state("reloading"), Some("active"));
        assert_eq!(contract_state("failed"), Some("failed"));
        assert_eq!(contract_state("maintenance"), Some("inactive"));
        assert_eq!(contract_state("weird"), None);
    }

    #[test]
    fn unbounded_restart_policies() {
        let p = |restart: Option<&str>, interval: Option<u64>, burst: Option<u32>| StaticProps {
            restart: restart.map(str::to_string),
            start_limit_interval_usec: interval,
            start_limit_burst: burst,
            ..Default::default()
        };
        let cases = [
            (p(Some("always"), Some(0), Some(5)), true),
            (p(Some("on-failure"), Some(10_000_000), Some(0)), true),
            (p(Some("always"), Some(10_000_000), Some(5)), false),
            (p(Some("no"), Some(0), Some(0)), false),
            (p(None, Some(0), Some(0)), false),
            // A limit that could not be read (or a systemd without it) is
            // unknown, not 0: not unbounded.
            (p(Some("always"), None, None), false),
            (p(Some("always"), None, Some(5)), false),
            (p(Some("always"), Some(0), None), true),
        ];
        for (props, want) in cases {
            assert_eq!(props.restart_unbounded(), want, "{props:?}");
        }
    }

    #[test]
    fn unbounded_from_the_start_limit_arithmetic() {
        let p = |delay: Option<u64>, interval: Option<u64>, burst: Option<u32>| StaticProps {
            restart: Some("always".into()),
            restart_usec: delay,
            start_limit_interval_usec: interval,
            start_limit_burst: burst,
            ..Default::default()
        };
        let cases = [
            // containerd's unit: RestartSec=5 against 5 starts in 10 s.
            (p(Some(5 * S), Some(10 * S), Some(5)), true),
            // Exactly at the edge: the burst never fits.
            (p(Some(2 * S), Some(10 * S), Some(5)), true),
            // systemd's defaults: 100 ms, 5 in 10 s.
            (p(Some(100_000), Some(10 * S), Some(5)), false),
            // No interval or no burst: unbounded whatever the delay.
            (p(None, Some(0), Some(5)), true),
            (p(None, Some(10 * S), Some(0)), true),
            // One unknown (older systemd, failed read): unknown, not 0.
            (p(None, Some(10 * S), Some(5)), false),
            (p(Some(5 * S), None, Some(5)), false),
            (p(Some(5 * S), Some(10 * S), None), false),
            // Overflow saturates rather than wrapping to a small product.
            (p(Some(u64::MAX), Some(10 * S), Some(5)), true),
        ];
        for (i, (props, want)) in cases.into_iter().enumerate() {
            assert_eq!(props.restart_unbounded(), want, "case {i}: {props:?}");
        }
    }

    #[test]
    fn login_sessions() {
        for (name, want) in [
            ("user@1000.service", true),
            ("user@0.service", true),
            ("user-runtime-dir@1000.service", false),
            ("user@.service", false),
            ("user@abc.service", false),
            ("user@1000.slice", false),
            ("myuser@1000.service", false),
            ("dockerd.service", false),
        ] {
            assert_eq!(is_login_session(name), want, "{name}");
        }
    }

    #[test]
    fn stops_classified_from_result_and_exec_main_code() {
        let cases = [
            ("failed", Some("exit-code"), Some(CLD_EXITED), Stop::Failure),
            ("failed", None, None, Stop::Failure),
            ("inactive", Some("signal"), Some(2), Stop::Failure),
            ("inactive", Some("success"), Some(CLD_EXITED), Stop::ExitedByItself),
            // systemctl stop: SIGTERM, which systemd takes for a clean stop.
            ("inactive", Some("success"), Some(2), Stop::Requested),
            ("inactive", None, None, Stop::Requested),
        ];
        for (state, result, code, want) in cases {
            assert_eq!(Stop::classify(state, result, code), want, "{state} {result:?} {code:?}");
        }
    }

    #[test]
    fn which_activations_make_a_loop() {
        let plain = StaticProps {
            service_type: Some("simple".into()),
            ..Default::default()
        };
        let timer = StaticProps {
            triggered_by: vec!["tick.timer".into()],
            ..plain.clone()
        };
        let socket = StaticProps {
            triggered_by: vec!["app.socket".into()],
            ..plain.clone()
        };
        let bus = StaticProps {
            service_type: Some("dbus".into()),
            bus_name: Some("org.example.App".into()),
            ..Default::default()
        };
        let oneshot = StaticProps {
            service_type: Some("oneshot".into()),
            remain_after_exit: Some(false),
            ..Default::default()
        };
        use Stop::*;
        let cases = [
            // A health checker starting a dead daemon again.
            ("app.service", &plain, Some(Failure), true),
            ("app.service", &plain, Some(ExitedByItself), true),
            // systemctl restart by hand or by a deploy.
            ("app.service", &plain, Some(Requested), false),
            // The stop was not seen (first round, after a reconnect).
            ("app.service", &plain, None, false),
            // A timer or socket starting its service, even one that failed last time.
            ("job.service", &timer, Some(ExitedByItself), false),
            ("job.service", &timer, Some(Failure), false),
            ("app.service", &socket, Some(ExitedByItself), false),
            // Bus activation after an idle exit; a crash still counts.
            ("bus.service", &bus, Some(ExitedByItself), false),
            ("bus.service", &bus, Some(Failure), true),
            // A oneshot run again after it finished; a failed one counts.
            ("once.service", &oneshot, Some(ExitedByItself), false),
            ("once.service", &oneshot, Some(Failure), true),
            // SSH logins: user@UID.service comes and goes with sessions.
            ("user@1000.service", &plain, Some(ExitedByItself), false),
            ("user@1000.service", &plain, Some(Failure), false),
        ];
        for (name, props, stop, want) in cases {
            assert_eq!(activation_is_loop(name, props, stop), want, "{name} {props:?} {stop:?}");
        }
    }

    #[test]
    fn a_flapping_dependency_still_strands_through_its_exit_ring() {
        // flanneld died at 100 s, its restart stopped dockerd at 101 s, then it
        // came up and died three more times before settling at 114 s.
        let mut ring = ExitRing::default();
        for exit in [100 * S, 105 * S, 109 * S, 113 * S, 113 * S] {
            ring.record(exit);
        }
        ring.record(0);
        assert_eq!(ring.exits().iter().filter(|e| **e != 0).count(), 4, "distinct, non-zero");
        let mut d = dep(true, 114 * S, 113 * S, S);
        assert!(!stranded_by(101 * S, &d), "the latest exit alone misses it");
        d.earlier_exits_usec = ring.exits();
        assert!(stranded_by(101 * S, &d));
        // A unit stopped by hand long before the first exit is still not stranded.
        assert!(!stranded_by(50 * S, &d));
        // The ring is bounded: the oldest exits go first.
        for i in 0..EXIT_RING as u64 {
            ring.record(200 * S + i);
        }
        assert!(!ring.exits().contains(&(100 * S)));
    }

    #[test]
    fn a_oneshot_that_finished_is_not_stranded() {
        let oneshot = StaticProps {
            service_type: Some("oneshot".into()),
            remain_after_exit: Some(false),
            ..Default::default()
        };
        let remains = StaticProps {
            remain_after_exit: Some(true),
            ..oneshot.clone()
        };
        let simple = StaticProps {
            service_type: Some("simple".into()),
            remain_after_exit: Some(false),
            ..Default::default()
        };
        let cases = [
            (&oneshot, Some("success"), Some(CLD_EXITED), true),
            // Killed by the dependency's stop: it did not finish.
            (&oneshot, Some("success"), Some(2), false),
            (&oneshot, Some("exit-code"), Some(CLD_EXITED), false),
            (&oneshot, None, None, false),
            // RemainAfterExit=yes stays active when done: down means stopped.
            (&remains, Some("success"), Some(CLD_EXITED), false),
            (&simple, Some("success"), Some(CLD_EXITED), false),
        ];
        for (i, (props, result, code, want)) in cases.into_iter().enumerate() {
            assert_eq!(finished_normally(props, result, code), want, "case {i}");
        }
    }

    #[test]
    fn restart_policy_table() {
        let cases = [
            ("always", "exit-code", true),
            ("always", "success", true),
            ("on-failure", "exit-code", true),
            ("on-failure", "success", false),
            ("on-abnormal", "exit-code", false),
            ("on-abnormal", "signal", true),
            ("on-abnormal", "watchdog", true),
            ("on-abort", "timeout", false),
            ("on-abort", "core-dump", true),
            ("on-watchdog", "watchdog", true),
            ("on-success", "exit-code", false),
            ("no", "exit-code", false),
        ];
        for (restart, result, want) in cases {
            assert_eq!(
                policy_restarts_on(restart, result),
                want,
                "{restart} {result}"
            );
        }
    }

    #[test]
    fn start_limit_inference() {
        let cases = [
            ("failed", Some("exit-code"), Some("always"), false, true),
            ("failed", Some("start-limit-hit"), Some("no"), false, true),
            ("failed", Some("exit-code"), Some("no"), false, false),
            ("failed", Some("exit-code"), Some("on-abort"), false, false),
            ("failed", Some("exit-code"), Some("always"), true, false),
            (
                "activating",
                Some("exit-code"),
                Some("always"),
                false,
                false,
            ),
            ("failed", None, Some("always"), false, false),
        ];
        for (state, result, restart, job, want) in cases {
            assert_eq!(
                start_limit_hit(state, result, restart, job),
                want,
                "{state} {result:?} {restart:?} {job}"
            );
        }
    }

    const S: u64 = 1_000_000;

    fn dep(active: bool, enter: u64, exit: u64, restart: u64) -> DepTimes {
        DepTimes {
            active,
            active_enter_usec: enter,
            active_exit_usec: exit,
            earlier_exits_usec: [0; EXIT_RING],
            restart_usec: restart,
        }
    }

    #[test]
    fn stranded_rule() {
        // Timestamps measured on systemd 252 (seconds on CLOCK_MONOTONIC).
        let cases = [
            // The seed: flanneld died at 813.36, its restart stopped dockerd at
            // 814.42 (RestartSec=1), its first start failed, it is active since 815.70.
            (814_418_216, dep(true, 815_696_900, 813_362_409, S), true),
            // Same, dependency still down.
            (814_418_216, dep(false, 815_696_900, 813_362_409, S), false),
            // `systemctl restart dep` stops the unit first, then the dependency,
            // a moment later; the unit was started again so it is not a candidate,
            // but if it had failed to start it is stranded.
            (100 * S, dep(true, 101 * S, 100 * S + 20_000, 100_000), true),
            // The unit was stopped by hand long after the dependency's last restart.
            (500 * S, dep(true, 101 * S, 100 * S, 100_000), false),
            // The unit was stopped by hand; the dependency restarted much later.
            (100 * S, dep(true, 301 * S, 300 * S, 100_000), false),
            // The dependency never left active (sysinit.target and friends).
            (100 * S, dep(true, 2 * S, 0, 0), false),
            // A long RestartSec= (the seed had 5s) is covered.
            (100 * S + 30 * S, dep(true, 140 * S, 100 * S, 30 * S), true),
            // The unit never ran.
            (0, dep(true, 140 * S, 100 * S, 0), false),
            // The dependency came back before the unit went down.
            (100 * S, dep(true, 99 * S, 98 * S, 0), false),
        ];
        for (i, (t, d, want)) in cases.into_iter().enumerate() {
            assert_eq!(stranded_by(t, &d), want, "case {i}: {t} {d:?}");
        }
    }

    #[test]
    fn default_dependencies_do_not_make_a_unit_strandable() {
        for d in ["system.slice", "app.slice", "sysinit.target", "basic.target"] {
            assert!(!can_strand(d), "{d}");
        }
        for d in ["flanneld.service", "docker.socket", "var-lib.mount", "network-online.target"] {
            assert!(can_strand(d), "{d}");
        }
    }

    #[test]
    fn stranding_deps_sorted_and_filtered() {
        let mut deps = BTreeMap::new();
        deps.insert("b.service".to_string(), dep(true, 12 * S, 10 * S, 0));
        deps.insert("a.service".to_string(), dep(true, 12 * S, 10 * S, 0));
        deps.insert("basic.target".to_string(), dep(true, S, 0, 0));
        let hard = vec![
            "b.service".to_string(),
            "basic.target".to_string(),
            "a.service".to_string(),
            "missing.service".to_string(),
        ];
        assert_eq!(
            stranding_deps(10 * S, &hard, &deps),
            vec!["a.service".to_string(), "b.service".to_string()]
        );
    }

    #[test]
    fn event_window_counts_and_bounds() {
        let mut w = EventWindow::default();
        for t in 0..10 {
            w.record(f64::from(t), 1, 5);
        }
        assert_eq!(w.events.len(), 5);
        assert_eq!(w.count_within(9.0, 100.0), 5);
        assert_eq!(w.count_within(9.0, 2.0), 3);
        w.record(20.0, 7, 5);
        assert_eq!(w.count_within(20.0, 1.0), 7);
        w.record(21.0, 0, 5);
        assert_eq!(w.count_within(21.0, 0.5), 0);
    }

    #[test]
    fn nrestarts_deltas() {
        assert_eq!(restarts_since(None, 40), 0);
        assert_eq!(restarts_since(Some(3), 5), 2);
        assert_eq!(restarts_since(Some(5), 5), 0);
        // Reset by a manual restart, then one more automatic restart.
        assert_eq!(restarts_since(Some(9), 1), 1);
    }

    #[test]
    fn selection_and_cap() {
        let include = regex::Regex::new(r"^(?:.+\.service)$").unwrap();
        let exclude = regex::Regex::new(r"^(?:skip.*)$").unwrap();
        let names = [
            "c.service",
            "a.service",
            "x.socket",
            "skip.service",
            "b.service",
        ];
        let (kept, dropped) = select_units(names, &include, Some(&exclude), 2);
        assert_eq!(kept, vec!["a.service", "b.service"]);
        assert_eq!(dropped, series_per_unit("c.service"));
        let (kept, dropped) = select_units(names, &include, None, 10);
        assert_eq!(kept.len(), 4);
        assert_eq!(dropped, 0);
    }

    #[test]
    fn families_shape() {
        let units = vec![
            UnitView {
                name: "dockerd.service".into(),
                active_state: "inactive".into(),
                restarts: Some(0),
                stranded_by: vec!["flanneld.service".into()],
                has_hard_deps: true,
                ..Default::default()
            },
            UnitView {
                name: "loop.service".into(),
                active_state: "failed".into(),
                restarts: Some(12),
                may_restart: true,
                restart_policy: true,
                activations: 3,
                restart_loop: true,
                result: Some("exit-code".into()),
                start_limit_hit: true,
                ..Default::default()
            },
            UnitView {
                name: "kubelet.service".into(),
                active_state: "active".into(),
                restarts: Some(0),
                may_restart: true,
                restart_policy: true,
                has_hard_deps: true,
                ..Default::default()
            },
            // Restart=no, no hard dependency, running: only what any unit can have.
            UnitView {
                name: "cron.service".into(),
                active_state: "active".into(),
                restarts: Some(0),
                ..Default::default()
            },
        ];
        let health = ReadHealth {
            failures: vec![("limits", 4), ("timeout", 0)],
            stale: 2,
            undecodable_signals: 1,
        };
        let mut fams = families(true, &units, &health);
        metrics::sort_families(&mut fams);
        let text = metrics::render(&fams);
        for want in [
            "sentinel_systemd_up 1",
            r#"sentinel_systemd_unit_state{unit="dockerd.service",state="inactive"} 1"#,
            r#"sentinel_systemd_unit_state{unit="cron.service",state="active"} 1"#,
            r#"sentinel_systemd_unit_stranded{unit="dockerd.service",dependency="flanneld.service"} 1"#,
            r#"sentinel_systemd_unit_stranded{unit="kubelet.service",dependency=""} 0"#,
            r#"sentinel_systemd_unit_failed{unit="loop.service",result="exit-code"} 1"#,
            r#"sentinel_systemd_unit_restarts_total{unit="loop.service"} 12"#,
            r#"sentinel_systemd_unit_restarts_total{unit="kubelet.service"} 0"#,
            r#"sentinel_systemd_unit_activations_total{unit="loop.service"} 3"#,
            r#"sentinel_systemd_unit_restart_loop{unit="loop.service"} 1"#,
            r#"sentinel_systemd_unit_restart_loop{unit="cron.service"} 0"#,
            r#"sentinel_systemd_unit_restart_unbounded{unit="kubelet.service"} 0"#,
            r#"sentinel_systemd_unit_start_limit_hit{unit="loop.service"} 1"#,
            r#"sentinel_systemd_property_read_failures_total{reason="limits"} 4"#,
            r#"sentinel_systemd_property_read_failures_total{reason="timeout"} 0"#,
            "sentinel_systemd_property_values_stale 2",
            "sentinel_systemd_signals_undecodable_total 1",
        ] {
            assert!(text.contains(want), "missing {want} in\n{text}");
        }
        for absent in [
            // other states, not-failed units' failed/start_limit_hit
            r#"sentinel_systemd_unit_state{unit="dockerd.service",state="active"}"#,
            r#"sentinel_systemd_unit_failed{unit="dockerd.service""#,
            r#"sentinel_systemd_unit_start_limit_hit{unit="kubelet.service"}"#,
            // no Restart= policy: no NRestarts, no unbounded
            r#"sentinel_systemd_unit_restarts_total{unit="cron.service"}"#,
            r#"sentinel_systemd_unit_restart_unbounded{unit="cron.service"}"#,
            r#"sentinel_systemd_unit_restart_unbounded{unit="dockerd.service"}"#,
            // no Requires=/BindsTo=: cannot be stranded
            r#"sentinel_systemd_unit_stranded{unit="cron.service""#,
            r#"sentinel_systemd_unit_stranded{unit="loop.service""#,
        ] {
            assert!(!text.contains(absent), "unexpected {absent} in\n{text}");
        }
        // A unit with neither policy nor dependency costs three series.
        let cron = text
            .lines()
            .filter(|l| !l.starts_with('#') && l.contains(r#"unit="cron.service""#))
            .count();
        assert_eq!(cron as u64, series_per_unit("cron.service"));
        let down = metrics::render(&families(false, &units, &health));
        assert!(down.contains("sentinel_systemd_up 0"));
        assert!(!down.contains("unit_state"));
        assert!(!down.contains("read_failures"));
    }

    /// Every finding has its series wherever the unit can have the finding,
    /// and a true finding is always reported, whatever the unit's properties.
    #[test]
    fn every_finding_has_its_series_where_it_can_fire() {
        let health = ReadHealth::default();
        for policy in [false, true] {
            for deps in [false, true] {
                for state in ["active", "inactive", "failed", "activating"] {
                    for fired in [false, true] {
                        let u = UnitView {
                            name: "u.service".into(),
                            active_state: state.into(),
                            restarts: Some(3),
                            may_restart: policy,
                            restart_policy: policy,
                            has_hard_deps: deps,
                            restart_loop: fired,
                            restart_unbounded: fired && policy,
                            // A unit stranded by a default dependency
                            // (basic.target) has no always-present 0, yet its 1 shows.
                            stranded_by: if fired && state != "active" {
                                vec!["basic.target".into()]
                            } else {
                                vec![]
                            },
                            start_limit_hit: fired && state == "failed",
                            result: (state == "failed").then(|| "exit-code".into()),
                            ..Default::default()
                        };
                        let fams = families(true, std::slice::from_ref(&u), &health);
                        let series = |name: &str| -> Vec<f64> {
                            fams.iter()
                                .filter(|f| f.name == name)
                                .flat_map(|f| f.samples.iter())
                                .filter_map(|s| match s.value {
                                    metrics::Value::Number(v) => Some(v),
                                    _ => None,
                                })
                                .collect()
                        };
                        let case = format!("policy={policy} deps={deps} {state} fired={fired}");
                        let failed = state == "failed";
                        assert_eq!(series("sentinel_systemd_unit_state"), [1.0], "{case}");
                        assert_eq!(series("sentinel_systemd_unit_restart_loop"), [metrics::flag(fired)], "{case}");
                        assert_eq!(series("sentinel_systemd_unit_activations").len(), usize::from(u.activations > 0), "{case}");
                        assert_eq!(series("sentinel_systemd_unit_restarts").len(), usize::from(policy), "{case}");
                        let unbounded = series("sentinel_systemd_unit_restart_unbounded");
                        assert_eq!(unbounded.len(), usize::from(policy), "{case}");
                        assert!(unbounded.iter().all(|v| *v == metrics::flag(fired)), "{case}");
                        let stranded = series("sentinel_systemd_unit_stranded");
                        let is_stranded = !u.stranded_by.is_empty();
                        assert_eq!(stranded.len(), usize::from(deps || is_stranded), "{case}");
                        assert!(stranded.iter().all(|v| *v == metrics::flag(is_stranded)), "{case}");
                        assert_eq!(series("sentinel_systemd_unit_failed"), if failed { vec![1.0] } else { vec![] }, "{case}");
                        assert_eq!(
                            series("sentinel_systemd_unit_start_limit_hit"),
                            if failed { vec![metrics::flag(fired)] } else { vec![] },
                            "{case}"
                        );
                    }
                }
            }
        }
    }
}
