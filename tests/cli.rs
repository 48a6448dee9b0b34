//! The binary's command line: bad input exits 2 naming the flag, a taken port exits 1,
//! and nothing ever prints panic text.
#![allow(clippy::disallowed_methods)]

mod common;

use std::process::Command;

use common::Exporter;

fn run_with(args: &[&str]) -> (i32, String) {
    let out = Command::new(common::binary())
        .args(args)
        .output()
        .expect("run exporter");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !stderr.contains("panicked"),
        "panic text for {args:?}: {stderr}"
    );
    assert!(
        !stderr.contains("RUST_BACKTRACE"),
        "backtrace hint for {args:?}: {stderr}"
    );
    (out.status.code().unwrap_or(-1), stderr)
}

#[test]
fn bad_values_exit_2_naming_the_flag() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--collector.docker.interval=5x"],
            "--collector.docker.interval",
        ),
        (
            &["--collector.filesystem.interval=0s"],
            "--collector.filesystem.interval",
        ),
        (
            &["--collector.filesystem.trend-window=soon"],
            "--collector.filesystem.trend-window",
        ),
        (
            &["--collector.filesystem.mount-points-exclude=("],
            "--collector.filesystem.mount-points-exclude",
        ),
        (
            &["--collector.systemd.unit-include=[a-"],
            "--collector.systemd.unit-include",
        ),
        (
            &["--collector.systemd.restart-loop-threshold=0"],
            "--collector.systemd.restart-loop-threshold",
        ),
        (
            &["--collector.logs.trend-window=-1m"],
            "--collector.logs.trend-window",
        ),
        (&["--web.listen-address=nowhere"], "--web.listen-address"),
        (&["--log.format=xml"], "--log.format"),
        (
            &["--collector.systemd.bus=nonsense"],
            "--collector.systemd.bus",
        ),
        (
            &["--collector.logs.path=no-equals-sign"],
            "--collector.logs.path",
        ),
        (
            &["--collector.processes.interval=fast"],
            "--collector.processes.interval",
        ),
        (&["--no-such-flag"], "--no-such-flag"),
    ];
    for (args, flag) in cases {
        let (code, stderr) = run_with(args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        let first = stderr.lines().next().unwrap_or("");
        assert!(
            first.contains(flag),
            "{args:?}: first line must name {flag}: {stderr}"
        );
    }
}

#[test]
fn help_and_version_exit_0() {
    let (code, _) = run_with(&["--help"]);
    assert_eq!(code, 0);
    let out = Command::new(common::binary())
        .arg("--version")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("node-sentinel "));
}

#[test]
fn port_in_use_exits_1_with_one_clear_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let (code, stderr) = run_with(&[
        &format!("--web.listen-address=127.0.0.1:{port}"),
        "--collector.disable-defaults",
    ]);
    assert_eq!(code, 1, "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains("cannot listen"))
        .unwrap_or("");
    assert!(
        line.contains("--web.listen-address") && line.contains(&port.to_string()),
        "{stderr}"
    );
}

#[test]
fn sigterm_exits_0_and_landing_page_shows_collectors() {
    let mut exporter = Exporter::start(&["--collector.disable-defaults", "--collector.filesystem"]);
    let (status, page) = common::http_get(exporter.port, "/").expect("landing page");
    assert_eq!(status, 200);
    assert!(
        page.contains("node-sentinel")
            && page.contains("Findings")
            && page.contains("/metrics")
            && page.contains("filesystem"),
        "{page}"
    );
    let (status, _) = common::http_get(exporter.port, "/metrics").expect("metrics");
    assert_eq!(status, 200);
    common::signal(exporter.pid(), rustix::process::Signal::TERM);
    let status = common::wait_until(
        std::time::Duration::from_secs(10),
        "exit after SIGTERM",
        || exporter.child.try_wait().ok().flatten(),
    );
    assert_eq!(status.code(), Some(0), "{}", exporter.logs());
}

#[test]
fn diagnose_prints_findings_in_words_and_exits_by_severity() {
    let dir = common::TempDir::new("diagnose");
    let missing = dir.path().join("no-docker.sock");
    // Docker's state directory makes it installed, so its missing socket is "down".
    let rootfs = dir.path().join("host");
    std::fs::create_dir_all(rootfs.join("var/lib/docker")).expect("state dir");
    let out = Command::new(common::binary())
        .args([
            "--collector.disable-defaults",
            "--collector.docker",
            &format!("--path.rootfs={}", rootfs.display()),
            &format!("--collector.docker.host=unix://{}", missing.display()),
            "--collector.docker.interval=500ms",
            "diagnose",
            "--for=2s",
        ])
        .output()
        .expect("run diagnose");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("collector docker"), "{stdout}");
    assert!(
        stdout.contains("CRITICAL  Docker daemon is down"),
        "{stdout}"
    );

    let out = Command::new(common::binary())
        .args([
            "--collector.disable-defaults",
            "--collector.filesystem",
            "diagnose",
            "--for=1s",
        ])
        .output()
        .expect("run diagnose");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("collector filesystem  ok"), "{stdout}");
    assert!(matches!(out.status.code(), Some(0) | Some(3)), "{stdout}");
}
