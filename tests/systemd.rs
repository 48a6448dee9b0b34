//! The systemd collector against a real systemd 252 user manager on a
//! private bus (RECIPES.md), each test with its own manager, bus and cgroup.
#![allow(clippy::disallowed_methods)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::{Exporter, Metrics, TempDir};

const SYSTEMD: &str = "/lib/systemd/systemd";

/// The real system bus's pending replies per connection (the session bus's
/// default is far looser and would hide a pile-up).
const SYSTEM_BUS_REPLIES: u32 = 128;

/// A bus config allowing `replies` pending replies per connection, and the
/// system bus's match rules.
fn bus_conf(replies: u32) -> String {
    format!(
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <include>/usr/share/dbus-1/session.conf</include>
  <limit name="max_replies_per_connection">{replies}</limit>
  <limit name="max_match_rules_per_connection">512</limit>
</busconfig>
"#
    )
}

/// A systemd user manager on its own bus and cgroup; everything in that
/// cgroup (manager, bus daemon, units) is killed on drop.
struct Manager {
    dir: TempDir,
    slice: PathBuf,
    child: Child,
}

impl Manager {
    fn start(tag: &str) -> Option<Manager> {
        Manager::start_with_replies(tag, SYSTEM_BUS_REPLIES)
    }

    /// A manager whose bus allows only `replies` pending replies per connection.
    fn start_with_replies(tag: &str, replies: u32) -> Option<Manager> {
        if !common::require_root() {
            return None;
        }
        for program in [SYSTEMD, "systemctl", "dbus-daemon"] {
            common::require(program)?;
        }
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = TempDir::new(&format!("systemd-{tag}"));
        let xdg = dir.path().join("xdg");
        let units = dir.path().join("home/.config/systemd/user");
        std::fs::create_dir_all(&xdg).expect("runtime dir");
        std::fs::set_permissions(&xdg, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .expect("runtime dir mode");
        std::fs::create_dir_all(units.join("dbus.service.d")).expect("unit dir");
        let conf = dir.path().join("bus.conf");
        std::fs::write(&conf, bus_conf(replies)).expect("bus config");
        std::fs::write(
            units.join("dbus.service.d/limits.conf"),
            format!(
                "[Service]\nExecStart=\nExecStart=/usr/bin/dbus-daemon --config-file={} --address=systemd: --nofork --nopidfile --systemd-activation --syslog-only\n",
                conf.display()
            ),
        )
        .expect("bus drop-in");
        std::fs::create_dir_all("/run/systemd/system").expect("/run/systemd/system");
        let root = if Path::new("/sys/fs/cgroup/unified/cgroup.procs").exists() {
            PathBuf::from("/sys/fs/cgroup/unified")
        } else {
            PathBuf::from("/sys/fs/cgroup")
        };
        let slice = root.join(format!(
            "sentinel-test-{}-{n}-{tag}.slice",
            std::process::id()
        ));
        let cg = slice.join("user@0.service");
        std::fs::create_dir_all(&cg).expect("cgroup");
        let child = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "echo $$ > {}/cgroup.procs && exec {SYSTEMD} --user",
                cg.display()
            ))
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("HOME", dir.path().join("home"))
            .env("XDG_RUNTIME_DIR", &xdg)
            .env("LANG", "C.UTF-8")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("manager.log")).expect("manager log"))
            .spawn()
            .expect("start systemd --user");
        let manager = Manager { dir, slice, child };
        common::wait_until(Duration::from_secs(30), "the user manager", || {
            let out = manager.systemctl(&["is-system-running"]);
            let state = String::from_utf8_lossy(&out.stdout).trim().to_string();
            matches!(state.as_str(), "running" | "degraded").then_some(())
        });
        Some(manager)
    }

    fn xdg(&self) -> PathBuf {
        self.dir.path().join("xdg")
    }

    fn bus_flag(&self) -> String {
        format!(
            "--collector.systemd.bus=unix:path={}",
            self.xdg().join("bus").display()
        )
    }

    fn systemctl(&self, args: &[&str]) -> Output {
        Command::new("systemctl")
            .arg("--user")
            .args(args)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("HOME", self.dir.path().join("home"))
            .env("XDG_RUNTIME_DIR", self.xdg())
            .output()
            .expect("run systemctl")
    }

    /// systemctl --user, which must succeed.
    fn ctl(&self, args: &[&str]) -> String {
        let out = self.systemctl(args);
        assert!(
            out.status.success(),
            "systemctl --user {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn show(&self, unit: &str, prop: &str) -> String {
        self.ctl(&["show", "-p", prop, "--value", unit])
    }

    fn write_unit(&self, name: &str, text: &str) {
        let path = self.dir.path().join("home/.config/systemd/user").join(name);
        std::fs::write(path, text).expect("write unit");
    }

    fn kill_main(&self, unit: &str, sig: rustix::process::Signal) {
        let pid: u32 = self.show(unit, "MainPID").parse().expect("MainPID");
        assert!(pid > 0, "{unit} has no main process");
        common::signal(pid, sig);
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        // cgroup.kill reaches exactly what this manager started, however deep.
        let _ = std::fs::write(self.slice.join("cgroup.kill"), "1");
        let _ = self.child.kill();
        let _ = self.child.wait();
        let events = self.slice.join("cgroup.events");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let populated = std::fs::read_to_string(&events).unwrap_or_default();
            if !populated.contains("populated 1") {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        remove_cgroup(&self.slice);
    }
}

/// Remove a cgroup directory tree, children first (cgroupfs has no recursive rmdir).
fn remove_cgroup(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

fn exporter(manager: &Manager, extra: &[&str]) -> Exporter {
    let bus = manager.bus_flag();
    let mut args = vec![
        "--no-collector.docker",
        "--no-collector.filesystem",
        "--no-collector.processes",
        "--no-collector.logs",
        "--collector.systemd.interval=1s",
        bus.as_str(),
    ];
    args.extend_from_slice(extra);
    Exporter::start(&args)
}

fn value(m: &Metrics, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    m.get(name, labels)
}

const WAIT: Duration = Duration::from_secs(60);

#[test]
fn seed_outage_strands_the_dependent_unit_and_nothing_else() {
    let Some(mgr) = Manager::start("seed") else {
        return;
    };
    let flag = mgr.dir.path().join("FLAG");
    // The first seed, as in RECIPES.md: the dependency must fail to *start*.
    mgr.write_unit(
        "flanneld.service",
        &format!(
            "[Unit]\nStartLimitIntervalSec=0\n[Service]\nType=notify\nNotifyAccess=all\nRestart=always\nRestartSec=1\n\
             ExecStart=/bin/sh -c 'if [ -f {f} ]; then rm -f {f}; exit 1; fi; systemd-notify --ready; exec sleep infinity'\n\
             [Install]\nWantedBy=default.target\n",
            f = flag.display()
        ),
    );
    let dependent = |dep: &str| {
        format!(
            "[Unit]\nRequires={dep}\nAfter={dep}\n[Service]\nRestart=always\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=default.target\n"
        )
    };
    mgr.write_unit("dockerd.service", &dependent("flanneld.service"));
    let plain = "[Service]\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=default.target\n";
    mgr.write_unit("manual-dep.service", plain);
    mgr.write_unit("manual.service", &dependent("manual-dep.service"));
    mgr.write_unit("healthy-dep.service", plain);
    mgr.write_unit("healthy.service", &dependent("healthy-dep.service"));
    mgr.ctl(&["daemon-reload"]);
    let units = [
        "flanneld.service",
        "dockerd.service",
        "manual-dep.service",
        "manual.service",
        "healthy-dep.service",
        "healthy.service",
    ];
    let mut args = vec!["enable", "--now"];
    args.extend(units);
    mgr.ctl(&args);

    let exp = exporter(&mgr, &[]);
    exp.wait_for(WAIT, "all units active and watched", |m| {
        units
            .iter()
            .all(|u| {
                value(
                    m,
                    "sentinel_systemd_unit_state",
                    &[("unit", u), ("state", "active")],
                ) == Some(1.0)
            })
            .then_some(())
    });
    // Units with a Requires= have the stranded series at 0; units without
    // one cannot be stranded and have none.
    let m = exp.metrics();
    for u in ["dockerd.service", "manual.service", "healthy.service"] {
        assert_eq!(
            value(
                &m,
                "sentinel_systemd_unit_stranded",
                &[("unit", u), ("dependency", "")]
            ),
            Some(0.0),
            "{u}"
        );
    }
    for u in [
        "flanneld.service",
        "manual-dep.service",
        "healthy-dep.service",
    ] {
        assert!(
            m.find("sentinel_systemd_unit_stranded", &[("unit", u)])
                .is_empty(),
            "{u}\n{}",
            m.text
        );
    }

    // The outage: flanneld dies, its first restart fails, dockerd is stopped for good.
    std::fs::write(&flag, "").unwrap();
    mgr.kill_main("flanneld.service", rustix::process::Signal::KILL);
    // A unit stopped by hand, and a healthy pair after a clean restart of the dependency.
    mgr.ctl(&["stop", "manual.service"]);
    mgr.ctl(&["restart", "healthy-dep.service"]);

    let m = exp.wait_for(WAIT, "dockerd stranded by flanneld", |m| {
        (value(
            m,
            "sentinel_systemd_unit_stranded",
            &[
                ("unit", "dockerd.service"),
                ("dependency", "flanneld.service"),
            ],
        ) == Some(1.0))
        .then(|| m.clone())
    });
    assert_eq!(mgr.show("flanneld.service", "ActiveState"), "active");
    assert_eq!(mgr.show("dockerd.service", "ActiveState"), "inactive");
    let d = [("unit", "dockerd.service")];
    assert!(
        m.find(
            "sentinel_systemd_unit_stranded",
            &[("unit", "dockerd.service"), ("dependency", "")]
        )
        .is_empty(),
        "one series per unit: the stranding one replaces dependency=\"\"\n{}",
        m.text
    );
    // As in the seed it is not even failed.
    assert!(
        m.find("sentinel_systemd_unit_failed", &[d[0]]).is_empty(),
        "{}",
        m.text
    );
    assert_eq!(
        value(
            &m,
            "sentinel_systemd_unit_state",
            &[d[0], ("state", "inactive")]
        ),
        Some(1.0)
    );
    // Only the current state's series.
    assert_eq!(
        m.find("sentinel_systemd_unit_state", &[d[0]]).len(),
        1,
        "{}",
        m.text
    );
    for u in ["manual.service", "healthy.service"] {
        assert_eq!(
            value(
                &m,
                "sentinel_systemd_unit_stranded",
                &[("unit", u), ("dependency", "")]
            ),
            Some(0.0),
            "{u}\n{}",
            m.text
        );
    }
    assert_eq!(
        value(
            &m,
            "sentinel_systemd_unit_state",
            &[("unit", "manual.service"), ("state", "inactive")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &m,
            "sentinel_systemd_unit_state",
            &[("unit", "healthy.service"), ("state", "active")]
        ),
        Some(1.0)
    );
    // flanneld restarted by itself twice (the death, then the failed start).
    assert!(
        value(
            &m,
            "sentinel_systemd_unit_restarts_total",
            &[("unit", "flanneld.service")]
        )
        .is_some_and(|n| n >= 2.0),
        "{}",
        m.text
    );

    // Starting dockerd by hand clears the finding.
    mgr.ctl(&["start", "dockerd.service"]);
    exp.wait_for(WAIT, "dockerd no longer stranded", |m| {
        (value(
            m,
            "sentinel_systemd_unit_stranded",
            &[("unit", "dockerd.service"), ("dependency", "")],
        ) == Some(0.0))
        .then_some(())
    });
}

#[test]
fn restart_loops_unbounded_policies_and_start_limits() {
    let Some(mgr) = Manager::start("loops") else {
        return;
    };
    mgr.write_unit(
        "crashy.service",
        "[Unit]\nStartLimitIntervalSec=0\n[Service]\nRestart=always\nRestartSec=300ms\nExecStart=/bin/false\n",
    );
    // Default start limits: 5 starts in 10 s, then systemd gives up.
    mgr.write_unit(
        "limited.service",
        "[Service]\nRestart=always\nExecStart=/bin/false\n[Install]\nWantedBy=default.target\n",
    );
    mgr.write_unit(
        "bounced.service",
        "[Service]\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=default.target\n",
    );
    // Dead daemons a health checker starts again: one killed, one that quits by itself.
    // No start limit: the checker's starts would hit it, as fast as it goes here.
    mgr.write_unit(
        "checked.service",
        "[Unit]\nStartLimitIntervalSec=0\n[Service]\nExecStart=/bin/sleep infinity\n",
    );
    mgr.write_unit(
        "quitter.service",
        "[Unit]\nStartLimitIntervalSec=0\n[Service]\nExecStart=/bin/sleep 1\n[Install]\nWantedBy=default.target\n",
    );
    // A timer firing a short service every couple of seconds: normal life.
    mgr.write_unit(
        "tick.timer",
        "[Timer]\nOnActiveSec=1s\nOnUnitActiveSec=2s\nAccuracySec=100ms\n",
    );
    mgr.write_unit("tick.service", "[Service]\nExecStart=/bin/true\n");
    mgr.ctl(&["daemon-reload"]);
    mgr.ctl(&["enable", "--now", "bounced.service"]);
    mgr.ctl(&["enable", "limited.service"]);
    // Enabled, so that systemd keeps it loaded while it is down.
    mgr.ctl(&["enable", "quitter.service"]);
    mgr.ctl(&["start", "checked.service", "quitter.service"]);
    std::thread::sleep(Duration::from_millis(500));

    let exp = exporter(
        &mgr,
        &[
            "--collector.systemd.restart-loop-window=1m",
            "--collector.systemd.restart-loop-threshold=4",
        ],
    );
    exp.wait_for(WAIT, "bounced watched", |m| {
        value(
            m,
            "sentinel_systemd_unit_restart_loop",
            &[("unit", "bounced.service")],
        )
    });
    mgr.ctl(&[
        "start",
        "--no-block",
        "crashy.service",
        "limited.service",
        "tick.timer",
    ]);
    // A healthy unit restarted by hand (a deploy's way): every activation is
    // counted, none is a loop.
    for _ in 0..5 {
        mgr.ctl(&["restart", "bounced.service"]);
        std::thread::sleep(Duration::from_millis(300));
    }
    // The checker: whenever a daemon is found dead, start it again. systemd's
    // NRestarts stays 0 (Restart=no); the activations after each death make the loop.
    mgr.kill_main("checked.service", rustix::process::Signal::KILL);
    for _ in 0..5 {
        for unit in ["checked.service", "quitter.service"] {
            common::wait_until(WAIT, "the daemon dead", || {
                matches!(
                    mgr.show(unit, "ActiveState").as_str(),
                    "failed" | "inactive"
                )
                .then_some(())
            });
            // A checker tries again until the daemon is up.
            common::wait_until(WAIT, "the daemon started again", || {
                let out = mgr.systemctl(&["start", unit]);
                if !out.status.success() {
                    std::thread::sleep(Duration::from_millis(200));
                }
                (mgr.show(unit, "ActiveState") == "active").then_some(())
            });
        }
        // Past its exec, so the kill is the daemon's death, not a failed start.
        std::thread::sleep(Duration::from_millis(500));
        mgr.kill_main("checked.service", rustix::process::Signal::KILL);
    }
    for unit in ["checked.service", "quitter.service"] {
        let u = [("unit", unit)];
        let m = exp.wait_for(
            WAIT,
            &format!("{unit}: the checker's restarts seen as a loop"),
            |m| {
                (value(m, "sentinel_systemd_unit_restart_loop", &u) == Some(1.0)).then(|| m.clone())
            },
        );
        assert_eq!(
            value(&m, "sentinel_systemd_unit_restarts_total", &u),
            None,
            "{unit}"
        );
    }

    let crashy = [("unit", "crashy.service")];
    let first = exp.wait_for(WAIT, "crashy restarting in a loop", |m| {
        let restarts = value(m, "sentinel_systemd_unit_restarts_total", &crashy)?;
        (restarts >= 4.0 && value(m, "sentinel_systemd_unit_restart_loop", &crashy) == Some(1.0))
            .then_some(restarts)
    });
    let m = exp.metrics();
    assert_eq!(
        value(&m, "sentinel_systemd_unit_restart_unbounded", &crashy),
        Some(1.0)
    );
    exp.wait_for(WAIT, "crashy's restarts still growing", |m| {
        (value(m, "sentinel_systemd_unit_restarts_total", &crashy)? > first).then_some(())
    });

    let limited = [("unit", "limited.service")];
    let m = exp.wait_for(WAIT, "limited failed after the start limit", |m| {
        (value(
            m,
            "sentinel_systemd_unit_state",
            &[limited[0], ("state", "failed")],
        ) == Some(1.0))
        .then(|| m.clone())
    });
    assert_eq!(
        value(&m, "sentinel_systemd_unit_restart_unbounded", &limited),
        Some(0.0)
    );
    // systemd 252 says exit-code here, not start-limit-hit: reported as is...
    let result = mgr.show("limited.service", "Result");
    assert_eq!(
        value(
            &m,
            "sentinel_systemd_unit_failed",
            &[limited[0], ("result", result.as_str())]
        ),
        Some(1.0),
        "{}",
        m.text
    );
    // ...and the start limit shows here.
    assert_eq!(
        value(&m, "sentinel_systemd_unit_start_limit_hit", &limited),
        Some(1.0)
    );
    // crashy has no start limit: whenever it is seen failed, the limit is not why.
    assert_ne!(
        value(&m, "sentinel_systemd_unit_start_limit_hit", &crashy),
        Some(1.0)
    );

    let bounced = [("unit", "bounced.service")];
    let m = exp.wait_for(WAIT, "bounced's manual restarts counted", |m| {
        (value(m, "sentinel_systemd_unit_activations_total", &bounced)? >= 5.0).then(|| m.clone())
    });
    // Restart=no: no NRestarts (it never moves) and no unbounded series
    // (it cannot restart by itself); restarts by hand are not a loop.
    assert_eq!(
        value(&m, "sentinel_systemd_unit_restarts_total", &bounced),
        None
    );
    assert_eq!(
        value(&m, "sentinel_systemd_unit_restart_loop", &bounced),
        Some(0.0),
        "{}",
        m.text
    );
    let tick = [("unit", "tick.service")];
    let m = exp.wait_for(WAIT, "the timer fired its service several times", |m| {
        (value(m, "sentinel_systemd_unit_activations_total", &tick)? >= 6.0).then(|| m.clone())
    });
    assert_eq!(
        value(&m, "sentinel_systemd_unit_restart_loop", &tick),
        Some(0.0),
        "{}",
        m.text
    );
    assert_eq!(
        value(&m, "sentinel_systemd_unit_restart_unbounded", &bounced),
        None
    );
    // A daemon-reload re-announces every unit: no activation may be counted for it.
    let before = value(&m, "sentinel_systemd_unit_activations_total", &bounced);
    mgr.ctl(&["daemon-reload"]);
    std::thread::sleep(Duration::from_secs(3));
    let m = exp.metrics();
    assert_eq!(
        value(&m, "sentinel_systemd_unit_activations_total", &bounced),
        before
    );
    assert_eq!(
        value(&m, "sentinel_systemd_unit_restart_unbounded", &crashy),
        Some(1.0)
    );
}

#[test]
fn a_flapping_dependency_strands_and_a_finished_oneshot_does_not() {
    let Some(mgr) = Manager::start("flap") else {
        return;
    };
    let flag = mgr.dir.path().join("FLAG");
    let flaps = mgr.dir.path().join("FLAPS");
    // The seed's flanneld, which after its failed start comes up and dies
    // again a few times before it settles.
    mgr.write_unit(
        "flanneld.service",
        &format!(
            "[Unit]\nStartLimitIntervalSec=0\n[Service]\nType=notify\nNotifyAccess=all\nRestart=always\nRestartSec=1\n\
             ExecStart=/bin/sh -c 'if [ -f {f} ]; then rm -f {f}; exit 1; fi; n=$(cat {c} 2>/dev/null || echo 0); \
             if [ \"$n\" -gt 0 ]; then echo $((n-1)) > {c}; systemd-notify --ready; sleep 3; exit 1; fi; \
             systemd-notify --ready; exec sleep infinity'\n",
            f = flag.display(),
            c = flaps.display()
        ),
    );
    mgr.write_unit(
        "dockerd.service",
        "[Unit]\nRequires=flanneld.service\nAfter=flanneld.service\n[Service]\nRestart=always\nExecStart=/bin/sleep infinity\n\
         [Install]\nWantedBy=default.target\n",
    );
    // A oneshot that finishes, then its dependency restarts right after.
    mgr.write_unit("db.service", "[Service]\nExecStart=/bin/sleep infinity\n");
    mgr.write_unit(
        "migrate.service",
        "[Unit]\nRequires=db.service\nAfter=db.service\n[Service]\nType=oneshot\nExecStart=/bin/sleep 1\n\
         [Install]\nWantedBy=default.target\n",
    );
    mgr.ctl(&["daemon-reload"]);
    // Enabled, so that systemd keeps them loaded while they are down.
    mgr.ctl(&["enable", "dockerd.service", "migrate.service"]);
    mgr.ctl(&["start", "flanneld.service", "dockerd.service", "db.service"]);

    let exp = exporter(&mgr, &[]);
    exp.wait_for(WAIT, "both watched", |m| {
        ["flanneld.service", "dockerd.service"]
            .iter()
            .all(|u| value(m, "sentinel_systemd_unit_restart_loop", &[("unit", u)]).is_some())
            .then_some(())
    });
    mgr.ctl(&["start", "migrate.service"]);
    assert_eq!(mgr.show("migrate.service", "Result"), "success");
    mgr.ctl(&["restart", "db.service"]);

    std::fs::write(&flag, "").unwrap();
    std::fs::write(&flaps, "3").unwrap();
    mgr.kill_main("flanneld.service", rustix::process::Signal::KILL);
    common::wait_until(WAIT, "flanneld settled after its flaps", || {
        let restarts: u32 = mgr.show("flanneld.service", "NRestarts").parse().ok()?;
        (restarts >= 5 && mgr.show("flanneld.service", "ActiveState") == "active").then_some(())
    });
    // Its latest exit is too late to have stopped dockerd: only an earlier one did.
    let usec = |unit: &str, prop: &str| -> u64 { mgr.show(unit, prop).parse().unwrap() };
    let latest_exit = usec("flanneld.service", "ActiveExitTimestampMonotonic");
    let dockerd_down = usec("dockerd.service", "InactiveEnterTimestampMonotonic");
    assert!(
        latest_exit > dockerd_down + 7_000_000,
        "{latest_exit} {dockerd_down}"
    );
    let m = exp.wait_for(WAIT, "dockerd stranded by the flapping flanneld", |m| {
        (value(
            m,
            "sentinel_systemd_unit_stranded",
            &[
                ("unit", "dockerd.service"),
                ("dependency", "flanneld.service"),
            ],
        ) == Some(1.0))
        .then(|| m.clone())
    });
    assert_eq!(mgr.show("dockerd.service", "ActiveState"), "inactive");
    assert!(
        value(
            &m,
            "sentinel_systemd_unit_restarts_total",
            &[("unit", "flanneld.service")]
        )
        .is_some_and(|n| n >= 4.0),
        "{}",
        m.text
    );
    // The oneshot went down because it was done, not because db restarted.
    assert_eq!(mgr.show("migrate.service", "ActiveState"), "inactive");
    assert_eq!(
        value(
            &m,
            "sentinel_systemd_unit_stranded",
            &[("unit", "migrate.service"), ("dependency", "")]
        ),
        Some(0.0),
        "{}",
        m.text
    );
}

#[test]
fn bus_outage_reports_down_without_stalling_and_recovers() {
    let Some(mgr) = Manager::start("bus") else {
        return;
    };
    mgr.write_unit(
        "app.service",
        "[Service]\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=default.target\n",
    );
    mgr.ctl(&["daemon-reload"]);
    mgr.ctl(&["enable", "--now", "app.service"]);
    let exp = exporter(&mgr, &[]);
    let up = |want: f64| {
        move |m: &Metrics| (value(m, "sentinel_systemd_up", &[]) == Some(want)).then_some(())
    };
    exp.wait_for(WAIT, "up", up(1.0));
    let timed_scrapes = |n: usize| {
        for _ in 0..n {
            let started = Instant::now();
            let m = exp.metrics();
            // Not a benchmark: a scrape that waited on D-Bus would take the call timeout.
            assert!(started.elapsed() < Duration::from_secs(2), "scrape stalled");
            assert!(m.has("sentinel_systemd_up"));
            std::thread::sleep(Duration::from_millis(200));
        }
    };

    // A bus daemon that hangs: every call times out, the exporter keeps serving.
    let bus_pid: u32 = mgr.show("dbus.service", "MainPID").parse().unwrap();
    common::signal(bus_pid, rustix::process::Signal::STOP);
    let m = exp.wait_for(Duration::from_secs(30), "up=0 while the bus hangs", |m| {
        (value(m, "sentinel_systemd_up", &[]) == Some(0.0)).then(|| m.clone())
    });
    assert!(
        !m.has("sentinel_systemd_unit_state"),
        "no stale unit series"
    );
    assert_eq!(
        value(
            &m,
            "sentinel_collector_success",
            &[("collector", "systemd")]
        ),
        Some(1.0)
    );
    timed_scrapes(5);
    common::signal(bus_pid, rustix::process::Signal::CONT);
    exp.wait_for(WAIT, "up again after the bus resumed", up(1.0));

    // The bus daemon killed, its socket gone for a while, then back.
    common::signal(bus_pid, rustix::process::Signal::KILL);
    mgr.ctl(&["stop", "dbus.socket"]);
    exp.wait_for(Duration::from_secs(30), "up=0 without a bus", up(0.0));
    timed_scrapes(5);
    mgr.ctl(&["start", "dbus.socket"]);
    let m = exp.wait_for(WAIT, "recovered by itself", |m| {
        (value(m, "sentinel_systemd_up", &[]) == Some(1.0)
            && value(
                m,
                "sentinel_systemd_unit_state",
                &[("unit", "app.service"), ("state", "active")],
            ) == Some(1.0))
        .then(|| m.clone())
    });
    assert!(m.has("sentinel_systemd_unit_restart_loop"));
    // Signals flow again on the new connection: a restart is counted.
    let before = value(
        &m,
        "sentinel_systemd_unit_activations_total",
        &[("unit", "app.service")],
    )
    .unwrap_or(0.0);
    mgr.ctl(&["restart", "app.service"]);
    exp.wait_for(WAIT, "activation counted after reconnect", |m| {
        (value(
            m,
            "sentinel_systemd_unit_activations_total",
            &[("unit", "app.service")],
        )? > before)
            .then_some(())
    });
}

#[test]
fn hundreds_of_units_all_present_and_the_cap_counts_drops() {
    let Some(mgr) = Manager::start("many") else {
        return;
    };
    const N: usize = 320;
    let names: Vec<String> = (0..N).map(|i| format!("many-{i:03}.service")).collect();
    for name in &names {
        // No process per unit: a oneshot that stays active.
        mgr.write_unit(
            name,
            "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n",
        );
    }
    mgr.ctl(&["daemon-reload"]);
    let mut args = vec!["start"];
    args.extend(names.iter().map(String::as_str));
    mgr.ctl(&args);

    let exp = exporter(&mgr, &[]);
    let count_active = |m: &Metrics| {
        m.find("sentinel_systemd_unit_state", &[("state", "active")])
            .iter()
            .filter(|s| s.labels["unit"].starts_with("many-") && s.value == 1.0)
            .count()
    };
    let m = exp.wait_for(WAIT, "every unit present and active", |m| {
        (count_active(m) == N).then(|| m.clone())
    });
    assert_eq!(
        value(&m, "sentinel_series_dropped", &[("collector", "systemd")]),
        Some(0.0)
    );
    // Within the system bus's limits, no read fails: the bounded concurrency
    // keeps clear of them.
    for reason in ["timeout", "limits", "decode", "other"] {
        assert_eq!(
            value(
                &m,
                "sentinel_systemd_property_read_failures_total",
                &[("reason", reason)]
            ),
            Some(0.0),
            "{reason}\n{}",
            m.text
        );
    }
    assert_eq!(
        value(&m, "sentinel_systemd_property_values_stale", &[]),
        Some(0.0)
    );
    // No Restart= policy, no Requires=, not failed, not activated since the
    // exporter started: two series a unit (state, restart_loop), nothing that
    // cannot fire or move.
    for name in &names {
        let unit = format!("unit=\"{name}\"");
        let series = m
            .text
            .lines()
            .filter(|l| !l.starts_with('#') && l.contains(&unit))
            .count();
        assert_eq!(series, 2, "{name}\n{}", m.text);
    }

    // Under a cap of 100 the rest are cut, and counted.
    let capped = exporter(&mgr, &["--collector.systemd.max-units=100"]);
    let m = capped.wait_for(WAIT, "capped round", |m| {
        (value(m, "sentinel_series_dropped", &[("collector", "systemd")])? > 0.0).then(|| m.clone())
    });
    let units: std::collections::BTreeSet<&str> = m
        .find("sentinel_systemd_unit_state", &[])
        .iter()
        .map(|s| s.labels["unit"].as_str())
        .collect();
    assert_eq!(units.len(), 100, "{units:?}");
}

/// Pending replies a bus allows in the limits test: a quarter of the
/// collector's 64 Gets in flight, so many Gets fail with LimitsExceeded while
/// ListUnits, one call, always gets through.
const TIGHT_REPLIES: u32 = 16;

#[test]
fn tight_bus_limits_fail_some_reads_but_never_the_round() {
    let Some(mgr) = Manager::start_with_replies("limits", TIGHT_REPLIES) else {
        return;
    };
    const N: usize = 120;
    let names: Vec<String> = (0..N).map(|i| format!("busy-{i:03}.service")).collect();
    for name in &names {
        // Restart= other than no: NRestarts is read every round. No start
        // limit: restart_unbounded is 1 once the reload-only reads got through.
        mgr.write_unit(
            name,
            "[Unit]\nStartLimitIntervalSec=0\n[Service]\nType=oneshot\nRemainAfterExit=yes\nRestart=on-failure\nExecStart=/bin/true\n",
        );
    }
    mgr.ctl(&["daemon-reload"]);
    let mut args = vec!["start"];
    args.extend(names.iter().map(String::as_str));
    mgr.ctl(&args);

    let exp = exporter(&mgr, &[]);
    let limits = |m: &Metrics| {
        value(
            m,
            "sentinel_systemd_property_read_failures_total",
            &[("reason", "limits")],
        )
    };
    let unbounded = |m: &Metrics, name: &str| {
        value(
            m,
            "sentinel_systemd_unit_restart_unbounded",
            &[("unit", name)],
        ) == Some(1.0)
    };
    // Reload-only reads that failed are retried until they all got through.
    let m = exp.wait_for(WAIT, "every unit's start limit read", |m| {
        names.iter().all(|n| unbounded(m, n)).then(|| m.clone())
    });
    assert!(limits(&m).is_some_and(|n| n > 0.0), "{}", m.text);
    // Values whose read failed are published from the latest good read.
    exp.wait_for(WAIT, "values held over a failed read", |m| {
        (value(m, "sentinel_systemd_property_values_stale", &[])? > 0.0).then_some(())
    });

    // Over several rounds: every round succeeds, every unit keeps its series,
    // and findings that were read do not flap when a re-read fails.
    let first = limits(&exp.metrics()).unwrap_or(0.0);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let m = exp.metrics();
        assert_eq!(
            value(&m, "sentinel_systemd_up", &[]),
            Some(1.0),
            "{}",
            m.text
        );
        assert_eq!(
            value(
                &m,
                "sentinel_collector_success",
                &[("collector", "systemd")]
            ),
            Some(1.0)
        );
        for name in &names {
            let u = ("unit", name.as_str());
            assert_eq!(
                value(&m, "sentinel_systemd_unit_state", &[u, ("state", "active")]),
                Some(1.0),
                "{name}\n{}",
                m.text
            );
            assert!(
                value(&m, "sentinel_systemd_unit_restart_loop", &[u]).is_some(),
                "{name}"
            );
            assert!(unbounded(&m, name), "{name} flapped\n{}", m.text);
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let m = exp.metrics();
    assert!(
        limits(&m).is_some_and(|n| n > first),
        "failures keep being counted\n{}",
        m.text
    );
    assert_eq!(
        value(
            &m,
            "sentinel_systemd_property_read_failures_total",
            &[("reason", "decode")]
        ),
        Some(0.0)
    );
}
