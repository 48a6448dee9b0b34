//! Filesystem collector (placeholder).

use std::time::Duration;

use crate::collector::{CollectError, Collection, Collector};
use crate::config::{Paths, parse_positive_duration};

#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Collector: filesystem")]
#[group(skip)]
pub struct Args {
    /// How often the filesystem collector scans /proc.
    #[arg(id = "collector.filesystem.interval", long = "collector.filesystem.interval", value_name = "DURATION", default_value = "15s", value_parser = parse_positive_duration)]
    pub interval: Duration,
}

pub struct FilesystemCollector;

impl FilesystemCollector {
    pub fn new(_args: &Args, _paths: &Paths) -> Self {
        FilesystemCollector
    }
}

impl Collector for FilesystemCollector {
    fn name(&self) -> &'static str {
        "filesystem"
    }

    async fn collect(&mut self) -> Result<Collection, CollectError> {
        Ok(Collection::default())
    }
}
