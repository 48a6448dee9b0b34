//! One module per collector, registered in one list (the `collectors!` call
//! below). Each line declares the module, flattens its `Args` into the
//! command line ([`Flags`]), adds its `--collector.NAME` / `--no-collector.NAME`
//! toggle ([`Toggles`]) and starts it ([`start`]) when enabled. Adding a
//! collector is one new module and one line there.
//!
//! A collector module imports only leaf modules (`crate::values` for flag
//! parsers, `crate::host` for `Paths`, `crate::collector` for the trait),
//! never `crate::config`: the command line gathers collectors, not the
//! reverse.

use clap::{Arg, ArgAction, ArgMatches, Command, FromArgMatches};

use crate::host::Paths;
use crate::scheduler::Scheduler;

/// The registration list's machinery: `NAME => |args, paths| CONSTRUCTOR`.
macro_rules! collectors {
    ($($name:ident => $new:expr),+ $(,)?) => {
        $(pub mod $name;)+

        /// Every collector's own flags, and the toggles, in registration order.
        #[derive(Debug, clap::Args)]
        #[group(skip)]
        pub struct Flags {
            #[command(flatten)]
            pub toggles: Toggles,
            $(
                #[command(flatten)]
                pub $name: $name::Args,
            )+
        }

        /// Every collector's toggle flags, in registration order.
        const TOGGLES: &[Toggle] = &[$(
            Toggle {
                name: stringify!($name),
                on: concat!("collector.", stringify!($name)),
                off: concat!("no-collector.", stringify!($name)),
                on_help: concat!("Enable the ", stringify!($name), " collector (default: enabled)"),
                off_help: concat!("Disable the ", stringify!($name), " collector"),
            },
        )+];

        /// Start every enabled collector on its interval.
        pub fn start(flags: &Flags, paths: &Paths, scheduler: &mut Scheduler) {
            $(
                if flags.toggles.enabled(stringify!($name)) {
                    let new: fn(&$name::Args, &Paths) -> _ = $new;
                    scheduler.spawn(new(&flags.$name, paths), flags.$name.interval);
                }
            )+
        }
    };
}

pub mod probing;

collectors! {
    docker => |args, paths| docker::DockerCollector::new(args, paths),
    cri => |args, paths| cri::CriCollector::new(args, paths),
    filesystem => |args, paths| filesystem::FilesystemCollector::new(args, paths),
    systemd => |args, _| systemd::SystemdCollector::new(args),
    processes => |args, paths| processes::ProcessesCollector::new(args, paths),
    logs => |args, paths| logs::LogsCollector::new(args, paths),
    kernel => |args, paths| kernel::KernelCollector::new(args, paths),
    kubelet => |args, paths| kubelet::KubeletCollector::new(args, paths),
}

/// The flag names of one collector's toggle.
struct Toggle {
    name: &'static str,
    on: &'static str,
    off: &'static str,
    on_help: &'static str,
    off_help: &'static str,
}

const DISABLE_DEFAULTS: &str = "collector.disable-defaults";

/// `--collector.NAME` / `--no-collector.NAME` for every registered collector,
/// and `--collector.disable-defaults`; the last of a pair given wins.
#[derive(Debug, Clone, Default)]
pub struct Toggles {
    disable_defaults: bool,
    /// (`--collector.NAME` given, `--no-collector.NAME` given), as in `TOGGLES`.
    given: Vec<(bool, bool)>,
}

impl Toggles {
    /// Whether the named collector runs.
    pub fn enabled(&self, name: &str) -> bool {
        let Some(i) = TOGGLES.iter().position(|t| t.name == name) else {
            return false;
        };
        match self.given.get(i).copied().unwrap_or_default() {
            (_, true) => false,
            (on, false) => on || !self.disable_defaults,
        }
    }
}

impl clap::Args for Toggles {
    fn augment_args(cmd: Command) -> Command {
        let flag = |id: &'static str, help: &'static str| {
            Arg::new(id).long(id).action(ArgAction::SetTrue).help(help)
        };
        let mut cmd = cmd.next_help_heading("Collectors").arg(flag(
            DISABLE_DEFAULTS,
            "Disable every collector not explicitly enabled with --collector.NAME",
        ));
        for t in TOGGLES {
            cmd = cmd
                .arg(flag(t.on, t.on_help).overrides_with(t.off))
                .arg(flag(t.off, t.off_help).overrides_with(t.on));
        }
        cmd
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

impl FromArgMatches for Toggles {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let flag = |id: &str| {
            matches
                .try_get_one::<bool>(id)
                .ok()
                .flatten()
                .copied()
                .unwrap_or(false)
        };
        Ok(Toggles {
            disable_defaults: flag(DISABLE_DEFAULTS),
            given: TOGGLES.iter().map(|t| (flag(t.on), flag(t.off))).collect(),
        })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        flags: Flags,
    }

    fn toggles(args: &[&str]) -> Toggles {
        let argv = std::iter::once("x").chain(args.iter().copied());
        Cli::try_parse_from(argv).unwrap().flags.toggles
    }

    #[test]
    fn every_collector_is_on_by_default_and_each_toggle_is_its_own() {
        let all = toggles(&[]);
        for t in TOGGLES {
            assert!(all.enabled(t.name), "{}", t.name);
            let off = toggles(&[&format!("--no-collector.{}", t.name)]);
            for other in TOGGLES {
                assert_eq!(off.enabled(other.name), other.name != t.name);
            }
            let only = toggles(&[
                "--collector.disable-defaults",
                &format!("--collector.{}", t.name),
            ]);
            for other in TOGGLES {
                assert_eq!(only.enabled(other.name), other.name == t.name);
            }
        }
        assert!(!all.enabled("nonesuch"));
        assert_eq!(
            TOGGLES.iter().map(|t| t.name).collect::<Vec<_>>(),
            [
                "docker",
                "cri",
                "filesystem",
                "systemd",
                "processes",
                "logs",
                "kernel",
                "kubelet"
            ]
        );
    }

    #[test]
    fn the_last_of_a_pair_wins() {
        assert!(toggles(&["--no-collector.logs", "--collector.logs"]).enabled("logs"));
        assert!(!toggles(&["--collector.logs", "--no-collector.logs"]).enabled("logs"));
        assert!(
            !toggles(&[
                "--collector.disable-defaults",
                "--collector.logs",
                "--no-collector.logs"
            ])
            .enabled("logs")
        );
    }
}
