//! Command-line flags, node_exporter style, and the value parsers that make
//! every bad value fail at start-up with the flag's name (exit code 2).
//!
//! Each collector owns its flags (`collectors::NAME::Args`); this module only
//! gathers them and adds the exporter-wide ones.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, ValueEnum};
use regex::Regex;

use crate::collectors;

#[derive(Debug, Parser)]
#[command(
    name = "node-sentinel",
    version = crate::build_info::VERSION_LINE,
    about = "Prometheus exporter that sees Kubernetes/Docker node outages coming",
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub web: WebArgs,
    #[command(flatten)]
    pub paths: Paths,
    #[command(flatten)]
    pub log: LogArgs,
    #[command(flatten)]
    pub toggles: Toggles,
    #[command(flatten)]
    pub docker: collectors::docker::Args,
    #[command(flatten)]
    pub filesystem: collectors::filesystem::Args,
    #[command(flatten)]
    pub systemd: collectors::systemd::Args,
    #[command(flatten)]
    pub processes: collectors::processes::Args,
    #[command(flatten)]
    pub logs: collectors::logs::Args,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Watch the node for a few seconds with the enabled collectors, print
    /// what is wrong in words, and exit: 0 if nothing critical or warning was
    /// found, 3 if something was. Put collector flags before `diagnose`.
    Diagnose {
        /// How long to watch. The default covers Docker's default hang threshold.
        #[arg(long = "for", value_name = "DURATION", default_value = "12s", value_parser = parse_positive_duration)]
        watch: Duration,
    },
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Web")]
#[group(skip)]
pub struct WebArgs {
    /// Address to serve /metrics and the landing page on (":PORT" means every interface).
    #[arg(long = "web.listen-address", value_name = "ADDR", default_value = ":9899", value_parser = parse_listen_address)]
    pub listen_address: SocketAddr,
    /// Path under which metrics are served.
    #[arg(long = "web.telemetry-path", value_name = "PATH", default_value = "/metrics", value_parser = parse_telemetry_path)]
    pub telemetry_path: String,
    /// TLS and basic auth configuration (Prometheus exporter-toolkit web-config YAML).
    #[arg(long = "web.config.file", value_name = "FILE")]
    pub config_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Host paths")]
#[group(skip)]
pub struct Paths {
    /// procfs mountpoint.
    #[arg(long = "path.procfs", value_name = "PATH", default_value = "/proc")]
    pub procfs: PathBuf,
    /// sysfs mountpoint.
    #[arg(long = "path.sysfs", value_name = "PATH", default_value = "/sys")]
    pub sysfs: PathBuf,
    /// Root of the host filesystem (when run in a container with the host mounted).
    #[arg(long = "path.rootfs", value_name = "PATH", default_value = "/")]
    pub rootfs: PathBuf,
}

impl Default for Paths {
    fn default() -> Self {
        Paths {
            procfs: "/proc".into(),
            sysfs: "/sys".into(),
            rootfs: "/".into(),
        }
    }
}

impl Paths {
    /// A host path as seen from this process: `path` re-rooted under `--path.rootfs`.
    pub fn host(&self, path: &str) -> PathBuf {
        self.rootfs.join(path.trim_start_matches('/'))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Logging")]
#[group(skip)]
pub struct LogArgs {
    /// Only log messages at or above this level (error, warn, info, debug, trace).
    #[arg(long = "log.level", value_name = "LEVEL", default_value = "info", value_parser = parse_log_level)]
    pub level: tracing::Level,
    /// Log line format.
    #[arg(long = "log.format", value_name = "FORMAT", default_value = "text")]
    pub format: LogFormat,
}

/// `--collector.NAME` / `--no-collector.NAME` for every collector; the last one given wins.
#[derive(Debug, Args)]
#[command(next_help_heading = "Collectors")]
#[group(skip)]
pub struct Toggles {
    /// Disable every collector not explicitly enabled with --collector.NAME.
    #[arg(long = "collector.disable-defaults")]
    pub disable_defaults: bool,
    #[arg(
        long = "collector.docker",
        overrides_with = "no_docker",
        help = "Enable the docker collector (default: enabled)"
    )]
    docker: bool,
    #[arg(
        long = "no-collector.docker",
        overrides_with = "docker",
        help = "Disable the docker collector"
    )]
    no_docker: bool,
    #[arg(
        long = "collector.filesystem",
        overrides_with = "no_filesystem",
        help = "Enable the filesystem collector (default: enabled)"
    )]
    filesystem: bool,
    #[arg(
        long = "no-collector.filesystem",
        overrides_with = "filesystem",
        help = "Disable the filesystem collector"
    )]
    no_filesystem: bool,
    #[arg(
        long = "collector.systemd",
        overrides_with = "no_systemd",
        help = "Enable the systemd collector (default: enabled)"
    )]
    systemd: bool,
    #[arg(
        long = "no-collector.systemd",
        overrides_with = "systemd",
        help = "Disable the systemd collector"
    )]
    no_systemd: bool,
    #[arg(
        long = "collector.processes",
        overrides_with = "no_processes",
        help = "Enable the processes collector (default: enabled)"
    )]
    processes: bool,
    #[arg(
        long = "no-collector.processes",
        overrides_with = "processes",
        help = "Disable the processes collector"
    )]
    no_processes: bool,
    #[arg(
        long = "collector.logs",
        overrides_with = "no_logs",
        help = "Enable the logs collector (default: enabled)"
    )]
    logs: bool,
    #[arg(
        long = "no-collector.logs",
        overrides_with = "logs",
        help = "Disable the logs collector"
    )]
    no_logs: bool,
}

