//! The soak's short form: `bench/soak.sh --duration 90` (15 s warm-up, 60 s
//! with dockerd, containerd, the systemd manager and three FUSE mounts all
//! stopped, 15 s recovery) against the debug binary, while processes churn,
//! a tmpfs fills, logs rotate, the kernel log is written and TLS scrapes
//! with right and wrong passwords run every second. The script itself checks
//! the bounds (RSS, fds, threads, scrape latency, panics, shutdown while
//! hung) and exits non-zero on any breach; the 30-minute form is in README.md.
#![allow(clippy::disallowed_methods)]

mod common;

use std::path::Path;
use std::process::Command;

#[test]
fn soak_short_form_keeps_its_bounds() {
    if !common::require_root() {
        return;
    }
    for program in [
        "dockerd",
        "containerd",
        "ctr",
        "docker",
        "bindfs",
        "fusermount3",
        "openssl",
        "curl",
        "unshare",
        "systemctl",
        "/lib/systemd/systemd",
        "python3",
    ] {
        if common::require(program).is_none() {
            return;
        }
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/soak.sh");
    let out = Command::new(script)
        .args(["--duration", "90"])
        .env("BIN", common::binary())
        // A wrong password costs a bcrypt (cost 10), about 1 s unoptimised;
        // right-password scrapes keep the 2 s bound.
        .env("WRONG_MAX", "5")
        .output()
        .expect("run bench/soak.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}\n{stderr}");
    assert!(
        out.status.success(),
        "soak failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(stdout.contains("soak passed"), "no verdict:\n{stdout}");
}
