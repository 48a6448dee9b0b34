//! The Debian package as shipped: built by packaging/deb/build.sh from the
//! binary under test, checked by lintian (no error or warning beyond the
//! overrides it ships, each explained), installed with `dpkg --root` into a
//! fresh Debian 12 (`debootstrap --variant=minbase bookworm`, made once and
//! kept as a tar in /var/cache/node-sentinel-tests: about a minute the
//! first time, a few seconds after), its maintainer scripts run there,
//! then removed and purged: nothing of it is left.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const CACHE: &str = "/var/cache/node-sentinel-tests";
const MIRROR: &str = "http://deb.debian.org/debian";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run_ok(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{c:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// A tarball of a fresh minbase Debian 12, made once.
fn fresh_root_tarball() -> PathBuf {
    let tarball = Path::new(CACHE).join("bookworm-minbase.tar");
    if tarball.exists() {
        return tarball;
    }
    std::fs::create_dir_all(CACHE).unwrap();
    let started = Instant::now();
    let work = common::TempDir::new("debootstrap");
    let root = work.path().join("root");
    run_ok(
        Command::new("debootstrap")
            .args(["--variant=minbase", "bookworm"])
            .arg(&root)
            .arg(MIRROR),
    );
    let partial = tarball.with_extension("partial");
    run_ok(
        Command::new("tar")
            .arg("-C")
            .arg(&root)
            .arg("-cf")
            .arg(&partial)
            .arg("."),
    );
    std::fs::rename(&partial, &tarball).unwrap();
    eprintln!("debootstrap bookworm minbase: {:?}", started.elapsed());
    tarball
}

/// Every path under `root` but dpkg's own records and logs.
fn tree(root: &Path) -> BTreeSet<String> {
    let out = run_ok(Command::new("find").arg(root).arg("-mindepth").arg("1"));
    let prefix = format!("{}/", root.display());
    out.lines()
        .map(|l| l.strip_prefix(&prefix).unwrap_or(l).to_string())
        .filter(|p| !p.starts_with("var/lib/dpkg") && !p.starts_with("var/log/"))
        .collect()
}

#[test]
fn the_deb_installs_into_a_fresh_debian_and_purges_cleanly() {
    if !common::require_root()
        || common::require("dpkg-deb").is_none()
        || common::require("lintian").is_none()
        || common::require("debootstrap").is_none()
    {
        return;
    }
    let started = Instant::now();
    let dir = common::TempDir::new("deploy-deb");
    let out = dir.path().join("out");
    let deb = run_ok(
        Command::new(repo().join("packaging/deb/build.sh"))
            .env("DEB_COMPRESSION", "gzip")
            .arg(common::binary())
            .arg(&out),
    );
    let deb = PathBuf::from(deb.trim());
    eprintln!("built {} in {:?}", deb.display(), started.elapsed());

    // lintian: errors and warnings fail (the package's overrides name and
    // explain the few it has).
    let t = Instant::now();
    let lint = Command::new("lintian")
        .args(["--fail-on", "error,warning", "--display-info"])
        .arg(&deb)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&lint.stdout);
    assert!(lint.status.success(), "lintian:\n{said}");
    eprintln!("lintian in {:?}: {}", t.elapsed(), said.trim());

    let t = Instant::now();
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    run_ok(
        Command::new("tar")
            .arg("-C")
            .arg(&root)
            .arg("-xf")
            .arg(fresh_root_tarball()),
    );
    eprintln!("fresh root in {:?}", t.elapsed());
    let before = tree(&root);
    let dpkg = |args: &[&str]| {
        run_ok(
            Command::new("dpkg")
                .arg(format!("--root={}", root.display()))
                .args(args),
        )
    };

    // Installed: its dependencies met by a fresh Debian 12, its files in
    // place, the service enabled by its postinst, the binary running there.
    dpkg(&["-i", &deb.to_string_lossy()]);
    for path in [
        "usr/bin/node-sentinel",
        "lib/systemd/system/node-sentinel.service",
        "etc/default/node-sentinel",
        "usr/share/node-sentinel/alerts/node-sentinel.rules.yml",
        "usr/share/node-sentinel/dashboards/node-sentinel.json",
        "usr/share/doc/node-sentinel/copyright",
        "usr/share/man/man1/node-sentinel.1.gz",
        "etc/systemd/system/multi-user.target.wants/node-sentinel.service",
    ] {
        // Symlinks (the enablement) point into the root: do not follow them here.
        assert!(
            std::fs::symlink_metadata(root.join(path)).is_ok(),
            "{path} not installed"
        );
    }
    let unit =
        std::fs::read_to_string(root.join("lib/systemd/system/node-sentinel.service")).unwrap();
    assert_eq!(
        unit,
        std::fs::read_to_string(repo().join("deploy/node-sentinel.service")).unwrap()
    );
    assert!(unit.contains("EnvironmentFile=-/etc/default/node-sentinel"));
    assert!(unit.contains("ExecStart=/usr/bin/node-sentinel $NODE_SENTINEL_ARGS"));
    let version = run_ok(
        Command::new("chroot")
            .arg(&root)
            .args(["/usr/bin/node-sentinel", "--version"]),
    );
    assert!(version.contains(env!("CARGO_PKG_VERSION")), "{version}");

    // Removed: the conffile stays, as Debian keeps configuration until purge.
    dpkg(&["-r", "node-sentinel"]);
    assert!(!root.join("usr/bin/node-sentinel").exists());
    assert!(root.join("etc/default/node-sentinel").exists());
    // Purged: nothing is left, not even the enablement symlinks.
    dpkg(&["-P", "node-sentinel"]);
    let after = tree(&root);
    let added: Vec<_> = after.difference(&before).collect();
    let lost: Vec<_> = before.difference(&after).collect();
    assert!(
        added.is_empty() && lost.is_empty(),
        "left behind {added:?}, lost {lost:?}"
    );
    let status = Command::new("dpkg-query")
        .arg(format!("--root={}", root.display()))
        .args(["-W", "-f=${Status}", "node-sentinel"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&status.stdout).contains("installed"),
        "{status:?}"
    );
    eprintln!("total {:?}", started.elapsed());
}