impl Toggles {
    /// Whether the named collector runs.
    pub fn enabled(&self, name: &str) -> bool {
        let (on, off) = match name {
            "docker" => (self.docker, self.no_docker),
            "filesystem" => (self.filesystem, self.no_filesystem),
            "systemd" => (self.systemd, self.no_systemd),
            "processes" => (self.processes, self.no_processes),
            "logs" => (self.logs, self.no_logs),
            _ => return false,
        };
        if off {
            false
        } else {
            on || !self.disable_defaults
        }
    }
}

/// Parse a Prometheus-style duration: `500ms`, `15s`, `10m`, `1h30m`, `2d`, `1w`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("'{s}' is not a duration (use e.g. 500ms, 15s, 10m, 1h30m)");
    if s.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(1),
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            "d" => Duration::from_secs(86_400),
            "w" => Duration::from_secs(7 * 86_400),
            "y" => Duration::from_secs(365 * 86_400),
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        let part = unit
            .checked_mul(u32::try_from(n).map_err(|_| bad())?)
            .ok_or_else(bad)?;
        total = total.checked_add(part).ok_or_else(bad)?;
    }
    Ok(total)
}

/// A duration that must be greater than zero (intervals, windows, timeouts).
pub fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err(format!("'{s}' must be greater than zero"));
    }
    Ok(d)
}

/// A regular expression, compiled once at start-up.
pub fn parse_regex(s: &str) -> Result<Regex, String> {
    Regex::new(s).map_err(|e| {
        let first = e.to_string();
        let last = first.lines().last().unwrap_or("invalid").trim().to_string();
        format!("'{s}' is not a valid regular expression: {last}")
    })
}

/// A regular expression that must match the whole value (unit names and the like).
pub fn parse_anchored_regex(s: &str) -> Result<Regex, String> {
    parse_regex(s)?;
    parse_regex(&format!("^(?:{s})$"))
}

/// `:9899`, `0.0.0.0:9899`, `[::1]:9899`, `localhost:9899`.
pub fn parse_listen_address(s: &str) -> Result<SocketAddr, String> {
    let bad = |why: &str| {
        format!("'{s}' is not a listen address ({why}; use e.g. :9899 or 127.0.0.1:9899)")
    };
    let (host, port) = s.rsplit_once(':').ok_or_else(|| bad("no port"))?;
    let port: u16 = port.parse().map_err(|_| bad("bad port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = match host {
        "" => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        "localhost" => IpAddr::from([127, 0, 0, 1]),
        h => h
            .parse()
            .map_err(|_| bad("bad host: only IP addresses and localhost"))?,
    };
    Ok(SocketAddr::new(ip, port))
}

fn parse_telemetry_path(s: &str) -> Result<String, String> {
    if !s.starts_with('/') || s == "/" {
        return Err(format!("'{s}' must start with '/' and not be '/' itself"));
    }
    Ok(s.to_string())
}

fn parse_log_level(s: &str) -> Result<tracing::Level, String> {
    s.parse()
        .map_err(|_| format!("'{s}' is not a log level (error, warn, info, debug, trace)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let cases = [
            ("500ms", Some(Duration::from_millis(500))),
            ("15s", Some(Duration::from_secs(15))),
            ("10m", Some(Duration::from_secs(600))),
            ("1h30m", Some(Duration::from_secs(5400))),
            ("2d", Some(Duration::from_secs(172_800))),
            ("0s", Some(Duration::ZERO)),
            ("", None),
            ("5", None),
            ("s", None),
            ("-5s", None),
            ("5 s", None),
            ("1.5s", None),
            ("99999999999999999999s", None),
            ("5x", None),
        ];
        for (input, want) in cases {
            assert_eq!(parse_duration(input).ok(), want, "{input}");
        }
        assert!(parse_positive_duration("0s").is_err());
    }

    #[test]
    fn listen_addresses() {
        assert_eq!(parse_listen_address(":9899").unwrap().port(), 9899);
        assert_eq!(
            parse_listen_address("127.0.0.1:1234").unwrap(),
            "127.0.0.1:1234".parse().unwrap()
        );
        assert_eq!(
            parse_listen_address("[::1]:80").unwrap(),
            "[::1]:80".parse().unwrap()
        );
        for bad in ["9899", "host.example:80", ":99999", ":"] {
            assert!(parse_listen_address(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn regexes() {
        assert!(parse_regex("(").unwrap_err().contains("'('"));
        let r = parse_anchored_regex(r".+\.service").unwrap();
        assert!(r.is_match("docker.service"));
        assert!(!r.is_match("docker.service.d"));
    }

    #[test]
    fn toggles() {
        let cli = Cli::try_parse_from(["x", "--no-collector.docker"]).unwrap();
        assert!(!cli.toggles.enabled("docker"));
        assert!(cli.toggles.enabled("logs"));
        let cli =
            Cli::try_parse_from(["x", "--collector.disable-defaults", "--collector.logs"]).unwrap();
        assert!(cli.toggles.enabled("logs"));
        assert!(!cli.toggles.enabled("filesystem"));
        let cli = Cli::try_parse_from(["x", "--no-collector.logs", "--collector.logs"]).unwrap();
        assert!(cli.toggles.enabled("logs"));
    }
}
