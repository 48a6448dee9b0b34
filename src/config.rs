//! Command-line flags, node_exporter style, and the value parsers that make
//! every bad value fail at start-up with the flag's name (exit code 2).
//!
//! Each collector owns its flags (`collectors::NAME::Args`), and its toggle
//! comes from the registration list in `collectors`; this module only
//! gathers them ([`collectors::Flags`]) and adds the exporter-wide ones.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, ValueEnum};

use crate::collectors;
use crate::host::Paths;
use crate::values::{
    parse_listen_address, parse_log_level, parse_positive_duration, parse_telemetry_path,
};

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
    pub collectors: collectors::Flags,
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
    /// Scrapes served at once; more get 503 at once (0: no limit).
    #[arg(long = "web.max-requests", value_name = "N", default_value_t = crate::http::DEFAULT_MAX_REQUESTS)]
    pub max_requests: usize,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toggles() {
        let cli = Cli::try_parse_from(["x", "--no-collector.docker"]).unwrap();
        assert!(!cli.collectors.toggles.enabled("docker"));
        assert!(cli.collectors.toggles.enabled("logs"));
        let cli =
            Cli::try_parse_from(["x", "--collector.disable-defaults", "--collector.logs"]).unwrap();
        assert!(cli.collectors.toggles.enabled("logs"));
        assert!(!cli.collectors.toggles.enabled("filesystem"));
        let cli = Cli::try_parse_from(["x", "--no-collector.logs", "--collector.logs"]).unwrap();
        assert!(cli.collectors.toggles.enabled("logs"));
        // Every collector's own flags are there too.
        let cli = Cli::try_parse_from(["x", "--collector.logs.top-files=3"]).unwrap();
        assert_eq!(cli.collectors.docker.interval, Duration::from_secs(5));
    }
}
