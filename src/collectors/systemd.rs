//! systemd collector (placeholder: filled in by the systemd issue).

use std::time::Duration;

use regex::Regex;

use crate::collector::{CollectError, Collection, Collector};
use crate::config::{parse_anchored_regex, parse_positive_duration};

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
        default_value = "system"
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
}

pub struct SystemdCollector;

impl SystemdCollector {
    pub fn new(_args: &Args) -> Self {
        SystemdCollector
    }
}

impl Collector for SystemdCollector {
    fn name(&self) -> &'static str {
        "systemd"
    }

    async fn collect(&mut self) -> Result<Collection, CollectError> {
        Ok(Collection::default())
    }
}
