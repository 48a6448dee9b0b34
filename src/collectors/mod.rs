//! One module per collector. Adding a collector means one new module, its
//! `Args` flattened into `config::Cli`, and one line in [`start`].

pub mod docker;
pub mod filesystem;
pub mod logs;
pub mod processes;
pub mod systemd;

use crate::config::Cli;
use crate::scheduler::Scheduler;

/// Every collector's name, as used in `--collector.NAME`.
pub const NAMES: [&str; 5] = ["docker", "filesystem", "systemd", "processes", "logs"];

/// Start every enabled collector on its interval.
pub fn start(cli: &Cli, scheduler: &mut Scheduler) {
    let on = |name| cli.toggles.enabled(name);
    if on("docker") {
        scheduler.spawn(
            docker::DockerCollector::new(&cli.docker, &cli.paths),
            cli.docker.interval,
        );
    }
    if on("filesystem") {
        scheduler.spawn(
            filesystem::FilesystemCollector::new(&cli.filesystem, &cli.paths),
            cli.filesystem.interval,
        );
    }
    if on("systemd") {
        scheduler.spawn(
            systemd::SystemdCollector::new(&cli.systemd),
            cli.systemd.interval,
        );
    }
    if on("processes") {
        scheduler.spawn(
            processes::ProcessesCollector::new(&cli.processes, &cli.paths),
            cli.processes.interval,
        );
    }
    if on("logs") {
        scheduler.spawn(
            logs::LogsCollector::new(&cli.logs, &cli.paths),
            cli.logs.interval,
        );
    }
}
