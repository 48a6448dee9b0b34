//! Docker collector (placeholder: filled in by the docker issue).

use std::time::Duration;

use crate::collector::{CollectError, Collection, Collector};
use crate::config::{Paths, parse_positive_duration};

#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Collector: docker")]
#[group(skip)]
pub struct Args {
    /// How often the docker collector probes the daemon.
    #[arg(id = "collector.docker.interval", long = "collector.docker.interval", value_name = "DURATION", default_value = "5s", value_parser = parse_positive_duration)]
    pub interval: Duration,
    /// Docker daemon address (unix:///path or tcp://host:port).
    #[arg(
        id = "collector.docker.host",
        long = "collector.docker.host",
        value_name = "URL",
        env = "DOCKER_HOST",
        default_value = "unix:///var/run/docker.sock"
    )]
    pub host: String,
    /// A probe is abandoned after this long.
    #[arg(id = "collector.docker.timeout", long = "collector.docker.timeout", value_name = "DURATION", default_value = "30s", value_parser = parse_positive_duration)]
    pub timeout: Duration,
    /// A probe unanswered this long while the socket accepts connections means the daemon is hung.
    #[arg(id = "collector.docker.hang-threshold", long = "collector.docker.hang-threshold", value_name = "DURATION", default_value = "10s", value_parser = parse_positive_duration)]
    pub hang_threshold: Duration,
}

pub struct DockerCollector;

impl DockerCollector {
    pub fn new(_args: &Args, _paths: &Paths) -> Self {
        DockerCollector
    }
}

impl Collector for DockerCollector {
    fn name(&self) -> &'static str {
        "docker"
    }

    async fn collect(&mut self) -> Result<Collection, CollectError> {
        Ok(Collection::default())
    }
}
