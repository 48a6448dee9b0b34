//! Processes collector (placeholder: filled in by the processes issue).

use std::time::Duration;

use crate::collector::{CollectError, Collection, Collector};
use crate::config::{Paths, parse_positive_duration};

#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Collector: processes")]
#[group(skip)]
pub struct Args {
    /// How often the processes collector scans /proc.
    #[arg(id = "collector.processes.interval", long = "collector.processes.interval", value_name = "DURATION", default_value = "15s", value_parser = parse_positive_duration)]
    pub interval: Duration,
}

pub struct ProcessesCollector;

impl ProcessesCollector {
    pub fn new(_args: &Args, _paths: &Paths) -> Self {
        ProcessesCollector
    }
}

impl Collector for ProcessesCollector {
    fn name(&self) -> &'static str {
        "processes"
    }

    async fn collect(&mut self) -> Result<Collection, CollectError> {
        Ok(Collection::default())
    }
}
