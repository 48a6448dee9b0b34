//! A private containerd (Debian's 1.6 with its CRI plugin) in a temp dir:
//! its own config, root, state and socket; killed, restarted and cleaned up
//! (shims and mounts included) by the test.
#![allow(dead_code, clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::Signal;

/// A containerd of our own: config, root, state and socket under `dir`.
pub struct Containerd {
    pub dir: PathBuf,
    pub socket: PathBuf,
    child: Option<Child>,
}

impl Containerd {
    /// Start with the socket at `socket` (under `dir` unless given).
    pub fn start(dir: &Path, socket: Option<&Path>) -> Containerd {
        let socket = socket
            .map(Path::to_path_buf)
            .unwrap_or_else(|| dir.join("containerd.sock"));
        std::fs::create_dir_all(dir).expect("containerd dir");
        if let Some(parent) = socket.parent() {
            std::fs::create_dir_all(parent).expect("socket dir");
        }
        let d = |p: &str| dir.join(p).to_string_lossy().to_string();
        let config = format!(
            "version = 2\nroot = \"{}\"\nstate = \"{}\"\n[grpc]\n  address = \"{}\"\n[ttrpc]\n  address = \"{}.ttrpc\"\n[metrics]\n  address = \"\"\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = \"sentinel/pause:latest\"\n  [plugins.\"io.containerd.grpc.v1.cri\".containerd]\n    snapshotter = \"native\"\n",
            d("root"),
            d("state"),
            socket.display(),
            socket.display()
        );
        std::fs::write(dir.join("config.toml"), config).expect("containerd config");
        let mut c = Containerd {
            dir: dir.to_path_buf(),
            socket,
            child: None,
        };
        c.spawn();
        c
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("containerd.log"))
            .expect("containerd log");
        let child = Command::new("containerd")
            .arg("--config")
            .arg(self.dir.join("config.toml"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start containerd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.ctr_ok(&["version"]) {
            assert!(
                Instant::now() < deadline,
                "containerd did not answer: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    pub fn endpoint(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    fn ctr_ok(&self, args: &[&str]) -> bool {
        Command::new("ctr")
            .arg("--address")
            .arg(&self.socket)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    /// Kill at once (SIGKILL), as a crash would; the socket file stays.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            common_signal(child.id(), Signal::CONT);
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start again after `kill`, on the same config.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            common_signal(child.id(), Signal::CONT);
            common_signal(child.id(), Signal::TERM);
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        // Shims outlive containerd: end ours, found by the state dir in their command line.
        let state = self.dir.to_string_lossy().to_string();
        if let Ok(entries) = std::fs::read_dir("/proc") {
            for e in entries.flatten() {
                let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                    continue;
                };
                let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let cmd = String::from_utf8_lossy(&cmd);
                if cmd.contains("containerd-shim") && cmd.contains(&state) {
                    common_signal(pid, Signal::CONT);
                    common_signal(pid, Signal::KILL);
                }
            }
        }
        // Mounts of the native snapshotter's container roots may remain.
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "grep -o ' {state}[^ ]*' /proc/self/mounts | sort -r | xargs -r -n1 umount -l"
            ))
            .status();
    }
}

fn common_signal(pid: u32, sig: Signal) {
    crate::common::signal(pid, sig);
}
