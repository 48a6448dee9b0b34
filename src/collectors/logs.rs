//! Logs collector (placeholder: filled in by the logs issue).

use std::time::Duration;

use crate::collector::{CollectError, Collection, Collector};
use crate::config::{Paths, parse_positive_duration};

#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Collector: logs")]
#[group(skip)]
pub struct Args {
    /// How often the logs collector stats the matched files.
    #[arg(id = "collector.logs.interval", long = "collector.logs.interval", value_name = "DURATION", default_value = "15s", value_parser = parse_positive_duration)]
    pub interval: Duration,
    /// A log group as GROUP=GLOB (repeatable; replaces the defaults when given).
    #[arg(
        id = "collector.logs.path",
        long = "collector.logs.path",
        value_name = "GROUP=GLOB"
    )]
    pub path: Vec<String>,
    /// How many fastest-growing files get a per-file series.
    #[arg(
        id = "collector.logs.top-files",
        long = "collector.logs.top-files",
        value_name = "N",
        default_value = "20"
    )]
    pub top_files: usize,
    /// Window of the log growth estimate.
    #[arg(id = "collector.logs.trend-window", long = "collector.logs.trend-window", value_name = "DURATION", default_value = "10m", value_parser = parse_positive_duration)]
    pub trend_window: Duration,
}

pub struct LogsCollector;

impl LogsCollector {
    pub fn new(_args: &Args, _paths: &Paths) -> Self {
        LogsCollector
    }
}

impl Collector for LogsCollector {
    fn name(&self) -> &'static str {
        "logs"
    }

    async fn collect(&mut self) -> Result<Collection, CollectError> {
        Ok(Collection::default())
    }
}
