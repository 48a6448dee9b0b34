//! A real Prometheus and Alertmanager (Debian's packages, RECIPES.md) on
//! loopback, for the tests that need the scraper's own verdict or an alert
//! delivered end to end, and the webhook that records what Alertmanager
//! delivers. Each runs in the test's directory, its log beside its config,
//! and is stopped on drop.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Daemon, free_port, http_get, wait_until};

pub const PROMETHEUS: &str = "/usr/bin/prometheus";
pub const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";

/// A `global:` block that scrapes and evaluates every second.
pub const EVERY_SECOND: &str =
    "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n";

pub struct Prometheus {
    pub port: u16,
    log: PathBuf,
    _daemon: Daemon,
}

impl Prometheus {
    /// Prometheus with `config` (the text of prometheus.yml) and its TSDB in
    /// `dir`, on a free loopback port; returns once it is ready.
    pub fn start(dir: &Path, config: &str) -> Prometheus {
        std::fs::create_dir_all(dir).unwrap();
        let config_file = dir.join("prometheus.yml");
        std::fs::write(&config_file, config).unwrap();
        let port = free_port();
        let log = dir.join("prometheus.log");
        let daemon = Daemon::spawn(
            "prometheus",
            Command::new(PROMETHEUS)
                .arg(format!("--config.file={}", config_file.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.join("tsdb").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                // Alerts reach Alertmanager within a second of firing.
                .arg("--rules.alert.resend-delay=1s"),
            &log,
        );
        let prometheus = Prometheus {
            port,
            log,
            _daemon: daemon,
        };
        wait_until(Duration::from_secs(60), "prometheus ready", || {
            matches!(http_get(port, "/-/ready"), Ok((200, _))).then_some(())
        });
        prometheus
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The `data` of an API answer: Err(the answer) unless `status: success`.
    pub fn try_api(&self, path: &str) -> Result<serde_json::Value, String> {
        let (status, body) = http_get(self.port, path).map_err(|e| format!("GET {path}: {e}"))?;
        let v: serde_json::Value = serde_json::from_str(&body)
            .map_err(|e| format!("GET {path}: {status}: not JSON ({e}): {body}"))?;
        if v["status"] != "success" {
            return Err(format!("GET {path}: {status}: {body}"));
        }
        Ok(v["data"].clone())
    }

    /// The `data` of an API answer; panics unless `status: success`.
    pub fn api(&self, path: &str) -> serde_json::Value {
        self.try_api(path).unwrap_or_else(|e| panic!("{e}"))
    }

    /// An instant query's result: Err(the answer) if Prometheus rejects it.
    pub fn try_query(&self, q: &str) -> Result<Vec<serde_json::Value>, String> {
        let data = self.try_api(&format!("/api/v1/query?query={}", urlencode(q)))?;
        Ok(data["result"].as_array().cloned().unwrap_or_default())
    }

    /// An instant query's result; panics if Prometheus rejects it.
    pub fn query(&self, q: &str) -> Vec<serde_json::Value> {
        self.try_query(q).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The value of an instant query that has exactly one result.
    pub fn value(&self, q: &str) -> Option<f64> {
        match self.query(q).as_slice() {
            [one] => one["value"][1].as_str()?.parse().ok(),
            _ => None,
        }
    }

    /// Prometheus's own metrics, as text.
    pub fn own_metrics(&self) -> String {
        http_get(self.port, "/metrics")
            .map(|(_, body)| body)
            .unwrap_or_default()
    }
}

/// Percent-encoding for a query parameter.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub struct Alertmanager {
    pub port: u16,
    _daemon: Daemon,
}

impl Alertmanager {
    /// Alertmanager in `dir` sending every alert, and its resolution, to
    /// `hook` at once (no grouping wait); returns once it is ready.
    pub fn start(dir: &Path, hook: &Webhook) -> Alertmanager {
        std::fs::create_dir_all(dir).unwrap();
        let port = free_port();
        std::fs::write(
            dir.join("am.yml"),
            format!(
                "route:\n  receiver: hook\n  group_by: ['...']\n  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h\n\
                 receivers:\n  - name: hook\n    webhook_configs:\n      - url: http://127.0.0.1:{}/\n        send_resolved: true\n",
                hook.port
            ),
        )
        .unwrap();
        let daemon = Daemon::spawn(
            "alertmanager",
            Command::new(ALERTMANAGER)
                .arg(format!("--config.file={}/am.yml", dir.display()))
                .arg(format!("--storage.path={}/am", dir.display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--cluster.listen-address="),
            &dir.join("am.log"),
        );
        wait_until(Duration::from_secs(60), "alertmanager ready", || {
            matches!(http_get(port, "/-/ready"), Ok((200, _))).then_some(())
        });
        Alertmanager {
            port,
            _daemon: daemon,
        }
    }

    /// The `alerting:` block of a prometheus.yml that sends to this one.
    pub fn alerting(&self) -> String {
        format!(
            "alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{}']\n",
            self.port
        )
    }
}

/// One alert as Alertmanager delivered it to the webhook.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub at: Instant,
    pub status: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

impl Delivered {
    pub fn name(&self) -> &str {
        self.labels
            .get("alertname")
            .map(String::as_str)
            .unwrap_or("")
    }
}

/// A tiny HTTP server on loopback that records every webhook notification;
/// its thread ends with the test process.
pub struct Webhook {
    pub port: u16,
    got: Arc<Mutex<Vec<Delivered>>>,
}

fn string_map(v: &serde_json::Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

impl Webhook {
    pub fn start() -> Webhook {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = got.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    let l = line.trim_end().to_ascii_lowercase();
                    if l.is_empty() {
                        break;
                    }
                    if let Some(v) = l.strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; len];
                if reader.read_exact(&mut body).is_err() {
                    continue;
                }
                let at = Instant::now();
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                let Ok(msg) = serde_json::from_slice::<serde_json::Value>(&body) else {
                    continue;
                };
                let mut got = sink.lock().unwrap();
                for a in msg["alerts"].as_array().into_iter().flatten() {
                    got.push(Delivered {
                        at,
                        status: a["status"].as_str().unwrap_or_default().to_string(),
                        labels: string_map(&a["labels"]),
                        annotations: string_map(&a["annotations"]),
                    });
                }
            }
        });
        Webhook { port, got }
    }

    /// Everything delivered at or after `t`.
    pub fn since(&self, t: Instant) -> Vec<Delivered> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|d| d.at >= t)
            .cloned()
            .collect()
    }

    /// Wait until an alert `name` with `status` and all of `labels` arrives after `t`.
    pub fn wait(
        &self,
        t: Instant,
        status: &str,
        name: &str,
        labels: &[(&str, &str)],
        timeout: Duration,
    ) -> Delivered {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(d) = self.since(t).into_iter().find(|d| {
                d.status == status
                    && d.name() == name
                    && labels
                        .iter()
                        .all(|(k, v)| d.labels.get(*k).map(String::as_str) == Some(*v))
            }) {
                return d;
            }
            assert!(
                Instant::now() < deadline,
                "no {status} {name} {labels:?} at the webhook within {timeout:?}; delivered since: {:#?}",
                self.since(t)
                    .iter()
                    .map(|d| format!("{} {} {:?}", d.status, d.name(), d.labels))
                    .collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
